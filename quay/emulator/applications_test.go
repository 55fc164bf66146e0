package emulator

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOrganizations_Create(t *testing.T) {
	q := newQuayEnv(t, "")
	code, _, raw := q.do(t, "POST", "/api/v1/organization/", q.admin, `{"name":"neworg","email":"n@example.com"}`)
	require.Equal(t, 201, code)
	assert.JSONEq(t, `"Created"`, raw, "a JSON string")

	code, org, _ := q.do(t, "GET", "/api/v1/organization/neworg", q.admin, "")
	require.Equal(t, 200, code)
	assert.Equal(t, true, org["is_admin"])
	assert.Contains(t, org["teams"], "owners", "the creator is in the owners team")

	for body, message := range map[string]string{
		`{"name":"neworg"}`:                   "A user or organization with this name already exists",
		`{"name":"admin"}`:                    "A user or organization with this name already exists",
		`{"name":"x2","email":"bad"}`:         "Invalid email address",
		`{"name":"x2","contact_email":"a@b"}`: "Invalid email address",
		`{"name":"Bad"}`:                      "Invalid namespace Bad: Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$",
		`{"name":"x"}`:                        "Invalid namespace x: Namespace must be between 2 and 255 characters in length",
		`{}`:                                  "'name' is a required property",
		`{"name":7}`:                          "7 is not of type 'string'",
	} {
		code, resp, _ := q.do(t, "POST", "/api/v1/organization/", q.admin, body)
		assert.Equal(t, 400, code, body)
		assert.Equal(t, "invalid_request", resp["error_type"], body)
		assert.Equal(t, message, resp["error_message"], body)
	}

	// user:admin is checked before the body.
	noUserAdmin, _ := q.emu.IssueToken("admin", "org:admin", time.Hour)
	code, resp, _ := q.do(t, "POST", "/api/v1/organization/", noUserAdmin, `{}`)
	assert.Equal(t, 403, code)
	assert.Equal(t, "insufficient_scope", resp["error_type"])

	code, _, _ = q.do(t, "GET", "/api/v1/organization/nope", q.admin, "")
	assert.Equal(t, 404, code)
}

