package backend

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// robotWorks asks Quay whether the robot token is current.
func (e *testEnv) robotToken(short string) string {
	e.t.Helper()
	r, err := e.adminClient.GetRobot(context.Background(), orgNS, short)
	require.NoError(e.t, err)
	return r.Token
}

func TestStaticRoles_CreatesTheRobotAndServesItsToken(t *testing.T) {
	env := newTestEnv(t)
	env.createRepo("app")
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{
		"namespace_name": testOrg, "repositories": `{"app":"read"}`, "rotation_period": "24h",
	})

	read := env.mustOK(logical.ReadOperation, "static-roles/pull", nil)
	assert.Equal(t, "pull", read.Data["robot_name"])
	assert.Equal(t, testOrg+"+pull", read.Data["username"])
	assert.Equal(t, true, read.Data["created_by_vault"])
	assertNoKey(t, read.Data, "password")

	env.quay.ResetCalls()
	creds := env.mustOK(logical.ReadOperation, "static-creds/pull", nil)
	assert.Equal(t, 1, env.quay.TotalCalls(), "static-creds checks the robot with one call")
	assert.Equal(t, 1, env.quay.Calls("getOrgRobot"))
	assert.Empty(t, creds.Warnings, "nothing drifted")
	assert.Equal(t, testOrg+"+pull", creds.Data["username"])
	assert.Equal(t, testOrg, creds.Data["namespace_name"])
	assert.Equal(t, testOrg, creds.Data["namespaces_name"], "redhat-cop's spelling too")
	assertSameSecret(t, env.robotToken("pull"), creds.Data["password"], "static-creds serves the robot's token")
	assert.NotEmpty(t, creds.Data["docker_config_json"])
	assert.EqualValues(t, 86400, creds.Data["rotation_period"])
	ttl := creds.Data["ttl"].(int64)
	assert.InDelta(t, 86400, ttl, 5, "seconds to the next rotation")
	_, err := time.Parse(time.RFC3339, creds.Data["last_vault_rotation"].(string))
	require.NoError(t, err)
}

// grantsOf reads back from Quay what a robot holds: its repositories, its
// teams and the role of its default permission ("" for none).
func (e *testEnv) grantsOf(username string) (repos []string, teams []string, defaultRole string) {
	e.t.Helper()
	ctx := context.Background()
	robots, err := e.adminClient.ListRobots(ctx, orgNS, quay.ListRobotsOptions{Permissions: true})
	require.NoError(e.t, err)
	for _, r := range robots {
		if r.Name != username {
			continue
		}
		repos = append(repos, r.Repositories...)
		for _, t := range r.Teams {
			teams = append(teams, t.Name)
		}
	}
	protos, err := e.adminClient.ListPrototypes(ctx, testOrg)
	require.NoError(e.t, err)
	for _, p := range protos {
		if p.Delegate.Name == username {
			defaultRole = p.Role
		}
	}
	return repos, teams, defaultRole
}

// A static robot lives on, so updating its role must take away what the role
// no longer grants, not only add what it newly grants.
func TestStaticRoles_UpdateWithdrawsDroppedGrants(t *testing.T) {
	env := newTestEnv(t)
	env.createRepo("app")
	env.createRepo("lib")
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{
		"namespace_name": testOrg, "repositories": `{"app":"read","lib":"write"}`,
		"teams": `{"builders":"member"}`, "default_permission": "read", "create_repositories": true,
	})
	username := testOrg + "+pull"
	repos, teams, def := env.grantsOf(username)
	assert.ElementsMatch(t, []string{"app", "lib"}, repos)
	assert.ElementsMatch(t, []string{"builders", creatorTeam}, teams)
	assert.Equal(t, "read", def)
	token := env.robotToken("pull")

	env.mustOK(logical.UpdateOperation, "static-roles/pull", map[string]any{
		"repositories": `{"app":"write"}`, "teams": `{}`, "default_permission": "", "create_repositories": false,
	})
	repos, teams, def = env.grantsOf(username)
	assert.Equal(t, []string{"app"}, repos, "lib is no longer granted")
	assert.Empty(t, teams, "left builders and the creator team")
	assert.Empty(t, def, "the default permission is gone")
	assertSameSecret(t, token, env.robotToken("pull"), "updating grants does not rotate")

	// Something already removed by hand in Quay is not an error.
	env.mustOK(logical.UpdateOperation, "static-roles/pull", map[string]any{"repositories": `{"app":"read","lib":"read"}`})
	require.NoError(t, env.adminClient.DeleteUserPermission(context.Background(), testOrg, "lib", username))
	env.mustOK(logical.UpdateOperation, "static-roles/pull", map[string]any{"repositories": `{"app":"read"}`})
	repos, _, _ = env.grantsOf(username)
	assert.Equal(t, []string{"app"}, repos)

	// A transient failure fails the write and leaves the stored role as it
	// was, so writing again finishes the job.
	env.mustOK(logical.UpdateOperation, "static-roles/pull", map[string]any{"repositories": `{"app":"read","lib":"read"}`})
	env.quay.Faults().FailNext("deleteUserPermissions", 10, 503)
	_, err := env.requestErr(logical.UpdateOperation, "static-roles/pull", map[string]any{"repositories": `{"app":"read"}`})
	require.Error(t, err)
	read := env.mustOK(logical.ReadOperation, "static-roles/pull", nil)
	assert.Contains(t, read.Data["repositories"], "lib", "the role still lists what Quay still grants")
	env.quay.Faults().Reset()
	env.mustOK(logical.UpdateOperation, "static-roles/pull", map[string]any{"repositories": `{"app":"read"}`})
	repos, _, _ = env.grantsOf(username)
	assert.Equal(t, []string{"app"}, repos)
}

