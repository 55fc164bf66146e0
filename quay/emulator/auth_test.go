package emulator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// raw sends a request with an arbitrary Authorization header.
func (q *quayEnv) raw(t *testing.T, method, path, authorization, body string) (int, map[string]any, string) {
	t.Helper()
	req, err := http.NewRequest(method, q.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	q.emu.ServeHTTP(rec, req)
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	return rec.Code, m, rec.Body.String()
}

func TestAPIAuth_ApiExceptionBodies(t *testing.T) {
	q := newQuayEnv(t, "SERVER_HOSTNAME: quay.example.com\nPREFERRED_URL_SCHEME: https\n")
	code, body, _ := q.do(t, "GET", "/api/v1/organization/acme/applications", "", "")
	assert.Equal(t, 401, code)
	assert.Equal(t, map[string]any{
		"detail": "Requires authentication", "error_message": "Requires authentication", "error_type": "invalid_token",
		"title": "invalid_token", "type": "https://quay.example.com/api/v1/error/invalid_token", "status": float64(401),
	}, body, "anonymous GET: Unauthorized's 401 form, no session_required outside /user/")

	userOnly, err := q.emu.IssueToken("admin", "user:read", time.Hour)
	require.NoError(t, err)
	code, body, _ = q.do(t, "GET", "/api/v1/organization/acme/applications", userOnly, "")
	assert.Equal(t, 403, code)
	assert.Equal(t, map[string]any{
		"detail": "Unauthorized", "error_message": "Unauthorized", "error_type": "insufficient_scope",
		"title": "insufficient_scope", "type": "https://quay.example.com/api/v1/error/insufficient_scope", "status": float64(403),
	}, body)

	code, body, _ = q.do(t, "GET", "/api/v1/organization/acme/applications/NOPE", q.admin, "")
	assert.Equal(t, 404, code)
	assert.Equal(t, "not_found", body["error_type"])
	assert.Equal(t, "Not Found", body["detail"])

	code, body, _ = q.do(t, "GET", "/api/v1/user/", "", "")
	assert.Equal(t, 401, code)
	assert.Equal(t, false, body["session_required"])
	assert.Len(t, body, 7, "the six ApiException keys plus session_required")
}

func TestAPIAuth_BearerOnly(t *testing.T) {
	q := newQuayEnv(t, "")
	for _, tc := range []struct {
		header string
		want   int
	}{
		{"Bearer " + q.admin, 200},
		{"bearer " + q.admin, 200},            // the scheme is case-insensitive
		{"Bearer  " + q.admin, 200},           // empty parts are dropped, as auth/oauth.py does
		{"Bearer " + q.admin + " extra", 401}, // three parts: not a Bearer credential
		{"Basic " + strings.Repeat("A", 20), 401},
		{basic("admin", "password1"), 401}, // Basic is no /api/v1 credential
		{"Bearer " + strings.Repeat("Z", 40), 401},
		{"Bearer " + q.admin[:20], 401}, // the lookup half alone
		{"Bearer " + q.admin[:20] + strings.Repeat("0", 20), 401},
	} {
		code, _, _ := q.raw(t, "GET", "/api/v1/user/", tc.header, "")
		assert.Equal(t, tc.want, code, tc.header)
	}

	// An invalid opaque token is anonymous: mutations hit CSRF first.
	for _, header := range []string{"", "Bearer " + strings.Repeat("Z", 40), basic("admin", "password1")} {
		for _, req := range [][2]string{
			{"POST", "/api/v1/organization/acme/applications"},
			{"PUT", "/api/v1/organization/acme/robots/x1"},
			{"DELETE", "/api/v1/organization/acme/robots/x1"},
			{"PUT", "/api/v1/repository/acme/app/permissions/user/admin"},
		} {
			code, body, raw := q.raw(t, req[0], req[1], header, `{"name":"x"}`)
			assert.Equal(t, 403, code, req)
			assert.JSONEq(t, `{"error": "CSRF token was invalid or missing."}`, raw, req)
			assert.NotContains(t, body, "error_type")
		}
	}

	// A disabled user's token does not authenticate.
	q.emu.mu.Lock()
	q.emu.db.accounts["admin"].enabled = false
	q.emu.mu.Unlock()
	code, _, _ := q.do(t, "GET", "/api/v1/user/", q.admin, "")
	assert.Equal(t, 401, code)
}

func TestAPIAuth_TrailingSlashesAndUnknownPaths(t *testing.T) {
	q := newQuayEnv(t, "")
	for _, tc := range []struct{ method, path, location string }{
		{"GET", "/api/v1/user", "/api/v1/user/"},
		{"GET", "/api/v1/user?x=1", "/api/v1/user/?x=1"},
		{"POST", "/api/v1/organization", "/api/v1/organization/"},
	} {
		req, _ := http.NewRequest(tc.method, q.srv.URL+tc.path, strings.NewReader(`{"name":"neworg"}`))
		req.Header.Set("Authorization", "Bearer "+q.admin)
		client := q.srv.Client()
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 308, resp.StatusCode, tc.path)
		assert.Equal(t, q.srv.URL+tc.location, resp.Header.Get("Location"), "an absolute URL, as Werkzeug builds it")
	}
	// Real Quay: the web UI's 404 page, HTML, not an API error.
	req, _ := http.NewRequest("GET", q.srv.URL+"/api/v1/nothing/here", nil)
	req.Header.Set("Authorization", "Bearer "+q.admin)
	resp, err := q.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	// Other methods reach only the web UI's GET catch-all: Werkzeug's 405.
	req, _ = http.NewRequest("DELETE", q.srv.URL+"/api/v1/nothing/here", nil)
	req.Header.Set("Authorization", "Bearer "+q.admin)
	resp, err = q.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 405, resp.StatusCode)
	assert.Equal(t, "HEAD, OPTIONS, GET", resp.Header.Get("Allow"))
}