func TestApplications_CRUD(t *testing.T) {
	q := newQuayEnv(t, "")
	code, app, _ := q.do(t, "POST", "/api/v1/organization/acme/applications", q.admin,
		`{"name":"ci","description":"d","application_uri":"https://ci","avatar_email":"a@example.com"}`)
	require.Equal(t, 200, code, "200, not 201")
	clientID := app["client_id"].(string)
	assert.Regexp(t, `^[A-Z0-9]{20}$`, clientID)
	assert.Regexp(t, `^[A-Z0-9]{40}$`, app["client_secret"])
	assert.Equal(t, map[string]any{
		"name": "ci", "description": "d", "application_uri": "https://ci", "client_id": clientID,
		"client_secret": app["client_secret"], "redirect_uri": "", "avatar_email": "a@example.com",
	}, app, `redirect_uri is "" when none was given`)

	base := "/api/v1/organization/acme/applications/"
	code, got, _ := q.do(t, "GET", base+clientID, q.admin, "")
	require.Equal(t, 200, code)
	assert.Equal(t, app, got)
	code, list, _ := q.do(t, "GET", "/api/v1/organization/acme/applications", q.admin, "")
	require.Equal(t, 200, code)
	assert.Equal(t, []any{app}, list["applications"])

	// PUT replaces: absent description → "", absent avatar_email → null.
	code, upd, _ := q.do(t, "PUT", base+clientID, q.admin, `{"name":"ci2","redirect_uri":"https://ci/cb","application_uri":"https://ci2"}`)
	require.Equal(t, 200, code)
	assert.Equal(t, "ci2", upd["name"])
	assert.Equal(t, "", upd["description"])
	assert.Nil(t, upd["avatar_email"])
	assert.Equal(t, "https://ci/cb", upd["redirect_uri"])
	code, resp, _ := q.do(t, "PUT", base+clientID, q.admin, `{"name":"ci3"}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "'redirect_uri' is a required property", resp["error_message"])

	// The bootstrap application's name is reserved.
	for _, req := range [][3]string{
		{"POST", "/api/v1/organization/acme/applications", `{"name":"__quay_bootstrap_app"}`},
		{"PUT", base + clientID, `{"name":"__quay_bootstrap_app","redirect_uri":"","application_uri":""}`},
	} {
		code, resp, _ := q.do(t, req[0], req[1], q.admin, req[2])
		assert.Equal(t, 400, code)
		assert.Equal(t, "Application name is reserved for bootstrap token provisioning", resp["error_message"])
	}

	// Public information.
	code, info, _ := q.do(t, "GET", "/api/v1/app/"+clientID, "", "")
	require.Equal(t, 200, code)
	assert.Equal(t, "ci2", info["name"])
	assert.Equal(t, "https://ci2", info["uri"])

	// Deleting cascades to the application's tokens.
	code, tok, _ := q.do(t, "POST", base+clientID+"/tokens", q.admin, `{"name":"t","scope":"repo:read"}`)
	require.Equal(t, 200, code)
	assert.True(t, q.emu.TokenValid(tok["token"].(string)))
	code, _, raw := q.do(t, "DELETE", base+clientID, q.admin, "")
	assert.Equal(t, 204, code)
	assert.Empty(t, raw)
	assert.False(t, q.emu.TokenValid(tok["token"].(string)))
	code, resp, _ = q.do(t, "DELETE", base+clientID, q.admin, "")
	assert.Equal(t, 404, code)
	assert.Equal(t, "not_found", resp["error_type"])
	code, _, _ = q.do(t, "GET", "/api/v1/app/"+clientID, "", "")
	assert.Equal(t, 404, code)
}

func TestApplications_Permissions(t *testing.T) {
	q := newQuayEnv(t, "")
	noOrgAdmin, _ := q.emu.IssueToken("admin", "repo:admin user:admin", time.Hour)
	code, resp, _ := q.do(t, "GET", "/api/v1/organization/acme/applications", noOrgAdmin, "")
	assert.Equal(t, 403, code)
	assert.Equal(t, "insufficient_scope", resp["error_type"])
	// The body is validated before the permission on POST.
	code, resp, _ = q.do(t, "POST", "/api/v1/organization/acme/applications", noOrgAdmin, `{}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "'name' is a required property", resp["error_message"])
	// An unknown organization: Unauthorized before NotFound.
	code, _, _ = q.do(t, "GET", "/api/v1/organization/ghost/applications", q.admin, "")
	assert.Equal(t, 403, code)
	// The user's own namespace passes the permission but is no organization.
	code, _, _ = q.do(t, "GET", "/api/v1/organization/admin/applications", q.admin, "")
	assert.Equal(t, 404, code)
	// An application of another organization is not found here.
	require.NoError(t, q.emu.CreateOrganization("other", "admin"))
	code, app, _ := q.do(t, "POST", "/api/v1/organization/other/applications", q.admin, `{"name":"x"}`)
	require.Equal(t, 200, code)
	code, _, _ = q.do(t, "GET", "/api/v1/organization/acme/applications/"+app["client_id"].(string), q.admin, "")
	assert.Equal(t, 404, code)
	code, _, _ = q.do(t, "GET", "/api/v1/organization/acme/applications/"+app["client_id"].(string)+"/tokens", q.admin, "")
	assert.Equal(t, 404, code, "cross-organization")
}

