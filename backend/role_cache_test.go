package backend

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingStorage counts the storage gets of each key, as the plugin's
// round trips to Vault.
type countingStorage struct {
	logical.Storage
	mu   sync.Mutex
	gets map[string]int
}

func (s *countingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	s.mu.Lock()
	s.gets[key]++
	s.mu.Unlock()
	return s.Storage.Get(ctx, key)
}

func (s *countingStorage) getsOf(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[key]
}

// countStorageGets makes every later request of env go through a counter.
func (e *testEnv) countStorageGets() *countingStorage {
	c := &countingStorage{Storage: e.storage, gets: map[string]int{}}
	e.storage = c
	return c
}

// leaseTTL reads creds/name and returns its lease's TTL.
func (e *testEnv) leaseTTL(name string) time.Duration {
	e.t.Helper()
	resp := e.mustOK(logical.ReadOperation, "creds/"+name, nil)
	require.NotNil(e.t, resp.Secret)
	return resp.Secret.TTL
}

func TestRoleCache_CredsReadsDoNotReadTheRoleAgain(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(env *testEnv)
	}{
		{"robot", func(env *testEnv) { env.writeRobotRole("ci", nil) }},
		{"oauth_token", func(env *testEnv) { env.writeOAuthRole("ci", nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			tc.write(env)
			gets := env.countStorageGets()

			env.leaseTTL("ci")
			first := gets.getsOf("roles/ci")
			for range 3 {
				env.leaseTTL("ci")
			}
			assert.LessOrEqual(t, first, 1, "the first creds read reads the role once")
			assert.Equal(t, first, gets.getsOf("roles/ci"), "later creds reads take the role from memory")
		})
	}
}

func TestRoleCache_CredsReadSeesTheRoleAsLastWritten(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("ci", map[string]any{"ttl": "10m"})
	require.Equal(t, 10*time.Minute, env.leaseTTL("ci"))

	env.mustOK(logical.UpdateOperation, "roles/ci", map[string]any{"ttl": "20m"})
	assert.Equal(t, 20*time.Minute, env.leaseTTL("ci"), "an update is seen by the next read")

	env.mustOK(logical.DeleteOperation, "roles/ci", nil)
	resp := env.request(logical.ReadOperation, "creds/ci", nil)
	assert.True(t, resp.IsError(), "a deleted role issues nothing")
	assert.Contains(t, errorMessage(resp), `role "ci" does not exist`)

	env.writeRobotRole("ci", map[string]any{"ttl": "30m"})
	assert.Equal(t, 30*time.Minute, env.leaseTTL("ci"), "a role written again is read again")
}

// Vault tells the active node that a role changed elsewhere (a performance
// standby forwarded the write, or replication brought it): the cached role
// is no longer used.
func TestRoleCache_InvalidateDropsTheRole(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("ci", map[string]any{"ttl": "10m"})
	require.Equal(t, 10*time.Minute, env.leaseTTL("ci"))

	// Another node's write: straight into storage, past this instance.
	role, err := getRole(context.Background(), env.storage, "ci")
	require.NoError(t, err)
	role.TTL = 20 * time.Minute
	require.NoError(t, putJSON(context.Background(), env.storage, "roles/ci", "role", role))
	require.Equal(t, 10*time.Minute, env.leaseTTL("ci"), "the role is cached (otherwise this test proves nothing)")

	env.b.invalidate(context.Background(), "static-roles/ci")
	require.Equal(t, 10*time.Minute, env.leaseTTL("ci"), "another key's notice keeps the role")
	env.b.invalidate(context.Background(), "roles/ci")
	assert.Equal(t, 20*time.Minute, env.leaseTTL("ci"))
}

func TestRoleCache_CleanDropsTheRoles(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("ci", nil)
	ctx := context.Background()
	_, err := env.b.cachedRole(ctx, env.storage, "ci")
	require.NoError(t, err)
	env.b.clean(ctx)
	empty := true
	env.b.roles.entries.Range(func(any, any) bool { empty = false; return false })
	assert.True(t, empty, "clean leaves no role in memory")
}

// Role writes race with reads of the same role: once a write has returned,
// no read started after it answers with an older version, and the race
// detector sees no unsynchronised access.
func TestRoleCache_ConcurrentWritesAndReads(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("ci", map[string]any{"ttl": "1m"})
	ctx := context.Background()
	const writes = 60
	var written atomic.Int64 // the TTL in minutes of the last write that returned
	written.Store(1)
	done := make(chan struct{})

	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				before := written.Load()
				role, err := env.b.cachedRole(ctx, env.storage, "ci")
				if !assert.NoError(t, err) || !assert.NotNil(t, role) {
					return
				}
				if got := int64(role.TTL / time.Minute); got < before {
					t.Errorf("read a role with ttl %dm after the write of %dm had returned", got, before)
					return
				}
			}
		}()
	}
	// A few full creds reads alongside, sharing the cached role.
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				resp, err := env.requestErr(logical.ReadOperation, "creds/ci", nil)
				if assert.NoError(t, err) {
					assert.False(t, resp.IsError())
				}
			}
		}()
	}
	for i := int64(2); i <= writes; i++ {
		env.mustOK(logical.UpdateOperation, "roles/ci", map[string]any{"ttl": fmt.Sprintf("%dm", i)})
		written.Store(i)
	}
	close(done)
	wg.Wait()
	assert.Equal(t, writes*time.Minute, env.leaseTTL("ci"))
}

// pausingStorage holds one get of a key, after it has read storage, until
// told to go on: a read that loaded the role just before a write.
type pausingStorage struct {
	logical.Storage
	key    string
	armed  atomic.Bool
	loaded chan struct{}
	resume chan struct{}
}

func (s *pausingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	entry, err := s.Storage.Get(ctx, key)
	if key == s.key && s.armed.CompareAndSwap(true, false) {
		close(s.loaded)
		<-s.resume
	}
	return entry, err
}

// A read that loaded the role before a write and finishes after it must not
// leave the old role in memory for the reads after the write.
func TestRoleCache_ReadThatLoadedBeforeAWriteCachesNothingStale(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("ci", map[string]any{"ttl": "10m"})
	pausing := &pausingStorage{Storage: env.storage, key: "roles/ci", loaded: make(chan struct{}), resume: make(chan struct{})}
	pausing.armed.Store(true)
	ctx := context.Background()

	slow := make(chan *roleEntry)
	go func() {
		role, err := env.b.cachedRole(ctx, pausing, "ci")
		assert.NoError(t, err)
		slow <- role
	}()
	<-pausing.loaded
	env.mustOK(logical.UpdateOperation, "roles/ci", map[string]any{"ttl": "20m"})
	close(pausing.resume)
	require.Equal(t, 10*time.Minute, (<-slow).TTL, "the slow read answers with what it loaded")

	role, err := env.b.cachedRole(ctx, env.storage, "ci")
	require.NoError(t, err)
	assert.Equal(t, 20*time.Minute, role.TTL, "a read after the write sees the write")
	assert.Equal(t, 20*time.Minute, env.leaseTTL("ci"))
}
