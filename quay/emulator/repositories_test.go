package emulator

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRepositoryAPI_Create(t *testing.T) {
	q := newQuayEnv(t, "")
	code, body, _ := q.do(t, "POST", "/api/v1/repository", q.admin, `{"repository":"app","visibility":"private","description":"","namespace":"acme"}`)
	require.Equal(t, 201, code)
	assert.Equal(t, map[string]any{"namespace": "acme", "name": "app", "kind": "image"}, body)
	code, body, _ = q.do(t, "POST", "/api/v1/repository", q.admin, `{"repository":"mine","visibility":"public","description":"d"}`)
	require.Equal(t, 201, code)
	assert.Equal(t, "admin", body["namespace"], "the caller's own namespace by default")

	for req, msg := range map[string]string{
		`{"repository":"app","visibility":"private","description":"","namespace":"acme"}`:  "Repository already exists",
		`{"repository":"App","visibility":"private","description":"","namespace":"acme"}`:  "Invalid repository name",
		`{"repository":"a//b","visibility":"private","description":"","namespace":"acme"}`: "Invalid repository name",
		`{"repository":"x","visibility":"private","namespace":"acme"}`:                     "'description' is a required property",
		`{"repository":"x","visibility":"secret","description":""}`:                        "'secret' is not one of ['public', 'private']",
	} {
		code, resp, _ := q.do(t, "POST", "/api/v1/repository", q.admin, req)
		assert.Equal(t, 400, code, req)
		assert.Equal(t, msg, resp["error_message"], req)
	}
	code, _, _ = q.do(t, "POST", "/api/v1/repository", q.admin, `{"repository":"x","visibility":"private","description":"","namespace":"ghost"}`)
	assert.Equal(t, 403, code, "no create permission in a namespace that does not exist")

	// Nested names (FEATURE_EXTENDED_REPOSITORY_NAMES) are addressable.
	code, _, raw := q.do(t, "POST", "/api/v1/repository", q.admin, `{"repository":"team/app","visibility":"private","description":"","namespace":"acme"}`)
	require.Equal(t, 201, code, raw)
	code, repo, _ := q.do(t, "GET", "/api/v1/repository/acme/team/app", q.admin, "")
	require.Equal(t, 200, code)
	assert.Equal(t, "team/app", repo["name"])
	assert.Equal(t, false, repo["is_public"])

	// The creating user always gets an explicit admin permission.
	_, perms, _ := q.do(t, "GET", "/api/v1/repository/acme/app/permissions/user/", q.admin, "")
	assert.Equal(t, "admin", perms["permissions"].(map[string]any)["admin"].(map[string]any)["role"])
	_, perms, _ = q.do(t, "GET", "/api/v1/repository/admin/mine/permissions/user/", q.admin, "")
	assert.Contains(t, perms["permissions"], "admin", "even in the creator's own namespace")
}

