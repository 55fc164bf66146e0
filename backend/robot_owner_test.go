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

// A robot has one owner. A federated role refuses a robot that a static role
// or a lease owns (robot_name: "already belongs to", "issued by role ... and
// is deleted when its lease ends"). A static role does not: it adopts the
// robot and rotates its token, cutting off the lease holder or the
// federated role, and the other owner's delete (or the lease's end) then
// deletes the robot the static role serves.
func TestStaticRoles_NeverTakeARobotAnotherOwnerHolds(t *testing.T) {
	t.Run("a federated role's robot", func(t *testing.T) {
		env, _ := newFederationEnv(t)
		env.writeFederatedRole("fed", map[string]any{"repositories": `{"app":"read"}`})
		before := env.robotToken("fed")

		resp, err := env.requestErr(logical.CreateOperation, "static-roles/grab", map[string]any{
			"namespace_name": testOrg, "robot_name": "fed",
		})
		refused := err != nil || (resp != nil && resp.IsError())
		assert.True(t, refused, "static role took over the robot of federated role \"fed\"")
		if err == nil && resp != nil && resp.IsError() {
			assert.Contains(t, resp.Error().Error(), "robot_name")
		}
		assertSameSecret(t, before, env.robotToken("fed"), "the federated robot's token was rotated by another role")
	})
	t.Run("a leased dynamic robot", func(t *testing.T) {
		env := newTestEnv(t)
		env.writeRobotRole("ci", nil)
		lease := env.issue("ci")
		username := lease.Data["username"].(string)
		short := username[len(testOrg)+1:]
		leased := lease.Data["password"].(string)

		resp, err := env.requestErr(logical.CreateOperation, "static-roles/grab", map[string]any{
			"namespace_name": testOrg, "robot_name": short,
		})
		refused := err != nil || (resp != nil && resp.IsError())
		assert.True(t, refused, "static role took over a robot a lease owns")
		assertSameSecret(t, leased, env.robotToken(short), "the lease holder's token was rotated away")
	})
}

// robot_name takes the full <namespace>+<name> form, but only of
// namespace_name: "other+pull" with namespace_name acme would otherwise act
// on acme+pull, a robot the operator did not name (whose users lose their
// token at the adopting rotation). Static and federated roles alike.
func TestRoles_RobotNameOfAnotherNamespaceIsRefused(t *testing.T) {
	for _, path := range []string{"static-roles/x", "roles/x"} {
		t.Run(path, func(t *testing.T) {
			env, _ := newFederationEnv(t)
			require.NoError(t, env.adminClient.CreateOrganization(context.Background(), "other", ""))
			theirs, err := env.adminClient.CreateRobot(context.Background(), orgNS, "pull", quay.RobotSpec{Description: "someone's robot"})
			require.NoError(t, err)
			data := map[string]any{"namespace_name": testOrg, "robot_name": "other+pull"}
			if path == "roles/x" {
				data["credential_type"] = "federated"
			}

			resp, err := env.requestErr(logical.CreateOperation, path, data)
			require.NoError(t, err)
			require.True(t, resp.IsError(), "robot_name other+pull was taken for acme+pull")
			assert.Contains(t, resp.Error().Error(), "robot_name")
			assert.Contains(t, resp.Error().Error(), `namespace "other"`)
			assertSameSecret(t, theirs.Token, env.robotToken("pull"), "acme+pull's token was rotated though the operator named other+pull")
			stored, err := env.requestErr(logical.ReadOperation, path, nil)
			require.NoError(t, err)
			assert.Nil(t, stored, "a refused write stored the role")

			// The robot of namespace_name, in full, is that robot.
			data["robot_name"] = testOrg + "+pull"
			env.mustOK(logical.CreateOperation, path, data)
		})
	}
}

// Two static roles on one robot would rotate its token under each other,
// and deleting either could delete the robot the other serves.
func TestStaticRoles_TwoRolesNeverShareARobot(t *testing.T) {
	env := newTestEnv(t)
	env.writePullRole()
	before := env.robotToken("pull")
	resp, err := env.requestErr(logical.CreateOperation, "static-roles/again", map[string]any{"namespace_name": testOrg, "robot_name": "pull"})
	require.NoError(t, err)
	require.True(t, resp.IsError())
	assert.Contains(t, resp.Error().Error(), `already belongs to static role "pull"`)
	assertSameSecret(t, before, env.robotToken("pull"), "the robot's token was rotated by a second role")
}

