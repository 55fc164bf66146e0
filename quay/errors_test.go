package quay

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// apiException is the body of Quay's ApiException family
// (endpoints/exception.py ApiException.to_dict).
func apiException(status int, errorType, detail string) string {
	return fmt.Sprintf(`{"detail": %q, "error_message": %q, "error_type": %q, "title": %q, "type": "https://quay.example.com/api/v1/error/%s", "status": %d}`,
		detail, detail, errorType, errorType, errorType, status)
}

// Every error body shape Quay (and the nginx in front of it) sends becomes
// an *Error with Quay's status, type and message (endpoints/exception.py,
// util/http.py abort, endpoints/decorated.py, endpoints/v2/errors.py).
func TestErrors_EveryQuayBodyShape(t *testing.T) {
	type want struct {
		errType, message                             string
		retryAfter                                   time.Duration
		unauthorized, forbidden, notFound, transient bool
		robotNotFound, robotExists, alreadyMember    bool
	}
	cases := []struct {
		name        string
		status      int
		contentType string
		body        string
		headers     []string
		want        want
	}{
		{
			name: "ApiException 401 invalid_token", status: 401, contentType: "application/json",
			body: `{"detail": "Requires authentication", "error_message": "Requires authentication", "error_type": "invalid_token", "title": "invalid_token", "type": "https://quay.example.com/api/v1/error/invalid_token", "status": 401, "session_required": false}`,
			want: want{errType: "invalid_token", message: "Requires authentication", unauthorized: true},
		},
		{
			name: "ApiException 403 insufficient_scope", status: 403, contentType: "application/json",
			body: apiException(403, "insufficient_scope", "Unauthorized"),
			want: want{errType: "insufficient_scope", message: "Unauthorized", forbidden: true},
		},
		{
			name: "ApiException 401 expired_token", status: 401, contentType: "application/json",
			body: apiException(401, "expired_token", "OAuth access token has expired"),
			want: want{errType: "expired_token", message: "OAuth access token has expired", unauthorized: true},
		},
		{
			name: "ApiException 404 not_found", status: 404, contentType: "application/json",
			body: apiException(404, "not_found", "Not Found"),
			want: want{errType: "not_found", message: "Not Found", notFound: true, robotNotFound: true},
		},
		{
			name: "ApiException 400 duplicate robot", status: 400, contentType: "application/json",
			body: apiException(400, "invalid_request", "Existing robot with name: acme+ci"),
			want: want{errType: "invalid_request", message: "Existing robot with name: acme+ci", robotExists: true},
		},
		{
			name: "ApiException with only a title", status: 400, contentType: "application/json",
			body: `{"detail": "Invalid password", "title": "invalid_request", "status": 400}`,
			want: want{errType: "invalid_request", message: "Invalid password"},
		},
		{
			name: "ApiException 520 downstream_issue", status: 520, contentType: "application/json",
			body: apiException(520, "downstream_issue", "Storage unavailable"),
			want: want{errType: "downstream_issue", message: "Storage unavailable", transient: true},
		},
		{
			name: "abort 403 CSRF", status: 403, contentType: "application/json",
			body: `{"error": "CSRF token was invalid or missing."}`,
			want: want{errType: "csrf", message: "CSRF token was invalid or missing.", unauthorized: true},
		},
		{
			name: "abort 401 anonymous", status: 401, contentType: "application/json",
			body: `{"error": "Anonymous access is not allowed"}`,
			want: want{message: "Anonymous access is not allowed", unauthorized: true},
		},
		{
			// What Quay really sends: util/http.py _abort builds the JSON
			// with make_response, so Flask labels it text/html.
			name: "abort 403 CSRF labelled text/html", status: 403, contentType: "text/html; charset=utf-8",
			body: `{"error": "CSRF token was invalid or missing."}`,
			want: want{errType: "csrf", message: "CSRF token was invalid or missing.", unauthorized: true},
		},
		{
			name: "abort 403 that is not CSRF", status: 403, contentType: "application/json",
			body: `{"error": "Forbidden (authorized: user quayadmin)"}`,
			want: want{message: "Forbidden (authorized: user quayadmin)", forbidden: true},
		},
		{
			name: "data model 400 missing robot", status: 400, contentType: "application/json",
			body: `{"message": "Could not find robot with specified username"}`,
			want: want{message: "Could not find robot with specified username", robotNotFound: true},
		},
		{
			name: "data model 400 already a member", status: 400, contentType: "application/json",
			body: `{"message": "User acme+ci is already a member of team builders"}`,
			want: want{message: "User acme+ci is already a member of team builders", alreadyMember: true},
		},
		{
			name: "data model 400 duplicate robot", status: 400, contentType: "application/json",
			body: `{"message": "Existing robot with name: acme+ci"}`,
			want: want{message: "Existing robot with name: acme+ci", robotExists: true},
		},
		{
			name: "read-only 503", status: 503, contentType: "application/json",
			body: `{"message": "System is currently read-only. Pulls will succeed but all write operations are currently suspended.", "is_readonly": true}`,
			want: want{message: "System is currently read-only. Pulls will succeed but all write operations are currently suspended.", transient: true},
		},
		{
			name: "V2 errors", status: 401, contentType: "application/json",
			body: `{"errors": [{"code": "UNAUTHORIZED", "message": "Invalid Username or Password", "detail": {}}]}`,
			want: want{errType: "UNAUTHORIZED", message: "Invalid Username or Password", unauthorized: true},
		},
		{
			name: "nginx 429 page", status: 429, contentType: "text/html",
			body: nginxPage(429),
			want: want{transient: true},
		},
		{
			name: "nginx 502 page", status: 502, contentType: "text/html",
			body: nginxPage(502),
			want: want{transient: true},
		},
		{
			// Flask's page for a path nothing is routed to (a wrong
			// prefix, a proxy, a feature Quay does not have): it says
			// nothing about the resource, so it is no "not found".
			name: "Flask HTML 404", status: 404, contentType: "text/html; charset=utf-8",
			body: "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server.</p>\n",
			want: want{message: "Not Found: this Quay has no such API route (an HTML page answered: a Quay older than 3.18, a feature switched off, or a wrong URL or proxy)"},
		},
		{
			// Werkzeug's page for another method on a path only the web
			// UI's GET catch-all matches: DELETE on a route Quay lacks.
			name: "Werkzeug HTML 405", status: 405, contentType: "text/html; charset=utf-8",
			body: "<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n",
			want: want{message: "Method Not Allowed: this Quay has no such API route (an HTML page answered: a Quay older than 3.18, a feature switched off, or a wrong URL or proxy)"},
		},
		{
			// endpoints/api/__init__.py validate_json_request: the detail
			// is jsonschema's whole report, value and schema included.
			name: "schema validation 400", status: 400, contentType: "application/json",
			body: `{"detail": "'dddd' is too long\n\nFailed validating 'maxLength' in schema['properties']['description']:\n    {'type': 'string', 'maxLength': 255}\n\nOn instance['description']:\n    'dddd'", "error_message": "'dddd' is too long\n\nFailed validating 'maxLength' in schema['properties']['description']:\n    {'type': 'string', 'maxLength': 255}\n\nOn instance['description']:\n    'dddd'", "error_type": "invalid_request", "status": 400, "title": "invalid_request", "type": "http://quay/api/v1/error/invalid_request"}`,
			want: want{errType: "invalid_request", message: "'dddd' is too long"},
		},
		{
			// util/http.py abort for a route Quay hides (route_show_if):
			// the feature is absent, which says nothing about a resource.
			name: "abort 404", status: 404, contentType: "text/html; charset=utf-8",
			body: `{"error": "Not Found"}`,
			want: want{message: "Not Found"},
		},
		{
			name: "XHTML 502 from a proxy", status: 502, contentType: "text/html",
			body: `<?xml version="1.0" encoding="iso-8859-1"?>` + "\n" + `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">` + "\n<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>",
			want: want{transient: true},
		},
		{
			name: "HTML fragment labelled text/html", status: 503, contentType: "text/html",
			body: "<h1>Service Unavailable</h1>\nNo server is available to handle this request.",
			want: want{transient: true},
		},
		{
			name: "plain-text 429 with Retry-After", status: 429, contentType: "text/plain",
			body:    "Too many login attempts. \nPlease reset your Quay password and try again.",
			headers: []string{"Retry-After", "120"},
			want:    want{message: "Too many login attempts. \nPlease reset your Quay password and try again.", retryAfter: 120 * time.Second, transient: true},
		},
		{
			name: "plain-text 429 labelled text/html, as Flask sends it", status: 429, contentType: "text/html; charset=utf-8",
			body:    "Too many login attempts. \nPlease reset your Quay password and try again.",
			headers: []string{"Retry-After", "3600"},
			want:    want{message: "Too many login attempts. \nPlease reset your Quay password and try again.", retryAfter: time.Hour, transient: true},
		},
		{
			name: "empty 500", status: 500,
			want: want{transient: true},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeQuay(t, reply(tc.status, tc.contentType, tc.body, tc.headers...))
			_, err := newTestClient(t, srv.URL, noRetries).GetUser(bg)
			require.Error(t, err)
			var qe *Error
			require.ErrorAs(t, err, &qe)
			assert.Equal(t, tc.status, qe.StatusCode)
			assert.Equal(t, "GET", qe.Method)
			assert.Equal(t, "/api/v1/user/", qe.Path)
			assert.Equal(t, tc.want.errType, qe.Type, "Type")
			assert.Equal(t, tc.want.message, qe.Message, "Message")
			assert.Equal(t, tc.want.retryAfter, qe.RetryAfter, "RetryAfter")

			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, fmt.Sprintf("quay: GET /api/v1/user/: %d ", tc.status)), msg)
			assert.NotContains(t, msg, "<", "no markup in messages")
			if tc.want.message == "" {
				assert.Contains(t, msg, http.StatusText(tc.status), "the status text stands in for an unusable body")
			}

			assert.Equal(t, tc.status, StatusOf(err), "StatusOf")
			assert.Equal(t, tc.want.unauthorized, IsUnauthorized(err), "IsUnauthorized")
			assert.Equal(t, tc.want.forbidden, IsForbidden(err), "IsForbidden")
			assert.Equal(t, tc.want.notFound, IsNotFound(err), "IsNotFound")
			assert.Equal(t, tc.want.transient, IsTransient(err), "IsTransient")
			assert.Equal(t, tc.status == 429, IsRateLimited(err), "IsRateLimited")
			assert.Equal(t, tc.want.robotNotFound, IsRobotNotFound(err), "IsRobotNotFound")
			assert.Equal(t, tc.want.robotExists, IsRobotExists(err), "IsRobotExists")
			assert.Equal(t, tc.want.alreadyMember, IsAlreadyTeamMember(err), "IsAlreadyTeamMember")
			assert.Equal(t, tc.status >= 400 && tc.status < 500, Refused(err), "Refused: every 4xx, and only those")
		})
	}
}

