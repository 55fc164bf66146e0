package quay

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// answer returns a server that answers every request with status, headers
// and body, and counts the requests.
func answer(t *testing.T, status int, contentType, body string, headers ...string) (*httptest.Server, *int) {
	t.Helper()
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func testClient(t *testing.T, url string) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: url, Credential: StaticToken(secretToken), RetryWaitMin: 1, RetryWaitMax: 2, MaxRetries: 2})
	require.NoError(t, err)
	return c
}

const secretToken = "SECRETTOKENSECRETTOKENSECRETTOKENSECRET0"

// Every error body shape Quay sends becomes an *Error with its status, type
// and message (reference §1.4).
func TestErrors_EveryQuayBodyShape(t *testing.T) {
	cases := []struct {
		name, contentType, body string
		status                  int
		wantType, wantMessage   string
		unauthorized, forbidden bool
		robotNotFound, exists   bool
		member, notFound        bool
	}{
		{
			name: "ApiException invalid_token", status: 401, contentType: "application/json",
			body:     `{"detail":"Requires authentication","error_message":"Requires authentication","error_type":"invalid_token","title":"invalid_token","type":"https://q/api/v1/error/invalid_token","status":401,"session_required":false}`,
			wantType: "invalid_token", wantMessage: "Requires authentication", unauthorized: true,
		},
		{
			name: "ApiException insufficient_scope", status: 403, contentType: "application/json",
			body:     `{"detail":"Unauthorized","error_message":"Unauthorized","error_type":"insufficient_scope","title":"insufficient_scope","type":"x","status":403}`,
			wantType: "insufficient_scope", wantMessage: "Unauthorized", forbidden: true,
		},
		{
			name: "CSRF abort", status: 403, contentType: "application/json",
			body: `{"error": "CSRF token was invalid or missing."}`, wantType: "csrf", wantMessage: "CSRF token was invalid or missing.", unauthorized: true,
		},
		{
			name: "missing robot", status: 400, contentType: "application/json",
			body: `{"message": "Could not find robot with specified username"}`, wantMessage: "Could not find robot with specified username", robotNotFound: true,
		},
		{
			name: "duplicate robot", status: 400, contentType: "application/json",
			body:     `{"detail":"Existing robot with name: acme+ci","error_message":"Existing robot with name: acme+ci","error_type":"invalid_request","title":"invalid_request","type":"x","status":400}`,
			wantType: "invalid_request", wantMessage: "Existing robot with name: acme+ci", exists: true,
		},
		{
			name: "already a member", status: 400, contentType: "application/json",
			body: `{"message": "User acme+ci is already a member of team builders"}`, wantMessage: "User acme+ci is already a member of team builders", member: true,
		},
		{
			name: "not found", status: 404, contentType: "application/json",
			body: `{"detail":"Not Found","error_message":"Not Found","error_type":"not_found","title":"not_found","type":"x","status":404}`, wantType: "not_found", wantMessage: "Not Found", notFound: true,
		},
		{
			name: "V2 errors", status: 401, contentType: "application/json",
			body: `{"errors":[{"code":"UNAUTHORIZED","message":"Invalid Username or Password","detail":{}}]}`, wantType: "UNAUTHORIZED", wantMessage: "Invalid Username or Password", unauthorized: true,
		},
		{
			name: "nginx 429 page", status: 429, contentType: "text/html",
			body:        "<html>\r\n<head><title>429 Too Many Requests</title></head>\r\n<body>nginx</body></html>",
			wantMessage: "",
		},
		{
			name: "HTML 404", status: 404, contentType: "text/html",
			body: "<!DOCTYPE html><html><head><title>404</title></head></html>", wantMessage: "", notFound: true,
		},
		{
			name: "plain-text throttle", status: 429, contentType: "text/plain",
			body: "Too many login attempts. \nPlease reset your Quay password and try again.", wantMessage: "Too many login attempts. \nPlease reset your Quay password and try again.",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := answer(t, tc.status, tc.contentType, tc.body, "Retry-After", "999")
			_, err := testClient(t, srv.URL).GetUser(context.Background())
			require.Error(t, err)
			var qe *Error
			require.ErrorAs(t, err, &qe)
			assert.Equal(t, tc.status, qe.StatusCode)
			assert.Equal(t, tc.wantType, qe.Type)
			assert.Equal(t, tc.wantMessage, qe.Message)
			assert.NotContains(t, err.Error(), "<html", "no HTML in messages")
			assert.Equal(t, tc.unauthorized, IsUnauthorized(err), "IsUnauthorized")
			assert.Equal(t, tc.forbidden, IsForbidden(err), "IsForbidden")
			assert.Equal(t, tc.robotNotFound || tc.notFound, IsRobotNotFound(err), "IsRobotNotFound")
			assert.Equal(t, tc.exists, IsRobotExists(err), "IsRobotExists")
			assert.Equal(t, tc.member, IsAlreadyTeamMember(err), "IsAlreadyTeamMember")
			assert.Equal(t, tc.notFound, IsNotFound(err), "IsNotFound")
			assert.Equal(t, tc.status, StatusOf(err))
			assert.Equal(t, tc.status == 429, IsTransient(err))
			assert.Contains(t, err.Error(), "GET /api/v1/user/")
		})
	}
}

func TestErrors_RedirectIsAnErrorNamingTheLocation(t *testing.T) {
	srv, _ := answer(t, http.StatusPermanentRedirect, "", "", "Location", "/api/v1/user/")
	_, err := testClient(t, srv.URL).GetUser(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unexpected redirect to /api/v1/user/")
}

func TestErrors_LongMessagesAreTruncated(t *testing.T) {
	long := make([]byte, 5000)
	for i := range long {
		long[i] = 'x'
	}
	srv, _ := answer(t, 400, "application/json", `{"message": "`+string(long)+`"}`)
	_, err := testClient(t, srv.URL).GetUser(context.Background())
	require.Error(t, err)
	assert.Less(t, len(err.Error()), 700)
}
