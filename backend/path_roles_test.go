package backend

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

func TestRoles_OAuthRoleRoundTrip(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", map[string]any{"scopes": []any{"user:read", "repo:read", "repo:read"}})

	read := env.mustOK(logical.ReadOperation, "roles/ci", nil)
	assert.Equal(t, "oauth_token", read.Data["credential_type"])
	assert.Equal(t, testOrg, read.Data["namespace_name"])
	assert.Equal(t, []string{"repo:read", "user:read"}, read.Data["scopes"], "deduplicated, in Quay's order")
	assert.EqualValues(t, 3600, read.Data["ttl"])
	assert.EqualValues(t, 7200, read.Data["max_ttl"])
	assert.Equal(t, true, read.Data["managed_application"])
	assert.NotEmpty(t, read.Data["client_id"])

	list := env.mustOK(logical.ListOperation, "roles/", nil)
	assert.Equal(t, []string{"ci"}, list.Data["keys"])

	env.mustOK(logical.DeleteOperation, "roles/ci", nil)
	assert.Nil(t, env.request(logical.ReadOperation, "roles/ci", nil))
}

// Roles without client_id share one application per mount and organization.
func TestRoles_ManagedApplicationIsCreatedOnceAndReused(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("a", nil)
	env.writeOAuthRole("b", map[string]any{"scopes": "repo:write"})

	a := env.mustOK(logical.ReadOperation, "roles/a", nil)
	b := env.mustOK(logical.ReadOperation, "roles/b", nil)
	assert.Equal(t, a.Data["client_id"], b.Data["client_id"])

	apps, err := env.adminClient.ListApplications(context.Background(), testOrg)
	require.NoError(t, err)
	var managed int
	for _, app := range apps {
		if app.Name == env.b.managedApplicationName() {
			managed++
			assert.Equal(t, a.Data["client_id"], app.ClientID)
		}
	}
	assert.Equal(t, 1, managed)
}

func TestRoles_ExplicitClientID(t *testing.T) {
	env := newTestEnv(t)
	app, err := env.adminClient.CreateApplication(context.Background(), testOrg, quay.NewApplication{Name: "ci-app"})
	require.NoError(t, err)

	env.writeOAuthRole("ci", map[string]any{"client_id": app.ClientID})
	read := env.mustOK(logical.ReadOperation, "roles/ci", nil)
	assert.Equal(t, app.ClientID, read.Data["client_id"])
	assert.Equal(t, false, read.Data["managed_application"])
}

func TestRoles_BadInputNamesTheField(t *testing.T) {
	env := newTestEnv(t)
	base := func(over map[string]any) map[string]any {
		d := map[string]any{"credential_type": "oauth_token", "namespace_name": testOrg, "scopes": "repo:read"}
		for k, v := range over {
			if v == nil {
				delete(d, k)
			} else {
				d[k] = v
			}
		}
		return d
	}
	cases := []struct {
		name  string
		data  map[string]any
		field string
	}{
		{"unknown scope", base(map[string]any{"scopes": "repo:read,repo:nope"}), "scopes:"},
		{"no scopes", base(map[string]any{"scopes": nil}), "scopes:"},
		{"missing namespace", base(map[string]any{"namespace_name": nil}), "namespace_name:"},
		{"uppercase namespace", base(map[string]any{"namespace_name": "Acme"}), "namespace_name:"},
		{"unknown organization", base(map[string]any{"namespace_name": "nosuchorg"}), "namespace_name:"},
		{"unknown client_id", base(map[string]any{"client_id": "NOSUCHCLIENTID000000"}), "client_id:"},
		{"oauth in user namespace", base(map[string]any{"namespace_type": "user"}), "namespace_type:"},
		{"bad namespace_type", base(map[string]any{"namespace_type": "team"}), "namespace_type:"},
		{"bad credential_type", base(map[string]any{"credential_type": "password"}), "credential_type:"},
		{"ttl above max_ttl", base(map[string]any{"ttl": "3h", "max_ttl": "1h"}), "ttl:"},
		{"ttl not a duration", base(map[string]any{"ttl": "forever"}), `"ttl"`},
		{"robot field on oauth role", base(map[string]any{"repositories": `{"app":"read"}`}), "repositories:"},
		{"scopes on robot role", base(map[string]any{"credential_type": "robot"}), "scopes:"},
		{"repositories not JSON", map[string]any{"namespace_name": testOrg, "repositories": "app=read"}, "repositories:"},
		{"bad repository permission", map[string]any{"namespace_name": testOrg, "repositories": map[string]any{"app": "owner"}}, "repositories:"},
		{"bad team role", map[string]any{"namespace_name": testOrg, "teams": `{"devs":"boss"}`}, "teams:"},
		{"bad default_permission", map[string]any{"namespace_name": testOrg, "default_permission": "owner"}, "default_permission:"},
		{"teams in user namespace", map[string]any{"namespace_type": "user", "namespace_name": testAdmin, "teams": `{"devs":"member"}`}, "teams:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := env.request(logical.CreateOperation, "roles/bad", tc.data)
			require.True(t, resp.IsError(), "expected a 400, got %#v", resp)
			assert.Contains(t, errorMessage(resp), tc.field)
		})
	}
	assert.Nil(t, env.request(logical.ReadOperation, "roles/bad", nil), "no failed write stored a role")
}

