package backend

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// "A refused request changes nothing; a failure halfway leaves nothing
// behind in Quay and loses nothing in Vault." A static role write that
// adopts an existing robot (someone's pull robot, in use) regenerates its
// token FIRST, then grants the role's repositories and teams, then stores
// the role. When a grant fails (here Quay refuses a repository permission),
// the write answers an error and stores nothing, but the robot's token has
// already been replaced in Quay: every consumer of the robot is locked out,
// and the new token is known to nobody (the rotation's write-ahead entry is
// rolled "forward" into a role that does not exist, i.e. dropped).
func TestReview_FailedStaticRoleWriteRotatesTheAdoptedRobotAndLosesItsToken(t *testing.T) {
	env := newTestEnv(t)
	env.createRepo("app")
	before, err := env.adminClient.CreateRobot(context.Background(), orgNS, "pull", quay.RobotSpec{Description: "the team's pull robot"})
	require.NoError(t, err)

	env.quay.Faults().Add(emulator.Fault{Route: "changeUserPermissions", Count: 1, Status: 403})
	resp := env.request(logical.CreateOperation, "static-roles/pull", map[string]any{
		"namespace_name": testOrg, "repositories": `{"app":"read"}`,
	})
	require.True(t, resp.IsError(), "the write failed")
	require.Nil(t, env.request(logical.ReadOperation, "static-roles/pull", nil), "and stored no role")
	env.rollback()

	assertSameSecret(t, before.Token, env.robotToken("pull"), "a failed static role write must not have replaced the adopted robot's token")
}

// Sibling of issue 8, finding 10: creds, revoke, rotate, delete and rollback
// now refuse a user-namespace robot when the root credential acts as
// another user, asking Quay when config was saved unverified. A static role
// WRITE does not: with verify_connection=false it never asks, creates the
// robot through /api/v1/user/robots, which lands in the credential's own
// namespace ("other+pull"), and stores a role serving that robot's token
// under the username "quayadmin+pull". The served credential does not work,
// and the robot Vault created can be neither rotated nor deleted through
// Vault (both now refuse): it is stranded.
func TestReview_StaticRoleWriteCreatesAUserRobotInTheWrongUsersNamespace(t *testing.T) {
	env := newTestEnv(t)
	require.NoError(t, env.quay.CreateUser("other", testPassword, "other@example.com"))
	otherToken, err := env.quay.IssueToken("other", "user:read user:admin org:admin repo:admin", time.Hour)
	require.NoError(t, err)
	env.writeConfig(map[string]any{"token": otherToken, "verify_connection": false})

	resp := env.request(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_type": "user", "namespace_name": testAdmin})

	otherRobots, err := env.quayClient(otherToken).ListRobots(context.Background(), quay.Namespace{Kind: quay.NamespaceUser, Name: "other"}, quay.ListRobotsOptions{})
	require.NoError(t, err)
	var names []string
	for _, r := range otherRobots {
		names = append(names, r.Name)
	}
	assert.Empty(t, names, "no robot may be created in another user's namespace than the role names")
	assert.True(t, resp.IsError(), "the write must be refused like creds: the root credential acts as \"other\", not %q", testAdmin)
}

// Sibling of issue 8, finding 4 ("never delete what carries no marker of
// this mount"): the rollback now checks the robot's marker, but deleting a
// static role deletes its robot on the strength of a flag stored when the
// role was created (created_by_vault), without looking at the robot Quay
// holds now. If that robot was deleted and someone made their own robot of
// the same name since, deleting the static role deletes theirs.
func TestReview_StaticRoleDeleteDeletesARobotItDidNotCreate(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg})
	require.NoError(t, env.adminClient.DeleteRobot(ctx, orgNS, "pull"))
	_, err := env.adminClient.CreateRobot(ctx, orgNS, "pull", quay.RobotSpec{Description: "the release team's own pull robot"})
	require.NoError(t, err)

	env.request(logical.DeleteOperation, "static-roles/pull", nil)

	assert.True(t, env.robotExists("pull"), "a robot without this mount's marker must never be deleted")
}
