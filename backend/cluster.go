package backend

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// localStoragePrefix holds what belongs to this cluster alone. Vault
// Enterprise does not replicate it to performance secondaries (each keeps
// its own), while DR secondaries copy it whole (a promoted DR cluster takes
// the place of the one it copied).
const localStoragePrefix = "local/"

// clusterIDPath names the cluster the engine runs on: generated on first use
// in local storage, so each cluster of a performance replication set has its
// own and every robot the engine creates carries it (robot_identity.go).
// Tidy then only ever deletes robots its own cluster issued: the leases of
// another cluster are invisible to it (they are local to that cluster).
const clusterIDPath = localStoragePrefix + "cluster-id"

// clusterIDLength is the length of a cluster ID: 16 hex digits.
const clusterIDLength = 16

// clusterID returns this cluster's identity, creating it on first use. It is
// read from storage once per backend instance.
func (b *backend) clusterID(ctx context.Context, s logical.Storage) (string, error) {
	if id := b.cluster.id.Load(); id != nil {
		return *id, nil
	}
	b.cluster.mu.Lock()
	defer b.cluster.mu.Unlock()
	if id := b.cluster.id.Load(); id != nil {
		return *id, nil
	}
	entry, err := s.Get(ctx, clusterIDPath)
	if err != nil {
		return "", fmt.Errorf("reading the cluster identity: %w", err)
	}
	var id string
	if entry != nil {
		id = string(entry.Value)
	}
	if len(id) != clusterIDLength {
		id = randomHex(clusterIDLength / 2)
		if err := s.Put(ctx, &logical.StorageEntry{Key: clusterIDPath, Value: []byte(id)}); err != nil {
			return "", fmt.Errorf("storing the cluster identity: %w", err)
		}
	}
	b.cluster.id.Store(&id)
	return id, nil
}

// inPerformanceReplication says the mount is part of a Vault Enterprise
// performance replication set, where other clusters issue robots with the
// same mount marker.
func (b *backend) inPerformanceReplication() bool {
	return b.System().ReplicationState().HasState(consts.ReplicationPerformancePrimary | consts.ReplicationPerformanceSecondary)
}
