package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// A write-ahead entry names a robot by name only. If the request it guarded
// failed before creating the robot and a person then made a robot of that
// name, the rollback used to delete the person's robot (it checked only
// that no static role owned the name). It now deletes only a robot carrying
// this mount's marker.
func TestRollback_NeverDeletesARobotWithoutThisMountsMarker(t *testing.T) {
	t.Run("static role", func(t *testing.T) {
		env := newTestEnv(t)
		env.quay.Faults().Add(emulator.Fault{Route: "createOrgRobot", Count: 1, Status: 503})
		resp := env.request(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg})
		require.True(t, resp.IsError(), "Quay's 503 fails the write")
		require.Equal(t, 1, env.walCount(), "a 503 may come after Quay acted: the entry stays")

		// Someone creates the robot by hand before the rollback runs.
		_, err := env.adminClient.CreateRobot(context.Background(), orgNS, "pull", quay.RobotSpec{Description: "the team's own pull robot"})
		require.NoError(t, err)
		env.rollback()
		assert.True(t, env.robotExists("pull"), "a robot without this mount's marker is never deleted")
		assert.Zero(t, env.walCount(), "the entry is settled")
	})
	t.Run("dynamic role", func(t *testing.T) {
		env := newTestEnv(t)
		env.writeRobotRole("ci", nil)
		env.quay.Faults().Add(emulator.Fault{Route: "createOrgRobot", Count: 1, Status: 502})
		_, err := env.requestErr(logical.ReadOperation, "creds/ci", nil)
		require.Error(t, err)
		wal := env.robotWALEntries()
		require.Len(t, wal, 1)
		short := wal[0].ShortName
		_, err = env.adminClient.CreateRobot(context.Background(), orgNS, short, quay.RobotSpec{Description: "not Vault's"})
		require.NoError(t, err)
		env.rollback()
		assert.True(t, env.robotExists(short))
	})
	t.Run("a robot this mount made is still rolled back", func(t *testing.T) {
		env := newTestEnv(t)
		env.quay.Faults().Add(emulator.Fault{Route: "createOrgRobot", Count: 1, AfterQuay: true, Status: 503})
		resp := env.request(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg})
		require.True(t, resp.IsError())
		require.True(t, env.robotExists("pull"), "Quay created it before the 503")
		env.rollback()
		assert.False(t, env.robotExists("pull"))
	})
	t.Run("writing the static role again adopts the robot as the engine's own", func(t *testing.T) {
		env := newTestEnv(t)
		env.quay.Faults().Add(emulator.Fault{Route: "createOrgRobot", Count: 1, AfterQuay: true, Status: 503})
		require.True(t, env.request(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg}).IsError())
		env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg})
		assert.Equal(t, true, env.mustOK(logical.ReadOperation, "static-roles/pull", nil).Data["created_by_vault"])
		env.rollback()
		assert.True(t, env.robotExists("pull"), "the static role owns it now")
		env.mustOK(logical.DeleteOperation, "static-roles/pull", nil)
		assert.False(t, env.robotExists("pull"), "the engine created it, so deleting the role deletes it")
	})
}

// robotWALEntries lists the robot write-ahead entries of the mount.
func (e *testEnv) robotWALEntries() []robotWAL {
	e.t.Helper()
	wals, err := e.b.robotWALs(context.Background(), e.storage)
	require.NoError(e.t, err)
	var out []robotWAL
	for _, w := range wals {
		out = append(out, w.entry)
	}
	return out
}

// replicaOf is another cluster's instance of env's mount, as Vault
// Enterprise performance replication makes it: the same mount (and so the
// same mount UUID and replicated config), its own local storage (write-ahead
// entries, the index of issued robots, the cluster's identity), the same Quay.
func (e *testEnv) replicaOf(state consts.ReplicationState) (*backend, logical.Storage) {
	e.t.Helper()
	conf := logical.TestBackendConfig()
	storage := &logical.InmemStorage{}
	conf.StorageView = storage
	conf.BackendUUID = testMountID
	conf.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: e.logs})
	conf.System = &logical.StaticSystemView{DefaultLeaseTTLVal: time.Hour, MaxLeaseTTLVal: 24 * time.Hour, ReplicationStateVal: state}
	lb, err := Factory(context.Background(), conf)
	require.NoError(e.t, err)
	b := lb.(*backend)
	e.t.Cleanup(func() { b.Cleanup(context.Background()) })
	ctx := context.Background()
	keys, err := e.storage.List(ctx, "")
	require.NoError(e.t, err)
	for _, prefix := range keys {
		if strings.HasPrefix(prefix, localStoragePrefix) || prefix == "wal/" || prefix == "issued/" {
			continue
		}
		copyTree(e.t, e.storage, storage, prefix)
	}
	return b, storage
}

func copyTree(t testing.TB, from, to logical.Storage, key string) {
	ctx := context.Background()
	if strings.HasSuffix(key, "/") {
		children, err := from.List(ctx, key)
		require.NoError(t, err)
		for _, c := range children {
			copyTree(t, from, to, key+c)
		}
		return
	}
	entry, err := from.Get(ctx, key)
	require.NoError(t, err)
	if entry != nil {
		require.NoError(t, to.Put(ctx, entry))
	}
}

