package backend

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// What redhat-cop/vault-plugin-secrets-quay left in a mount's storage and
// Quay, and what its users relied on, keeps working after the binary swap.

// putRedHatCopStaticRole stores a static role the way redhat-cop's plugin
// stored it (plugin/path_role.go: quayRoleEntry, key static-roles/<name>): no
// name, robot name or token.
func (e *testEnv) putRedHatCopStaticRole(name, raw string) {
	e.t.Helper()
	require.NoError(e.t, e.storage.Put(context.Background(), &logical.StorageEntry{Key: staticRoleStoragePrefix + name, Value: []byte(raw)}))
}

// robotPermissions reads back a robot's repository permissions.
func (e *testEnv) robotPermissions(short string) map[string]string {
	e.t.Helper()
	perms, err := e.adminClient.GetRobotPermissions(context.Background(), orgNS, short)
	require.NoError(e.t, err)
	got := map[string]string{}
	for _, p := range perms {
		got[p.Repository.Name] = p.Role
	}
	return got
}

// Its static roles: the robot redhat-cop created (named after the role) is
// adopted with its token, which is not rotated; rotate-role and rewrites
// work; deleting the role keeps the robot (it carries no marker of this
// mount).
func TestDropIn_StaticRoleStoredByRedHatCop(t *testing.T) {
	env := newTestEnv(t)
	env.createRepo("app")
	ctx := context.Background()
	theirs, err := env.adminClient.CreateRobot(ctx, orgNS, "pull", quay.RobotSpec{})
	require.NoError(t, err)
	require.NoError(t, env.adminClient.SetUserPermission(ctx, testOrg, "app", testOrg+"+pull", quay.RoleWrite))
	env.putRedHatCopStaticRole("pull", `{"namespace_type":"organization","namespace_name":"acme","repositories":{"app":"write"}}`)

	read := env.mustOK(logical.ReadOperation, "static-roles/pull", nil)
	assert.Equal(t, "pull", read.Data["robot_name"])
	assert.Equal(t, testOrg+"+pull", read.Data["username"])

	creds := env.mustOK(logical.ReadOperation, "static-creds/pull", nil)
	assert.Equal(t, testOrg+"+pull", creds.Data["username"])
	assertSameSecret(t, theirs.Token, creds.Data["password"], "the token redhat-cop's users hold is kept")
	assert.Equal(t, testOrg, creds.Data["namespaces_name"])
	assert.Contains(t, strings.Join(creds.Warnings, " "), "stored by redhat-cop's plugin")
	env.quay.ResetCalls()
	creds = env.mustOK(logical.ReadOperation, "static-creds/pull", nil)
	assert.Empty(t, creds.Warnings, "adopted once")
	assert.Equal(t, 1, env.quay.TotalCalls())
	assert.Equal(t, false, env.mustOK(logical.ReadOperation, "static-roles/pull", nil).Data["created_by_vault"])

	// vault-config-operator rewrites the role on every reconcile.
	env.mustOK(logical.UpdateOperation, "static-roles/pull", map[string]any{
		"namespace_type": "organization", "namespace_name": testOrg, "create_repositories": nil, "repositories": `{"app":"write"}`,
	})
	rotated := env.mustOK(logical.UpdateOperation, "rotate-role/pull", nil)
	assert.Equal(t, testOrg+"+pull", rotated.Data["username"])
	current := env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"]
	assertDifferentSecret(t, theirs.Token, current, "rotated")
	assertSameSecret(t, env.robotToken("pull"), current, "the rotated token is served")

	resp := env.mustOK(logical.DeleteOperation, "static-roles/pull", nil)
	assert.Contains(t, strings.Join(resp.Warnings, " "), "kept in Quay")
	assert.True(t, env.robotExists("pull"), "a robot without this mount's marker is never deleted")
}

// A static role redhat-cop stored but nobody read: it created robots on the
// first static-creds read, and so does this engine (with its marker).
func TestDropIn_StaticRoleStoredByRedHatCopWithoutARobot(t *testing.T) {
	env := newTestEnv(t)
	env.putRedHatCopStaticRole("push", `{"namespace_type":"organization","namespace_name":"acme","create_repositories":true,"teams":{"builders":"member"}}`)

	creds := env.mustOK(logical.ReadOperation, "static-creds/push", nil)
	assertSameSecret(t, env.robotToken("push"), creds.Data["password"], "the robot created for it")
	kind, role := env.marker("push")
	assert.Equal(t, robotKindStatic, kind)
	assert.Equal(t, "push", role)
	_, teams, _ := env.grantsOf(testOrg + "+push")
	assert.ElementsMatch(t, []string{"builders", creatorTeam}, teams)
	assert.Equal(t, true, env.mustOK(logical.ReadOperation, "static-roles/push", nil).Data["created_by_vault"])
}

// rotate-role answered with the new password in redhat-cop's plugin; here it
// does only when asked to.
func TestDropIn_RotateRoleReturnsThePasswordOnlyWhenAsked(t *testing.T) {
	env := newTestEnv(t)
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg})

	resp := env.mustOK(logical.UpdateOperation, "rotate-role/pull", nil)
	assertNoKey(t, resp.Data, "password")

	resp = env.mustOK(logical.UpdateOperation, "rotate-role/pull", map[string]any{"return_password": true})
	assertSameSecret(t, env.robotToken("pull"), resp.Data["password"], "the new token")
	assert.Equal(t, testOrg+"+pull", resp.Data["username"])
	assert.Equal(t, "organization", resp.Data["namespace_type"])
	assert.Equal(t, testOrg, resp.Data["namespaces_name"])
	assertSameSecret(t, resp.Data["password"], env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"], "the same as static-creds")
	env.assertNoSecretLogged(resp.Data["password"].(string))
}

