package quay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Error is a failed Quay call. It keeps Quay's status and message whatever
// the shape of the error body (endpoints/exception.py, util/http.py, endpoints/decorated.py): the ApiException family
// (detail/error_type), util.http.abort ({"error": …}), data-model errors
// ({"message": …}), registry V2 errors ({"errors": [...]}) and plain text or
// HTML bodies from nginx. It never carries request headers or bodies.
type Error struct {
	// Method and Path identify the call (no query string, no credentials).
	Method string
	Path   string
	// StatusCode is the HTTP status, or 0 when no response arrived.
	StatusCode int
	// Type is Quay's error_type (e.g. invalid_token, insufficient_scope,
	// not_found, invalid_request) or a V2 error code, when Quay sent one.
	Type string
	// Message is Quay's human-readable message.
	Message string
	// RetryAfter is the server's Retry-After hint, when it sent one.
	RetryAfter time.Duration

	transient bool
	// unsent says the call never reached Quay: it could not be built or
	// authenticated, or its connection was never established.
	unsent bool
	cause  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("quay: ")
	if e.Method != "" {
		b.WriteString(e.Method)
		b.WriteString(" ")
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if e.StatusCode != 0 {
		b.WriteString(strconv.Itoa(e.StatusCode))
		b.WriteString(" ")
		if e.Type != "" {
			b.WriteString(e.Type)
			b.WriteString(": ")
		}
	}
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	b.WriteString(msg)
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Unwrap exposes the transport error, if any (context deadline, dial error).
func (e *Error) Unwrap() error { return e.cause }

// Transient reports whether the failure may go away on its own: Quay was
// unreachable, timed out, rate limited the call or answered with a 5xx.
func (e *Error) Transient() bool {
	if e.transient {
		return true
	}
	switch e.StatusCode {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout, 520:
		return true
	}
	return false
}

// StatusOf returns the HTTP status of a Quay error, or 0.
func StatusOf(err error) int {
	var qe *Error
	if errors.As(err, &qe) {
		return qe.StatusCode
	}
	return 0
}

// IsNotFound reports Quay's own "not found": a 404 with the body of its
// ApiException NotFound (endpoints/exception.py, error_type "not_found"),
// which is how Quay answers for a missing organization, application,
// token, repository or prototype. Any other 404 (a proxy's page, an API
// gateway's {"message": "Not Found"}, a wrong path prefix, a route Quay does
// not have) says nothing about the resource: callers that treat "not found"
// as "already gone" must never take a misrouted call for a deletion.
func IsNotFound(err error) bool {
	var qe *Error
	return errors.As(err, &qe) && qe.StatusCode == http.StatusNotFound && qe.Type == "not_found"
}

// Refused reports that Quay certainly did not act on the call: it answered
// with a 4xx status, or the call never left the client (it could not be
// built or authenticated, or no connection was established). Anything else
// (a 5xx, a timeout, a dropped or cancelled call, a 2xx whose answer could
// not be read) may have come after Quay acted. Callers guarding a create
// with a write-ahead entry drop the entry only on a refusal.
func Refused(err error) bool {
	var qe *Error
	if !errors.As(err, &qe) {
		return false
	}
	return qe.unsent || (qe.StatusCode >= 400 && qe.StatusCode < 500)
}

// IsTransient reports whether err is a Quay failure that may go away on its
// own (see Error.Transient).
func IsTransient(err error) bool {
	var qe *Error
	return errors.As(err, &qe) && qe.Transient()
}

// IsRateLimited reports a 429 from Quay (after retries were exhausted).
func IsRateLimited(err error) bool { return StatusOf(err) == http.StatusTooManyRequests }

// IsUnauthorized reports that Quay did not accept the credential: 401, or the
// 403 CSRF answer Quay gives to mutations with a missing or invalid token
// (endpoints/csrf.py).
func IsUnauthorized(err error) bool {
	var qe *Error
	if !errors.As(err, &qe) {
		return false
	}
	return qe.StatusCode == http.StatusUnauthorized || (qe.StatusCode == http.StatusForbidden && qe.Type == typeCSRF)
}

// IsTokenRejected reports, by Quay's own answer, that the /api/v1 call's
// Bearer token is not (or no longer) a valid credential: 401 invalid_token
// or expired_token (endpoints/exception.py), or the CSRF 403 Quay gives a
// mutation whose token it did not accept (endpoints/csrf.py). A token Quay
// rejects is as good as deleted.
func IsTokenRejected(err error) bool {
	var qe *Error
	if !errors.As(err, &qe) {
		return false
	}
	switch {
	case qe.StatusCode == http.StatusUnauthorized:
		return qe.Type == "invalid_token" || qe.Type == "expired_token"
	case qe.StatusCode == http.StatusForbidden:
		return qe.Type == typeCSRF
	}
	return false
}

// IsForbidden reports an authenticated caller without the rights or scopes
// for the call (403 insufficient_scope).
func IsForbidden(err error) bool {
	var qe *Error
	return errors.As(err, &qe) && qe.StatusCode == http.StatusForbidden && qe.Type != typeCSRF
}

// typeCSRF marks the CSRF rejection, which has no error_type of its own.
const typeCSRF = "csrf"

// apiErrorBody covers every JSON error body Quay sends.
type apiErrorBody struct {
	Detail       string `json:"detail"`
	ErrorMessage string `json:"error_message"`
	ErrorType    string `json:"error_type"`
	Title        string `json:"title"`
	Message      string `json:"message"`
	Error        string `json:"error"`
	Errors       []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

// maxErrorMessage bounds the message kept from an error body.
const maxErrorMessage = 512

func newErrorFromResponse(r *request, resp *http.Response) *Error {
	e := &Error{StatusCode: resp.StatusCode}
	if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After")); ok {
		e.RetryAfter = ra
	}
	body := readBody(resp)
	var parsed apiErrorBody
	if len(body) > 0 && body[0] == '{' && json.Unmarshal(body, &parsed) == nil {
		switch {
		case parsed.ErrorType != "" || parsed.Detail != "" || parsed.ErrorMessage != "":
			e.Type = firstNonEmpty(parsed.ErrorType, parsed.Title)
			e.Message = firstNonEmpty(parsed.ErrorMessage, parsed.Detail)
		case parsed.Error != "":
			e.Message = parsed.Error
			if resp.StatusCode == http.StatusForbidden && strings.HasPrefix(parsed.Error, "CSRF token") {
				e.Type = typeCSRF
			}
		case parsed.Message != "":
			e.Message = parsed.Message
		case len(parsed.Errors) > 0:
			e.Type = parsed.Errors[0].Code
			e.Message = parsed.Errors[0].Message
		}
	}
	if e.Message == "" && len(body) > 0 && !looksLikeHTML(body) && resp.StatusCode >= 300 {
		e.Message = string(body)
	}
	if e.Message == "" && looksLikeHTML(body) && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed) {
		// Quay's web UI answers every path its API does not route: its
		// index page for GET (endpoints/web.py), Werkzeug's 405 page for
		// the other methods. Nothing was found or refused; the route is
		// missing.
		e.Message = http.StatusText(resp.StatusCode) + ": this Quay has no such API route (an HTML page answered: a Quay older than 3.18, a feature switched off, or a wrong URL or proxy)"
	}
	e.Message = schemaSummary(e.Message)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		e.Message = "unexpected redirect to " + redirectTarget(resp.Header.Get("Location"))
	}
	return r.fail(e)
}