// vault-config-operator's QuaySecretEngineRole sends teams and repositories
// as JSON strings, durations as Go duration strings and unset pointers as
// null; redhat-cop roles must keep working unchanged.
func TestRoles_AcceptsVaultConfigOperatorPayload(t *testing.T) {
	env := newTestEnv(t)
	for _, repo := range []string{"app", "lib"} {
		require.NoError(t, env.adminClient.CreateRepository(context.Background(), quay.NewRepository{Namespace: testOrg, Repository: repo}))
	}
	resp := env.mustOK(logical.CreateOperation, "roles/Pull-Secrets", map[string]any{
		"namespace_type":      "organization",
		"namespace_name":      testOrg,
		"create_repositories": nil,
		"default_permission":  "read",
		"teams":               `{"readers":"member"}`,
		"repositories":        `{"app":"write","lib":"read"}`,
		"ttl":                 "1h0m0s",
		"max_ttl":             nil,
	})
	require.NotNil(t, resp)
	require.Len(t, resp.Warnings, 2, "the name's case and the missing max_ttl are worth a warning, nothing else")
	assert.Equal(t, `role names are lower case: "Pull-Secrets" is stored as "pull-secrets"`, resp.Warnings[0])
	assert.Contains(t, resp.Warnings[1], "max_ttl is not set")
	read := env.mustOK(logical.ReadOperation, "roles/pull-secrets", nil)
	assert.Equal(t, "robot", read.Data["credential_type"], "robot is the default")
	assert.Equal(t, map[string]string{"app": "write", "lib": "read"}, read.Data["repositories"])
	assert.Equal(t, map[string]string{"readers": "member"}, read.Data["teams"])
	assert.Equal(t, "read", read.Data["default_permission"])
	assert.Equal(t, false, read.Data["create_repositories"])
	assert.EqualValues(t, 3600, read.Data["ttl"])
	assert.EqualValues(t, 0, read.Data["max_ttl"])
}

func TestRoles_UpdateKeepsFieldsNotGiven(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", nil)
	env.mustOK(logical.UpdateOperation, "roles/ci", map[string]any{"ttl": "30m"})
	read := env.mustOK(logical.ReadOperation, "roles/ci", nil)
	assert.EqualValues(t, 1800, read.Data["ttl"])
	assert.Equal(t, []string{"repo:read", "user:read"}, read.Data["scopes"])
	assert.EqualValues(t, 7200, read.Data["max_ttl"])
}