// auth/permissions.py caps organization roles by scope: membership and
// repository creation need repo:create or org:admin, administration
// org:admin; repository roles by repo:read/write/admin.
func TestAPIAuth_RoleCappingByScope(t *testing.T) {
	q := newQuayEnv(t, "")
	require.NoError(t, q.emu.CreateRepository("acme", "app", false))
	token := func(scope string) string {
		tok, err := q.emu.IssueToken("admin", scope, time.Hour)
		require.NoError(t, err)
		return tok
	}
	for _, tc := range []struct {
		scope, method, path, body string
		want                      int
	}{
		// Listing robots needs membership: a capped team role.
		{"repo:read", "GET", "/api/v1/organization/acme/robots", "", 403},
		{"repo:create", "GET", "/api/v1/organization/acme/robots", "", 200},
		{"org:admin", "GET", "/api/v1/organization/acme/robots", "", 200},
		// Robot creation needs administration.
		{"repo:create", "PUT", "/api/v1/organization/acme/robots/r1", "", 403},
		{"org:admin", "PUT", "/api/v1/organization/acme/robots/r1", "", 201},
		// Repository creation needs repo:create or org:admin.
		{"repo:admin", "POST", "/api/v1/repository", `{"repository":"r1","visibility":"private","description":"","namespace":"acme"}`, 403},
		{"repo:create", "POST", "/api/v1/repository", `{"repository":"r2","visibility":"private","description":"","namespace":"acme"}`, 201},
		{"org:admin", "POST", "/api/v1/repository", `{"repository":"r3","visibility":"private","description":"","namespace":"acme"}`, 201},
		// Repository permissions need repo:admin, even for the org admin.
		{"org:admin repo:write", "GET", "/api/v1/repository/acme/app/permissions/user/", "", 403},
		{"repo:admin", "GET", "/api/v1/repository/acme/app/permissions/user/", "", 200},
		// Reading a private repository needs repo:read.
		{"org:admin", "GET", "/api/v1/repository/acme/app", "", 403},
		{"repo:read", "GET", "/api/v1/repository/acme/app", "", 200},
		// Organization creation needs user:admin.
		{"user:read org:admin", "POST", "/api/v1/organization/", `{"name":"neworg"}`, 403},
		{"user:admin", "POST", "/api/v1/organization/", `{"name":"neworg"}`, 201},
	} {
		code, body, _ := q.do(t, tc.method, tc.path, token(tc.scope), tc.body)
		assert.Equal(t, tc.want, code, "%s %s with %q: %v", tc.method, tc.path, tc.scope, body)
		if tc.want == 403 {
			assert.Equal(t, "insufficient_scope", body["error_type"])
		}
	}
}