// With Vault Enterprise performance replication, a secondary issues robots
// of the same mount with leases local to it. Tidy on the primary used to see
// the mount's marker, no index entry (the index is local too) and delete the
// secondary's live robots. Robots now carry the issuing cluster, and tidy
// touches only its own cluster's.
func TestTidy_NeverTouchesRobotsAnotherClusterIssued(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("ci", nil)
	primary, primaryStorage := env.b, env.storage
	primary.System().(*logical.StaticSystemView).ReplicationStateVal = consts.ReplicationPerformancePrimary
	secondary, secondaryStorage := env.replicaOf(consts.ReplicationPerformanceSecondary)

	do := func(b *backend, s logical.Storage, op logical.Operation, path string, data map[string]any) *logical.Response {
		t.Helper()
		resp, err := b.HandleRequest(context.Background(), &logical.Request{Operation: op, Path: path, Data: data, Storage: s, MountPoint: "quay/"})
		require.NoError(t, err)
		require.False(t, failed(resp), "%s: %v", path, errorAnswer(resp))
		return resp
	}
	onSecondary := do(secondary, secondaryStorage, logical.ReadOperation, "creds/ci", nil)
	secondaryRobot := onSecondary.Data["username"].(string)
	onPrimary := do(primary, primaryStorage, logical.ReadOperation, "creds/ci", nil)
	primaryRobot := onPrimary.Data["username"].(string)
	primaryOrphan := do(primary, primaryStorage, logical.ReadOperation, "creds/ci", nil).Data["username"].(string)
	require.NoError(t, deleteIssuedRobot(context.Background(), primaryStorage, "organization", testOrg, strings.TrimPrefix(primaryOrphan, testOrg+"+")))

	report := do(primary, primaryStorage, logical.UpdateOperation, "tidy", nil)
	assert.Equal(t, []string{primaryOrphan}, tidyList(report, "orphans_deleted"), "the primary's own orphan goes")
	assert.Equal(t, []string{secondaryRobot}, tidyList(report, "robots_of_other_clusters"))
	assert.True(t, env.robotExists(strings.TrimPrefix(secondaryRobot, testOrg+"+")), "the secondary's leased robot lives")
	assert.True(t, env.robotExists(strings.TrimPrefix(primaryRobot, testOrg+"+")))

	// The secondary tidies its own, locally, and leaves the primary's alone.
	report = do(secondary, secondaryStorage, logical.UpdateOperation, "tidy", nil)
	assert.Empty(t, tidyList(report, "orphans_found"))
	assert.Equal(t, []string{primaryRobot}, tidyList(report, "robots_of_other_clusters"))

	// Robots marked before clusters were recorded cannot be placed while
	// replication is on: tidy leaves them and says so.
	legacy := robotMarkerPrefix + testMountID + "] role=ci"
	_, err := env.adminClient.CreateRobot(context.Background(), orgNS, "vault_ci_legacy0000", quay.RobotSpec{Description: legacy})
	require.NoError(t, err)
	report = do(primary, primaryStorage, logical.UpdateOperation, "tidy", nil)
	assert.Contains(t, tidyList(report, "robots_of_other_clusters"), testOrg+"+vault_ci_legacy0000")
	assert.True(t, env.robotExists("vault_ci_legacy0000"))
	primary.System().(*logical.StaticSystemView).ReplicationStateVal = 0
	report = do(primary, primaryStorage, logical.UpdateOperation, "tidy", nil)
	assert.Equal(t, []string{testOrg + "+vault_ci_legacy0000"}, tidyList(report, "orphans_deleted"), "without replication the mount has one cluster")
}

// A rotation's write-ahead entry stores replicated state when settled; a node
// that cannot write it (a performance secondary or standby) keeps the entry
// instead of failing halfway. Robot and token entries are this cluster's own
// and are settled anywhere.
func TestRollback_RotationEntriesWaitForAWritableNode(t *testing.T) {
	env := newTestEnv(t)
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg})
	before := env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"]
	_, err := framework.PutWAL(context.Background(), env.storage, walKindStaticRotation, &staticRotationWAL{Role: "pull", InstanceID: "gone"})
	require.NoError(t, err)
	_, err = env.adminClient.RegenerateRobotToken(context.Background(), orgNS, "pull")
	require.NoError(t, err)

	view := env.b.System().(*logical.StaticSystemView)
	view.ReplicationStateVal = consts.ReplicationPerformanceSecondary
	err = env.b.walRollback(context.Background(), &logical.Request{Storage: env.storage}, walKindStaticRotation, map[string]any{"role": "pull"})
	require.ErrorIs(t, err, errReplicatedStateReadOnly, "kept for a writable node")
	stored, err := getStaticRole(context.Background(), env.storage, "pull")
	require.NoError(t, err)
	assert.True(t, before == stored.Password, "unchanged")
	// A read there finds the token changed in Quay; healing writes the
	// role, so the read is handed to a node that can (Vault forwards a
	// request that answers ErrReadOnly).
	_, err = env.requestErr(logical.ReadOperation, "static-creds/pull", nil)
	require.ErrorIs(t, err, logical.ErrReadOnly)

	view.ReplicationStateVal = 0
	env.rollback()
	assert.False(t, before == env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"], "settled on the primary")
	assert.Zero(t, env.walCount())
}