func TestRoles_UnknownFieldsAreWarnedAbout(t *testing.T) {
	env := newTestEnv(t)
	resp := env.mustOK(logical.CreateOperation, "roles/ci", map[string]any{
		"credential_type": "oauth_token", "namespace_name": testOrg, "scopes": "repo:read", "scope": "typo", "max_ttl": "2h",
	})
	require.NotNil(t, resp)
	require.Len(t, resp.Warnings, 1)
	assert.Contains(t, resp.Warnings[0], "scope")
}

func TestRoles_WritingAnOAuthRoleNeedsConfig(t *testing.T) {
	env := newTestEnv(t, withoutConfig())
	resp := env.request(logical.CreateOperation, "roles/ci", map[string]any{
		"credential_type": "oauth_token", "namespace_name": testOrg, "scopes": "repo:read",
	})
	require.True(t, resp.IsError())
	assert.Contains(t, errorMessage(resp), "config")
}

// Quay refuses robot descriptions over 255 characters (it does not
// truncate), and every robot's description starts with the engine's marker
// and the role's name. A role used to accept 200 characters of description,
// and every creds read of it then failed with Quay's 400. Now a role is
// refused at write time unless each robot it creates fits, and the limit the
// refusal names is the one that works.
func TestRoles_EveryAcceptedDescriptionFitsQuaysLimit(t *testing.T) {
	env := newTestEnv(t)
	tooLong := env.request(logical.CreateOperation, "roles/ci", map[string]any{"namespace_name": testOrg, "description": strings.Repeat("d", 200)})
	require.True(t, tooLong.IsError(), "200 characters no longer fit beside the marker")
	msg := errorMessage(tooLong)
	assert.True(t, strings.HasPrefix(msg, "description: must be at most "), msg)
	var room int
	_, err := fmt.Sscanf(strings.TrimPrefix(msg, "description: must be at most "), "%d", &room)
	require.NoError(t, err)
	assert.Greater(t, room, 100)
	assert.False(t, env.roleExists("ci"), "a refused write stores nothing")

	env.mustOK(logical.CreateOperation, "roles/ci", map[string]any{"namespace_name": testOrg, "description": strings.Repeat("d", room)})
	resp := env.issue("ci")
	assert.NotEmpty(t, resp.Data["username"], "the longest accepted description works in Quay")

	static := env.request(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg, "description": strings.Repeat("d", 250)})
	require.True(t, static.IsError())
	assert.Contains(t, errorMessage(static), "description: must be at most")
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg, "description": strings.Repeat("d", maxRobotDescription(testMountID, robotKindStatic, "pull"))})
	assert.True(t, env.robotExists("pull"))

	long := strings.Repeat("r", 240)
	resp = env.request(logical.CreateOperation, "roles/"+long, map[string]any{"namespace_name": testOrg})
	require.True(t, resp.IsError(), "a name that alone overflows the description is refused")
	assert.Contains(t, errorMessage(resp), "name: is too long")
}

func (e *testEnv) roleExists(name string) bool {
	e.t.Helper()
	role, err := getRole(context.Background(), e.storage, name)
	require.NoError(e.t, err)
	return role != nil
}

// Vault names a lease after the request path. creds/MyRole used to issue
// leases under quay/creds/MyRole/ for role "myrole", and
// `vault lease revoke -prefix quay/creds/myrole` (the name `vault list
// quay/roles` shows) reported success and left those credentials alive.
// One canonical name per role: writes store it with a warning, and creds
// refuse any other spelling, so every lease sits under the role's prefix.
func TestRoles_OneCanonicalNameSoLeasePrefixesRevoke(t *testing.T) {
	env := newTestEnv(t)
	resp := env.mustOK(logical.CreateOperation, "roles/MyRole", map[string]any{"namespace_name": testOrg})
	require.NotNil(t, resp)
	assert.Contains(t, resp.Warnings, `role names are lower case: "MyRole" is stored as "myrole"`)
	list := env.mustOK(logical.ListOperation, "roles/", nil)
	assert.Equal(t, []string{"myrole"}, list.Data["keys"])

	env.quay.ResetCalls()
	refused := env.request(logical.ReadOperation, "creds/MyRole", nil)
	require.True(t, refused.IsError(), "a lease under creds/MyRole/ could not be revoked by the role's prefix")
	assert.Equal(t, "name: role names are lower case: read creds/myrole (leases under creds/MyRole could not be revoked by the role's prefix)", errorMessage(refused))
	assert.Zero(t, env.quay.TotalCalls(), "nothing was created in Quay")
	assert.NotNil(t, env.issue("myrole").Secret)

	static := env.mustOK(logical.CreateOperation, "static-roles/Pull", map[string]any{"namespace_name": testOrg})
	require.NotNil(t, static)
	assert.Contains(t, static.Warnings, `static role names are lower case: "Pull" is stored as "pull"`)
	assert.True(t, env.robotExists("pull"))
}

