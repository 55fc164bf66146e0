package emulator

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTeamAPI_CreateUpdateDelete(t *testing.T) {
	q := newQuayEnv(t, "")
	require.NoError(t, q.emu.CreateRepository("acme", "app", false))
	code, team, _ := q.do(t, "PUT", "/api/v1/organization/acme/team/devs", q.admin, `{"role":"member","description":"the devs"}`)
	require.Equal(t, 200, code, "200, create or update")
	assert.Equal(t, "devs", team["name"])
	assert.Equal(t, "the devs", team["description"])
	assert.Equal(t, "member", team["role"])
	assert.Equal(t, true, team["new_team"])
	assert.Equal(t, true, team["can_view"])
	assert.Contains(t, team, "avatar")
	assert.Len(t, team, 6)

	code, team, _ = q.do(t, "PUT", "/api/v1/organization/acme/team/devs", q.admin, `{"role":"creator"}`)
	require.Equal(t, 200, code)
	assert.Equal(t, false, team["new_team"])
	assert.Equal(t, "creator", team["role"])
	assert.Equal(t, "the devs", team["description"], "kept when absent")

	for path, msg := range map[string]string{
		"/api/v1/organization/acme/team/Bad": "Invalid team name Bad: Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$",
		"/api/v1/organization/acme/team/x":   "Invalid team name x: Team must be between 2 and 255 characters in length",
		"/api/v1/organization/admin/team/t1": "Organization does not exist: admin",
	} {
		code, resp, _ := q.do(t, "PUT", path, q.admin, `{"role":"member"}`)
		assert.Equal(t, 400, code, path)
		assert.Equal(t, map[string]any{"message": msg}, resp, path)
	}
	code, resp, _ := q.do(t, "PUT", "/api/v1/organization/acme/team/devs", q.admin, `{"role":"boss"}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "'boss' is not one of ['member', 'creator', 'admin']", resp["error_message"])

	// The caller's only admin team can be neither demoted nor deleted.
	code, resp, _ = q.do(t, "PUT", "/api/v1/organization/acme/team/owners", q.admin, `{"role":"member"}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "Cannot remove admin from team 'owners' because calling user would no longer have admin on org 'acme'", resp["message"])
	code, resp, _ = q.do(t, "DELETE", "/api/v1/organization/acme/team/owners", q.admin, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, "Deleting team 'owners' would remove admin ability for user 'admin' in organization 'acme'", resp["message"])

	// Deleting cascades to permissions and prototypes.
	code, _, _ = q.do(t, "PUT", "/api/v1/repository/acme/app/permissions/team/devs", q.admin, `{"role":"read"}`)
	require.Equal(t, 200, code)
	code, _, _ = q.do(t, "POST", "/api/v1/organization/acme/prototypes", q.admin, `{"role":"read","delegate":{"name":"devs","kind":"team"}}`)
	require.Equal(t, 200, code)
	code, _, raw := q.do(t, "DELETE", "/api/v1/organization/acme/team/devs", q.admin, "")
	assert.Equal(t, 204, code)
	assert.Empty(t, raw)
	code, resp, _ = q.do(t, "DELETE", "/api/v1/repository/acme/app/permissions/team/devs", q.admin, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, "Team does not have permission for repo.", resp["error_message"], "deleting the team took its permissions")
	_, protos, _ := q.do(t, "GET", "/api/v1/organization/acme/prototypes", q.admin, "")
	assert.Empty(t, protos["prototypes"])
	code, resp, _ = q.do(t, "DELETE", "/api/v1/organization/acme/team/devs", q.admin, "")
	assert.Equal(t, 400, code, "remove_team's InvalidTeamException, not a 404")
	assert.Equal(t, map[string]any{"message": "Team 'devs' is not a team in org 'acme'"}, resp)

	// org:admin is needed; the body is checked first.
	noOrg, _ := q.emu.IssueToken("admin", "repo:admin", time.Hour)
	code, _, _ = q.do(t, "PUT", "/api/v1/organization/acme/team/devs", noOrg, `{"role":"boss"}`)
	assert.Equal(t, 400, code)
	code, _, _ = q.do(t, "PUT", "/api/v1/organization/acme/team/devs", noOrg, `{"role":"member"}`)
	assert.Equal(t, 403, code)
}