func TestAppTokens_CreateRules(t *testing.T) {
	q := newQuayEnv(t, "")
	_, app, _ := q.do(t, "POST", "/api/v1/organization/acme/applications", q.admin, `{"name":"ci"}`)
	base := "/api/v1/organization/acme/applications/" + app["client_id"].(string) + "/tokens"

	code, tok, _ := q.do(t, "POST", base, q.admin, `{"name":"job","scope":"repo:read\trepo:write, repo:read"}`)
	require.Equal(t, 200, code, "200, not 201")
	assert.Equal(t, "repo:read repo:write", tok["scope"], "normalised: any whitespace or comma")
	assert.Equal(t, "admin", tok["created_by"])
	assert.Nil(t, tok["last_accessed"])
	assert.Equal(t, "2026-11-22T10:00:00Z", tok["created"])
	assert.Equal(t, isoTime(q.clock.Now().Add(315576000*time.Second)), tok["expires_at"], "ten years by default")
	assert.Regexp(t, `^[A-Za-z0-9]{40}$`, tok["token"])
	assert.Len(t, tok, 8)

	// The minted token acts as the caller with the requested scopes.
	code, user, _ := q.do(t, "GET", "/api/v1/user/", tok["token"].(string), "")
	assert.Equal(t, 401, code, "no user:read in it")
	_ = user
	code, list, _ := q.do(t, "GET", base, q.admin, "")
	require.Equal(t, 200, code)
	entry := list["tokens"].([]any)[0].(map[string]any)
	assert.NotContains(t, entry, "token", "the secret is never listed")
	assert.NotNil(t, entry["last_accessed"], "using the token recorded an access")

	_, short, _ := q.do(t, "POST", base, q.admin, `{"name":"short","scope":"repo:read","expiration":1.9}`)
	assert.Equal(t, "2026-11-22T10:00:01Z", short["expires_at"], "int(1.9) = 1")

	for body, want := range map[string]string{
		`{"scope":"repo:read"}`:           "'name' is a required property",
		`{"name":"x"}`:                    "'scope' is a required property",
		`{"name":"","scope":"repo:read"}`: "'' is too short",
		`{"name":"` + strings.Repeat("n", 256) + `","scope":"x"}`: "'" + strings.Repeat("n", 256) + "' is too long",
		`{"name":"x","scope":"repo:read","expiration":null}`:      "None is not of type 'number'",
		`{"name":"x","scope":"repo:read","expiration":"60"}`:      "'60' is not of type 'number'",
		`{"name":"x","scope":"repo:read","expiration":0}`:         "0 is less than the minimum of 1",
		`{"name":"x","scope":"repo:read","expiration":-5}`:        "-5 is less than the minimum of 1",
	} {
		code, resp, _ := q.do(t, "POST", base, q.admin, body)
		assert.Equal(t, 400, code, body)
		assert.Equal(t, "invalid_request", resp["error_type"], body)
		assert.Equal(t, want, resp["error_message"], body)
	}
	for body, want := range map[string]string{
		`{"name":" \t ","scope":"repo:read"}`:      "'name' must not be empty",
		`{"name":"x","scope":"repo:read bogus"}`:   "Invalid scope: repo:read bogus",
		`{"name":"x","scope":" , "}`:               "Invalid scope:  , ",
		`{"name":"x","scope":"direct_user_login"}`: "Invalid scope: direct_user_login",
	} {
		code, resp, _ := q.do(t, "POST", base, q.admin, body)
		assert.Equal(t, 400, code, body)
		assert.Equal(t, map[string]any{"message": want}, resp, body)
	}
}

func TestAppTokens_MintingRule(t *testing.T) {
	q := newQuayEnv(t, "")
	require.NoError(t, q.emu.CreateUser("bob", "password2", "bob@example.com"))
	code, _, _ := q.do(t, "PUT", "/api/v1/organization/acme/team/owners/members/bob", q.admin, "")
	require.Equal(t, 200, code)
	q.emu.mu.Lock()
	q.emu.db.teams["acme"]["owners"].members["bob"] = true // accept the invite
	q.emu.mu.Unlock()
	_, app, _ := q.do(t, "POST", "/api/v1/organization/acme/applications", q.admin, `{"name":"ci"}`)
	base := "/api/v1/organization/acme/applications/" + app["client_id"].(string) + "/tokens"
	mint := func(caller, scope string) int {
		code, _, _ := q.do(t, "POST", base, caller, `{"name":"x","scope":"`+scope+`"}`)
		return code
	}
	tok := func(user, scope string) string {
		s, err := q.emu.IssueToken(user, scope, time.Hour)
		require.NoError(t, err)
		return s
	}
	assert.Equal(t, 200, mint(tok("admin", "org:admin repo:admin"), "repo:read"), "implied by repo:admin")
	assert.Equal(t, 200, mint(tok("admin", "org:admin repo:admin"), "repo:write,repo:admin"))
	assert.Equal(t, 403, mint(tok("admin", "org:admin repo:read"), "repo:write"), "not a subset")
	assert.Equal(t, 403, mint(tok("admin", "org:admin user:admin"), "user:read"), "user:admin does not imply user:read")
	assert.Equal(t, 200, mint(tok("admin", "org:admin user:admin"), "user:admin"))
	assert.Equal(t, 403, mint(tok("admin", "repo:read"), "repo:read"), "org:admin is needed to use the API at all")
	// super:user needs the scope and a superuser (SUPER_USERS).
	assert.Equal(t, 200, mint(tok("admin", "org:admin super:user"), "super:user"))
	assert.Equal(t, 403, mint(tok("bob", "org:admin super:user"), "super:user"), "bob is no superuser")
	assert.Equal(t, 200, mint(tok("bob", "org:admin repo:create"), "repo:create"))
}