func TestErrors_MessageFormat(t *testing.T) {
	srv := newFakeQuay(t, jsonReply(401, apiException(401, "invalid_token", "Requires authentication")))
	_, err := newTestClient(t, srv.URL).GetUser(bg)
	assert.EqualError(t, err, "quay: GET /api/v1/user/: 401 invalid_token: Requires authentication")

	srv = newFakeQuay(t, reply(429, "text/plain", "slow down", "Retry-After", "120"))
	_, err = newTestClient(t, srv.URL).GetUser(bg)
	assert.EqualError(t, err, "quay: GET /api/v1/user/: 429 slow down (retry after 2m0s)")
}

// The 401/403 split: a token Quay does not know is unauthorized (fix the
// credential), a known token without the scope or rights is forbidden (fix
// the grant).
func TestErrors_UnauthorizedVersusForbidden(t *testing.T) {
	srv := newFakeQuay(t, jsonReply(401, apiException(401, "invalid_token", "Requires authentication")))
	_, err := newTestClient(t, srv.URL).GetUser(bg)
	assert.True(t, IsUnauthorized(err))
	assert.False(t, IsForbidden(err))

	srv = newFakeQuay(t, jsonReply(403, apiException(403, "insufficient_scope", "Unauthorized")))
	_, err = newTestClient(t, srv.URL).CreateRobot(bg, acme, "ci", RobotSpec{})
	assert.False(t, IsUnauthorized(err))
	assert.True(t, IsForbidden(err))

	// A mutation with an unknown token meets Quay's CSRF check first
	// (endpoints/csrf.py csrf_protect).
	srv = newFakeQuay(t, jsonReply(403, `{"error": "CSRF token was invalid or missing."}`))
	_, err = newTestClient(t, srv.URL).CreateRobot(bg, acme, "ci", RobotSpec{})
	assert.True(t, IsUnauthorized(err))
	assert.False(t, IsForbidden(err))
	assert.Equal(t, 403, StatusOf(err))
}

