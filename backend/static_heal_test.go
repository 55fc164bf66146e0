package backend

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// writePullRole writes the static role the healing tests use: a robot with a
// repository, a team, a default permission and the creator team.
func (e *testEnv) writePullRole() {
	e.t.Helper()
	e.createRepo("app")
	e.createRepo("lib")
	e.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{
		"namespace_name": testOrg, "repositories": `{"app":"write"}`, "teams": `{"builders":"member"}`,
		"default_permission": "read", "create_repositories": true,
	})
}

// assertPullGrants asserts that acme+pull holds what writePullRole grants.
func (e *testEnv) assertPullGrants(t *testing.T) {
	t.Helper()
	perms, err := e.adminClient.GetRobotPermissions(context.Background(), orgNS, "pull")
	require.NoError(t, err)
	got := map[string]string{}
	for _, p := range perms {
		got[p.Repository.Name] = p.Role
	}
	assert.Equal(t, map[string]string{"app": "write", "lib": "read"}, got, "repositories, and default_permission on the others")
	_, teams, def := e.grantsOf(testOrg + "+pull")
	assert.ElementsMatch(t, []string{"builders", creatorTeam}, teams)
	assert.Equal(t, "read", def, "the default permission for new repositories")
}

// marker reads back whose robot Quay holds under a name: the kind and role of
// this mount's marker ("" when it carries none).
func (e *testEnv) marker(short string) (kind, role string) {
	e.t.Helper()
	r, err := e.adminClient.GetRobot(context.Background(), orgNS, short)
	require.NoError(e.t, err)
	if e.b.ownerOf(e.ownMark().cluster, r.Description, true) != ownerThisCluster {
		return "", ""
	}
	kind, role, _ = describedRole(r.Description)
	return kind, role
}

// A static robot deleted by hand works again after one static-creds read:
// created again with this mount's marker and its role's grants, and the
// read says so (and so does the log).
func TestStaticHeal_RobotDeletedByHandIsCreatedAgainOnRead(t *testing.T) {
	env := newTestEnv(t)
	env.writePullRole()
	old := env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"].(string)

	require.NoError(t, env.adminClient.DeleteRobot(context.Background(), orgNS, "pull"))
	env.quay.ResetCalls()
	creds := env.mustOK(logical.ReadOperation, "static-creds/pull", nil)
	calls := env.quay.CallCounts()

	password := creds.Data["password"].(string)
	assertDifferentSecret(t, old, password, "a new robot has a new token")
	assertSameSecret(t, env.robotToken("pull"), password, "the read serves the new robot's token")
	assert.Equal(t, testOrg+"+pull", creds.Data["username"])
	require.NotEmpty(t, creds.Warnings)
	assert.Contains(t, creds.Warnings[0], "robot acme+pull was missing in Quay")
	kind, role := env.marker("pull")
	assert.Equal(t, robotKindStatic, kind, "created again with this mount's marker")
	assert.Equal(t, "pull", role)
	env.assertPullGrants(t)
	assert.Zero(t, env.walCount(), "the write-ahead entry is gone once the role is stored")
	assert.Equal(t, 2, calls["getOrgRobot"], "looked up under the read lock, then again under the write lock")
	assert.Equal(t, 1, calls["createOrgRobot"])
	t.Logf("Quay calls of the read that healed: %v", calls)
	assert.Contains(t, env.logs.String(), "static robot drifted")
	env.assertNoSecretLogged(old, password)
	for _, w := range creds.Warnings {
		assertNoSecretIn(t, w, "a warning", old, password)
	}

	// Healed: the next read is one call again, with no warning.
	env.quay.ResetCalls()
	again := env.mustOK(logical.ReadOperation, "static-creds/pull", nil)
	assert.Equal(t, 1, env.quay.TotalCalls())
	assert.Empty(t, again.Warnings)
	assertSameSecret(t, password, again.Data["password"], "stored")

	// The role owns the robot it created again: deleting the role deletes it.
	env.mustOK(logical.DeleteOperation, "static-roles/pull", nil)
	assert.False(t, env.robotExists("pull"))
}

