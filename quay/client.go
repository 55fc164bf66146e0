// Package quay is a typed client for the parts of Project Quay's HTTP API that
// the Vault secrets engine uses: users, organizations, OAuth applications and
// their tokens, robot accounts, repositories, permissions, teams and
// prototypes.
//
// The client follows Quay's real behaviour (paths, bodies, status codes and
// error shapes, as Quay 3.18's endpoints/ and auth/ define them): it authenticates
// /api/v1 calls with a Bearer token only, turns every error body shape into a
// typed *Error, and retries transient failures with backoff. It never logs or
// returns a credential in an error.
package quay

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-retryablehttp"
)

// Defaults applied by New when the Config leaves a field zero.
const (
	DefaultRequestTimeout = 30 * time.Second
	DefaultMaxRetries     = 3
	defaultRetryWaitMin   = 100 * time.Millisecond
	defaultRetryWaitMax   = 3 * time.Second
	// maxResponseBytes bounds how much of a response body is read. Quay's
	// largest answers here (robot lists with permissions) stay far below it.
	maxResponseBytes = 16 << 20
)

// Credential supplies the Bearer credential for /api/v1 calls. Implementations
// may fetch or refresh it (OIDC client credentials, a rotated root token);
// the client asks for it on every request and never stores it.
type Credential interface {
	BearerToken(ctx context.Context) (string, error)
}

// ReplaceableCredential is a Credential that may be replaced while calls are
// in flight, such as a root token the engine rotates. A call Quay refused
// because its token was rejected (IsTokenRejected) is sent once more when
// the credential has been replaced since: Quay refuses such a call before
// acting on it, so sending it again is safe even for a create.
type ReplaceableCredential interface {
	Credential
	// Replaced reports whether token is no longer the current one.
	Replaced(ctx context.Context, token string) bool
}

// StaticToken is a Credential that always returns the same token, such as a
// Quay OAuth access token pasted by an operator.
type StaticToken string

// BearerToken implements Credential.
func (t StaticToken) BearerToken(context.Context) (string, error) { return string(t), nil }

// Config configures a Client.
type Config struct {
	// BaseURL is Quay's address, e.g. https://quay.example.com. A path
	// prefix is kept; a trailing slash is ignored.
	BaseURL string
	// Credential authenticates /api/v1 calls. It may be nil for the calls
	// that need none (user initialization, direct OAuth, the registry).
	Credential Credential
	// CACertificate is an optional PEM bundle. When set, only these
	// certificates are trusted for Quay's TLS certificate.
	CACertificate string
	// InsecureSkipVerify turns TLS verification off. Only for test setups.
	InsecureSkipVerify bool
	// RequestTimeout bounds each HTTP attempt (default 30s). The caller's
	// context bounds the whole call including retries.
	RequestTimeout time.Duration
	// MaxRetries is how many times a transient failure is retried
	// (default 3; negative disables retries).
	MaxRetries int
	// RetryWaitMin and RetryWaitMax bound the exponential backoff between
	// attempts (defaults 100ms and 3s). A Retry-After header adds its wait
	// to the backoff: Quay rounds its hint down to whole seconds.
	RetryWaitMin, RetryWaitMax time.Duration
	// MaxRetryAfter is the longest Retry-After the client waits for. A
	// longer one fails the call at once with the server's hint in the
	// error, rather than holding a Vault request open (default 15s).
	MaxRetryAfter time.Duration
	// UserAgent is sent on every request.
	UserAgent string
	// Logger receives debug lines about requests and retries (method, path,
	// status; never headers or bodies). Nil means silent.
	Logger hclog.Logger
	// Transport overrides the HTTP transport (tests). When nil, New builds a
	// pooled keep-alive transport with the TLS settings above; a custom
	// transport brings its own TLS settings (CACertificate and
	// InsecureSkipVerify are then ignored).
	Transport http.RoundTripper
}

// Client calls Quay's API. It is safe for concurrent use; all calls share one
// connection pool.
type Client struct {
	base       *url.URL
	credential Credential
	userAgent  string
	http       *retryablehttp.Client
	policy     retryPolicy
	// transport is the shared connection pool (also behind http).
	transport http.RoundTripper
	// logger gets one debug line per call and per retry, never a secret.
	logger hclog.Logger
}