// A typo in namespace_name used to be accepted for robot roles (and read as
// a rights problem for OAuth roles): every creds read then failed with 502
// insufficient_scope, and tidy reported an error for the namespace forever.
// Quay answers calls about a missing organization with 403 before anything
// else, so the engine asks whether the organization exists.
func TestRoles_AMissingOrganizationIsA400SayingSo(t *testing.T) {
	env := newTestEnv(t)
	for _, tc := range []struct {
		path string
		data map[string]any
	}{
		{"roles/robots", map[string]any{"namespace_name": "acme-typo"}},
		{"roles/tokens", map[string]any{"namespace_name": "acme-typo", "credential_type": "oauth_token", "scopes": "repo:read"}},
		{"roles/tokens-app", map[string]any{"namespace_name": "acme-typo", "credential_type": "oauth_token", "scopes": "repo:read", "client_id": "ABCDEFGHIJKLMNOPQRST"}},
		{"static-roles/pull", map[string]any{"namespace_name": "acme-typo"}},
	} {
		resp := env.request(logical.CreateOperation, tc.path, tc.data)
		require.True(t, resp.IsError(), tc.path)
		assert.Equal(t, `namespace_name: Quay has no organization "acme-typo": create it first (the engine does not)`, errorMessage(resp), tc.path)
	}
	assert.Empty(t, env.mustOK(logical.ListOperation, "roles/", nil).Data["keys"])

	// A role stored before this check (or whose organization was deleted
	// since) is no tidy error.
	env.writeRobotRole("ci", nil)
	require.NoError(t, env.b.putRole(context.Background(), env.storage, &roleEntry{Name: "old", CredentialType: credentialTypeRobot,
		NamespaceType: string(quay.NamespaceOrganization), NamespaceName: "gone"}))
	report := env.mustOK(logical.UpdateOperation, "tidy", nil)
	assert.Empty(t, tidyList(report, "errors"))
	assert.Equal(t, []string{"organization/acme", "organization/gone"}, tidyList(report, "namespaces_scanned"))
}

// Every repository and team of a role is a Quay call when a robot is
// issued; unbounded maps made a creds read's cost unbounded.
func TestRoles_GrantsAreBounded(t *testing.T) {
	env := newTestEnv(t)
	repos := map[string]any{}
	for i := range maxRoleRepositories + 1 {
		repos[fmt.Sprintf("repo%d", i)] = "read"
	}
	resp := env.request(logical.CreateOperation, "roles/ci", map[string]any{"namespace_name": testOrg, "repositories": repos})
	require.True(t, resp.IsError())
	assert.Contains(t, errorMessage(resp), fmt.Sprintf("repositories: at most %d per role", maxRoleRepositories))
	teams := map[string]any{}
	for i := range maxRoleTeams + 1 {
		teams[fmt.Sprintf("team%d", i)] = "member"
	}
	resp = env.request(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg, "teams": teams})
	require.True(t, resp.IsError())
	assert.Contains(t, errorMessage(resp), fmt.Sprintf("teams: at most %d per role", maxRoleTeams))

	delete(repos, "repo0")
	env.mustOK(logical.CreateOperation, "roles/ci", map[string]any{"namespace_name": testOrg, "repositories": repos})
}