// An adopted robot (created outside Vault) deleted by hand is created again
// too: the role now owns a robot the engine created.
func TestStaticHeal_AdoptedRobotDeletedByHand(t *testing.T) {
	env := newTestEnv(t)
	_, err := env.adminClient.CreateRobot(context.Background(), orgNS, "legacy", quay.RobotSpec{})
	require.NoError(t, err)
	env.mustOK(logical.CreateOperation, "static-roles/legacy", map[string]any{"namespace_name": testOrg})
	assert.Equal(t, false, env.mustOK(logical.ReadOperation, "static-roles/legacy", nil).Data["created_by_vault"])

	require.NoError(t, env.adminClient.DeleteRobot(context.Background(), orgNS, "legacy"))
	creds := env.mustOK(logical.ReadOperation, "static-creds/legacy", nil)
	assertSameSecret(t, env.robotToken("legacy"), creds.Data["password"], "the new robot's token")
	assert.Equal(t, true, env.mustOK(logical.ReadOperation, "static-roles/legacy", nil).Data["created_by_vault"])
	kind, _ := env.marker("legacy")
	assert.Equal(t, robotKindStatic, kind)
}

// A token regenerated in Quay's UI made the stored one dead: the read takes
// the robot's current token over and re-applies its grants.
func TestStaticHeal_TokenRegeneratedOutsideVaultIsTakenOver(t *testing.T) {
	env := newTestEnv(t)
	env.writePullRole()
	old := env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"].(string)
	regenerated, err := env.adminClient.RegenerateRobotToken(context.Background(), orgNS, "pull")
	require.NoError(t, err)
	require.NoError(t, env.adminClient.DeleteUserPermission(context.Background(), testOrg, "lib", testOrg+"+pull"))

	creds := env.mustOK(logical.ReadOperation, "static-creds/pull", nil)
	assertSameSecret(t, regenerated.Token, creds.Data["password"], "Quay's current token")
	warnings := strings.Join(creds.Warnings, "\n")
	assert.Contains(t, warnings, "was changed outside Vault")
	assert.Contains(t, warnings, "read on acme/lib", "what the robot had lost is named")
	env.assertPullGrants(t)
	env.assertNoSecretLogged(old, regenerated.Token)
	assertNoSecretIn(t, warnings, "warnings", old, regenerated.Token)
}

// Someone deleted the role's robot and made their own under its name: the
// engine neither serves, changes nor deletes it, and says so with a 409.
func TestStaticHeal_AReplacedRobotIsRefusedAndLeftAlone(t *testing.T) {
	env := newTestEnv(t)
	env.writePullRole()
	stored := env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"]
	require.NoError(t, env.adminClient.DeleteRobot(context.Background(), orgNS, "pull"))
	theirs, err := env.adminClient.CreateRobot(context.Background(), orgNS, "pull", quay.RobotSpec{Description: "ours, not Vault's"})
	require.NoError(t, err)

	for _, op := range []struct {
		op   logical.Operation
		path string
	}{{logical.ReadOperation, "static-creds/pull"}, {logical.UpdateOperation, "rotate-role/pull"}, {logical.UpdateOperation, "static-roles/pull"}} {
		_, err := env.requestErr(op.op, op.path, nil)
		require.Error(t, err, op.path)
		var coded logical.HTTPCodedError
		require.ErrorAs(t, err, &coded)
		assert.Equal(t, http.StatusConflict, coded.Code(), op.path)
		assert.Contains(t, err.Error(), "someone replaced it", op.path)
	}
	assertSameSecret(t, theirs.Token, env.robotToken("pull"), "their robot's token is unchanged")
	perms, err := env.adminClient.GetRobotPermissions(context.Background(), orgNS, "pull")
	require.NoError(t, err)
	assert.Empty(t, perms, "nothing was granted to their robot")
	role, err := getStaticRole(context.Background(), env.storage, "pull")
	require.NoError(t, err)
	assert.True(t, stored == role.Password, "the role is unchanged")

	// Deleting the role keeps their robot.
	resp := env.mustOK(logical.DeleteOperation, "static-roles/pull", nil)
	assert.Contains(t, strings.Join(resp.Warnings, " "), "no longer carries this mount's marker")
	assert.True(t, env.robotExists("pull"))
}