// New returns a Client for cfg. It fails on a malformed URL or CA bundle.
func New(cfg Config) (*Client, error) {
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	transport := cfg.Transport
	if transport == nil {
		transport, err = newTransport(cfg.CACertificate, cfg.InsecureSkipVerify)
		if err != nil {
			return nil, err
		}
	}
	timeout := cfg.RequestTimeout
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	policy := retryPolicy{
		maxRetryAfter: cfg.MaxRetryAfter,
	}
	if policy.maxRetryAfter <= 0 {
		policy.maxRetryAfter = 15 * time.Second
	}

	rc := retryablehttp.NewClient()
	rc.HTTPClient = &http.Client{
		// go-retryablehttp closes every idle connection of the client
		// after a call that failed for good; with one pool shared by all
		// calls of a mount, that would make the next burst of creds reads
		// pay fresh handshakes. keepPool hides CloseIdleConnections from it;
		// Close still releases the pool.
		Transport: keepPool{transport},
		Timeout:   timeout,
		// Quay answers some paths with a 308 to the slash-terminated form;
		// following it would replay a POST body, so callers always use the
		// canonical path and any redirect is surfaced as an error instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	rc.RetryMax = cfg.MaxRetries
	switch {
	case cfg.MaxRetries == 0:
		rc.RetryMax = DefaultMaxRetries
	case cfg.MaxRetries < 0:
		rc.RetryMax = 0
	}
	rc.RetryWaitMin, rc.RetryWaitMax = cfg.RetryWaitMin, cfg.RetryWaitMax
	if rc.RetryWaitMin <= 0 {
		rc.RetryWaitMin = defaultRetryWaitMin
	}
	if rc.RetryWaitMax <= 0 {
		rc.RetryWaitMax = defaultRetryWaitMax
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	rc.CheckRetry = func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		retry, stop := policy.checkRetry(ctx, resp, err)
		if retry && attemptOf(ctx) <= rc.RetryMax {
			logRetry(logger, ctx, resp, err)
		}
		return retry, stop
	}
	// The attempt number, for the one log line per call (see send).
	rc.RequestLogHook = func(_ retryablehttp.Logger, req *http.Request, attempt int) {
		if r, ok := req.Context().Value(requestKey{}).(*request); ok {
			r.attempts = attempt + 1
		}
	}
	rc.Backoff = policy.backoff
	// Hand the last response back after the final attempt so its body
	// becomes a typed *Error rather than a generic "giving up" message.
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	// The client logs each call and each retry itself (send, logRetry):
	// retryablehttp's own lines would repeat them with less to say.
	rc.Logger = nil

	ua := cfg.UserAgent
	if ua == "" {
		ua = "vault-plugin-secrets-quay"
	}
	return &Client{base: base, credential: cfg.Credential, userAgent: ua, http: rc, policy: policy, transport: transport, logger: logger}, nil
}

// keepPool is the RoundTripper of the retry loop: the shared transport
// without CloseIdleConnections (see New), whose errors never quote a secret
// of the request. net/http quotes a malformed status line or header line in
// its error, and retryablehttp logs every failed attempt's error before the
// client turns the last one into an *Error; a broken proxy that echoes the
// request there must not put its credentials into the log.
type keepPool struct{ http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (k keepPool) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := k.RoundTripper.RoundTrip(req)
	if err != nil {
		if r, ok := req.Context().Value(requestKey{}).(*request); ok {
			err = r.redactError(err)
		}
	}
	return resp, err
}

// requestKey carries the *request behind an HTTP request, for keepPool.
type requestKey struct{}

// redactError returns err unchanged unless its text holds a secret of r;
// then it returns an error with the secret replaced that keeps whether err
// was a timeout but not err itself, which would still hold the secret.
// Dial, TLS and context errors never quote the request, so they keep their
// identity for the retry policy.
func (r *request) redactError(err error) error {
	msg := err.Error()
	clean := r.redact(msg)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, timeout: isTimeout(err)}
}

