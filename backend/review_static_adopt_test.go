package backend

import (
	"context"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
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
