package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quayEnv is an emulator with a superuser "admin" (password "password1"),
// an admin token with every scope, and an organization "acme".
type quayEnv struct {
	emu   *Emulator
	srv   *httptest.Server
	admin string
	clock *testClock
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newQuayEnv(t *testing.T, config string) *quayEnv {
	t.Helper()
	cfg, err := ParseConfig([]byte("SUPER_USERS: [admin]\n" + config))
	require.NoError(t, err)
	clock := &testClock{now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	emu, err := New(cfg, WithClock(clock.Now))
	require.NoError(t, err)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	require.NoError(t, emu.CreateUser("admin", "password1", "admin@example.com"))
	require.NoError(t, emu.CreateOrganization("acme", "admin"))
	tok, err := emu.IssueToken("admin", strings.Join(knownScopes, " "), 24*time.Hour)
	require.NoError(t, err)
	return &quayEnv{emu: emu, srv: srv, admin: tok, clock: clock}
}

// do sends a request; auth is a Bearer token, or "basic:<user>:<pw>".
func (q *quayEnv) do(t *testing.T, method, path, auth, body string) (int, map[string]any, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, q.srv.URL+path, rd)
	require.NoError(t, err)
	switch {
	case strings.HasPrefix(auth, "basic:"):
		parts := strings.SplitN(auth, ":", 3)
		req.SetBasicAuth(parts[1], parts[2])
	case auth != "":
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	client := q.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, string(raw)
}

func TestAuth_QuaysAnswersToMissingOrWrongCredentials(t *testing.T) {
	q := newQuayEnv(t, "")
	// GET without a token: 401 ApiException, with session_required on /user/.
	code, body, _ := q.do(t, "GET", "/api/v1/user/", "", "")
	assert.Equal(t, 401, code)
	assert.Equal(t, "invalid_token", body["error_type"])
	assert.Equal(t, "Requires authentication", body["detail"])
	assert.Equal(t, false, body["session_required"])
	assert.Equal(t, "http://"+strings.TrimPrefix(q.srv.URL, "http://")+"/api/v1/error/invalid_token", body["type"])
	for _, k := range []string{"error_message", "title", "status"} {
		assert.Contains(t, body, k)
	}

	// A wrong opaque token leaves the request anonymous; Basic is ignored.
	for _, auth := range []string{strings.Repeat("X", 40), "basic:admin:password1"} {
		code, _, _ = q.do(t, "GET", "/api/v1/user/", auth, "")
		assert.Equal(t, 401, code)
		// Mutations without a valid token fail Quay's CSRF check first.
		code, body, _ = q.do(t, "POST", "/api/v1/organization/", auth, `{"name":"x1"}`)
		assert.Equal(t, 403, code)
		assert.Equal(t, "CSRF token was invalid or missing.", body["error"])
	}

	// A valid token without user:read: Quay's GET /user/ raises InvalidToken
	// (401) rather than Unauthorized (endpoints/api/user.py).
	narrow, err := q.emu.IssueToken("admin", "repo:read", time.Hour)
	require.NoError(t, err)
	code, body, _ = q.do(t, "GET", "/api/v1/user/", narrow, "")
	assert.Equal(t, 401, code)
	assert.Equal(t, "invalid_token", body["error_type"])

	// Expired tokens stop working.
	short, err := q.emu.IssueToken("admin", "user:read", time.Minute)
	require.NoError(t, err)
	code, _, _ = q.do(t, "GET", "/api/v1/user/", short, "")
	assert.Equal(t, 200, code)
	q.clock.Advance(2 * time.Minute)
	code, _, _ = q.do(t, "GET", "/api/v1/user/", short, "")
	assert.Equal(t, 401, code)

	// Slash-less resources declared with a slash redirect with 308.
	code, _, _ = q.do(t, "GET", "/api/v1/user", q.admin, "")
	assert.Equal(t, 308, code)
}

func TestAuth_ScopeCapping(t *testing.T) {
	q := newQuayEnv(t, "")
	userOnly, err := q.emu.IssueToken("admin", "user:read user:admin", time.Hour)
	require.NoError(t, err)
	code, body, _ := q.do(t, "GET", "/api/v1/organization/acme/applications", userOnly, "")
	assert.Equal(t, 403, code, "administering an org needs org:admin, even for its admin")
	assert.Equal(t, "insufficient_scope", body["error_type"])

	code, body, _ = q.do(t, "GET", "/api/v1/user/", q.admin, "")
	require.Equal(t, 200, code)
	assert.Equal(t, true, body["super_user"], "a superuser with super:user")
	noSuper, _ := q.emu.IssueToken("admin", "user:read", time.Hour)
	_, body, _ = q.do(t, "GET", "/api/v1/user/", noSuper, "")
	assert.NotContains(t, body, "super_user", "the grant needs the super:user scope")
}

func TestInitialize(t *testing.T) {
	cfg, err := ParseConfig([]byte("FEATURE_USER_INITIALIZE: true\nSUPER_USERS: [first]\n"))
	require.NoError(t, err)
	emu, err := New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(emu)
	defer srv.Close()
	q := &quayEnv{emu: emu, srv: srv}

	code, body, _ := q.do(t, "POST", "/api/v1/user/initialize", "", `{"username":"first","password":"short"}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, body["message"], "Invalid password")
	code, body, _ = q.do(t, "POST", "/api/v1/user/initialize", "", `{"username":"first","password":"long-enough"}`)
	assert.Equal(t, 400, code, "FEATURE_MAILING defaults to true: email required")
	assert.Contains(t, body["message"], "Invalid email address")
	code, body, _ = q.do(t, "POST", "/api/v1/user/initialize", "", `{"username":"first","password":"long-enough","email":"f@example.com","access_token":true}`)
	require.Equal(t, 200, code)
	tok := body["access_token"].(string)
	assert.Regexp(t, `^[A-Z0-9]{40}$`, tok)
	code, body, _ = q.do(t, "POST", "/api/v1/user/initialize", "", `{"username":"second","password":"long-enough","email":"s@example.com"}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "Cannot initialize user in a non-empty database", body["message"])

	code, _, _ = q.do(t, "GET", "/api/v1/user/", tok, "")
	assert.Equal(t, 200, code)

	off, _ := New(Config{})
	offSrv := httptest.NewServer(off)
	defer offSrv.Close()
	resp, err := http.Post(offSrv.URL+"/api/v1/user/initialize", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode)
}

func TestApplicationTokens(t *testing.T) {
	q := newQuayEnv(t, "OAUTH_APPLICATION_MAXIMUM_TOKEN_COUNT: 57\n")
	code, app, _ := q.do(t, "POST", "/api/v1/organization/acme/applications", q.admin, `{"name":"ci"}`)
	require.Equal(t, 200, code)
	base := "/api/v1/organization/acme/applications/" + app["client_id"].(string) + "/tokens"

	code, tok, _ := q.do(t, "POST", base, q.admin, `{"name":"  t1  ","scope":"repo:read,repo:write,repo:read","expiration":3600.9}`)
	require.Equal(t, 200, code)
	assert.Equal(t, "t1", tok["name"], "trimmed")
	assert.Equal(t, "repo:read repo:write", tok["scope"], "comma to space, de-duplicated")
	assert.Equal(t, "2026-11-22T11:00:00Z", tok["expires_at"], "truncated to whole seconds")
	assert.Len(t, tok["token"], 40)

	_, clamped, _ := q.do(t, "POST", base, q.admin, `{"name":"t2","scope":"repo:read","expiration":999999999999}`)
	assert.Equal(t, isoTime(q.clock.Now().Add(315576000*time.Second)), clamped["expires_at"], "clamped to ten years (315576000 s)")

	for body, want := range map[string]string{
		`{"scope":"repo:read"}`:                           "invalid_request",
		`{"name":"x","scope":"repo:read","expiration":0}`: "invalid_request",
		`{"name":"   ","scope":"repo:read"}`:              "'name' must not be empty",
		`{"name":"x","scope":"repo:read,bogus"}`:          "Invalid scope: repo:read,bogus",
	} {
		code, resp, _ := q.do(t, "POST", base, q.admin, body)
		assert.Equal(t, 400, code, body)
		assert.True(t, resp["error_type"] == want || resp["message"] == want, "%s → %v", body, resp)
	}

	// Only subsets of the caller's own scopes.
	narrow, _ := q.emu.IssueToken("admin", "org:admin repo:read", time.Hour)
	code, _, _ = q.do(t, "POST", base, narrow, `{"name":"x","scope":"repo:write"}`)
	assert.Equal(t, 403, code)

	// Paging: 50 per page, newest first, non-expired only.
	for i := range 55 {
		code, _, raw := q.do(t, "POST", base, q.admin, fmt.Sprintf(`{"name":"p%d","scope":"repo:read","expiration":%d}`, i, 7200))
		require.Equal(t, 200, code, raw)
	}
	_, page1, _ := q.do(t, "GET", base, q.admin, "")
	assert.Len(t, page1["tokens"], 50)
	require.NotEmpty(t, page1["next_page"])
	assert.Equal(t, "p54", page1["tokens"].([]any)[0].(map[string]any)["name"])
	_, page2, _ := q.do(t, "GET", base+"?next_page="+page1["next_page"].(string), q.admin, "")
	assert.Len(t, page2["tokens"], 7)
	assert.NotContains(t, page2, "next_page")

	code, body, _ := q.do(t, "POST", base, q.admin, `{"name":"over","scope":"repo:read"}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, body["message"], "Token limit reached")

	q.clock.Advance(3 * time.Hour) // t1 and the 55 paging tokens expire
	_, after, _ := q.do(t, "GET", base, q.admin, "")
	assert.Len(t, after["tokens"], 1, "expired tokens are not listed")

	code, _, _ = q.do(t, "DELETE", base+"/"+tok["uuid"].(string), q.admin, "")
	assert.Equal(t, 204, code, "expired tokens can still be deleted")
	code, body, _ = q.do(t, "DELETE", base+"/"+tok["uuid"].(string), q.admin, "")
	assert.Equal(t, 404, code)
	assert.Equal(t, "not_found", body["error_type"])
}

func TestRobots(t *testing.T) {
	q := newQuayEnv(t, "")
	code, r, _ := q.do(t, "PUT", "/api/v1/organization/acme/robots/ci", q.admin, `{"description":"d"}`)
	require.Equal(t, 201, code)
	assert.Equal(t, "acme+ci", r["name"])
	assert.Regexp(t, `^[A-Z0-9]{64}$`, r["token"])
	assert.Nil(t, r["unstructured_metadata"], "echoes the input (absent: null)")

	code, body, _ := q.do(t, "PUT", "/api/v1/organization/acme/robots/ci", q.admin, `{}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "Existing robot with name: acme+ci", body["error_message"])

	for _, req := range [][2]string{{"GET", ""}, {"DELETE", ""}, {"POST", "/regenerate"}} {
		code, body, _ = q.do(t, req[0], "/api/v1/organization/acme/robots/missing"+req[1], q.admin, "")
		assert.Equal(t, 400, code, req)
		assert.Equal(t, "Could not find robot with specified username", body["message"], req)
	}

	code, _, _ = q.do(t, "PUT", "/api/v1/organization/acme/robots/Bad_Name", q.admin, `{}`)
	assert.Equal(t, 400, code)

	// Robots get permissions only in their own namespace.
	require.NoError(t, q.emu.CreateOrganization("other", "admin"))
	require.NoError(t, q.emu.CreateRepository("other", "app", false))
	code, body, _ = q.do(t, "PUT", "/api/v1/repository/other/app/permissions/user/acme+ci", q.admin, `{"role":"read"}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "Cannot add robot acme+ci under namespace other", body["error_message"])

	code, _, _ = q.do(t, "PUT", "/api/v1/organization/acme/team/builders", q.admin, `{"role":"member"}`)
	require.Equal(t, 200, code)
	code, _, _ = q.do(t, "PUT", "/api/v1/organization/acme/team/builders/members/acme+ci", q.admin, "")
	require.Equal(t, 200, code)
	code, body, _ = q.do(t, "PUT", "/api/v1/organization/acme/team/builders/members/acme+ci", q.admin, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, "User acme+ci is already a member of team builders", body["message"])

	_, list, _ := q.do(t, "GET", "/api/v1/organization/acme/robots?permissions=true&token=false", q.admin, "")
	robot := list["robots"].([]any)[0].(map[string]any)
	assert.NotContains(t, robot, "token")
	assert.Equal(t, "builders", robot["teams"].([]any)[0].(map[string]any)["name"])

	code, _, _ = q.do(t, "DELETE", "/api/v1/organization/acme/robots/ci", q.admin, "")
	assert.Equal(t, 204, code)
	_, members, _ := q.do(t, "GET", "/api/v1/organization/acme/team/builders/members", q.admin, "")
	assert.Empty(t, members["members"], "deleting a robot removes its memberships")
}

func TestBootstrapTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.json")
	cfg, err := ParseConfig([]byte(fmt.Sprintf("SUPER_USERS: [owner]\nFEATURE_PROGRAMMATIC_BOOTSTRAP: true\nBOOTSTRAP_TOKEN_OWNER: owner\nBOOTSTRAP_TOKEN_PATH: %s\n", path)))
	require.NoError(t, err)
	emu, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, emu.CreateUser("owner", "password1", "owner@example.com"))
	require.NoError(t, emu.Restart())
	srv := httptest.NewServer(emu)
	defer srv.Close()
	q := &quayEnv{emu: emu, srv: srv}

	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	read := func() string {
		var f struct {
			AccessToken string `json:"access_token"`
		}
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(raw, &f))
		return f.AccessToken
	}
	first := read()
	code, body, _ := q.do(t, "GET", "/api/v1/user/", first, "")
	require.Equal(t, 200, code)
	assert.Equal(t, "owner", body["username"])

	code, body, _ = q.do(t, "POST", "/api/v1/bootstrap/renew", first, "")
	require.Equal(t, 200, code)
	assert.Equal(t, "rotated", body["status"], "the new token is not in the answer")
	second := read()
	assert.NotEqual(t, first, second)
	code, _, _ = q.do(t, "GET", "/api/v1/user/", first, "")
	assert.Equal(t, 401, code, "the old one stops working at once")
	code, _, _ = q.do(t, "GET", "/api/v1/user/", second, "")
	assert.Equal(t, 200, code)
}

func TestFaults(t *testing.T) {
	q := newQuayEnv(t, "")
	q.emu.Faults().FailNext("getLoggedInUser", 1, 503)
	code, _, raw := q.do(t, "GET", "/api/v1/user/", q.admin, "")
	assert.Equal(t, 503, code)
	assert.Contains(t, raw, "nginx")
	code, _, _ = q.do(t, "GET", "/api/v1/user/", q.admin, "")
	assert.Equal(t, 200, code, "only the next call failed")

	q.emu.Faults().Burst429("getLoggedInUser", 2)
	for range 2 {
		req, _ := http.NewRequest("GET", q.srv.URL+"/api/v1/user/", nil)
		req.Header.Set("Authorization", "Bearer "+q.admin)
		resp, err := q.srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 429, resp.StatusCode)
		assert.Empty(t, resp.Header.Get("Retry-After"), "nginx's limit_req sends none")
	}

	q.emu.Faults().DropNext("getLoggedInUser", 1)
	req, _ := http.NewRequest("GET", q.srv.URL+"/api/v1/user/", nil)
	req.Header.Set("Authorization", "Bearer "+q.admin)
	_, err := q.srv.Client().Do(req)
	assert.Error(t, err, "the connection is closed without an answer")

	q.emu.ResetCalls()
	q.do(t, "GET", "/api/v1/user/", q.admin, "")
	assert.Equal(t, 1, q.emu.Calls("getLoggedInUser"))
	q.emu.Faults().Reset()
}

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte("SERVER_HOSTNAME: q\nUNKNOWN_KEY: 1\nX_LOGIN_CONFIG:\n  CLIENT_ID: c\n  OIDC_SERVER: https://idp/\n"))
	require.NoError(t, err)
	assert.True(t, cfg.superUsersEnabled())
	assert.True(t, cfg.mailing())
	assert.True(t, cfg.databaseAuth())
	assert.Equal(t, "c", cfg.LoginConfigs["X"].ClientID)

	_, err = ParseConfig([]byte("X_LOGIN_CONFIG:\n  OIDC_ISSUERS: []\n"))
	assert.Error(t, err, "an empty list is refused, as in Quay")
}

// Every route's name appears in the package documentation, where users
// look for it.
func TestRouteNamesAreDocumented(t *testing.T) {
	src, err := os.ReadFile("emulator.go")
	require.NoError(t, err)
	doc := string(src[:strings.Index(string(src), "package emulator")])
	names := regexp.MustCompile(`"([a-z][A-Za-z0-9]+)", (?:apiRoute|webRoute)|nickname, h = "([A-Za-z]+)"`)
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range names.FindAllStringSubmatch(string(raw), -1) {
			name := m[1] + m[2]
			found++
			assert.True(t, regexp.MustCompile(`\b`+name+`\b`).MatchString(doc), "%s (%s) is not in the package doc", name, f)
		}
	}
	assert.Greater(t, found, 30)
	for _, prefix := range []string{"Org", "User"} {
		for _, n := range []string{"get%sRobots", "create%sRobot", "get%sRobot", "delete%sRobot", "regenerate%sRobotToken", "get%sRobotPermissions"} {
			name := fmt.Sprintf(n, prefix)
			assert.True(t, regexp.MustCompile(`\b`+name+`\b`).MatchString(doc), "%s is not in the package doc", name)
		}
	}
}
