package quay

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClient_SendsTheBearerCredentialPerRequest(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		_, _ = w.Write([]byte(`{"username":"quayadmin"}`))
	}))
	defer srv.Close()
	var n atomic.Int32
	cred := credentialFunc(func() string { return []string{"first", "second"}[n.Add(1)-1] })
	c, err := New(Config{BaseURL: srv.URL, Credential: cred})
	require.NoError(t, err)
	for range 2 {
		_, err := c.GetUser(context.Background())
		require.NoError(t, err)
	}
	assert.Equal(t, []string{"Bearer first", "Bearer second"}, got, "the credential is asked for on every request")

	other := c.WithCredential(StaticToken("third"))
	_, err = other.GetUser(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "Bearer third", got[2])
}

type credentialFunc func() string

func (f credentialFunc) BearerToken(context.Context) (string, error) { return f(), nil }

func TestClient_AnonymousAndBasicCalls(t *testing.T) {
	var auth string
	var form string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		switch r.URL.Path {
		case "/api/v1/user/initialize":
			_, _ = w.Write([]byte(`{"username":"quayadmin","access_token":"ABCDEFGHIJ0123456789ABCDEFGHIJ0123456789"}`))
		case "/oauth/authorizeapp":
			_ = r.ParseForm()
			form = r.PostForm.Encode()
			w.Header().Set("Location", "http://q/oauth/localapp#access_token=TOKEN123&token_type=Bearer&expires_in=315576000")
			w.WriteHeader(http.StatusFound)
		}
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Credential: StaticToken(secretToken)})
	require.NoError(t, err)

	resp, err := c.InitializeUser(context.Background(), InitializeUserRequest{Username: "quayadmin", Password: "password1", AccessToken: true})
	require.NoError(t, err)
	assert.Empty(t, auth, "initialization is anonymous")
	assert.Len(t, resp.AccessToken, 40)

	tok, err := c.AuthorizeApp(context.Background(), DirectOAuthRequest{Username: "svc", Password: "pw", ClientID: "CID",
		RedirectURI: "http://q/oauth/localapp", Scopes: []string{"org:admin", "user:read"}})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(auth, "Basic "), "direct OAuth uses Basic credentials")
	assert.Equal(t, "TOKEN123", tok.AccessToken)
	assert.Equal(t, 315576000*time.Second, tok.ExpiresIn)
	assert.Contains(t, form, "response_type=token")
	assert.Contains(t, form, "redirect_uri=http%3A%2F%2Fq%2Foauth%2Flocalapp")
	assert.Contains(t, form, "scope=org%3Aadmin+user%3Aread")
}

func TestClient_AuthorizeAppWithoutRedirectIsAnError(t *testing.T) {
	srv, _ := answer(t, 403, "application/json", `{"error": "CSRF token was invalid or missing."}`)
	_, err := testClient(t, srv.URL).AuthorizeApp(context.Background(), DirectOAuthRequest{ClientID: "x", RedirectURI: "http://r"})
	require.Error(t, err)
	assert.True(t, IsUnauthorized(err))
}

func TestClient_RetriesRateLimitsForEveryCall(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls <= 2 {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte("<html>429</html>"))
			return
		}
		_, _ = w.Write([]byte(`{"uuid":"u1","token":"T"}`))
	}))
	defer srv.Close()
	tok, err := testClient(t, srv.URL).CreateApplicationToken(context.Background(), "acme", "CID", NewApplicationToken{Name: "n", Scopes: []string{"repo:read"}})
	require.NoError(t, err, "a 429 means Quay did not act: even a POST is retried")
	assert.Equal(t, "u1", tok.UUID)
	assert.Equal(t, 3, calls)
}

