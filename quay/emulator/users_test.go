package emulator

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// emptyQuay is an emulator with nothing in its database.
func emptyQuay(t *testing.T, config string) *quayEnv {
	t.Helper()
	cfg, err := ParseConfig([]byte(config))
	require.NoError(t, err)
	clock := &testClock{now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	emu, err := New(cfg, WithClock(clock.Now))
	require.NoError(t, err)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return &quayEnv{emu: emu, srv: srv, clock: clock}
}

func TestInitialize_Preconditions(t *testing.T) {
	off := emptyQuay(t, "")
	code, body, _ := off.do(t, "POST", "/api/v1/user/initialize", "", `{"username":"first","password":"password1","email":"f@example.com"}`)
	assert.Equal(t, 404, code, "FEATURE_USER_INITIALIZE defaults to false")
	assert.Equal(t, "Not Found", body["error"])

	ldap := emptyQuay(t, "FEATURE_USER_INITIALIZE: true\nAUTHENTICATION_TYPE: LDAP\n")
	code, body, _ = ldap.do(t, "POST", "/api/v1/user/initialize", "", `{"username":"first","password":"password1","email":"f@example.com"}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, map[string]any{"message": "Cannot initialize user in a non-database auth system"}, body)
	lower := emptyQuay(t, "FEATURE_USER_INITIALIZE: true\nAUTHENTICATION_TYPE: database\n")
	code, _, _ = lower.do(t, "POST", "/api/v1/user/initialize", "", `{"username":"first","password":"password1","email":"f@example.com"}`)
	assert.Equal(t, 400, code, "Quay compares with \"Database\" exactly")

	// Any row in the User table counts: an organization, a robot.
	q := emptyQuay(t, "FEATURE_USER_INITIALIZE: true\n")
	q.emu.mu.Lock()
	q.emu.db.addUser("someorg", "", "", q.clock.Now()).org = true
	q.emu.mu.Unlock()
	code, body, _ = q.do(t, "POST", "/api/v1/user/initialize", "", `{"username":"first","password":"password1","email":"f@example.com"}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, map[string]any{"message": "Cannot initialize user in a non-empty database"}, body)
}

func TestInitialize_Validation(t *testing.T) {
	q := emptyQuay(t, "FEATURE_USER_INITIALIZE: true\n")
	for _, tc := range []struct{ body, message string }{
		// create_user checks the password first, then the email, then the name.
		{`{"username":"X","password":"short","email":"nope"}`, "Failed to initialize user: " + invalidPasswordMessage},
		{`{"username":"first","password":"has space1"}`, "Failed to initialize user: " + invalidPasswordMessage},
		{`{"username":"X","password":"password1"}`, "Failed to initialize user: Invalid email address: None"},
		{`{"username":"X","password":"password1","email":"nope"}`, "Failed to initialize user: Invalid email address: nope"},
		{`{"username":"X","password":"password1","email":"a@b.c"}`, "Failed to initialize user: Invalid namespace X: Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$"},
		{`{"username":"a","password":"password1","email":"a@b.c"}`, "Failed to initialize user: Invalid namespace a: Namespace must be between 2 and 255 characters in length"},
	} {
		code, body, _ := q.do(t, "POST", "/api/v1/user/initialize", "", tc.body)
		assert.Equal(t, 400, code, tc.body)
		assert.Equal(t, map[string]any{"message": tc.message}, body, tc.body)
	}
	code, _, _ := q.do(t, "POST", "/api/v1/user/initialize", "", `{"password":"password1","email":"a@b.c"}`)
	assert.Equal(t, 500, code, "a missing username is a KeyError in Quay")
	q.emu.mu.Lock()
	assert.False(t, q.emu.db.hasUsers(), "nothing was created")
	q.emu.mu.Unlock()

	// Without FEATURE_MAILING no email is needed, and null is echoed.
	nomail := emptyQuay(t, "FEATURE_USER_INITIALIZE: true\nFEATURE_MAILING: false\n")
	code, body, _ := nomail.do(t, "POST", "/api/v1/user/initialize", "", `{"username":"first","password":"password1"}`)
	require.Equal(t, 200, code)
	assert.Nil(t, body["email"])
	assert.Contains(t, body, "email")
	assert.NotContains(t, body, "access_token", "only when asked for")
}

func TestInitialize_AccessToken(t *testing.T) {
	q := emptyQuay(t, "FEATURE_USER_INITIALIZE: true\nSUPER_USERS: [first]\n")
	code, body, _ := q.do(t, "POST", "/api/v1/user/initialize", "",
		`{"username":"first","password":"password1","email":"first@example.com","access_token":"false"}`)
	require.Equal(t, 200, code)
	assert.Equal(t, "first", body["username"])
	assert.Equal(t, "first@example.com", body["email"])
	assert.NotEmpty(t, body["encrypted_password"])
	tok, ok := body["access_token"].(string)
	require.True(t, ok, `"false" is a non-empty string: truthy in Python`)
	assert.Regexp(t, `^[A-Z0-9]{40}$`, tok)
	assert.Len(t, body, 4)

	// The token acts as the user with every scope, super:user included.
	code, user, _ := q.do(t, "GET", "/api/v1/user/", tok, "")
	require.Equal(t, 200, code)
	assert.Equal(t, true, user["super_user"])

	// It belongs to an "automation" application in the user's namespace,
	// whose client_id is the username.
	code, app, _ := q.do(t, "GET", "/api/v1/app/first", "", "")
	require.Equal(t, 200, code)
	assert.Equal(t, "automation", app["name"])
	assert.Equal(t, "first", app["organization"].(map[string]any)["name"])
	code, auths, _ := q.do(t, "GET", "/api/v1/user/authorizations", tok, "")
	require.Equal(t, 200, code)
	list := auths["authorizations"].([]any)
	require.Len(t, list, 1)
	var scopes []string
	for _, s := range list[0].(map[string]any)["scopes"].([]any) {
		scopes = append(scopes, s.(map[string]any)["scope"].(string))
	}
	assert.Equal(t, strings.Fields(initializeScope), scopes)

	// The encrypted password works as a registry password.
	env := &regEnv{quayEnv: q, host: strings.TrimPrefix(q.srv.URL, "http://")}
	resp, _ := env.v2auth(t, basic("first", body["encrypted_password"].(string)))
	assert.Equal(t, 200, resp.StatusCode)

	// 9000 seconds, then it expires.
	q.clock.Advance(9000*time.Second - time.Second)
	code, _, _ = q.do(t, "GET", "/api/v1/user/", tok, "")
	assert.Equal(t, 200, code)
	q.clock.Advance(time.Second)
	code, _, _ = q.do(t, "GET", "/api/v1/user/", tok, "")
	assert.Equal(t, 401, code)

	// access_token: 0 or "" asks for none.
	for _, v := range []string{`0`, `""`, `null`, `false`} {
		fresh := emptyQuay(t, "FEATURE_USER_INITIALIZE: true\n")
		code, body, _ := fresh.do(t, "POST", "/api/v1/user/initialize", "",
			fmt.Sprintf(`{"username":"first","password":"password1","email":"f@example.com","access_token":%s}`, v))
		require.Equal(t, 200, code)
		assert.NotContains(t, body, "access_token", v)
	}
}

func TestUser_ViewAndPasswordChange(t *testing.T) {
	q := newQuayEnv(t, "")
	readOnly, err := q.emu.IssueToken("admin", "user:read", time.Hour)
	require.NoError(t, err)
	code, view, _ := q.do(t, "GET", "/api/v1/user/", readOnly, "")
	require.Equal(t, 200, code)
	assert.Equal(t, "admin", view["username"])
	assert.Equal(t, false, view["anonymous"])
	assert.NotContains(t, view, "email", "admin fields need user:admin")
	assert.NotContains(t, view, "super_user", "the grant needs super:user")
	orgs := view["organizations"].([]any)
	require.Len(t, orgs, 1)
	assert.Equal(t, "acme", orgs[0].(map[string]any)["name"])

	code, body, _ := q.do(t, "PUT", "/api/v1/user/", readOnly, `{"password":"newpassword"}`)
	assert.Equal(t, 403, code, "PUT /user/ needs user:admin")
	assert.Equal(t, "insufficient_scope", body["error_type"])

	userAdmin, _ := q.emu.IssueToken("admin", "user:admin", time.Hour)
	code, body, _ = q.do(t, "PUT", "/api/v1/user/", userAdmin, `{"password":"short"}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, invalidPasswordMessage, body["error_message"])

	env := &regEnv{quayEnv: q, host: strings.TrimPrefix(q.srv.URL, "http://")}
	_, before := env.v2auth(t, basic("admin", "password1"))
	_, claims := env.claimsOf(t, before)
	uuidBefore := claims["context"].(map[string]any)["entity_reference"]

	code, _, _ = q.do(t, "PUT", "/api/v1/user/", userAdmin, `{"password":"brand-new-pw"}`)
	require.Equal(t, 200, code, "no current password is asked for")
	resp, _ := env.v2auth(t, basic("admin", "password1"))
	assert.Equal(t, 401, resp.StatusCode, "the old password stops working")
	q.clock.Advance(time.Minute)
	resp, after := env.v2auth(t, basic("admin", "brand-new-pw"))
	require.Equal(t, 200, resp.StatusCode)
	_, claims = env.claimsOf(t, after)
	assert.NotEqual(t, uuidBefore, claims["context"].(map[string]any)["entity_reference"], "the user's uuid rotates")
	code, _, _ = q.do(t, "GET", "/api/v1/user/", readOnly, "")
	assert.Equal(t, 200, code, "OAuth tokens stay valid")
}

func TestUser_Authorizations(t *testing.T) {
	q := newQuayEnv(t, "")
	other, err := q.emu.IssueToken("admin", "repo:read", time.Hour)
	require.NoError(t, err)
	noAdmin, _ := q.emu.IssueToken("admin", "user:read", time.Hour)
	code, _, _ := q.do(t, "GET", "/api/v1/user/authorizations", noAdmin, "")
	assert.Equal(t, 403, code, "needs user:admin")

	code, body, _ := q.do(t, "GET", "/api/v1/user/authorizations", q.admin, "")
	require.Equal(t, 200, code)
	list := body["authorizations"].([]any)
	assert.Len(t, list, 3, "every token of the user")
	var target string
	for _, a := range list {
		a := a.(map[string]any)
		assert.Equal(t, "emulator", a["application"].(map[string]any)["name"])
		if len(a["scopes"].([]any)) == 1 && a["scopes"].([]any)[0].(map[string]any)["scope"] == "repo:read" {
			target = a["uuid"].(string)
		}
	}
	require.NotEmpty(t, target)
	code, one, _ := q.do(t, "GET", "/api/v1/user/authorizations/"+target, q.admin, "")
	require.Equal(t, 200, code)
	assert.Equal(t, target, one["uuid"])

	code, _, _ = q.do(t, "DELETE", "/api/v1/user/authorizations/"+target, q.admin, "")
	assert.Equal(t, 204, code)
	assert.False(t, q.emu.TokenValid(other), "deleting the authorization revokes the token")
	code, body, _ = q.do(t, "DELETE", "/api/v1/user/authorizations/"+target, q.admin, "")
	assert.Equal(t, 404, code)
	assert.Equal(t, "not_found", body["error_type"])
}

// user_view's organizations use the caller's capped permissions:
// can_create_repo needs repo:create or org:admin, is_org_admin needs
// org:admin (not user:admin) and, with preferred_namespace, shows only
// with user:admin. Organizations come sorted by name.
func TestUser_ViewOrganizationsAreScopeCapped(t *testing.T) {
	q := newQuayEnv(t, "")
	require.NoError(t, q.emu.CreateOrganization("beta", "admin"))
	org := func(token string, i int) map[string]any {
		t.Helper()
		code, user, raw := q.do(t, "GET", "/api/v1/user/", token, "")
		require.Equal(t, 200, code, raw)
		orgs := user["organizations"].([]any)
		require.Len(t, orgs, 2)
		assert.Equal(t, "acme", orgs[0].(map[string]any)["name"])
		return orgs[i].(map[string]any)
	}
	readOnly, err := q.emu.IssueToken("admin", "user:read", time.Hour)
	require.NoError(t, err)
	o := org(readOnly, 1)
	assert.Equal(t, "beta", o["name"])
	assert.Equal(t, false, o["can_create_repo"])
	assert.NotContains(t, o, "is_org_admin")
	assert.NotContains(t, o, "preferred_namespace")

	userAdmin, err := q.emu.IssueToken("admin", "user:admin user:read repo:create", time.Hour)
	require.NoError(t, err)
	o = org(userAdmin, 0)
	assert.Equal(t, true, o["can_create_repo"])
	assert.Equal(t, false, o["is_org_admin"], "user:admin is not org:admin")

	o = org(q.admin, 0)
	assert.Equal(t, true, o["is_org_admin"])
	assert.Equal(t, false, o["preferred_namespace"])
}
