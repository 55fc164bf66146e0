package backend

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

func tidyList(resp *logical.Response, key string) []string {
	return resp.Data[key].([]string)
}

// tidy removes what no lease, write-ahead entry or static role owns, and
// nothing else: not live leases, not static robots, not robots of other
// mounts or of people.
func TestTidy_DeletesOnlyOrphans(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	env.writeRobotRole("ci", nil)

	live := env.issue("ci")
	liveName := live.Data["username"].(string)

	// An orphan: issued, then its index entry lost (as when Vault never
	// registered the lease).
	orphan := env.issue("ci")
	orphanName := orphan.Data["username"].(string)
	orphanShort := strings.TrimPrefix(orphanName, testOrg+"+")
	require.NoError(t, deleteIssuedRobot(ctx, env.storage, "organization", testOrg, orphanShort))

	// Robots tidy must never touch.
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg})
	_, err := env.adminClient.CreateRobot(ctx, orgNS, "human", quay.RobotSpec{Description: "made by a person"})
	require.NoError(t, err)
	_, err = env.adminClient.CreateRobot(ctx, orgNS, "vault_ci_othermount", quay.RobotSpec{Description: robotDescription(robotMark{mount: "another-mount", cluster: env.ownMark().cluster}, robotKindDynamic, "ci", "")})
	require.NoError(t, err)

	dry := env.mustOK(logical.UpdateOperation, "tidy", map[string]any{"dry_run": true})
	assert.Equal(t, []string{orphanName}, tidyList(dry, "orphans_found"))
	assert.Empty(t, tidyList(dry, "orphans_deleted"))
	require.True(t, env.robotExists(orphanShort), "dry run deletes nothing")

	resp := env.mustOK(logical.UpdateOperation, "tidy", nil)
	assert.Equal(t, []string{orphanName}, tidyList(resp, "orphans_deleted"))
	assert.Equal(t, []string{"organization/" + testOrg}, tidyList(resp, "namespaces_scanned"))
	assert.EqualValues(t, 1, resp.Data["robots_owned"])
	assert.False(t, env.robotExists(orphanShort))
	for _, kept := range []string{strings.TrimPrefix(liveName, testOrg+"+"), "pull", "human", "vault_ci_othermount"} {
		assert.True(t, env.robotExists(kept), kept)
	}

	last := env.mustOK(logical.ReadOperation, "tidy", nil)
	assert.Equal(t, []string{orphanName}, tidyList(last, "orphans_deleted"))
	assert.NotEmpty(t, last.Data["last_run"])
}

// A write-ahead entry of this very instance, still young, belongs to a
// request that may be running: tidy leaves its robot alone. An entry of an
// earlier instance (the plugin restarted) is dead: tidy cleans it up.
func TestTidy_WriteAheadEntries(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	env.writeRobotRole("ci", nil)
	for _, short := range []string{"vault_ci_inflight0", "vault_ci_deadentry"} {
		_, err := env.adminClient.CreateRobot(ctx, orgNS, short, quay.RobotSpec{Description: robotDescription(env.ownMark(), robotKindDynamic, "ci", "")})
		require.NoError(t, err)
	}
	_, err := framework.PutWAL(ctx, env.storage, walKindRobot, &robotWAL{NamespaceType: "organization", NamespaceName: testOrg, ShortName: "vault_ci_inflight0", InstanceID: env.b.instanceID})
	require.NoError(t, err)
	_, err = framework.PutWAL(ctx, env.storage, walKindRobot, &robotWAL{NamespaceType: "organization", NamespaceName: testOrg, ShortName: "vault_ci_deadentry", InstanceID: "previous-process"})
	require.NoError(t, err)

	resp := env.mustOK(logical.UpdateOperation, "tidy", nil)
	assert.Equal(t, []string{testOrg + "+vault_ci_inflight0"}, tidyList(resp, "robots_in_flight"))
	assert.Equal(t, []string{testOrg + "+vault_ci_deadentry"}, tidyList(resp, "orphans_deleted"))
	assert.EqualValues(t, 1, resp.Data["write_ahead_entries_cleared"])
	assert.True(t, env.robotExists("vault_ci_inflight0"))
	assert.False(t, env.robotExists("vault_ci_deadentry"))
}

// Robots of roles deleted long ago are found when their organization is named.
func TestTidy_ExtraOrganizations(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	_, err := env.adminClient.CreateRobot(ctx, orgNS, "vault_gone_0123456789", quay.RobotSpec{Description: robotDescription(env.ownMark(), robotKindDynamic, "gone", "")})
	require.NoError(t, err)

	resp := env.mustOK(logical.UpdateOperation, "tidy", nil)
	assert.Empty(t, tidyList(resp, "orphans_found"), "no role points at acme any more")

	resp = env.mustOK(logical.UpdateOperation, "tidy", map[string]any{"organizations": testOrg})
	assert.Equal(t, []string{testOrg + "+vault_gone_0123456789"}, tidyList(resp, "orphans_deleted"))

	bad := env.request(logical.UpdateOperation, "tidy", map[string]any{"organizations": "Not Valid"})
	require.True(t, bad.IsError())
	assert.Contains(t, errorMessage(bad), "organizations:")
}

func TestTidy_Scheduled(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	env.writeRobotRole("ci", nil)
	_, err := env.adminClient.CreateRobot(ctx, orgNS, "vault_ci_0123456789", quay.RobotSpec{Description: robotDescription(env.ownMark(), robotKindDynamic, "ci", "")})
	require.NoError(t, err)

	env.periodic()
	assert.True(t, env.robotExists("vault_ci_0123456789"), "no schedule: no tidy")

	bad := env.request(logical.UpdateOperation, "config", map[string]any{"tidy_interval": "1m"})
	require.True(t, bad.IsError())
	assert.Contains(t, errorMessage(bad), "tidy_interval:")

	env.writeConfig(map[string]any{"tidy_interval": "1h"})
	env.periodic()
	assert.False(t, env.robotExists("vault_ci_0123456789"))
}
