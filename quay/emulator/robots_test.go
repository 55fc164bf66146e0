package emulator

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRobotAPI_CreateAndGet(t *testing.T) {
	q := newQuayEnv(t, "")
	code, r, _ := q.do(t, "PUT", "/api/v1/organization/acme/robots/ci", q.admin, `{"description":"builds","unstructured_metadata":{"team":"a"}}`)
	require.Equal(t, 201, code)
	assert.Equal(t, "acme+ci", r["name"])
	assert.Equal(t, "builds", r["description"])
	assert.Equal(t, map[string]any{"team": "a"}, r["unstructured_metadata"])
	assert.Regexp(t, `^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} -0000$`, r["created"], "RFC 2822")
	assert.Nil(t, r["last_accessed"])
	assert.Len(t, r, 6, "name created last_accessed description token unstructured_metadata")

	code, got, _ := q.do(t, "GET", "/api/v1/organization/acme/robots/ci", q.admin, "")
	require.Equal(t, 200, code)
	assert.Equal(t, r, got, "GET includes the token and metadata for an admin")

	// Without a body (or with a non-JSON one) the robot is created bare;
	// absent metadata is echoed as null but stored as {}.
	code, bare, _ := q.rawCT(t, "PUT", "/api/v1/organization/acme/robots/bare", "Bearer "+q.admin, "text/plain", `{"description":"ignored"}`)
	require.Equal(t, 201, code)
	assert.Equal(t, "", bare["description"], "get_json(silent=True) ignores a non-JSON body")
	assert.Nil(t, bare["unstructured_metadata"])
	_, got, _ = q.do(t, "GET", "/api/v1/organization/acme/robots/bare", q.admin, "")
	assert.Equal(t, map[string]any{}, got["unstructured_metadata"])
	code, _, _ = q.rawCT(t, "PUT", "/api/v1/organization/acme/robots/broken", "Bearer "+q.admin, "application/json", `{not json`)
	assert.Equal(t, 201, code, "an unparsable optional body is ignored too")

	for body, want := range map[string]string{
		`{"description":"` + strings.Repeat("d", 256) + `"}`: "'" + strings.Repeat("d", 256) + "' is too long",
		`{"description":5}`:            "5 is not of type 'string'",
		`{"unstructured_metadata":[]}`: "[] is not of type 'object'",
	} {
		code, resp, _ := q.do(t, "PUT", "/api/v1/organization/acme/robots/schema", q.admin, body)
		assert.Equal(t, 400, code, body)
		assert.Equal(t, want, resp["error_message"], body)
	}
	code, resp, _ := q.do(t, "PUT", "/api/v1/organization/acme/robots/big", q.admin, `{"description":"x","unstructured_metadata":{"pad":"`+strings.Repeat("p", 1<<20)+`"}}`)
	assert.Equal(t, 500, code, "ROBOT_MAX_SIZE: Quay's InvalidRequest() lacks its argument, a TypeError")
	assert.Nil(t, resp, "an HTML error page, not JSON")
	assert.False(t, q.emu.RobotExists("acme+big"))

	for short, issue := range map[string]string{
		"Bad":  "Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$",
		"a--b": "Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$",
		"x":    "Namespace must be between 2 and 255 characters in length",
	} {
		code, resp, _ := q.do(t, "PUT", "/api/v1/organization/acme/robots/"+short, q.admin, "")
		assert.Equal(t, 400, code)
		assert.Equal(t, "The name for the robot '"+short+"' is invalid: "+issue, resp["error_message"])
	}

	// The organization's admin only; members get 403, other callers too.
	member, _ := q.emu.IssueToken("admin", "repo:create", time.Hour)
	code, _, _ = q.do(t, "GET", "/api/v1/organization/acme/robots/ci", member, "")
	assert.Equal(t, 403, code)
	// A namespace that is not an organization: Quay's get_organization fails.
	code, resp, _ = q.do(t, "PUT", "/api/v1/organization/admin/robots/x1", q.admin, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, map[string]any{"message": "Organization does not exist: admin"}, resp)
	code, _, _ = q.do(t, "PUT", "/api/v1/organization/ghost/robots/x1", q.admin, "")
	assert.Equal(t, 403, code, "no permission on an organization that does not exist")
}