func TestTeamAPI_Members(t *testing.T) {
	q := newQuayEnv(t, "")
	require.NoError(t, q.emu.CreateUser("bob", "password2", "bob@example.com"))
	require.NoError(t, q.emu.CreateOrganization("other", "admin"))
	for _, p := range []string{"/api/v1/organization/acme/robots/ci", "/api/v1/organization/other/robots/ci"} {
		code, _, _ := q.do(t, "PUT", p, q.admin, "")
		require.Equal(t, 201, code)
	}
	code, _, _ := q.do(t, "PUT", "/api/v1/organization/acme/team/devs", q.admin, `{"role":"member"}`)
	require.Equal(t, 200, code)
	base := "/api/v1/organization/acme/team/devs/members/"

	code, m, _ := q.do(t, "PUT", base+"acme+ci", q.admin, "")
	require.Equal(t, 200, code)
	assert.Equal(t, map[string]any{"name": "acme+ci", "kind": "user", "is_robot": true, "avatar": m["avatar"], "invited": false}, m)
	code, resp, _ := q.do(t, "PUT", base+"acme+ci", q.admin, "")
	assert.Equal(t, 400, code, "not idempotent")
	assert.Equal(t, map[string]any{"message": "User acme+ci is already a member of team devs"}, resp)

	code, resp, _ = q.do(t, "PUT", base+"other+ci", q.admin, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, map[string]any{"message": "Cannot add the specified robot to this team, as it is not a member of the organization"}, resp)
	for _, who := range []string{"ghost", "acme"} {
		code, resp, _ = q.do(t, "PUT", base+who, q.admin, "")
		assert.Equal(t, 400, code, who)
		assert.Equal(t, "Unknown user", resp["error_message"], who)
	}
	code, _, _ = q.do(t, "PUT", "/api/v1/organization/acme/team/nope/members/bob", q.admin, "")
	assert.Equal(t, 404, code)

	// A user outside the organization is invited (FEATURE_MAILING and
	// FEATURE_REQUIRE_TEAM_INVITE), not added.
	code, m, _ = q.do(t, "PUT", base+"bob", q.admin, "")
	require.Equal(t, 200, code)
	assert.Equal(t, true, m["invited"])
	_, list, _ := q.do(t, "GET", "/api/v1/organization/acme/team/devs/members", q.admin, "")
	assert.Len(t, list["members"], 1, "invites only with includePending")
	assert.Equal(t, true, list["can_edit"])
	_, list, _ = q.do(t, "GET", "/api/v1/organization/acme/team/devs/members?includePending=true", q.admin, "")
	assert.Len(t, list["members"], 2)
	code, _, _ = q.do(t, "DELETE", base+"bob", q.admin, "")
	assert.Equal(t, 204, code, "deleting removes the invite")
	_, list, _ = q.do(t, "GET", "/api/v1/organization/acme/team/devs/members?includePending=true", q.admin, "")
	assert.Len(t, list["members"], 1)

	// A user already in one of the org's teams joins directly.
	code, _, _ = q.do(t, "PUT", base+"admin", q.admin, "")
	require.Equal(t, 200, code)
	code, resp, _ = q.do(t, "DELETE", base+"bob", q.admin, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, map[string]any{"message": "User bob does not belong to team devs"}, resp)
	code, _, _ = q.do(t, "DELETE", base+"ghost", q.admin, "")
	assert.Equal(t, 404, code)
	code, resp, _ = q.do(t, "DELETE", "/api/v1/organization/acme/team/owners/members/admin", q.admin, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, map[string]any{"message": "User cannot remove themselves from their only admin team."}, resp)
	code, _, _ = q.do(t, "DELETE", base+"acme+ci", q.admin, "")
	assert.Equal(t, 204, code)

	// Without invites, anyone is added at once.
	q2 := newQuayEnv(t, "FEATURE_REQUIRE_TEAM_INVITE: false\n")
	require.NoError(t, q2.emu.CreateUser("bob", "password2", "bob@example.com"))
	code, _, _ = q2.do(t, "PUT", "/api/v1/organization/acme/team/owners/members/bob", q2.admin, "")
	require.Equal(t, 200, code)
	_, list, _ = q2.do(t, "GET", "/api/v1/organization/acme/team/owners/members", q2.admin, "")
	assert.Len(t, list["members"], 2)
}

// Team members are visible to the team's members (ViewTeamPermission) and
// the org's admins.
func TestTeamAPI_ViewPermission(t *testing.T) {
	q := newQuayEnv(t, "FEATURE_MAILING: false\n")
	require.NoError(t, q.emu.CreateUser("bob", "password2", "bob@example.com"))
	for _, team := range []string{"devs", "ops"} {
		code, _, _ := q.do(t, "PUT", "/api/v1/organization/acme/team/"+team, q.admin, `{"role":"member"}`)
		require.Equal(t, 200, code)
	}
	code, _, _ := q.do(t, "PUT", "/api/v1/organization/acme/team/devs/members/bob", q.admin, "")
	require.Equal(t, 200, code)
	bob, _ := q.emu.IssueToken("bob", "repo:create", time.Hour)
	code, list, _ := q.do(t, "GET", "/api/v1/organization/acme/team/devs/members", bob, "")
	require.Equal(t, 200, code)
	assert.Equal(t, false, list["can_edit"])
	code, _, _ = q.do(t, "GET", "/api/v1/organization/acme/team/ops/members", bob, "")
	assert.Equal(t, 403, code, "not bob's team")
	narrow, _ := q.emu.IssueToken("bob", "repo:read", time.Hour)
	code, _, _ = q.do(t, "GET", "/api/v1/organization/acme/team/devs/members", narrow, "")
	assert.Equal(t, 403, code, "repo:read leaves no team role")
}