// redactedError is a transport error with a secret of the request removed.
type redactedError struct {
	msg     string
	timeout bool
}

func (e *redactedError) Error() string { return e.msg }

// Timeout lets url.Error and the retry policy see a timeout as one.
func (e *redactedError) Timeout() bool { return e.timeout }

// BaseURL returns Quay's base address as configured.
func (c *Client) BaseURL() string { return c.base.String() }

// WithCredential returns a client that shares this one's connection pool and
// settings but authenticates with cred. Root rotation uses it to verify a new
// token before persisting it.
func (c *Client) WithCredential(cred Credential) *Client {
	clone := *c
	clone.credential = cred
	return &clone
}

// Close releases idle connections.
func (c *Client) Close() {
	if t, ok := c.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

func parseBaseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("quay: url is empty")
	}
	// A URL with userinfo may hold a password: whatever else is wrong with
	// it, it is never echoed (url.Parse's own errors quote the input too).
	shown := strconv.Quote(raw)
	hasUserinfo := strings.Contains(raw, "@")
	if hasUserinfo {
		shown = "(not shown: it may carry credentials)"
	}
	u, err := url.Parse(raw)
	if err != nil {
		if hasUserinfo {
			return nil, fmt.Errorf("quay: url %s is not a valid URL", shown)
		}
		return nil, fmt.Errorf("quay: url %s is not a valid URL: %w", shown, err)
	}
	if u.User != nil {
		return nil, fmt.Errorf("quay: url must not carry credentials")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("quay: url %s must start with https:// or http://", shown)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("quay: url %s has no host", shown)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

func newTransport(caPEM string, insecure bool) (*http.Transport, error) {
	t := cleanhttp.DefaultPooledTransport()
	// Creds reads fan out concurrently; keep enough idle connections to
	// Quay that a burst does not pay a fresh TLS handshake per request.
	t.MaxIdleConnsPerHost = 64
	t.ForceAttemptHTTP2 = true
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if strings.TrimSpace(caPEM) != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(caPEM)) {
			return nil, errors.New("quay: ca_certificate holds no valid PEM certificate")
		}
		tlsConfig.RootCAs = pool
	}
	tlsConfig.InsecureSkipVerify = insecure //nolint:gosec // explicit operator choice, off by default
	t.TLSClientConfig = tlsConfig
	return t, nil
}

// request describes one API call.
type request struct {
	// route is Quay's nickname of the operation (its @nickname in
	// endpoints/, as in Quay's logs and discovery document), for logs.
	route  string
	method string
	// path is the escaped path below the base URL, e.g. /api/v1/user/.
	path  string
	query url.Values
	// body is JSON-encoded unless it is a url.Values (form-encoded).
	body any
	// idempotent calls may be retried after a failure that could have
	// happened after Quay acted (5xx, a dropped connection). Non-idempotent
	// calls are retried only when Quay certainly did not act: 429, or a
	// connection that was never established.
	idempotent bool
	// anonymous calls send no Authorization header.
	anonymous bool
	// basicAuth, when set, replaces the Bearer credential.
	basicAuth *basicAuth
	// secrets are values of the request that must never appear in an
	// error, whatever Quay echoes: passwords in the body here, and the
	// Bearer token or Basic credentials, which send adds.
	secrets []string
	// bearer is the Bearer token send sent (a secret: never logged).
	bearer string
	// attempts counts the attempts made so far (for the log).
	attempts int
	// needBody says the caller decodes a 2xx body: a connection dropped
	// while it is read fails the attempt (and idempotent calls retry it).
	// Calls that need only the status take a 2xx as Quay's answer.
	needBody bool
}

type basicAuth struct{ username, password string }

// do performs r and decodes a 2xx JSON body into out (when out is non-nil).
// Any other status becomes an *Error. A call refused for a credential that
// was replaced meanwhile is sent once more with the current one.
func (c *Client) do(ctx context.Context, r request, out any) error {
	first := r
	err := c.doOnce(ctx, &first, out)
	if err == nil || first.bearer == "" || !IsTokenRejected(err) {
		return err
	}
	cred, ok := c.credential.(ReplaceableCredential)
	if !ok || !cred.Replaced(ctx, first.bearer) {
		return err
	}
	c.logger.Debug("quay call refused a replaced credential; sending it with the current one", "route", r.route, "method", r.method, "path", r.path)
	return c.doOnce(ctx, &r, out)
}