func TestRobotAPI_UserRobots(t *testing.T) {
	q := newQuayEnv(t, "")
	noUserAdmin, _ := q.emu.IssueToken("admin", "org:admin user:read", time.Hour)
	for _, req := range [][2]string{{"GET", ""}, {"PUT", "/mine"}, {"GET", "/mine"}, {"DELETE", "/mine"}, {"POST", "/mine/regenerate"}, {"GET", "/mine/permissions"}} {
		code, resp, _ := q.do(t, req[0], "/api/v1/user/robots"+req[1], noUserAdmin, "")
		assert.Equal(t, 403, code, req)
		assert.Equal(t, "insufficient_scope", resp["error_type"], req)
	}
	code, r, _ := q.do(t, "PUT", "/api/v1/user/robots/mine", q.admin, "")
	require.Equal(t, 201, code)
	assert.Equal(t, "admin+mine", r["name"])
	code, list, _ := q.do(t, "GET", "/api/v1/user/robots", q.admin, "")
	require.Equal(t, 200, code)
	assert.Len(t, list["robots"], 1)
	assert.Contains(t, list["robots"].([]any)[0], "token", "token=true by default")
	code, _, _ = q.do(t, "POST", "/api/v1/user/robots/mine/regenerate", q.admin, "")
	assert.Equal(t, 200, code)
	code, _, _ = q.do(t, "DELETE", "/api/v1/user/robots/mine", q.admin, "")
	assert.Equal(t, 204, code)
	code, resp, _ := q.do(t, "GET", "/api/v1/user/robots/mine", q.admin, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, map[string]any{"message": "Could not find robot with specified username"}, resp)
}

func TestRobotAPI_RegenerateInvalidatesTheOldToken(t *testing.T) {
	env := newRegEnv(t, "")
	code, regen, _ := env.do(t, "POST", "/api/v1/organization/acme/robots/writer/regenerate", env.admin, "")
	require.Equal(t, 200, code)
	assert.Equal(t, "acme+writer", regen["name"])
	assert.NotEqual(t, env.writerToken, regen["token"])
	assert.NotContains(t, regen, "unstructured_metadata")
	assert.Len(t, regen, 5)
	resp, _ := env.v2auth(t, basic(env.writer, env.writerToken))
	assert.Equal(t, 401, resp.StatusCode)
	resp, _ = env.v2auth(t, basic(env.writer, regen["token"].(string)))
	assert.Equal(t, 200, resp.StatusCode)
	_, got, _ := env.do(t, "GET", "/api/v1/organization/acme/robots/writer", env.admin, "")
	assert.Equal(t, regen["token"], got["token"])
	assert.NotNil(t, got["last_accessed"], "the registry login was recorded")
}

func TestRobotAPI_List(t *testing.T) {
	env := newRegEnv(t, "")
	q := env.quayEnv
	code, _, _ := q.do(t, "PUT", "/api/v1/organization/acme/robots/idle", q.admin, "")
	require.Equal(t, 201, code)
	for _, team := range []string{"t1", "t2"} {
		code, _, raw := q.do(t, "PUT", "/api/v1/organization/acme/team/"+team, q.admin, `{"role":"member"}`)
		require.Equal(t, 200, code, raw)
		code, _, raw = q.do(t, "PUT", "/api/v1/organization/acme/team/"+team+"/members/acme+writer", q.admin, "")
		require.Equal(t, 200, code, raw)
	}
	code, _, raw := q.do(t, "PUT", "/api/v1/repository/acme/other/permissions/user/acme+writer", q.admin, `{"role":"read"}`)
	require.Equal(t, 200, code, raw)
	// Logins set last_accessed: reader, then writer.
	env.v2auth(t, basic(env.reader, env.readerToken))
	env.clock.Advance(time.Minute)
	env.v2auth(t, basic(env.writer, env.writerToken))

	names := func(list map[string]any) []string {
		var out []string
		for _, r := range list["robots"].([]any) {
			out = append(out, r.(map[string]any)["name"].(string))
		}
		return out
	}
	_, list, _ := q.do(t, "GET", "/api/v1/organization/acme/robots", q.admin, "")
	assert.Equal(t, []string{"acme+idle", "acme+writer", "acme+reader"}, names(list),
		"ordered by last_accessed descending, never-used first (PostgreSQL's NULLs)")
	for _, r := range list["robots"].([]any) {
		r := r.(map[string]any)
		assert.Contains(t, r, "token")
		assert.NotContains(t, r, "teams")
		assert.NotContains(t, r, "unstructured_metadata")
	}

	_, list, _ = q.do(t, "GET", "/api/v1/organization/acme/robots?permissions=true&token=false", q.admin, "")
	writer := list["robots"].([]any)[1].(map[string]any)
	assert.Equal(t, "acme+writer", writer["name"])
	assert.NotContains(t, writer, "token")
	assert.Equal(t, []any{"app", "other"}, writer["repositories"])
	assert.Len(t, writer["teams"], 2)
	assert.Equal(t, []any{}, list["robots"].([]any)[0].(map[string]any)["repositories"])

	// limit cuts rows of Quay's robot × repository × team join: the
	// writer alone has 2×2 rows.
	_, list, _ = q.do(t, "GET", "/api/v1/organization/acme/robots?limit=2", q.admin, "")
	assert.Equal(t, []string{"acme+idle", "acme+writer"}, names(list))
	_, list, _ = q.do(t, "GET", "/api/v1/organization/acme/robots?permissions=true&limit=3", q.admin, "")
	assert.Equal(t, []string{"acme+idle", "acme+writer"}, names(list))
	writer = list["robots"].([]any)[1].(map[string]any)
	assert.Equal(t, []any{"app"}, writer["repositories"], "the limit ran out inside the writer's rows")
	_, list, _ = q.do(t, "GET", "/api/v1/organization/acme/robots?limit=0", q.admin, "")
	assert.Empty(t, list["robots"])

	// truthy_bool: only false, False, FALSE, 0, null and "" are false.
	_, list, _ = q.do(t, "GET", "/api/v1/organization/acme/robots?token=no", q.admin, "")
	assert.Contains(t, list["robots"].([]any)[0], "token")
	_, list, _ = q.do(t, "GET", "/api/v1/organization/acme/robots?token=0", q.admin, "")
	assert.NotContains(t, list["robots"].([]any)[0], "token")

	// Members list without tokens or permissions.
	member, _ := q.emu.IssueToken("admin", "repo:create", time.Hour)
	_, list, _ = q.do(t, "GET", "/api/v1/organization/acme/robots?permissions=true", member, "")
	for _, r := range list["robots"].([]any) {
		assert.NotContains(t, r, "token")
		assert.NotContains(t, r, "teams")
	}
}