// Tidy decides a robot is an orphan from the roles it listed when it
// started. A static role written while tidy works through its list (the
// operator retrying a write whose answer was lost adopts the robot that
// write created) must keep its robot: tidy looks again, under the robot's
// lock, before each delete. (Tidy looks only at robots named like the
// engine's dynamic ones, so the role's robot_name has that form here.)
func TestTidy_NeverDeletesTheRobotOfAStaticRoleWrittenMeanwhile(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("ci", nil) // tidy looks in the namespaces of roles
	mark := env.ownMark()
	first, adopted := robotNamePrefix+"first", robotNamePrefix+"pull"
	// Two robots failed static-role writes could have left, this mount's
	// marker on each, no role owning them.
	for _, short := range []string{first, adopted} {
		_, err := env.adminClient.CreateRobot(context.Background(), orgNS, short, quay.RobotSpec{Description: robotDescription(mark, robotKindStatic, "pull", "")})
		require.NoError(t, err)
	}
	// Tidy's first delete is slow; the operator writes the static role.
	env.quay.Faults().Add(emulator.Fault{Route: "deleteOrgRobot", Count: 1, Latency: 400 * time.Millisecond})
	env.quay.ResetCalls()
	done := make(chan *logical.Response, 1)
	go func() { done <- env.mustOK(logical.UpdateOperation, "tidy", nil) }()
	require.Eventually(t, func() bool { return env.quay.Calls("deleteOrgRobot") == 1 }, 5*time.Second, 5*time.Millisecond)
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg, "robot_name": adopted})
	report := <-done

	assert.False(t, env.robotExists(first), "tidy deletes the orphan")
	require.True(t, env.robotExists(adopted), "tidy deleted the robot of a static role stored meanwhile")
	role, err := getStaticRole(context.Background(), env.storage, "pull")
	require.NoError(t, err)
	assertSameSecret(t, env.robotToken(adopted), role.Password, "the stored token is the robot's")
	assert.NotContains(t, report.Data["orphans_deleted"], testOrg+"+"+adopted)
}

// A refused request changes nothing: a static role write whose robot
// another role or a lease owns is refused before it prepares its grants,
// which may create teams in Quay (as the federated write does).
func TestStaticRoles_ARefusedWriteCreatesNoTeam(t *testing.T) {
	teams := func(env *testEnv) map[string]bool {
		org, err := env.adminClient.GetOrganization(context.Background(), testOrg)
		require.NoError(t, err)
		names := map[string]bool{}
		for name := range org.Teams {
			names[name] = true
		}
		return names
	}
	t.Run("robot of another static role", func(t *testing.T) {
		env := newTestEnv(t)
		env.writePullRole()
		before := teams(env)
		resp, err := env.requestErr(logical.CreateOperation, "static-roles/again", map[string]any{
			"namespace_name": testOrg, "robot_name": "pull", "teams": `{"deployers":"member"}`, "create_repositories": true,
		})
		require.NoError(t, err)
		require.True(t, resp.IsError(), "second static role on one robot was not refused")
		assert.Contains(t, resp.Error().Error(), "already belongs to")
		assert.Equal(t, before, teams(env), "the refused write changed the organization's teams (deployers, or the creator team)")
	})
	t.Run("robot a lease owns", func(t *testing.T) {
		env := newTestEnv(t)
		env.writeRobotRole("ci", nil)
		lease := env.issue("ci")
		short := lease.Data["username"].(string)[len(testOrg)+1:]
		resp, err := env.requestErr(logical.CreateOperation, "static-roles/grab", map[string]any{
			"namespace_name": testOrg, "robot_name": short, "teams": `{"deployers":"member"}`,
		})
		require.NoError(t, err)
		require.True(t, resp.IsError(), "static role took a leased robot")
		assert.False(t, teams(env)["deployers"], "the refused write created team \"deployers\" in Quay")
	})
}
