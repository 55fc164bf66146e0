package backend

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// A request that died with its process (a killed leader, a crashed plugin)
// is settled by the next instance as soon as it starts, not five minutes
// later when Vault's rollback manager would first look: the half-made
// credential is deleted, the static robot's password in Vault works again.
// The entries stay for the rollback manager, in case a request the dead
// process had sent still lands in Quay.
func TestRecovery_TheNextInstanceSettlesWhatADeadOneLeftAtOnce(t *testing.T) {
	t.Run("oauth token", func(t *testing.T) {
		env := newTestEnv(t)
		env.writeOAuthRole("ci", nil)
		clientID := env.mustOK(logical.ReadOperation, "roles/ci", nil).Data["client_id"].(string)
		env.quay.Faults().Add(emulator.Fault{Route: "createOrganizationApplicationToken", Count: 1, AfterQuay: true, Drop: true})
		_, err := env.requestErr(logical.ReadOperation, "creds/ci", nil)
		require.Error(t, err)
		require.Len(t, env.appTokens(clientID), 1, "Quay created the token; no lease holds it")

		env.restart()
		assert.Empty(t, env.appTokens(clientID), "deleted as the new instance started")
		assert.Equal(t, 1, env.walCount(), "the entry waits for the rollback manager")
		env.rollback()
		assert.Zero(t, env.walCount())
	})
	t.Run("robot", func(t *testing.T) {
		env := newTestEnv(t)
		env.writeRobotRole("ci", nil)
		env.quay.Faults().Add(emulator.Fault{Route: "createOrgRobot", Count: 1, AfterQuay: true, Drop: true})
		_, err := env.requestErr(logical.ReadOperation, "creds/ci", nil)
		require.Error(t, err)
		require.Len(t, env.engineRobots(), 1, "Quay created the robot; no lease holds it")

		env.restart()
		assert.Empty(t, env.engineRobots(), "deleted as the new instance started")
		assert.Equal(t, 1, env.walCount())
	})
	t.Run("static rotation", func(t *testing.T) {
		env := newTestEnv(t)
		env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg})
		old := env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"].(string)
		// The process died after Quay regenerated the token, before it
		// stored it: its entry is left, the token in Vault is dead.
		_, err := framework.PutWAL(context.Background(), env.storage, walKindStaticRotation, &staticRotationWAL{Role: "pull", InstanceID: "dead"})
		require.NoError(t, err)
		_, err = env.adminClient.RegenerateRobotToken(context.Background(), orgNS, "pull")
		require.NoError(t, err)

		env.restart()
		creds := env.mustOK(logical.ReadOperation, "static-creds/pull", nil)
		assert.Empty(t, creds.Warnings, "settled before the read: no drift for the read to heal")
		served := creds.Data["password"].(string)
		assertDifferentSecret(t, old, served, "the old token is dead in Quay")
		assertSameSecret(t, env.robotToken("pull"), served, "static-creds serves the token Quay holds")
		env.assertNoSecretLogged(old, served)
	})
}

// A request the dead process had sent may land in Quay after the new
// instance started (Quay was still holding it): the settling at start-up
// found nothing then. The periodic function settles such entries again, so
// the token lives until the next tick (a minute), not until the rollback
// manager's five minutes.
func TestRecovery_ACredentialQuayCreatesAfterTheRestartIsDeletedAtTheNextTick(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", nil)
	clientID := env.mustOK(logical.ReadOperation, "roles/ci", nil).Data["client_id"].(string)
	entry := &oauthTokenWAL{QuayURL: env.server.URL, Organization: testOrg, ClientID: clientID, TokenName: "vault-ci-held", InstanceID: "dead"}
	_, err := framework.PutWAL(context.Background(), env.storage, walKindOAuthToken, entry)
	require.NoError(t, err)

	env.restart()
	// Quay carries out the call the dead process had sent.
	_, err = env.adminClient.CreateApplicationToken(context.Background(), testOrg, clientID, quay.NewApplicationToken{Name: entry.TokenName, Scopes: []string{"repo:read"}})
	require.NoError(t, err)
	require.Len(t, env.appTokens(clientID), 1)

	env.periodic()
	assert.Empty(t, env.appTokens(clientID), "deleted at the next tick")
	assert.Equal(t, 1, env.walCount(), "the entry still waits for the rollback manager")
	// The engine's own entries are not its to settle: a creds read of this
	// instance in flight keeps its token.
	env.mustOK(logical.ReadOperation, "creds/ci", nil)
	env.periodic()
	assert.Len(t, env.appTokens(clientID), 1, "the lease's token stays")
}

// The per-tick settling stops once an entry is old enough for Vault's
// rollback manager: an entry whose rollback keeps failing is then retried
// (and logged) by the rollback manager alone, not twice a minute.
func TestRecovery_TheTickLeavesOldEntriesToTheRollbackManager(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", nil)
	clientID := env.mustOK(logical.ReadOperation, "roles/ci", nil).Data["client_id"].(string)
	token, err := env.adminClient.CreateApplicationToken(context.Background(), testOrg, clientID, quay.NewApplicationToken{Name: "vault-ci-old", Scopes: []string{"repo:read"}})
	require.NoError(t, err)
	old, err := json.Marshal(&framework.WALEntry{
		Kind:      walKindOAuthToken,
		Data:      &oauthTokenWAL{QuayURL: env.server.URL, Organization: testOrg, ClientID: clientID, TokenName: token.Name, InstanceID: "dead"},
		CreatedAt: time.Now().Add(-walRollbackMinAge - time.Minute).Unix(),
	})
	require.NoError(t, err)
	require.NoError(t, env.storage.Put(context.Background(), &logical.StorageEntry{Key: framework.WALPrefix + "old-entry", Value: old}))

	env.quay.ResetCalls()
	env.periodic()
	assert.Zero(t, env.quay.Calls("listOrganizationApplicationTokens"), "the tick settled an entry the rollback manager owns")
	assert.Len(t, env.appTokens(clientID), 1)

	env.rollback()
	assert.Empty(t, env.appTokens(clientID), "the rollback manager deletes it")
	assert.Zero(t, env.walCount())
}