func TestClient_RetryAfterBeyondTheCapFailsAtOnce(t *testing.T) {
	srv, calls := answer(t, 429, "text/plain", "slow down", "Retry-After", "120")
	_, err := testClient(t, srv.URL).GetUser(context.Background())
	require.Error(t, err)
	var qe *Error
	require.ErrorAs(t, err, &qe)
	assert.Equal(t, 120*time.Second, qe.RetryAfter)
	assert.Equal(t, 1, *calls)
	assert.True(t, IsRateLimited(err))
	assert.Contains(t, err.Error(), "retry after 2m0s")
}

func TestClient_ServerErrorsAreRetriedOnlyForIdempotentCalls(t *testing.T) {
	for _, status := range []int{502, 503, 504} {
		srv, calls := answer(t, status, "text/html", "<html>bad gateway</html>")
		c := testClient(t, srv.URL)

		_, err := c.GetUser(context.Background())
		require.Error(t, err)
		assert.Equal(t, 3, *calls, "GET %d: first attempt and two retries", status)
		assert.True(t, IsTransient(err))

		*calls = 0
		err = c.DeleteRobot(context.Background(), Namespace{Kind: NamespaceOrganization, Name: "acme"}, "r")
		require.Error(t, err)
		assert.Equal(t, 3, *calls, "DELETE %d is idempotent", status)

		*calls = 0
		_, err = c.CreateApplicationToken(context.Background(), "acme", "CID", NewApplicationToken{Name: "n", Scopes: []string{"repo:read"}})
		require.Error(t, err)
		assert.Equal(t, 1, *calls, "POST %d: Quay may have acted; not retried", status)

		*calls = 0
		_, err = c.CreateRobot(context.Background(), Namespace{Kind: NamespaceOrganization, Name: "acme"}, "r", RobotSpec{})
		require.Error(t, err)
		assert.Equal(t, 1, *calls, "robot PUT %d is not idempotent", status)
	}
}

func TestClient_RefusedConnectionIsRetriedAndTransient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	c := testClient(t, "http://"+addr)
	_, err = c.CreateApplicationToken(context.Background(), "acme", "CID", NewApplicationToken{Name: "n", Scopes: []string{"repo:read"}})
	require.Error(t, err)
	assert.True(t, IsTransient(err))
	assert.Contains(t, err.Error(), "Quay unreachable")
}

func TestClient_DroppedConnectionRetriedOnlyWhenIdempotent(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	defer srv.Close()
	c := testClient(t, srv.URL)

	_, err := c.GetUser(context.Background())
	require.Error(t, err)
	assert.EqualValues(t, 3, calls.Load(), "GET retried")

	calls.Store(0)
	_, err = c.CreateApplicationToken(context.Background(), "acme", "CID", NewApplicationToken{Name: "n", Scopes: []string{"repo:read"}})
	require.Error(t, err)
	assert.EqualValues(t, 1, calls.Load(), "POST not retried after a dropped connection")
	assert.True(t, IsTransient(err))
}

