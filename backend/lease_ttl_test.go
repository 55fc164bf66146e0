package backend

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rendezvous tells whether the mount's maximum TTL was asked for while the
// write-ahead put was under way: each side waits (for a while) for the
// other to start. Done one after the other, in either order, one side waits
// in vain.
type rendezvous struct {
	armed      atomic.Bool
	ttlOnce    sync.Once
	walOnce    sync.Once
	ttlStarted chan struct{}
	walStarted chan struct{}
	missed     atomic.Int32
}

func (r *rendezvous) wait(own *sync.Once, mine, other chan struct{}) {
	if !r.armed.Load() {
		return
	}
	own.Do(func() { close(mine) })
	select {
	case <-other:
	case <-time.After(2 * time.Second):
		r.missed.Add(1)
	}
}

type rendezvousSystemView struct {
	logical.StaticSystemView
	r *rendezvous
}

func (s *rendezvousSystemView) MaxLeaseTTL() time.Duration {
	s.r.wait(&s.r.ttlOnce, s.r.ttlStarted, s.r.walStarted)
	return s.StaticSystemView.MaxLeaseTTL()
}

type rendezvousStorage struct {
	logical.Storage
	r *rendezvous
}

func (s *rendezvousStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if strings.HasPrefix(e.Key, framework.WALPrefix) {
		s.r.wait(&s.r.walOnce, s.r.walStarted, s.r.ttlStarted)
	}
	return s.Storage.Put(ctx, e)
}

// A creds read asks Vault for the mount's maximum TTL (a round trip to Vault
// in an external plugin) while it writes its write-ahead entry, not after.
func TestCreds_AsksForTheMountTTLsWhileWritingAhead(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(env *testEnv)
	}{
		{"robot", func(env *testEnv) { env.writeRobotRole("ci", map[string]any{"max_ttl": "0"}) }},
		{"oauth_token", func(env *testEnv) { env.writeOAuthRole("ci", map[string]any{"max_ttl": "0"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			tc.write(env)
			r := &rendezvous{ttlStarted: make(chan struct{}), walStarted: make(chan struct{})}
			conf := logical.TestBackendConfig()
			conf.Logger = env.b.logger
			conf.System = &rendezvousSystemView{StaticSystemView: logical.StaticSystemView{DefaultLeaseTTLVal: time.Hour, MaxLeaseTTLVal: 3 * time.Hour}, r: r}
			require.NoError(t, env.b.Backend.Setup(context.Background(), conf))
			env.storage = &rendezvousStorage{Storage: env.storage, r: r}
			r.armed.Store(true)

			resp := env.mustOK(logical.ReadOperation, "creds/ci", nil)
			assert.Zero(t, r.missed.Load(), "the mount's TTLs were asked for one after the write-ahead put, not beside it")
			assert.Equal(t, 3*time.Hour, resp.Secret.MaxTTL, "the lease's max TTL is still the mount's maximum")
		})
	}
}