// An adopted robot carries no marker: its creation time tells it from a
// robot made under its name since.
func TestStaticHeal_AReplacedAdoptedRobotIsRefused(t *testing.T) {
	env := newTestEnv(t)
	_, err := env.adminClient.CreateRobot(context.Background(), orgNS, "legacy", quay.RobotSpec{})
	require.NoError(t, err)
	env.mustOK(logical.CreateOperation, "static-roles/legacy", map[string]any{"namespace_name": testOrg})

	// Its token regenerated by hand: the same robot, taken over.
	regenerated, err := env.adminClient.RegenerateRobotToken(context.Background(), orgNS, "legacy")
	require.NoError(t, err)
	creds := env.mustOK(logical.ReadOperation, "static-creds/legacy", nil)
	assertSameSecret(t, regenerated.Token, creds.Data["password"], "the adopted robot's new token")

	// Replaced by another robot a minute later: refused.
	require.NoError(t, env.adminClient.DeleteRobot(context.Background(), orgNS, "legacy"))
	env.advance(time.Minute)
	_, err = env.adminClient.CreateRobot(context.Background(), orgNS, "legacy", quay.RobotSpec{})
	require.NoError(t, err)
	_, err = env.requestErr(logical.ReadOperation, "static-creds/legacy", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "created at another time")
}

// Quay's API down: the stored token is served (pull secrets keep working),
// with a warning.
func TestStaticHeal_QuayDownServesTheStoredToken(t *testing.T) {
	env := newTestEnv(t)
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg})
	stored := env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"]

	env.quay.Faults().FailNext("getOrgRobot", 100, 503)
	creds := env.mustOK(logical.ReadOperation, "static-creds/pull", nil)
	env.quay.Faults().Reset()
	assertSameSecret(t, stored, creds.Data["password"], "the stored token")
	require.Len(t, creds.Warnings, 1)
	assert.Contains(t, creds.Warnings[0], "could not be checked in Quay")
}

// A heal whose grants fail still serves the working token, stores nothing,
// and the next read finishes the job.
func TestStaticHeal_FailedGrantIsRetriedByTheNextRead(t *testing.T) {
	env := newTestEnv(t)
	env.writePullRole()
	require.NoError(t, env.adminClient.DeleteRobot(context.Background(), orgNS, "pull"))

	env.quay.Faults().FailNext("updateOrganizationTeamMember", 100, 503)
	creds := env.mustOK(logical.ReadOperation, "static-creds/pull", nil)
	env.quay.Faults().Reset()
	assertSameSecret(t, env.robotToken("pull"), creds.Data["password"], "the new robot works")
	assert.Contains(t, strings.Join(creds.Warnings, " "), "grants could not be given")

	creds = env.mustOK(logical.ReadOperation, "static-creds/pull", nil)
	assert.Contains(t, strings.Join(creds.Warnings, " "), "was changed outside Vault", "taken over by its marker")
	env.assertPullGrants(t)
	creds = env.mustOK(logical.ReadOperation, "static-creds/pull", nil)
	assert.Empty(t, creds.Warnings, "healed")
	env.rollback()
	assert.True(t, env.robotExists("pull"), "the rollback keeps a robot its role owns")
}