func TestRobotAPI_PermissionsEndpoint(t *testing.T) {
	env := newRegEnv(t, "")
	q := env.quayEnv
	code, body, _ := q.do(t, "GET", "/api/v1/organization/acme/robots/writer/permissions", q.admin, "")
	require.Equal(t, 200, code)
	assert.Equal(t, map[string]any{"permissions": []any{map[string]any{"repository": map[string]any{"name": "app", "is_public": false}, "role": "write"}}}, body)

	// require_user_admin comes first: an ApiException without user:admin.
	orgOnly, _ := q.emu.IssueToken("admin", "org:admin", time.Hour)
	code, body, _ = q.do(t, "GET", "/api/v1/organization/acme/robots/writer/permissions", orgOnly, "")
	assert.Equal(t, 403, code)
	assert.Equal(t, "insufficient_scope", body["error_type"])
	// Then a plain Flask 403 without organization admin.
	userOnly, _ := q.emu.IssueToken("admin", "user:admin", time.Hour)
	code, body, _ = q.do(t, "GET", "/api/v1/organization/acme/robots/writer/permissions", userOnly, "")
	assert.Equal(t, 403, code)
	assert.NotContains(t, body, "error_type")
	assert.Contains(t, body, "message")

	code, body, _ = q.do(t, "GET", "/api/v1/organization/acme/robots/ghost/permissions", q.admin, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, "Could not find robot with specified username", body["message"])
}

func TestRobotAPI_DeleteCascades(t *testing.T) {
	env := newRegEnv(t, "")
	q := env.quayEnv
	code, _, raw := q.do(t, "PUT", "/api/v1/organization/acme/team/builders", q.admin, `{"role":"member"}`)
	require.Equal(t, 200, code, raw)
	code, _, raw = q.do(t, "PUT", "/api/v1/organization/acme/team/builders/members/acme+writer", q.admin, "")
	require.Equal(t, 200, code, raw)
	code, proto, raw := q.do(t, "POST", "/api/v1/organization/acme/prototypes", q.admin, `{"role":"read","delegate":{"name":"acme+writer","kind":"user"}}`)
	require.Equal(t, 200, code, raw)
	code, _, raw = q.do(t, "POST", "/api/v1/organization/acme/prototypes", q.admin, `{"role":"write","activating_user":{"name":"acme+writer"},"delegate":{"name":"builders","kind":"team"}}`)
	require.Equal(t, 200, code, raw)
	_ = proto

	code, _, raw = q.do(t, "DELETE", "/api/v1/organization/acme/robots/writer", q.admin, "")
	require.Equal(t, 204, code, raw)
	assert.Empty(t, raw)
	assert.False(t, q.emu.RobotExists("acme+writer"))

	_, perms, _ := q.do(t, "GET", "/api/v1/repository/acme/app/permissions/user/", q.admin, "")
	assert.NotContains(t, perms["permissions"], "acme+writer")
	_, members, _ := q.do(t, "GET", "/api/v1/organization/acme/team/builders/members", q.admin, "")
	assert.Empty(t, members["members"])
	_, protos, _ := q.do(t, "GET", "/api/v1/organization/acme/prototypes", q.admin, "")
	assert.Empty(t, protos["prototypes"], "as delegate and as activating user")

	// Re-creating the name gives a new robot with no permissions.
	code, _, _ = q.do(t, "PUT", "/api/v1/organization/acme/robots/writer", q.admin, "")
	require.Equal(t, 201, code)
	code, body, _ := q.do(t, "GET", "/api/v1/organization/acme/robots/writer/permissions", q.admin, "")
	require.Equal(t, 200, code)
	assert.Empty(t, body["permissions"])
}