func TestStaticRoles_AdoptsAnExistingRobotAndRotatesIt(t *testing.T) {
	env := newTestEnv(t)
	before, err := env.adminClient.CreateRobot(context.Background(), orgNS, "legacy", quay.RobotSpec{})
	require.NoError(t, err)

	env.mustOK(logical.CreateOperation, "static-roles/legacy", map[string]any{"namespace_name": testOrg})
	creds := env.mustOK(logical.ReadOperation, "static-creds/legacy", nil)
	assertDifferentSecret(t, before.Token, creds.Data["password"], "adopting rotates unless skip_import_rotation")
	assertSameSecret(t, env.robotToken("legacy"), creds.Data["password"], "static-creds serves the robot's token")

	// Deleting the role keeps a robot Vault did not create.
	resp := env.mustOK(logical.DeleteOperation, "static-roles/legacy", nil)
	require.NotNil(t, resp)
	assert.NotEmpty(t, resp.Warnings)
	assert.True(t, env.robotExists("legacy"))
}

func TestStaticRoles_SkipImportRotationKeepsTheToken(t *testing.T) {
	env := newTestEnv(t)
	before, err := env.adminClient.CreateRobot(context.Background(), orgNS, "keep", quay.RobotSpec{})
	require.NoError(t, err)
	env.mustOK(logical.CreateOperation, "static-roles/keep", map[string]any{"namespace_name": testOrg, "skip_import_rotation": true})
	creds := env.mustOK(logical.ReadOperation, "static-creds/keep", nil)
	assertSameSecret(t, before.Token, creds.Data["password"], "skip_import_rotation keeps the token")
}

func TestStaticRoles_RotateRoleReplacesTheToken(t *testing.T) {
	env := newTestEnv(t)
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg})
	old := env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"].(string)

	resp := env.mustOK(logical.UpdateOperation, "rotate-role/pull", nil)
	assertNoKey(t, resp.Data, "password")

	current := env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"].(string)
	assertDifferentSecret(t, old, current, "rotate-role rotated")
	assertSameSecret(t, env.robotToken("pull"), current, "the rotated token is served")
	env.assertNoSecretLogged(old, current)

	// Deleting a role whose robot Vault created deletes the robot.
	env.mustOK(logical.DeleteOperation, "static-roles/pull", nil)
	assert.False(t, env.robotExists("pull"))
}

func TestStaticRoles_ScheduledRotation(t *testing.T) {
	env := newTestEnv(t)
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg, "rotation_period": "1h"})
	old := env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"].(string)

	env.periodic() // not due yet
	assertSameSecret(t, old, env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"], "unchanged")

	env.advance(61 * time.Minute)
	env.periodic()
	creds := env.mustOK(logical.ReadOperation, "static-creds/pull", nil)
	assertDifferentSecret(t, old, creds.Data["password"], "rotated")
	assertSameSecret(t, env.robotToken("pull"), creds.Data["password"], "static-creds serves the robot's token")
	assert.InDelta(t, 3600, creds.Data["ttl"].(int64), 5)
}