// A user who is not an organization admin gets nothing from org:admin.
func TestAPIAuth_RightsComeFromTeams(t *testing.T) {
	q := newQuayEnv(t, "")
	require.NoError(t, q.emu.CreateUser("bob", "password2", "bob@example.com"))
	bob, err := q.emu.IssueToken("bob", strings.Join(knownScopes, " "), time.Hour)
	require.NoError(t, err)
	code, _, _ := q.do(t, "GET", "/api/v1/organization/acme/robots", bob, "")
	assert.Equal(t, 403, code)
	code, _, _ = q.do(t, "PUT", "/api/v1/organization/acme/team/owners/members/bob", q.admin, "")
	require.Equal(t, 200, code)
	code, _, _ = q.do(t, "GET", "/api/v1/organization/acme/robots", bob, "")
	assert.Equal(t, 403, code, "invited, not yet a member (FEATURE_REQUIRE_TEAM_INVITE)")

	// Without invites the user joins at once and administers the org.
	q2 := newQuayEnv(t, "FEATURE_MAILING: false\n")
	require.NoError(t, q2.emu.CreateUser("bob", "password2", "bob@example.com"))
	bob2, _ := q2.emu.IssueToken("bob", "org:admin", time.Hour)
	code, _, _ = q2.do(t, "PUT", "/api/v1/organization/acme/team/owners/members/bob", q2.admin, "")
	require.Equal(t, 200, code)
	code, _, _ = q2.do(t, "PUT", "/api/v1/organization/acme/robots/bobs", bob2, "")
	assert.Equal(t, 201, code)

	// FEATURE_SUPERUSERS_FULL_ACCESS lets a superuser (with super:user)
	// administer any organization.
	q3 := newQuayEnv(t, "FEATURE_SUPERUSERS_FULL_ACCESS: true\n")
	require.NoError(t, q3.emu.CreateUser("bob", "password2", "bob@example.com"))
	require.NoError(t, q3.emu.CreateOrganization("bobs", "bob"))
	withSuper, _ := q3.emu.IssueToken("admin", "super:user", time.Hour)
	withoutSuper, _ := q3.emu.IssueToken("admin", "org:admin", time.Hour)
	code, _, _ = q3.do(t, "GET", "/api/v1/organization/bobs/applications", withSuper, "")
	assert.Equal(t, 200, code)
	code, _, _ = q3.do(t, "GET", "/api/v1/organization/bobs/applications", withoutSuper, "")
	assert.Equal(t, 403, code)
}

// rawCT is raw with a Content-Type of one's choosing.
func (q *quayEnv) rawCT(t *testing.T, method, path, authorization, contentType, body string) (int, map[string]any, string) {
	t.Helper()
	req, err := http.NewRequest(method, q.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	q.emu.ServeHTTP(rec, req)
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	return rec.Code, m, rec.Body.String()
}

// last_accessed is updated at most once per threshold: 60 s for OAuth
// tokens, 120 s for robots (auth/oauth.py, data/model/_basequery.py).
func TestAPIAuth_LastAccessedThresholds(t *testing.T) {
	env := newRegEnv(t, "")
	q := env.quayEnv
	_, app, _ := q.do(t, "POST", "/api/v1/organization/acme/applications", q.admin, `{"name":"ci"}`)
	base := "/api/v1/organization/acme/applications/" + app["client_id"].(string) + "/tokens"
	_, tok, _ := q.do(t, "POST", base, q.admin, `{"name":"t","scope":"user:read"}`)
	lastAccessed := func() any {
		_, list, _ := q.do(t, "GET", base, q.admin, "")
		return list["tokens"].([]any)[0].(map[string]any)["last_accessed"]
	}
	assert.Nil(t, lastAccessed())
	q.do(t, "GET", "/api/v1/user/", tok["token"].(string), "")
	first := lastAccessed()
	assert.Equal(t, "2026-11-22T10:00:00Z", first)
	q.clock.Advance(59 * time.Second)
	q.do(t, "GET", "/api/v1/user/", tok["token"].(string), "")
	assert.Equal(t, first, lastAccessed())
	q.clock.Advance(time.Second)
	q.do(t, "GET", "/api/v1/user/", tok["token"].(string), "")
	assert.Equal(t, "2026-11-22T10:01:00Z", lastAccessed())

	robotLast := func() any {
		_, r, _ := q.do(t, "GET", "/api/v1/organization/acme/robots/writer", q.admin, "")
		return r["last_accessed"]
	}
	env.v2auth(t, basic(env.writer, env.writerToken))
	first = robotLast()
	assert.Equal(t, "Sun, 22 Nov 2026 10:01:00 -0000", first)
	q.clock.Advance(119 * time.Second)
	env.v2auth(t, basic(env.writer, env.writerToken))
	assert.Equal(t, first, robotLast())
	q.clock.Advance(time.Second)
	env.v2auth(t, basic(env.writer, env.writerToken))
	assert.Equal(t, "Sun, 22 Nov 2026 10:03:00 -0000", robotLast())
}