func TestAppTokens_Limit(t *testing.T) {
	q := newQuayEnv(t, "OAUTH_APPLICATION_MAXIMUM_TOKEN_COUNT: 2\n")
	_, app, _ := q.do(t, "POST", "/api/v1/organization/acme/applications", q.admin, `{"name":"ci"}`)
	base := "/api/v1/organization/acme/applications/" + app["client_id"].(string) + "/tokens"
	code, first, _ := q.do(t, "POST", base, q.admin, `{"name":"a","scope":"repo:read","expiration":60}`)
	require.Equal(t, 200, code)
	code, _, _ = q.do(t, "POST", base, q.admin, `{"name":"b","scope":"repo:read"}`)
	require.Equal(t, 200, code)
	code, body, _ := q.do(t, "POST", base, q.admin, `{"name":"c","scope":"repo:read"}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, map[string]any{"message": "Token limit reached: maximum 2 non-expired tokens per application"}, body)
	// Expired tokens do not count.
	q.clock.Advance(61 * time.Second)
	code, _, _ = q.do(t, "POST", base, q.admin, `{"name":"c","scope":"repo:read"}`)
	assert.Equal(t, 200, code)
	// Expired tokens can still be deleted; a token of another application is not found.
	code, _, _ = q.do(t, "DELETE", base+"/"+first["uuid"].(string), q.admin, "")
	assert.Equal(t, 204, code)
	_, app2, _ := q.do(t, "POST", "/api/v1/organization/acme/applications", q.admin, `{"name":"ci2"}`)
	_, other, _ := q.do(t, "POST", "/api/v1/organization/acme/applications/"+app2["client_id"].(string)+"/tokens", q.admin, `{"name":"z","scope":"repo:read"}`)
	code, _, _ = q.do(t, "DELETE", base+"/"+other["uuid"].(string), q.admin, "")
	assert.Equal(t, 404, code)
}

func TestAppTokens_Paging(t *testing.T) {
	q := newQuayEnv(t, "")
	_, app, _ := q.do(t, "POST", "/api/v1/organization/acme/applications", q.admin, `{"name":"ci"}`)
	base := "/api/v1/organization/acme/applications/" + app["client_id"].(string) + "/tokens"
	for i := range 120 {
		exp := 7200
		if i%10 == 0 {
			exp = 60 // these expire
		}
		code, _, raw := q.do(t, "POST", base, q.admin, `{"name":"t`+itoa(i)+`","scope":"repo:read","expiration":`+itoa(exp)+`}`)
		require.Equal(t, 200, code, raw)
	}
	q.clock.Advance(2 * time.Minute)
	var names []string
	cursor, pages := "", 0
	for {
		path := base
		if cursor != "" {
			path += "?next_page=" + cursor
		}
		code, page, raw := q.do(t, "GET", path, q.admin, "")
		require.Equal(t, 200, code, raw)
		pages++
		for _, tok := range page["tokens"].([]any) {
			names = append(names, tok.(map[string]any)["name"].(string))
		}
		next, ok := page["next_page"].(string)
		if !ok {
			break
		}
		assert.Len(t, page["tokens"], 50)
		cursor = next
	}
	assert.Equal(t, 3, pages)
	assert.Len(t, names, 108, "the 12 expired ones are left out")
	assert.Equal(t, "t119", names[0], "newest first")
	assert.Equal(t, "t1", names[len(names)-1])
	seen := map[string]bool{}
	for _, n := range names {
		assert.False(t, seen[n], "no duplicates across pages: %s", n)
		seen[n] = true
	}
	// A page token that does not decrypt, or has outlived its two days,
	// gives the first page again.
	code, first, _ := q.do(t, "GET", base+"?next_page=garbage", q.admin, "")
	assert.Equal(t, 200, code)
	assert.Equal(t, "t119", first["tokens"].([]any)[0].(map[string]any)["name"])

	// Page tokens live two days.
	q.admin, _ = q.emu.IssueToken("admin", "org:admin repo:read", 0) // ten years
	_, app2, _ := q.do(t, "POST", "/api/v1/organization/acme/applications", q.admin, `{"name":"ci2"}`)
	base2 := "/api/v1/organization/acme/applications/" + app2["client_id"].(string) + "/tokens"
	for i := range 51 {
		code, _, _ := q.do(t, "POST", base2, q.admin, `{"name":"u`+itoa(i)+`","scope":"repo:read"}`)
		require.Equal(t, 200, code)
	}
	_, p1, _ := q.do(t, "GET", base2, q.admin, "")
	next := p1["next_page"].(string)
	q.clock.Advance(47 * time.Hour)
	_, p2, _ := q.do(t, "GET", base2+"?next_page="+next, q.admin, "")
	assert.Len(t, p2["tokens"], 1)
	q.clock.Advance(2 * time.Hour)
	_, again, _ := q.do(t, "GET", base2+"?next_page="+next, q.admin, "")
	assert.Len(t, again["tokens"], 50, "an expired page token: the first page")
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestOrganizations_View(t *testing.T) {
	q := newQuayEnv(t, "FEATURE_MAILING: false\n")
	code, _, _ := q.do(t, "POST", "/api/v1/organization/", q.admin, `{"name":"neworg","email":"n@example.com"}`)
	require.Equal(t, 201, code)
	require.NoError(t, q.emu.CreateUser("bob", "password2", "bob@example.com"))
	for _, req := range [][3]string{
		{"PUT", "/api/v1/organization/neworg/team/devs", `{"role":"member"}`},
		{"PUT", "/api/v1/organization/neworg/team/ops", `{"role":"member"}`},
		{"PUT", "/api/v1/organization/neworg/team/devs/members/bob", ""},
	} {
		code, _, raw := q.do(t, req[0], req[1], q.admin, req[2])
		require.Equal(t, 200, code, raw)
	}
	require.NoError(t, q.emu.CreateRepository("neworg", "app", false))
	code, _, _ = q.do(t, "PUT", "/api/v1/repository/neworg/app/permissions/team/devs", q.admin, `{"role":"read"}`)
	require.Equal(t, 200, code)

	_, org, _ := q.do(t, "GET", "/api/v1/organization/neworg", q.admin, "")
	assert.Equal(t, "n@example.com", org["email"])
	assert.Equal(t, true, org["is_admin"])
	assert.Equal(t, []any{"owners", "devs", "ops"}, org["ordered_teams"], "by creation")
	devs := org["teams"].(map[string]any)["devs"].(map[string]any)
	assert.Equal(t, float64(1), devs["member_count"])
	assert.Equal(t, float64(1), devs["repo_count"])
	assert.Equal(t, true, devs["can_view"])
	assert.Equal(t, true, org["is_free_account"])

	bob, _ := q.emu.IssueToken("bob", "repo:create", time.Hour)
	_, org, _ = q.do(t, "GET", "/api/v1/organization/neworg", bob, "")
	assert.Equal(t, "", org["email"], "only admins see it")
	assert.Equal(t, false, org["is_admin"])
	assert.Equal(t, true, org["is_member"])
	assert.NotContains(t, org, "is_free_account")
	teams := org["teams"].(map[string]any)
	assert.Equal(t, true, teams["devs"].(map[string]any)["can_view"])
	assert.Equal(t, false, teams["ops"].(map[string]any)["can_view"])

	code, org, _ = q.do(t, "GET", "/api/v1/organization/neworg", "", "")
	require.Equal(t, 200, code, "anyone may look")
	assert.Equal(t, false, org["is_member"])
	assert.NotContains(t, org, "teams")
}
