package backend

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/vault/sdk/logical"
)

// roleCache keeps the dynamic roles that creds reads have used, so that a
// read pays no storage round trip to Vault for its role. Readers take no
// lock: one atomic load and one sync.Map load.
//
// Invariant: a cached role is used only while the cache's generation is the
// one it was loaded under, and the generation moves on after every change
// of a stored role has reached storage (putRole, deleteRole: after the
// storage call returns, whether it succeeded or not) and whenever Vault
// reports that another node changed one (invalidate). A reader takes the
// generation before its storage get. So an entry tagged g was read after
// every write that moved the generation to g or below had reached storage,
// and any write that reaches storage later moves the generation past g
// before it returns to its caller: once a role write or delete has
// returned, no read answers with the role as it was before. (A read that
// runs while a write is in flight may answer with either version, as it
// would without the cache.)
//
// One generation for all roles keeps the invariant simple; role writes are
// rare, and after one each role costs one storage get again.
type roleCache struct {
	generation atomic.Uint64
	// entries maps a role's name to its *cachedRole.
	entries sync.Map
}

type cachedRole struct {
	generation uint64
	// role is shared by every read that finds it: callers must not
	// modify it.
	role *roleEntry
}

// changed ends the use of every role cached so far. Call it after a role's
// storage write or delete has returned.
func (c *roleCache) changed(name string) {
	c.generation.Add(1)
	if name != "" {
		c.entries.Delete(name)
	}
}

// drop forgets every role (the mount is cleaned up).
func (c *roleCache) drop() {
	c.generation.Add(1)
	c.entries.Clear()
}

// cachedRole returns the dynamic role name as getRole would, from memory
// when this instance has read it since the last role change. The role is
// shared: callers must not modify it. Paths that write the role read it
// with getRole instead.
func (b *backend) cachedRole(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	generation := b.roles.generation.Load()
	if v, ok := b.roles.entries.Load(name); ok {
		if cached := v.(*cachedRole); cached.generation == generation {
			return cached.role, nil
		}
	}
	role, err := getRole(ctx, s, name)
	if err != nil || role == nil {
		return role, err
	}
	b.roles.entries.Store(name, &cachedRole{generation: generation, role: role})
	return role, nil
}

// putRole stores a dynamic role.
func (b *backend) putRole(ctx context.Context, s logical.Storage, role *roleEntry) error {
	defer b.roles.changed(role.Name)
	return putJSON(ctx, s, roleStoragePrefix+role.Name, fmt.Sprintf("role %q", role.Name), role)
}

// deleteRole removes a dynamic role from storage.
func (b *backend) deleteRole(ctx context.Context, s logical.Storage, name string) error {
	defer b.roles.changed(name)
	return s.Delete(ctx, roleStoragePrefix+name)
}

// invalidate handles Vault's notice that another node changed key.
func (c *roleCache) invalidate(key string) {
	if name, ok := strings.CutPrefix(key, roleStoragePrefix); ok {
		c.changed(name)
	}
}
