package backend

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// Sibling of issue 8, finding 4 ("never touch what carries no marker of this
// mount"): writing a role (dynamic or static) that lists a team that
// already exists in Quay, a team of people the engine did not create,
// rewrites that team's role and description (PUT .../team/<name>) to the
// role's value. teams={"developers": "admin"}, meant for the robots, makes
// every human member of "developers" an organization administrator; and it
// happens at role-write time, before any robot exists. A Vault operator who
// may write roles (but has no rights in Quay) thereby escalates any Quay
// user through the engine's org:admin credential.
func TestReview_RoleWriteRewritesTheRoleOfAnExistingHumanTeam(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	require.NoError(t, env.quay.CreateUser("dev", testPassword, "dev@example.com"))
	devToken, err := env.quay.IssueToken("dev", "org:admin user:read", time.Hour)
	require.NoError(t, err)
	_, err = env.adminClient.UpdateTeam(ctx, testOrg, "developers", quay.TeamRoleMember, "the developers")
	require.NoError(t, err)
	require.NoError(t, env.adminClient.AddTeamMember(ctx, testOrg, "developers", "dev"))
	dev := env.quayClient(devToken)
	_, err = dev.ListApplications(ctx, testOrg)
	require.True(t, quay.IsForbidden(err), "dev is a plain member of the organization: %v", err)

	resp := env.request(logical.CreateOperation, "roles/deployer", map[string]any{"namespace_name": testOrg, "teams": `{"developers": "admin"}`})
	require.True(t, resp.IsError(), "the engine never changes a team it did not create")
	assert.Contains(t, errorMessage(resp), `teams: team "developers" exists in Quay with role "member"`)
	env.writeRobotRole("deployer", map[string]any{"teams": `{"developers": "member"}`})

	_, err = dev.ListApplications(ctx, testOrg)
	assert.True(t, quay.IsForbidden(err), "a role write must not make the members of an existing team organization admins")
}