func TestRepositoryAPI_UserPermissions(t *testing.T) {
	q := newQuayEnv(t, "")
	require.NoError(t, q.emu.CreateRepository("acme", "app", false))
	require.NoError(t, q.emu.CreateUser("bob", "password2", "bob@example.com"))
	code, _, _ := q.do(t, "PUT", "/api/v1/organization/acme/robots/ci", q.admin, "")
	require.Equal(t, 201, code)
	base := "/api/v1/repository/acme/app/permissions/user/"

	code, body, _ := q.do(t, "PUT", base+"acme+ci", q.admin, `{"role":"read"}`)
	require.Equal(t, 200, code, "200 on PUT")
	assert.Equal(t, "read", body["role"])
	assert.Equal(t, "acme+ci", body["name"])
	assert.Equal(t, true, body["is_robot"])
	assert.Equal(t, true, body["is_org_member"], "robots always count as members")
	assert.Contains(t, body, "avatar")
	code, body, _ = q.do(t, "PUT", base+"acme+ci", q.admin, `{"role":"write"}`)
	require.Equal(t, 200, code, "an upsert")
	assert.Equal(t, "write", body["role"])
	code, body, _ = q.do(t, "GET", base+"acme+ci", q.admin, "")
	require.Equal(t, 200, code)
	assert.Equal(t, "write", body["role"])

	code, body, _ = q.do(t, "PUT", base+"bob", q.admin, `{"role":"admin"}`)
	require.Equal(t, 200, code)
	assert.Equal(t, false, body["is_org_member"])
	// An organization is a User row too: Quay lets it be granted.
	require.NoError(t, q.emu.CreateOrganization("partner", "admin"))
	code, _, _ = q.do(t, "PUT", base+"partner", q.admin, `{"role":"read"}`)
	assert.Equal(t, 200, code)

	_, list, _ := q.do(t, "GET", base, q.admin, "")
	assert.Len(t, list["permissions"], 3)

	require.NoError(t, q.emu.CreateOrganization("other", "admin"))
	code, _, _ = q.do(t, "PUT", "/api/v1/organization/other/robots/ci", q.admin, "")
	require.Equal(t, 201, code)
	for user, msg := range map[string]string{
		"acme":     "Namespace owner must always be admin.",
		"ghost":    "Invalid username: ghost",
		"other+ci": "Cannot add robot other+ci under namespace acme",
	} {
		code, resp, _ := q.do(t, "PUT", base+user, q.admin, `{"role":"read"}`)
		assert.Equal(t, 400, code, user)
		assert.Equal(t, "invalid_request", resp["error_type"], user)
		assert.Equal(t, msg, resp["error_message"], user)
	}
	code, resp, _ := q.do(t, "PUT", base+"bob", q.admin, `{"role":"owner"}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "'owner' is not one of ['read', 'write', 'admin']", resp["error_message"])

	// Repository admin is checked before the body.
	writeOnly, _ := q.emu.IssueToken("admin", "repo:write", time.Hour)
	code, resp, _ = q.do(t, "PUT", base+"bob", writeOnly, `{"role":"owner"}`)
	assert.Equal(t, 403, code)
	assert.Equal(t, "insufficient_scope", resp["error_type"])

	// GET of a missing permission: a data-model error; DELETE: InvalidRequest.
	code, resp, _ = q.do(t, "GET", base+"nobody", q.admin, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, map[string]any{"message": "User does not have permission for repo."}, resp)
	code, resp, _ = q.do(t, "DELETE", base+"nobody", q.admin, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, "User does not have permission for repo.", resp["error_message"])
	code, resp, _ = q.do(t, "DELETE", base+"acme", q.admin, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, "Namespace owner must always be admin.", resp["error_message"])
	code, _, raw := q.do(t, "DELETE", base+"acme+ci", q.admin, "")
	assert.Equal(t, 204, code)
	assert.Empty(t, raw)

	// A missing repository: no permissions listed; setting one is a 500
	// (peewee's DoesNotExist).
	_, list, _ = q.do(t, "GET", "/api/v1/repository/acme/ghost/permissions/user/", q.admin, "")
	assert.Equal(t, map[string]any{}, list["permissions"])
	code, _, _ = q.do(t, "PUT", "/api/v1/repository/acme/ghost/permissions/user/bob", q.admin, `{"role":"read"}`)
	assert.Equal(t, 500, code)

	// In a user's namespace there is no is_org_member.
	require.NoError(t, q.emu.CreateRepository("admin", "own", false))
	code, body, _ = q.do(t, "PUT", "/api/v1/repository/admin/own/permissions/user/bob", q.admin, `{"role":"read"}`)
	require.Equal(t, 200, code)
	assert.NotContains(t, body, "is_org_member")
}

func TestRepositoryAPI_TeamPermissions(t *testing.T) {
	q := newQuayEnv(t, "")
	require.NoError(t, q.emu.CreateRepository("acme", "app", false))
	code, _, _ := q.do(t, "PUT", "/api/v1/organization/acme/team/devs", q.admin, `{"role":"member"}`)
	require.Equal(t, 200, code)
	base := "/api/v1/repository/acme/app/permissions/team/"
	code, body, _ := q.do(t, "PUT", base+"devs", q.admin, `{"role":"write"}`)
	require.Equal(t, 200, code)
	assert.Equal(t, "write", body["role"])
	assert.Equal(t, "devs", body["name"])
	assert.Len(t, body, 3)
	code, resp, _ := q.do(t, "PUT", base+"ghosts", q.admin, `{"role":"write"}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "No team ghosts in organization acme", resp["error_message"])

	// getTeamPermissions answers only the role; listRepoTeamPermissions the
	// full views by team name.
	code, body, _ = q.do(t, "GET", base+"devs", q.admin, "")
	require.Equal(t, 200, code)
	assert.Equal(t, map[string]any{"role": "write"}, body)
	code, body, _ = q.do(t, "GET", base, q.admin, "")
	require.Equal(t, 200, code)
	devs := body["permissions"].(map[string]any)["devs"].(map[string]any)
	assert.Equal(t, "write", devs["role"])
	assert.Equal(t, "devs", devs["name"])
	assert.Contains(t, devs, "avatar")
	assert.Equal(t, 1, q.emu.Calls("getTeamPermissions"))
	assert.Equal(t, 1, q.emu.Calls("listRepoTeamPermissions"))

	code, _, _ = q.do(t, "DELETE", base+"devs", q.admin, "")
	assert.Equal(t, 204, code)
	code, resp, _ = q.do(t, "DELETE", base+"devs", q.admin, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, "Team does not have permission for repo.", resp["error_message"])
	code, resp, _ = q.do(t, "GET", base+"devs", q.admin, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, map[string]any{"message": "Team does not have permission for repo."}, resp, "a data-model error on GET")
}

