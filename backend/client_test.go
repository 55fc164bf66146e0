package backend

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// A client built before a config change follows the new root credential
// only while config still points at the same Quay with the same TLS
// settings and the credential is the same user's: a credential is never
// sent to another address, or over a connection checked less strictly, than
// the one it was configured for, and a request never goes on as another
// user.
func TestRootCredential_FollowsTheCacheOnlyForTheSameQuayUserAndTLS(t *testing.T) {
	var cache clientCache
	var storeOwned func(url, token, owner string)
	old := &rootCredential{cache: &cache, config: &quayConfig{URL: "https://quay.example.com", TokenOwner: "admin"}, own: quay.StaticToken("old-token")}
	store := func(url, token string) {
		storeOwned(url, token, "admin")
	}
	var insecure bool
	storeOwned = func(url, token, owner string) {
		cfg := &quayConfig{URL: url, Token: token, TokenOwner: owner, DisableSSLVerification: insecure}
		client, err := cfg.newClient(hclog.NewNullLogger())
		require.NoError(t, err)
		cache.current.Store(&cachedClient{client: client, config: cfg, credential: cfg.credential()})
	}
	ctx := context.Background()

	store("https://quay.example.com", "new-token")
	got, err := old.BearerToken(ctx)
	require.NoError(t, err)
	assert.True(t, got == "new-token", "same Quay: the new credential")
	assert.True(t, old.Replaced(ctx, "old-token"))

	store("https://other-quay.example.com", "other-token")
	got, err = old.BearerToken(ctx)
	require.NoError(t, err)
	assert.True(t, got == "old-token", "another Quay: never its credential")
	assert.False(t, old.Replaced(ctx, "old-token"))

	storeOwned("https://quay.example.com", "someone-elses-token", "someone")
	got, _ = old.BearerToken(ctx)
	assert.True(t, got == "old-token", "another user's credential: never")
	assert.False(t, old.Replaced(ctx, "old-token"))

	storeOwned("https://quay.example.com", "unknown-owners-token", "")
	got, _ = old.BearerToken(ctx)
	assert.True(t, got == "old-token", "a credential whose owner is unknown: never")

	insecure = true
	store("https://quay.example.com", "new-token")
	got, _ = old.BearerToken(ctx)
	assert.True(t, got == "old-token", "other TLS settings: never")
	insecure = false

	cache.reset()
	got, _ = old.BearerToken(ctx)
	assert.True(t, got == "old-token", "nothing cached: its own")
}

// Quay's user-robot API acts on the caller's own namespace, so the engine
// checks (reachUserRobot) that the root credential is the robot's user
// before it touches a user-namespace robot. The check uses the config the
// request started with; rootCredential then makes every later call of the
// request use whatever credential config holds now. A config write that
// switches to another user's token while a rotation is in flight makes the
// rest of the rotation act in that other user's namespace: it regenerates
// their robot of the same name (one without this mount's marker) and stores
// its token in the role.
func TestRootCredential_ARequestInFlightNeverActsAsTheUserAConfigWriteSwitchedTo(t *testing.T) {
	env := newTestEnv(t)
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_type": "user", "namespace_name": testAdmin})

	require.NoError(t, env.quay.CreateUser("other", testPassword, "other@example.com"))
	otherToken, err := env.quay.IssueToken("other", "user:read user:admin org:admin repo:admin", time.Hour)
	require.NoError(t, err)
	otherNS := quay.Namespace{Kind: quay.NamespaceUser, Name: "other"}
	otherClient := env.quayClient(otherToken)
	_, err = otherClient.CreateRobot(context.Background(), otherNS, "pull", quay.RobotSpec{Description: "other's own robot"})
	require.NoError(t, err)
	theirs, err := otherClient.GetRobot(context.Background(), otherNS, "pull")
	require.NoError(t, err)

	// The rotation's first look at the robot is slow; the operator switches
	// config to other's token meanwhile.
	env.quay.Faults().Add(emulator.Fault{Route: "getUserRobot", Count: 1, Latency: 300 * time.Millisecond})
	env.quay.ResetCalls()
	done := make(chan error, 1)
	go func() {
		_, err := env.requestErr(logical.UpdateOperation, "rotate-role/pull", nil)
		done <- err
	}()
	require.Eventually(t, func() bool { return env.quay.Calls("getUserRobot") == 1 }, 5*time.Second, 5*time.Millisecond)
	env.writeConfig(map[string]any{"token": otherToken})
	<-done

	after, err := otherClient.GetRobot(context.Background(), otherNS, "pull")
	require.NoError(t, err)
	assertSameSecret(t, theirs.Token, after.Token, "the rotation of quayadmin+pull regenerated other+pull's token")
	role, err := getStaticRole(context.Background(), env.storage, "pull")
	require.NoError(t, err)
	assert.False(t, role.Password == after.Token, "static role quayadmin+pull now holds the token of other+pull")
}