// default_permission means what it meant in redhat-cop's plugin: the role on
// the organization's existing repositories too (repositories wins where it
// names one), and through a default permission on those created later.
func TestDropIn_DefaultPermissionCoversExistingRepositories(t *testing.T) {
	env := newTestEnv(t)
	for _, repo := range []string{"app", "lib", "tools"} {
		env.createRepo(repo)
	}
	env.writeRobotRole("ci", map[string]any{"repositories": `{"app":"write"}`, "default_permission": "read"})
	env.quay.ResetCalls()
	resp := env.issue("ci")
	calls := env.quay.CallCounts()
	short := strings.TrimPrefix(resp.Data["username"].(string), testOrg+"+")

	assert.Equal(t, map[string]string{"app": "write", "lib": "read", "tools": "read"}, env.robotPermissions(short))
	_, _, def := env.grantsOf(resp.Data["username"].(string))
	assert.Equal(t, "read", def, "and on repositories created later")
	assert.Equal(t, map[string]int{"createOrgRobot": 1, "listRepos": 1, "changeUserPermissions": 3, "createOrganizationPrototypePermission": 1}, calls,
		"the organization's repositories are listed once per issue, and each is one call")

	// Revoking deletes the robot and, with it, everything it held.
	_, err := env.revoke(resp.Secret)
	require.NoError(t, err)
	assert.False(t, env.robotExists(short))
}

// For a static robot, changing default_permission changes the role on the
// existing repositories, and emptying it withdraws them (all but those
// repositories names) with the default permission.
func TestDropIn_StaticDefaultPermissionFollowsTheRole(t *testing.T) {
	env := newTestEnv(t)
	for _, repo := range []string{"app", "lib"} {
		env.createRepo(repo)
	}
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{
		"namespace_name": testOrg, "repositories": `{"app":"write"}`, "default_permission": "read",
	})
	assert.Equal(t, map[string]string{"app": "write", "lib": "read"}, env.robotPermissions("pull"))

	env.mustOK(logical.UpdateOperation, "static-roles/pull", map[string]any{"default_permission": "write"})
	assert.Equal(t, map[string]string{"app": "write", "lib": "write"}, env.robotPermissions("pull"))
	_, _, def := env.grantsOf(testOrg + "+pull")
	assert.Equal(t, "write", def)

	// A repository created since gets the default permission from Quay;
	// dropping app from repositories leaves it the default's role.
	env.createRepo("new")
	env.mustOK(logical.UpdateOperation, "static-roles/pull", map[string]any{"repositories": `{}`})
	assert.Equal(t, map[string]string{"app": "write", "lib": "write", "new": "write"}, env.robotPermissions("pull"))

	env.mustOK(logical.UpdateOperation, "static-roles/pull", map[string]any{"default_permission": "", "repositories": `{"lib":"read"}`})
	assert.Equal(t, map[string]string{"lib": "read"}, env.robotPermissions("pull"), "withdrawn from every repository the role no longer names")
	_, _, def = env.grantsOf(testOrg + "+pull")
	assert.Empty(t, def)
}

// Quay lists a robot's permissions only to a credential with user:admin; a
// root credential without it still grants, heals and withdraws (setting or
// removing every permission instead of only what differs).
func TestDropIn_StaticGrantsWithoutUserAdmin(t *testing.T) {
	env := newTestEnv(t)
	for _, repo := range []string{"app", "lib"} {
		env.createRepo(repo)
	}
	token, err := env.quay.IssueToken(testAdmin, "org:admin repo:admin repo:create repo:read repo:write user:read", time.Hour)
	require.NoError(t, err)
	env.writeConfig(map[string]any{"token": token})
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{
		"namespace_name": testOrg, "repositories": `{"app":"write"}`, "default_permission": "read",
	})
	assert.Equal(t, map[string]string{"app": "write", "lib": "read"}, env.robotPermissions("pull"))

	require.NoError(t, env.adminClient.DeleteUserPermission(context.Background(), testOrg, "lib", testOrg+"+pull"))
	env.mustOK(logical.UpdateOperation, "rotate-role/pull", nil)
	assert.Equal(t, map[string]string{"app": "write", "lib": "read"}, env.robotPermissions("pull"), "restored")

	env.mustOK(logical.UpdateOperation, "static-roles/pull", map[string]any{"default_permission": ""})
	assert.Equal(t, map[string]string{"app": "write"}, env.robotPermissions("pull"), "withdrawn")
	assert.Positive(t, env.quay.Calls("getOrgRobotPermissions"), "Quay was asked, and refused")
}

// An organization with more repositories than Quay lists on a page: each
// gets default_permission, and the list costs one call per 100.
func TestDropIn_DefaultPermissionOverPagesOfRepositories(t *testing.T) {
	env := newTestEnv(t)
	for i := range 150 {
		require.NoError(t, env.quay.CreateRepository(testOrg, fmt.Sprintf("repo%03d", i), false))
	}
	env.writeRobotRole("ci", map[string]any{"default_permission": "read"})
	env.quay.ResetCalls()
	resp := env.issue("ci")
	calls := env.quay.CallCounts()
	assert.Equal(t, 2, calls["listRepos"], "two pages")
	assert.Equal(t, 150, calls["changeUserPermissions"])
	assert.Len(t, env.robotPermissions(strings.TrimPrefix(resp.Data["username"].(string), testOrg+"+")), 150)
}