// Grants taken away by hand (a permission, a team membership, the default
// permission) come back with the next rotation, which says what it restored;
// a robot deleted by hand no longer makes rotation fail.
func TestStaticHeal_RotationRestoresGrantsAndRecreatesTheRobot(t *testing.T) {
	env := newTestEnv(t)
	env.writePullRole()
	ctx := context.Background()
	username := testOrg + "+pull"
	require.NoError(t, env.adminClient.DeleteUserPermission(ctx, testOrg, "app", username))
	require.NoError(t, env.adminClient.RemoveTeamMember(ctx, testOrg, "builders", username))
	protos, err := env.adminClient.ListPrototypes(ctx, testOrg)
	require.NoError(t, err)
	for _, p := range protos {
		require.NoError(t, env.adminClient.DeletePrototype(ctx, testOrg, p.ID))
	}

	resp := env.mustOK(logical.UpdateOperation, "rotate-role/pull", nil)
	warnings := strings.Join(resp.Warnings, "\n")
	for _, lost := range []string{"write on acme/app", "membership of team builders", "default permission read"} {
		assert.Contains(t, warnings, lost)
	}
	env.assertPullGrants(t)
	assert.Contains(t, env.logs.String(), "static robot had lost grants")

	require.NoError(t, env.adminClient.DeleteRobot(ctx, orgNS, "pull"))
	env.quay.ResetCalls()
	resp = env.mustOK(logical.UpdateOperation, "rotate-role/pull", nil)
	assert.Contains(t, strings.Join(resp.Warnings, " "), "was missing in Quay")
	assert.Zero(t, env.quay.Calls("regenerateOrgRobotToken"), "a robot created again has a new token already")
	env.assertPullGrants(t)
	assertSameSecret(t, env.robotToken("pull"), env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"], "served")

	// The schedule heals too.
	env.mustOK(logical.UpdateOperation, "static-roles/pull", map[string]any{"rotation_period": "1h"})
	require.NoError(t, env.adminClient.DeleteRobot(ctx, orgNS, "pull"))
	env.advance(61 * time.Minute)
	env.periodic()
	assert.True(t, env.robotExists("pull"))
	env.assertPullGrants(t)
}

// Writing a role whose robot was deleted by hand creates it again instead
// of failing.
func TestStaticHeal_RoleWriteRecreatesADeletedRobot(t *testing.T) {
	env := newTestEnv(t)
	env.writePullRole()
	require.NoError(t, env.adminClient.DeleteRobot(context.Background(), orgNS, "pull"))
	resp := env.mustOK(logical.UpdateOperation, "static-roles/pull", map[string]any{"repositories": `{"app":"write"}`})
	require.NotNil(t, resp)
	assert.Contains(t, strings.Join(resp.Warnings, " "), "was missing in Quay")
	env.assertPullGrants(t)
	creds := env.mustOK(logical.ReadOperation, "static-creds/pull", nil)
	assert.Empty(t, creds.Warnings)
	assertSameSecret(t, env.robotToken("pull"), creds.Data["password"], "served")
	assert.Zero(t, env.walCount())
}

// BenchmarkStaticCreds measures a static-creds read: a healthy robot (one
// Quay call) and one deleted by hand before each read (the read that heals
// it: look-ups, create, grants, store).
func BenchmarkStaticCreds(b *testing.B) {
	for _, heal := range []bool{false, true} {
		name := "healthy"
		if heal {
			name = "deleted_by_hand"
		}
		b.Run(name, func(b *testing.B) {
			env := newTestEnv(b)
			env.createRepo("app")
			env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{
				"namespace_name": testOrg, "repositories": `{"app":"read"}`, "teams": `{"builders":"member"}`,
			})
			ctx := context.Background()
			req := &logical.Request{Operation: logical.ReadOperation, Path: "static-creds/pull", Storage: env.storage}
			calls := 0
			b.ReportAllocs()
			for b.Loop() {
				if heal {
					b.StopTimer()
					if err := env.adminClient.DeleteRobot(ctx, orgNS, "pull"); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				env.quay.ResetCalls()
				resp, err := env.b.HandleRequest(ctx, req)
				if err != nil || resp == nil || resp.Data["password"] == nil {
					b.Fatalf("static-creds: %v", err)
				}
				calls += env.quay.TotalCalls()
			}
			b.ReportMetric(float64(calls)/float64(b.N), "quay-calls/op")
		})
	}
}