func (c *Client) doOnce(ctx context.Context, r *request, out any) error {
	r.needBody = out != nil
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer drain(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return newErrorFromResponse(r, resp)
	}
	if r.method == http.MethodDelete && resp.StatusCode != http.StatusNoContent {
		// Every delete Quay serves answers "", 204 (endpoints/api/*.py).
		// Another 2xx is someone else's page (a firewall's block page is a
		// 200), and nothing says Quay deleted anything: not a deletion.
		return r.fail(&Error{StatusCode: resp.StatusCode, Message: "a delete answered with something other than Quay's 204 No Content; something in front of Quay answered"})
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return r.fail(&Error{StatusCode: resp.StatusCode, Message: "reading response: " + err.Error(), transient: true})
	}
	if err := json.Unmarshal(body, out); err != nil {
		return r.fail(&Error{StatusCode: resp.StatusCode, Message: "unexpected response body: " + err.Error()})
	}
	return nil
}

// send performs r with retries and returns the final response, whatever its
// status. The caller closes the body. It adds the credential it sends to
// r.secrets.
func (c *Client) send(ctx context.Context, r *request) (*http.Response, error) {
	if badPathSegment(r.path) {
		return nil, r.fail(&Error{Message: `refusing a name that is empty, "." or "..": it would address another resource`, unsent: true})
	}
	u := *c.base
	u.Path = c.base.Path + r.path
	u.RawPath = ""
	if strings.Contains(r.path, "%") {
		u.RawPath = c.base.EscapedPath() + r.path
		if p, err := url.PathUnescape(u.RawPath); err == nil {
			u.Path = p
		}
	}
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}

	var body any
	contentType := ""
	switch b := r.body.(type) {
	case nil:
	case url.Values:
		body = []byte(b.Encode())
		contentType = "application/x-www-form-urlencoded"
	default:
		encoded, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("quay: encoding %s %s request: %w", r.method, r.path, err)
		}
		body = encoded
		contentType = "application/json"
		// A secret of the body travels JSON-escaped ('"', '\', '<', '>',
		// '&' and control characters); an echo of the raw body must not
		// give it away in that form either.
		for _, secret := range r.secrets {
			if esc, err := json.Marshal(secret); err == nil && string(esc[1:len(esc)-1]) != secret {
				r.secrets = append(r.secrets, string(esc[1:len(esc)-1]))
			}
		}
	}

	ctx = withIdempotency(ctx, r.idempotent)
	ctx = context.WithValue(ctx, requestKey{}, r)
	req, err := retryablehttp.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("quay: building %s %s: %w", r.method, r.path, err)
	}
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	switch {
	case r.basicAuth != nil:
		req.SetBasicAuth(r.basicAuth.username, r.basicAuth.password)
		r.secrets = append(r.secrets, r.basicAuth.password,
			base64.StdEncoding.EncodeToString([]byte(r.basicAuth.username+":"+r.basicAuth.password)))
	case !r.anonymous:
		if c.credential == nil {
			return nil, r.fail(&Error{Message: "no credential configured", cause: ErrNoCredential, unsent: true})
		}
		token, err := c.credential.BearerToken(ctx)
		if err != nil {
			return nil, r.fail(&Error{Message: "obtaining credential: " + err.Error(), cause: err, transient: true, unsent: true})
		}
		r.secrets = append(r.secrets, token)
		r.bearer = token
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// Read the body while the attempt is still the retry loop's, so that a
	// connection dropped mid-answer is a failed attempt like any other.
	req.SetResponseHandler(func(resp *http.Response) error { return bufferBody(resp, r.needBody) })

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		// The final response may come with the error (the caller's
		// context ended as it arrived); it is not the caller's to close.
		if resp != nil {
			drain(resp.Body)
		}
		failed := newTransportError(r, err)
		c.logger.Debug("quay call", "route", r.route, "method", r.method, "path", r.path, "error", failed.Message,
			"attempts", r.attempts, "duration", time.Since(start))
		return nil, failed
	}
	c.logger.Debug("quay call", "route", r.route, "method", r.method, "path", r.path, "status", resp.StatusCode,
		"attempts", r.attempts, "duration", time.Since(start))
	return resp, nil
}