func TestPrototypeAPI(t *testing.T) {
	q := newQuayEnv(t, "")
	require.NoError(t, q.emu.CreateUser("bob", "password2", "bob@example.com"))
	code, _, _ := q.do(t, "PUT", "/api/v1/organization/acme/team/devs", q.admin, `{"role":"member"}`)
	require.Equal(t, 200, code)
	code, _, _ = q.do(t, "PUT", "/api/v1/organization/acme/robots/ci", q.admin, "")
	require.Equal(t, 201, code)
	base := "/api/v1/organization/acme/prototypes"

	code, p, _ := q.do(t, "POST", base, q.admin, `{"role":"write","delegate":{"name":"acme+ci","kind":"user"},"activating_user":{"name":"bob"}}`)
	require.Equal(t, 200, code, "200, not 201")
	assert.Regexp(t, `^[0-9a-f-]{36}$`, p["id"])
	assert.Equal(t, "write", p["role"])
	delegate := p["delegate"].(map[string]any)
	assert.Equal(t, "acme+ci", delegate["name"])
	assert.Equal(t, "user", delegate["kind"])
	assert.Equal(t, true, delegate["is_robot"])
	assert.Equal(t, true, delegate["is_org_member"])
	activating := p["activating_user"].(map[string]any)
	assert.Equal(t, "bob", activating["name"])
	assert.Equal(t, false, activating["is_org_member"])

	code, tp, _ := q.do(t, "POST", base, q.admin, `{"role":"read","delegate":{"name":"devs","kind":"team"}}`)
	require.Equal(t, 200, code)
	assert.Nil(t, tp["activating_user"])
	assert.Equal(t, map[string]any{"name": "devs", "kind": "team", "avatar": tp["delegate"].(map[string]any)["avatar"]}, tp["delegate"])

	for body, want := range map[string]map[string]any{
		`{"role":"read","delegate":{"name":"ghosts","kind":"team"},"activating_user":{"name":"ghost"}}`: {"message": "('Team does not exist: %s/%s', 'acme', 'ghosts')"},
		`{"role":"read","delegate":{"name":"bob","kind":"user"},"activating_user":{"name":"ghost"}}`:    {"error_message": "Unknown activating user"},
		`{"role":"read","delegate":{"name":"acme","kind":"user"}}`:                                      {"error_message": "Missing delegate user or team"},
		`{"role":"read","delegate":{"name":"","kind":"team"}}`:                                          {"error_message": "Missing delegate user or team"},
		`{"role":"read","delegate":{"name":"x","kind":"robot"}}`:                                        {"error_message": "'robot' is not one of ['user', 'team']"},
		`{"role":"read"}`: {"error_message": "'delegate' is a required property"},
	} {
		code, resp, _ := q.do(t, "POST", base, q.admin, body)
		assert.Equal(t, 400, code, body)
		for k, v := range want {
			assert.Equal(t, v, resp[k], body)
		}
	}

	_, list, _ := q.do(t, "GET", base, q.admin, "")
	assert.Len(t, list["prototypes"], 2)
	code, upd, _ := q.do(t, "PUT", base+"/"+p["id"].(string), q.admin, `{"role":"admin"}`)
	require.Equal(t, 200, code)
	assert.Equal(t, "admin", upd["role"])
	code, _, _ = q.do(t, "PUT", base+"/nope", q.admin, `{"role":"admin"}`)
	assert.Equal(t, 404, code)
	code, _, raw := q.do(t, "DELETE", base+"/"+p["id"].(string), q.admin, "")
	assert.Equal(t, 204, code)
	assert.Empty(t, raw)
	code, _, _ = q.do(t, "DELETE", base+"/"+p["id"].(string), q.admin, "")
	assert.Equal(t, 404, code)

	code, _, _ = q.do(t, "GET", "/api/v1/organization/admin/prototypes", q.admin, "")
	assert.Equal(t, 404, code, "a user namespace is not an organization")
	noOrg, _ := q.emu.IssueToken("admin", "repo:admin", time.Hour)
	code, _, _ = q.do(t, "GET", base, noOrg, "")
	assert.Equal(t, 403, code)
}