// Vault finishes an unseal only once every mount's initialization returns:
// settling what a dead instance left must not make it wait on Quay.
func TestRecovery_InitializeNeverWaitsOnQuay(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", nil)
	env.quay.Faults().Add(emulator.Fault{Route: "createOrganizationApplicationToken", Count: 1, AfterQuay: true, Drop: true})
	_, err := env.requestErr(logical.ReadOperation, "creds/ci", nil)
	require.Error(t, err)
	env.quay.Faults().Add(emulator.Fault{Route: "listOrganizationApplicationTokens", Latency: time.Hour})

	b, _ := newTestBackend(t, env.logs, time.Hour, 24*time.Hour)
	initialized := make(chan error, 1)
	go func() {
		initialized <- b.Initialize(context.Background(), &logical.InitializationRequest{Storage: env.storage})
	}()
	select {
	case err := <-initialized:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Initialize waited on Quay")
	}
	stopped := make(chan struct{})
	go func() { b.Cleanup(context.Background()); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Cleanup did not stop the recovery")
	}
	assert.Equal(t, 1, env.walCount(), "nothing settled, nothing lost")
}

// A static rotation left by a dead instance is settled at start-up by
// re-reading the robot's token. If someone deleted the role's robot and made
// their own under its name since, that robot is not the role's: a read or a
// rotation refuses it with a 409 and stores nothing (static_heal.go). The
// recovery (and the rollback manager) must not take its token over either,
// or every later static-creds read serves the stranger's robot with no
// warning.
func TestRecovery_AStaticRotationNeverAdoptsAReplacedRobot(t *testing.T) {
	env := newTestEnv(t)
	env.writePullRole()
	stored := env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"].(string)

	// A rotation in flight when the process died.
	_, err := framework.PutWAL(context.Background(), env.storage, walKindStaticRotation,
		&staticRotationWAL{QuayURL: env.server.URL, Role: "pull", InstanceID: "dead"})
	require.NoError(t, err)
	// Meanwhile a Quay admin replaced the robot with one of their own.
	require.NoError(t, env.adminClient.DeleteRobot(context.Background(), orgNS, "pull"))
	theirs, err := env.adminClient.CreateRobot(context.Background(), orgNS, "pull", quay.RobotSpec{Description: "ours, not Vault's"})
	require.NoError(t, err)

	env.restart()

	role, err := getStaticRole(context.Background(), env.storage, "pull")
	require.NoError(t, err)
	assert.True(t, role.Password == stored, "the role must still hold its own token, not the replacing robot's")
	assert.False(t, role.Password == theirs.Token, "recovery took over the token of a robot the role does not own")

	_, err = env.requestErr(logical.ReadOperation, "static-creds/pull", nil)
	require.Error(t, err, "static-creds must refuse a replaced robot, not serve its token")
	var coded logical.HTTPCodedError
	require.ErrorAs(t, err, &coded)
	assert.Equal(t, http.StatusConflict, coded.Code())
}

// The recovery at start-up undoes a robot create a dead instance left (its
// write-ahead entry) unless a stored static or federated role owns the
// robot. It reads the roles, then the robot, then deletes it, without the
// static role's lock. An operator who writes the static role again right
// after the failover (the natural retry of the write that died) adopts the
// robot the dead instance created; if that write stores the role between
// the recovery's look at the roles and its delete, the recovery deletes the
// robot the role now owns, and the write has answered success.
func TestRecovery_NeverDeletesTheRobotOfAStaticRoleWrittenMeanwhile(t *testing.T) {
	env := newTestEnv(t)
	// The write dies after Quay created the robot.
	env.quay.Faults().Add(emulator.Fault{Route: "createOrgRobot", Count: 1, AfterQuay: true, Drop: true})
	_, err := env.requestErr(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg})
	require.Error(t, err)
	require.True(t, env.robotExists("pull"))
	require.Equal(t, 1, env.walCount())

	// The next instance starts; its recovery's look at the robot is slow.
	b, _ := newTestBackend(t, env.logs, time.Hour, 24*time.Hour)
	b.now = env.clock.Now
	env.b = b
	env.quay.Faults().Add(emulator.Fault{Route: "getOrgRobot", Count: 1, Latency: 500 * time.Millisecond})
	env.quay.ResetCalls()
	require.NoError(t, b.Initialize(context.Background(), &logical.InitializationRequest{Storage: env.storage}))
	require.Eventually(t, func() bool { return env.quay.Calls("getOrgRobot") == 1 }, 5*time.Second, 5*time.Millisecond,
		"the recovery is looking at the robot")

	// The operator writes the role again: it adopts the robot and succeeds.
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg})
	b.waitRecovered()

	assert.True(t, env.robotExists("pull"), "the recovery deleted the robot of a static role stored meanwhile")
	served, err := getStaticRole(context.Background(), env.storage, "pull")
	require.NoError(t, err)
	if env.robotExists("pull") {
		assertSameSecret(t, env.robotToken("pull"), served.Password, "the stored token works")
	}
}
