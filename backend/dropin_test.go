package backend

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What redhat-cop/vault-plugin-secrets-quay left in a mount's storage and
// Quay, and what its users relied on, keeps working after the binary swap.

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