// redirectTarget is where a redirect points, without the parts that may
// carry a secret: userinfo, query and fragment (an OAuth redirect carries
// the access token in its fragment).
func redirectTarget(location string) string {
	u, err := url.Parse(location)
	if err != nil {
		return "an unparseable location"
	}
	u.User, u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery = nil, "", "", "", false
	return u.String()
}

func newTransportError(r *request, err error) *Error {
	e := &Error{cause: err}
	var certErr *x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var verifyErr *tls.CertificateVerificationError
	var readErr *bodyReadError
	switch {
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		e.Message = "timed out waiting for Quay"
		e.transient = true
	case errors.Is(err, context.Canceled):
		e.Message = "request canceled"
	case errors.As(err, &certErr), errors.As(err, &hostErr), errors.As(err, &verifyErr):
		// The handshake fails before a request byte is sent.
		e.Message = "TLS certificate not trusted: " + rootCause(err).Error() + " (set ca_certificate, or disable_ssl_verification for tests only)"
		e.unsent = true
	case errors.As(err, &readErr):
		e.Message = "connection to Quay dropped mid-answer: " + rootCause(readErr.err).Error()
		e.transient = true
	default:
		e.Message = "Quay unreachable: " + rootCause(err).Error()
		e.transient = true
		var opErr *net.OpError
		e.unsent = errors.As(err, &opErr) && opErr.Op == "dial"
	}
	return r.fail(e)
}

// rootCause strips url.Error's "Get \"https://...\":" prefix and similar
// wrappers so messages stay short; the URL never holds a secret, but the
// innermost error is the useful part.
func rootCause(err error) error {
	for {
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			return opErr
		}
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
// A number of seconds too large for a time.Duration is the longest one,
// never an overflow into a short or negative wait.
func parseRetryAfter(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); (err == nil || errors.Is(err, strconv.ErrRange)) && secs >= 0 {
		if secs > int64(math.MaxInt64/time.Second) {
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

// looksLikeHTML reports an HTML body (nginx's and other proxies' error
// pages), which is never worth quoting in a message. It looks at the body,
// not at Content-Type: Flask labels Quay's plain-text answers (the password
// throttle's 429) text/html.
// schemaSummary keeps the first part of a schema-validation message: Quay
// passes jsonschema's str(ValidationError) as the detail of its 400
// (endpoints/api/__init__.py validate_json_request), which goes on with the
// whole schema and the offending value, echoed.
func schemaSummary(msg string) string {
	if i := strings.Index(msg, "\n\nFailed validating"); i >= 0 {
		return msg[:i]
	}
	return msg
}

func looksLikeHTML(b []byte) bool {
	if strings.HasPrefix(http.DetectContentType(b), "text/html") {
		return true
	}
	s := strings.ToLower(string(b[:min(len(b), 512)]))
	return strings.Contains(s, "<!doctype html") || strings.Contains(s, "<html") || strings.Contains(s, "<head")
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// truncate cuts s to at most n bytes on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
