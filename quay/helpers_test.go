package quay

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Secrets the tests hand the client; none may ever show up in an error or a
// log line.
const (
	secretToken    = "SECRETTOKENSECRETTOKENSECRETTOKENSECRET0"
	secretPassword = "hunter2-correct-horse"
	robotToken     = "ROBOTTOKENROBOTTOKENROBOTTOKENROBOTTOKENROBOTTOKENROBOTTOKEN0123"
)

// fakeQuay is an httptest server that counts the requests reaching it and
// records each one for the test to inspect.
type fakeQuay struct {
	*httptest.Server
	calls atomic.Int32

	mu   sync.Mutex
	reqs []seen
}

// seen is what the server saw of one request.
type seen struct {
	Method      string
	Path        string // decoded
	EscapedPath string // as sent on the wire
	Query       string // raw query
	Auth        string
	ContentType string
	Body        string
}

func newFakeQuay(t *testing.T, h http.HandlerFunc) *fakeQuay {
	t.Helper()
	f := &fakeQuay{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body)) // the handler may read it too
		f.mu.Lock()
		f.reqs = append(f.reqs, seen{
			Method: r.Method, Path: r.URL.Path, EscapedPath: r.URL.EscapedPath(), Query: r.URL.RawQuery,
			Auth: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type"), Body: string(body),
		})
		f.mu.Unlock()
		f.calls.Add(1)
		h(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// Calls returns how many requests reached the server.
func (f *fakeQuay) Calls() int { return int(f.calls.Load()) }

// Requests returns what the server saw, in order.
func (f *fakeQuay) Requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// Last returns the last request the server saw.
func (f *fakeQuay) Last(t *testing.T) seen {
	t.Helper()
	reqs := f.Requests()
	require.NotEmpty(t, reqs, "no request reached the server")
	return reqs[len(reqs)-1]
}

// reply answers every request with status, content type, body and header
// pairs.
func reply(status int, contentType, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// jsonReply answers with a JSON body.
func jsonReply(status int, body string) http.HandlerFunc {
	return reply(status, "application/json", body)
}

// sequence answers the n-th request with handlers[n], repeating the last.
func sequence(handlers ...http.HandlerFunc) http.HandlerFunc {
	var n atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		handlers[min(i, len(handlers)-1)](w, r)
	}
}

// nginxPage is nginx's default error page, what Quay's front proxy sends for
// its rate limiter and upstream failures.
func nginxPage(status int) string {
	title := http.StatusText(status)
	return "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title +
		"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
}

// newTestClient returns a client for url with the secret token, two retries
// and backoff waits too small to matter. opts adjust the Config.
func newTestClient(t testing.TB, url string, opts ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURL: url, Credential: StaticToken(secretToken), RetryWaitMin: time.Nanosecond, RetryWaitMax: 2 * time.Nanosecond, MaxRetries: 2}
	for _, opt := range opts {
		opt(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func noRetries(c *Config) { c.MaxRetries = -1 }

// countingTransport counts the attempts the client makes, whether or not
// they reach a server.
type countingTransport struct {
	base     http.RoundTripper
	attempts atomic.Int32
}

func newCountingTransport() *countingTransport {
	return &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.attempts.Add(1)
	return c.base.RoundTrip(r)
}

func (c *countingTransport) Attempts() int { return int(c.attempts.Load()) }

// credentialFunc adapts a function to Credential.
type credentialFunc func(context.Context) (string, error)

func (f credentialFunc) BearerToken(ctx context.Context) (string, error) { return f(ctx) }

var (
	acme     = Namespace{Kind: NamespaceOrganization, Name: "acme"}
	userNS   = Namespace{Kind: NamespaceUser, Name: "quayadmin"}
	bg       = context.Background()
	newToken = NewApplicationToken{Name: "ci", Scopes: []string{ScopeRepoRead}}
)

// assertNoSecretIn fails when secret appears in text, without printing
// either: a failing test must not put a credential in its output.
func assertNoSecretIn(t testing.TB, text, secret string) {
	t.Helper()
	if secret != "" && strings.Contains(text, secret) {
		t.Errorf("a secret (%d characters) appears in the text (neither shown)", len(secret))
	}
}
