package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
)

// secondaryStorage is a performance secondary's view of the mount's
// storage, as Vault Enterprise gives it to a plugin: replicated paths are
// read-only (a write fails with logical.ErrReadOnly), the mount's
// LocalStorage paths are the secondary's own.
type secondaryStorage struct {
	logical.Storage
	local []string
}

func (s secondaryStorage) writable(key string) bool {
	for _, p := range s.local {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

func (s secondaryStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if !s.writable(e.Key) {
		return logical.ErrReadOnly
	}
	return s.Storage.Put(ctx, e)
}

func (s secondaryStorage) Delete(ctx context.Context, key string) error {
	if !s.writable(key) {
		return logical.ErrReadOnly
	}
	return s.Storage.Delete(ctx, key)
}

// The periodic function guards every rotation of replicated state with
// WriteSafeReplicationState ("the rotations write replicated state, so they
// run only where that is writable"), except the federation signing key's,
// which runs on every cluster: on each performance secondary, once the key
// is due, the periodic function tries to write federation/keys (replicated,
// read-only there) and fails every minute until the primary's rotation is
// replicated, and for ever when the primary never rotates (a sealed or
// down primary).
func TestReview_PeriodicOnAPerformanceSecondaryRotatesTheReplicatedFederationKey(t *testing.T) {
	env := newTestEnv(t)
	env.writeFederation(map[string]any{"federation_issuer": testIssuer, "key_rotation_period": "1h"})
	secondary, storage := env.replicaOf(consts.ReplicationPerformanceSecondary)
	secondary.now = env.clock.Now
	view := secondaryStorage{Storage: storage, local: []string{framework.WALPrefix, issuedRobotPrefix, localStoragePrefix}}

	env.advance(time.Hour + time.Minute)
	err := secondary.periodic(context.Background(), &logical.Request{Storage: view})
	assert.NoError(t, err, "a performance secondary's periodic run must not write replicated state")
}