// Quay answers a resource declared with a trailing slash, asked for without
// one, with a 308; a proxy may redirect too. The client never follows (a
// POST body would be replayed elsewhere) and names the target.
func TestErrors_RedirectIsAnErrorNamingTheLocation(t *testing.T) {
	srv := newFakeQuay(t, reply(http.StatusPermanentRedirect, "", "", "Location", "/api/v1/user/"))
	_, err := newTestClient(t, srv.URL).GetUser(bg)
	require.Error(t, err)
	assert.Equal(t, 308, StatusOf(err))
	assert.Contains(t, err.Error(), "unexpected redirect to /api/v1/user/")
	assert.Equal(t, 1, srv.Calls(), "not followed")

	srv = newFakeQuay(t, reply(http.StatusMovedPermanently, "text/html", "<html>moved</html>", "Location", "https://quay.example.com/api/v1/organization/"))
	err = newTestClient(t, srv.URL).CreateOrganization(bg, "acme", "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unexpected redirect to https://quay.example.com/api/v1/organization/")
	assert.Equal(t, 1, srv.Calls(), "a POST is never replayed to another address")
	assert.False(t, IsTransient(err))
}

// A redirect's query and fragment may carry tokens (an SSO proxy's login
// page, an OAuth redirect); the message keeps only where it points.
func TestErrors_RedirectMessageDropsQueryAndFragment(t *testing.T) {
	srv := newFakeQuay(t, reply(http.StatusFound, "", "", "Location",
		"https://sso.example.com/login?session="+secretToken+"#access_token="+secretToken))
	_, err := newTestClient(t, srv.URL).GetUser(bg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unexpected redirect to https://sso.example.com/login")
	assertNoSecretIn(t, err.Error(), secretToken)
}

func TestErrors_LongMessagesAreTruncatedToValidText(t *testing.T) {
	for _, unit := range []string{"x", "é", "日本", "🙂"} {
		srv := newFakeQuay(t, jsonReply(400, `{"message": "`+strings.Repeat(unit, 2000)+`"}`))
		_, err := newTestClient(t, srv.URL).GetUser(bg)
		require.Error(t, err)
		var qe *Error
		require.ErrorAs(t, err, &qe)
		assert.LessOrEqual(t, len(qe.Message), maxErrorMessage+len("…"), unit)
		assert.True(t, strings.HasSuffix(qe.Message, "…"), unit)
		assert.True(t, utf8.ValidString(err.Error()), "%s: cut on a character boundary", unit)
	}
}

func TestErrors_PredicatesOnOtherErrors(t *testing.T) {
	plain := errors.New("boom")
	for _, err := range []error{nil, plain} {
		assert.Zero(t, StatusOf(err))
		assert.False(t, IsNotFound(err))
		assert.False(t, IsTransient(err))
		assert.False(t, IsRateLimited(err))
		assert.False(t, IsUnauthorized(err))
		assert.False(t, IsForbidden(err))
		assert.False(t, IsRobotNotFound(err))
		assert.False(t, IsRobotExists(err))
		assert.False(t, IsAlreadyTeamMember(err))
	}

	srv := newFakeQuay(t, jsonReply(404, apiException(404, "not_found", "Not Found")))
	_, err := newTestClient(t, srv.URL).GetOrganization(bg, "nope")
	wrapped := fmt.Errorf("reading organization: %w", err)
	assert.Equal(t, 404, StatusOf(wrapped), "wrapped errors are seen through")
	assert.True(t, IsNotFound(wrapped))
	assert.False(t, IsTransient(wrapped))
}