func TestClient_ContextCancellationStopsRetries(t *testing.T) {
	srv, calls := answer(t, 503, "", "")
	c, err := New(Config{BaseURL: srv.URL, Credential: StaticToken("t"), RetryWaitMin: time.Hour, RetryWaitMax: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.GetUser(ctx)
	require.Error(t, err)
	assert.Equal(t, 1, *calls)
	assert.True(t, errors.Is(err, context.DeadlineExceeded))
}

func TestClient_PerAttemptTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c, err := New(Config{BaseURL: srv.URL, Credential: StaticToken("t"), RequestTimeout: 50 * time.Millisecond, MaxRetries: -1})
	require.NoError(t, err)
	_, err = c.GetUser(context.Background())
	require.Error(t, err)
	assert.True(t, IsTransient(err))
	assert.Contains(t, err.Error(), "timed out")
}

func TestClient_TLSVerificationIsOnByDefault(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"username":"quayadmin"}`))
	}))
	defer srv.Close()

	c, err := New(Config{BaseURL: srv.URL, Credential: StaticToken("t")})
	require.NoError(t, err)
	_, err = c.GetUser(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate not trusted")
	assert.False(t, IsTransient(err), "a certificate problem does not heal by retrying")

	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	c, err = New(Config{BaseURL: srv.URL, Credential: StaticToken("t"), CACertificate: caPEM})
	require.NoError(t, err)
	u, err := c.GetUser(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "quayadmin", u.Username)

	c, err = New(Config{BaseURL: srv.URL, Credential: StaticToken("t"), InsecureSkipVerify: true})
	require.NoError(t, err)
	_, err = c.GetUser(context.Background())
	require.NoError(t, err)
}

func TestNew_RejectsBadInput(t *testing.T) {
	for _, cfg := range []Config{
		{BaseURL: ""},
		{BaseURL: "quay.example.com"},
		{BaseURL: "ftp://quay.example.com"},
		{BaseURL: "https://user:pw@quay.example.com"},
		{BaseURL: "https://quay.example.com", CACertificate: "not a certificate"},
	} {
		_, err := New(cfg)
		assert.Error(t, err, "%+v", cfg)
	}
}

// No credential reaches an error message or a log line, whatever Quay sends.
func TestClient_NeverLeaksSecrets(t *testing.T) {
	robotToken := strings.Repeat("R", 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/organization/acme/robots/ci" {
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"name":"acme+ci","token":"` + robotToken + `"}`))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"message": "upstream said: ` + r.Header.Get("Authorization") + `"}`))
	}))
	defer srv.Close()
	var logs bytes.Buffer
	c, err := New(Config{BaseURL: srv.URL, Credential: StaticToken(secretToken), RetryWaitMin: 1, RetryWaitMax: 2,
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &logs})})
	require.NoError(t, err)
	robot, err := c.CreateRobot(context.Background(), Namespace{Kind: NamespaceOrganization, Name: "acme"}, "ci", RobotSpec{})
	require.NoError(t, err)
	assert.Equal(t, robotToken, robot.Token)
	_, err = c.GetUser(context.Background())
	require.Error(t, err)
	_, err = c.AuthorizeApp(context.Background(), DirectOAuthRequest{Username: "u", Password: "hunter2-password", ClientID: "c", RedirectURI: "http://r"})
	require.Error(t, err)

	assert.NotContains(t, logs.String(), secretToken)
	assert.NotContains(t, logs.String(), robotToken)
	assert.NotContains(t, logs.String(), "hunter2-password")
	assert.NotEmpty(t, logs.String(), "requests are logged (without secrets)")
}

func TestClient_ListApplicationTokensFollowsPages(t *testing.T) {
	var cursors []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cursor := r.URL.Query().Get("next_page")
		cursors = append(cursors, cursor)
		switch cursor {
		case "":
			_, _ = w.Write([]byte(`{"tokens":[{"uuid":"a"},{"uuid":"b"}],"next_page":"p2/=+"}`))
		case "p2/=+":
			_, _ = w.Write([]byte(`{"tokens":[{"uuid":"c"}]}`))
		default:
			w.WriteHeader(400)
		}
	}))
	defer srv.Close()
	tokens, err := testClient(t, srv.URL).ListApplicationTokens(context.Background(), "acme", "CID")
	require.NoError(t, err)
	require.Len(t, tokens, 3)
	assert.Equal(t, []string{"", "p2/=+"}, cursors, "the opaque cursor is passed back as is")
}

func TestClient_CreateApplicationTokenBody(t *testing.T) {
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b map[string]any
		_ = json.NewDecoder(r.Body).Decode(&b)
		bodies = append(bodies, b)
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		_, _ = w.Write([]byte(`{"uuid":"u","expires_at":"2036-07-10T11:05:34.123456Z","created":"2026-07-10T11:05:34Z","token":"T"}`))
	}))
	defer srv.Close()
	c := testClient(t, srv.URL)
	tok, err := c.CreateApplicationToken(context.Background(), "acme", "CID", NewApplicationToken{Name: "ci", Scopes: []string{"repo:read", "user:read"}, Expiration: 90*time.Minute + 500*time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"name": "ci", "scope": "repo:read user:read", "expiration": float64(5401)}, bodies[0], "seconds, rounded up")
	assert.Equal(t, time.Date(2036, 7, 10, 11, 5, 34, 123456000, time.UTC), tok.ExpiresAt.Time)

	_, err = c.CreateApplicationToken(context.Background(), "acme", "CID", NewApplicationToken{Name: "ci", Scopes: []string{"repo:read"}, Expiration: 20 * 365 * 24 * time.Hour})
	require.NoError(t, err)
	assert.Equal(t, float64(315576000), bodies[1]["expiration"], "clamped to Quay's ten years")

	_, err = c.CreateApplicationToken(context.Background(), "acme", "CID", NewApplicationToken{Name: "ci", Scopes: []string{"repo:read"}})
	require.NoError(t, err)
	assert.NotContains(t, bodies[2], "expiration", "zero lets Quay apply its default")
}

func TestClient_RobotPathsEscapeAndNamespaces(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.Method+" "+r.URL.EscapedPath())
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/robots/") {
			assert.JSONEq(t, `{"description":"d","unstructured_metadata":{"k":"v"}}`, string(body))
		}
		_, _ = w.Write([]byte(`{"name":"acme+ci","created":"Wed, 22 Jul 2026 10:00:00 -0000","last_accessed":null}`))
	}))
	defer srv.Close()
	c := testClient(t, srv.URL)
	org := Namespace{Kind: NamespaceOrganization, Name: "acme"}
	user := Namespace{Kind: NamespaceUser, Name: "quayadmin"}
	r, err := c.CreateRobot(context.Background(), org, "ci", RobotSpec{Description: "d", UnstructuredMetadata: map[string]any{"k": "v"}})
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 7, 22, 10, 0, 0, 0, time.UTC), r.Created.Time)
	assert.True(t, r.LastAccessed.IsZero())
	assert.Equal(t, "ci", r.ShortName())
	_, err = c.RegenerateRobotToken(context.Background(), user, "ci")
	require.NoError(t, err)
	require.NoError(t, c.SetUserPermission(context.Background(), "acme", "app", "acme+ci", RoleRead))
	assert.Equal(t, []string{
		"PUT /api/v1/organization/acme/robots/ci",
		"POST /api/v1/user/robots/ci/regenerate",
		"PUT /api/v1/repository/acme/app/permissions/user/acme+ci",
	}, paths)
	assert.Equal(t, "acme+ci", org.RobotUsername("ci"))
}

func TestScopes(t *testing.T) {
	got, err := NormalizeScopes(SplitScopes("user:read, repo:read repo:read,org:admin"))
	require.NoError(t, err)
	assert.Equal(t, []string{"repo:read", "user:read", "org:admin"}, got)

	_, err = NormalizeScopes([]string{"repo:read", "repo:nope"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"repo:nope"`)

	ok, missing := ScopesCover([]string{"repo:admin", "user:read"}, []string{"repo:write", "repo:read", "user:read"})
	assert.True(t, ok)
	assert.Empty(t, missing)
	ok, missing = ScopesCover([]string{"repo:write"}, []string{"repo:admin", "repo:read", "org:admin"})
	assert.False(t, ok)
	assert.Equal(t, []string{"repo:admin", "org:admin"}, missing)
}

func BenchmarkCreateApplicationToken(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(`{"uuid":"u","name":"n","scope":"repo:read","expires_at":"2036-07-10T11:05:34.123456Z","created":"2026-07-10T11:05:34Z","created_by":"quayadmin","last_accessed":null,"token":"ABCDEFGHIJ0123456789ABCDEFGHIJ0123456789"}`))
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Credential: StaticToken(secretToken)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	in := NewApplicationToken{Name: "bench", Scopes: []string{"repo:read"}, Expiration: time.Hour}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.CreateApplicationToken(ctx, "acme", "CID", in); err != nil {
			b.Fatal(err)
		}
	}
}