// Default permissions apply when someone other than the namespace creates a
// repository (apply_default_permissions): a creator-specific prototype
// pre-empts a general one for the same delegate.
func TestRepositoryAPI_PrototypesApplyOnCreation(t *testing.T) {
	q := newQuayEnv(t, "FEATURE_MAILING: false\n")
	require.NoError(t, q.emu.CreateUser("bob", "password2", "bob@example.com"))
	require.NoError(t, q.emu.CreateUser("carol", "password3", "carol@example.com"))
	for _, req := range [][3]string{
		{"PUT", "/api/v1/organization/acme/team/devs", `{"role":"creator"}`},
		{"PUT", "/api/v1/organization/acme/team/devs/members/bob", ""},
		{"PUT", "/api/v1/organization/acme/team/devs/members/carol", ""},
		{"POST", "/api/v1/organization/acme/prototypes", `{"role":"write","delegate":{"name":"devs","kind":"team"},"activating_user":{"name":"bob"}}`},
		{"POST", "/api/v1/organization/acme/prototypes", `{"role":"read","delegate":{"name":"devs","kind":"team"}}`},
		{"POST", "/api/v1/organization/acme/prototypes", `{"role":"admin","delegate":{"name":"carol","kind":"user"}}`},
	} {
		code, _, raw := q.do(t, req[0], req[1], q.admin, req[2])
		require.Equal(t, 200, code, raw)
	}
	create := func(user, name string) (map[string]any, map[string]any) {
		tok, _ := q.emu.IssueToken(user, "repo:create repo:admin", time.Hour)
		code, _, raw := q.do(t, "POST", "/api/v1/repository", tok, `{"repository":"`+name+`","visibility":"private","description":"","namespace":"acme"}`)
		require.Equal(t, 201, code, raw)
		q.emu.mu.Lock()
		defer q.emu.mu.Unlock()
		repo := q.emu.db.repos["acme/"+name]
		users, teams := map[string]any{}, map[string]any{}
		for k, v := range repo.userPerms {
			users[k] = v
		}
		for k, v := range repo.teamPerms {
			teams[k] = v
		}
		return users, teams
	}
	users, teams := create("bob", "by-bob")
	assert.Equal(t, map[string]any{"devs": "write"}, teams, "bob's own prototype pre-empts the general one")
	assert.Equal(t, map[string]any{"bob": "admin", "carol": "admin"}, users)
	users, teams = create("carol", "by-carol")
	assert.Equal(t, map[string]any{"devs": "read"}, teams)
	assert.Equal(t, map[string]any{"carol": "admin"}, users, "the creator's own prototype is skipped: admin anyway")
}

// listRepos pages as Quay does: 100 repositories a page in creation order,
// an opaque next_page cursor while more remain.
func TestListRepos_Pages(t *testing.T) {
	q := newQuayEnv(t, "")
	for i := 0; i < 205; i++ {
		q.emu.db.createRepo("acme", fmt.Sprintf("r%03d", 204-i), false, "", "acme", q.emu.now())
	}
	var names []string
	cursor, pages := "", 0
	for {
		path := "/api/v1/repository?namespace=acme"
		if cursor != "" {
			path += "&next_page=" + url.QueryEscape(cursor)
		}
		code, page, raw := q.do(t, "GET", path, q.admin, "")
		require.Equal(t, 200, code, raw)
		pages++
		for _, r := range page["repositories"].([]any) {
			names = append(names, r.(map[string]any)["name"].(string))
		}
		next, _ := page["next_page"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	assert.Equal(t, 3, pages)
	require.Len(t, names, 205)
	assert.Equal(t, "r204", names[0], "creation order, not names")
	assert.Equal(t, "r000", names[204])

	// A cursor older than two days is ignored: the first page again.
	_, first, _ := q.do(t, "GET", "/api/v1/repository?namespace=acme", q.admin, "")
	q.clock.Advance(49 * time.Hour)
	fresh, err := q.emu.IssueToken("admin", "repo:read", time.Hour)
	require.NoError(t, err)
	_, again, _ := q.do(t, "GET", "/api/v1/repository?namespace=acme&next_page="+url.QueryEscape(first["next_page"].(string)), fresh, "")
	assert.Equal(t, "r204", again["repositories"].([]any)[0].(map[string]any)["name"])
}