// A rotation that Quay performed but whose result was never stored (the
// engine died in between) is recovered by reading the robot's token back.
func TestStaticRoles_InterruptedRotationRollsForward(t *testing.T) {
	env := newTestEnv(t)
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg})
	_, err := framework.PutWAL(context.Background(), env.storage, walKindStaticRotation, &staticRotationWAL{Role: "pull", InstanceID: "gone"})
	require.NoError(t, err)
	_, err = env.adminClient.RegenerateRobotToken(context.Background(), orgNS, "pull")
	require.NoError(t, err)

	env.rollback()
	assertSameSecret(t, env.robotToken("pull"), env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"], "static-creds serves the robot's token")
}

func TestStaticRoles_BadInput(t *testing.T) {
	env := newTestEnv(t)
	cases := []struct {
		name  string
		data  map[string]any
		field string
	}{
		{"missing namespace", map[string]any{}, "namespace_name:"},
		{"short rotation", map[string]any{"namespace_name": testOrg, "rotation_period": "30s"}, "rotation_period:"},
		{"bad robot name", map[string]any{"namespace_name": testOrg, "robot_name": "Bad Name"}, "robot_name:"},
		{"bad team role", map[string]any{"namespace_name": testOrg, "teams": `{"t1":"owner"}`}, "teams:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := env.request(logical.CreateOperation, "static-roles/s1", tc.data)
			require.True(t, resp.IsError())
			assert.Contains(t, errorMessage(resp), tc.field)
		})
	}
	env.mustOK(logical.CreateOperation, "static-roles/s1", map[string]any{"namespace_name": testOrg})
	resp := env.request(logical.UpdateOperation, "static-roles/s1", map[string]any{"robot_name": "other"})
	require.True(t, resp.IsError())
	assert.Contains(t, errorMessage(resp), "robot_name:")
}

// Quay rotated the token but its answer was lost (a timeout, a dropped
// connection): the old token is dead. rotate-role reads the robot back at
// once, so Vault serves the token Quay holds, not a dead one until the
// rollback five minutes later.
func TestStaticRoles_RotationWhoseAnswerWasLostReadsTheTokenBack(t *testing.T) {
	env := newTestEnv(t)
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg})
	old := env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"].(string)
	env.quay.Faults().Add(emulator.Fault{Route: "regenerateOrgRobotToken", Count: 1, AfterQuay: true, Drop: true})

	env.mustOK(logical.UpdateOperation, "rotate-role/pull", nil)
	assertDifferentSecret(t, old, env.robotToken("pull"), "Quay rotated")
	env.quay.ResetCalls()
	creds := env.mustOK(logical.ReadOperation, "static-creds/pull", nil)
	assertSameSecret(t, env.robotToken("pull"), creds.Data["password"], "Vault stored the token Quay holds")
	assert.Empty(t, creds.Warnings, "no drift: the engine rotated it")
	assert.Zero(t, env.walCount())
	env.assertNoSecretLogged(old, creds.Data["password"].(string))

	// A rotation Quay refused changes nothing, and a lost answer to a
	// rotation Quay never made is still an error.
	env.quay.Faults().Add(emulator.Fault{Route: "regenerateOrgRobotToken", Count: 1, Drop: true})
	_, err := env.requestErr(logical.UpdateOperation, "rotate-role/pull", nil)
	require.Error(t, err)
	assertSameSecret(t, env.robotToken("pull"), env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"], "unchanged")
}

// Vault's rollback manager ticks once a minute from a fixed phase; the next
// rotation is counted from when the last one finished, just after a tick.
// A rotation due a moment after a tick runs at that tick, not one tick
// later: rotation_period=1m rotates every minute, not every other.
func TestStaticRoles_RotationDueAMomentAfterATickRunsAtIt(t *testing.T) {
	env := newTestEnv(t)
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg, "rotation_period": "1m"})
	password := func() string {
		return env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"].(string)
	}
	last := password()
	for tick := 1; tick <= 3; tick++ {
		env.advance(time.Minute - 20*time.Millisecond) // the role was stored a moment after the tick
		env.periodic()
		current := password()
		assertDifferentSecret(t, last, current, fmt.Sprintf("rotated at tick %d", tick))
		last = current
	}
	env.advance(50 * time.Second)
	env.periodic()
	assertSameSecret(t, last, password(), "not rotated well before it is due")
}
