package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// Quay's user-robot API (/api/v1/user/robots) always means the caller's own
// namespace. After config was rewritten with another user's token, revoke
// used to delete "<new user>+<name>", get "Could not find robot", report
// success and leave the old user's robot alive; creds created the robot
// under the new user but answered with a username naming the old one. The
// engine now refuses, saying why, whenever the root credential acts as
// someone other than the user whose namespace a robot lives in.
func TestUserRobots_RefusedWhenTheRootCredentialIsAnotherUser(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("mine", map[string]any{"namespace_type": "user", "namespace_name": testAdmin})
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_type": "user", "namespace_name": testAdmin})
	lease := env.issue("mine")
	username := lease.Data["username"].(string)
	short := strings.TrimPrefix(username, testAdmin+"+")
	adminNS := quay.Namespace{Kind: quay.NamespaceUser, Name: testAdmin}
	exists := func(short string) bool {
		_, err := env.adminClient.GetRobot(context.Background(), adminNS, short)
		if quay.IsRobotNotFound(err) {
			return false
		}
		require.NoError(t, err)
		return true
	}
	require.True(t, exists(short))

	require.NoError(t, env.quay.CreateUser("other", testPassword, "other@example.com"))
	otherToken, err := env.quay.IssueToken("other", "user:read user:admin org:admin repo:admin", time.Hour)
	require.NoError(t, err)
	env.writeConfig(map[string]any{"token": otherToken})
	otherRobots := func() []quay.Robot {
		robots, err := env.quayClient(otherToken).ListRobots(context.Background(), quay.Namespace{Kind: quay.NamespaceUser, Name: "other"}, quay.ListRobotsOptions{})
		require.NoError(t, err)
		return robots
	}

	_, err = env.revoke(lease.Secret)
	require.Error(t, err, "revoke must not report success while the robot lives on")
	assert.Contains(t, err.Error(), `lives in the namespace of user "quayadmin", but the root credential acts as "other"`)
	assert.True(t, exists(short), "nothing was deleted")

	env.quay.ResetCalls()
	resp := env.request(logical.ReadOperation, "creds/mine", nil)
	require.True(t, resp.IsError())
	assert.Contains(t, errorMessage(resp), `lives in the namespace of user "quayadmin", but the root credential acts as "other"`)
	assert.Zero(t, env.quay.Calls("createUserRobot"), "no robot is created under the wrong user")
	assert.Empty(t, otherRobots())

	rotate := env.request(logical.UpdateOperation, "rotate-role/pull", nil)
	require.True(t, rotate.IsError())
	assert.Contains(t, errorMessage(rotate), `lives in the namespace of user "quayadmin"`)
	del := env.request(logical.DeleteOperation, "static-roles/pull", nil)
	require.True(t, del.IsError(), "deleting the role would delete the other user's robot of that name, if any")
	assert.True(t, exists("pull"))

	// Back on the owner's credential, everything works again.
	env.writeConfig(map[string]any{"token": env.admin})
	_, err = env.revoke(lease.Secret)
	require.NoError(t, err)
	assert.False(t, exists(short))
	env.mustOK(logical.DeleteOperation, "static-roles/pull", nil)
	assert.False(t, exists("pull"))
}

// With verify_connection=false the engine does not know whose token it
// holds; it asks Quay (only then) before touching a user namespace.
func TestUserRobots_UnknownOwnerIsAskedFor(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("mine", map[string]any{"namespace_type": "user", "namespace_name": testAdmin})
	lease := env.issue("mine")
	require.NoError(t, env.quay.CreateUser("other", testPassword, "other@example.com"))
	otherToken, err := env.quay.IssueToken("other", "user:read user:admin", time.Hour)
	require.NoError(t, err)
	env.writeConfig(map[string]any{"token": otherToken, "verify_connection": false})
	_, err = env.revoke(lease.Secret)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `but the root credential acts as "other"`)
}
