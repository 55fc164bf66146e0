package backend

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