// bufferBody reads a final response's body into memory (bounded). A read
// failure fails the attempt when the body is needed: the answer to a 2xx
// call that decodes it. An error answer keeps whatever part arrived, and a
// 2xx the caller does not read is left alone: Quay's status is the answer.
func bufferBody(resp *http.Response, needBody bool) error {
	is2xx := resp.StatusCode >= 200 && resp.StatusCode <= 299
	if is2xx && !needBody {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	_ = resp.Body.Close()
	if err != nil && is2xx {
		resp.Body = http.NoBody
		return &bodyReadError{err}
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return nil
}

// bodyReadError is a connection that failed while an answer's body was read.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return "reading Quay's answer: " + e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

// incomplete is the error for a 2xx answer that lacks what the call exists
// for. Quay acted (it said so), so this is no refusal: a caller guarding the
// create with a write-ahead entry keeps it, and the rollback finds the object
// by the name the caller chose.
func (r *request) incomplete(what string) *Error {
	return r.fail(&Error{Message: "Quay's answer lacks " + what})
}

// fail completes an error of request r: it names the call and strips every
// secret of the request from what Quay sent back.
func (r *request) fail(e *Error) *Error {
	e.Method, e.Path = r.method, r.path
	e.Message = truncate(strings.TrimSpace(r.redact(e.Message)), maxErrorMessage)
	e.Type = r.redact(e.Type)
	return e
}

// redact replaces every secret of r in s.
func (r *request) redact(s string) string {
	for _, secret := range r.secrets {
		s = redact(s, secret)
	}
	return s
}

// redacted replaces a secret in an error message.
const redacted = "[redacted]"

// redact replaces secret in s. Secrets as long as Quay's shortest password
// are replaced wherever they appear; a shorter one (a test token, a
// misconfiguration) only where it stands as a word of its own, so that a
// one-letter secret does not garble every message.
func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	if len(secret) >= 8 {
		return strings.ReplaceAll(s, secret, redacted)
	}
	var b strings.Builder
	for {
		i := strings.Index(s, secret)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(secret)
		b.WriteString(s[:i])
		if (i == 0 || !isWordByte(s[i-1])) && (end == len(s) || !isWordByte(s[end])) {
			b.WriteString(redacted)
		} else {
			b.WriteString(secret)
		}
		s = s[end:]
	}
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 0x80 || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxResponseBytes))
	_ = body.Close()
}

// badPathSegment reports a path segment that no name of Quay's can make
// and that changes which resource the path addresses:
//   - "." or "..": escape leaves dots alone, so a name that is only dots
//     stays such a segment, and a proxy that removes dot segments (RFC 3986
//     §5.2.4: nginx proxy_pass with a URI, Envoy's normalize_path) resolves
//     it; a DELETE of robot ".." would reach the organization itself.
//   - an empty segment (an empty name): "//" is merged by nginx, and a
//     trailing "/" names a route Quay does not have, so a DELETE of token ""
//     comes back 404, which callers take for "already revoked".
//
// The only empty segment allowed is the trailing one of the two resources
// Quay declares with a slash (endpoints/decorated.py).
func badPathSegment(path string) bool {
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		switch seg {
		case ".", "..":
			return true
		case "":
			last := i == len(segs)-1
			if i != 0 && !(last && (path == "/api/v1/user/" || path == "/api/v1/organization/")) {
				return true
			}
		}
	}
	return false
}

// escape makes one path segment safe (robot names carry '+').
func escape(segment string) string { return url.PathEscape(segment) }

// readBody reads a bounded response body.
func readBody(resp *http.Response) []byte {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	return bytes.TrimSpace(b)
}
