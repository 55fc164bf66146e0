package backend

import (
	"context"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// A client built before a config change follows the new root credential
// only while config still points at the same Quay: a credential is never
// sent to another address than the one it was configured for.
func TestRootCredential_FollowsTheCacheOnlyForTheSameQuay(t *testing.T) {
	var cache clientCache
	old := &rootCredential{cache: &cache, url: "https://quay.example.com", own: quay.StaticToken("old-token")}
	store := func(url, token string) {
		cfg := &quayConfig{URL: url, Token: token}
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

	cache.reset()
	got, _ = old.BearerToken(ctx)
	assert.True(t, got == "old-token", "nothing cached: its own")
}
