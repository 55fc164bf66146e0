//go:build realquay

package backend

// Static robots' healing and default_permission against the real Quay 3.18
// of /work/shared/realquay (started and stopped by the test):
//
//	go test -tags realquay -run RealQuay_Static -v ./backend/

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

func TestRealQuay_StaticRobotsHealAndDefaultPermission(t *testing.T) {
	rq := startInitializedRealQuay(t)
	quayURL, admin := rq.url, rq.admin
	ctx := context.Background()
	require.NoError(t, admin.CreateOrganization(ctx, testOrg, ""))

	logs := &syncBuffer{}
	b, storage := newTestBackend(t, logs, time.Hour, 24*time.Hour)
	env := &testEnv{t: t, b: b, storage: storage, logs: logs, clock: &fakeClock{}, adminClient: admin}
	env.writeConfig(map[string]any{"url": quayURL, "token": rq.adminToken})

	// default_permission on the existing repositories, for a dynamic robot.
	for _, repo := range []string{"app", "lib", "tools"} {
		env.createRepo(repo)
	}
	env.writeRobotRole("ci", map[string]any{"repositories": `{"app":"write"}`, "default_permission": "read"})
	issued := env.issue("ci")
	short := strings.TrimPrefix(issued.Data["username"].(string), testOrg+"+")
	assert.Equal(t, map[string]string{"app": "write", "lib": "read", "tools": "read"}, env.robotPermissions(short))
	_, err := env.revoke(issued.Secret)
	require.NoError(t, err)

	// A static robot deleted by hand is created again by the next read.
	env.writePullRoleExisting()
	old := env.mustOK(logical.ReadOperation, "static-creds/pull", nil).Data["password"].(string)
	require.NoError(t, admin.DeleteRobot(ctx, orgNS, "pull"))
	creds := env.mustOK(logical.ReadOperation, "static-creds/pull", nil)
	assertDifferentSecret(t, old, creds.Data["password"], "a new robot")
	assertSameSecret(t, env.robotToken("pull"), creds.Data["password"], "its token is served")
	assert.Contains(t, strings.Join(creds.Warnings, " "), "was missing in Quay")
	assertRealPullGrants(t, env)
	kind, role := env.marker("pull")
	assert.Equal(t, robotKindStatic, kind)
	assert.Equal(t, "pull", role)

	// Its token regenerated in Quay is taken over.
	regenerated, err := admin.RegenerateRobotToken(ctx, orgNS, "pull")
	require.NoError(t, err)
	creds = env.mustOK(logical.ReadOperation, "static-creds/pull", nil)
	assertSameSecret(t, regenerated.Token, creds.Data["password"], "Quay's current token")

	// Grants stripped by hand come back with the rotation.
	require.NoError(t, admin.DeleteUserPermission(ctx, testOrg, "lib", testOrg+"+pull"))
	require.NoError(t, admin.RemoveTeamMember(ctx, testOrg, "builders", testOrg+"+pull"))
	rotated := env.mustOK(logical.UpdateOperation, "rotate-role/pull", nil)
	assert.Contains(t, strings.Join(rotated.Warnings, " "), "membership of team builders")
	assertRealPullGrants(t, env)

	// An adopted robot's creation time, as real Quay reports it, tells it
	// from one made under its name since.
	_, err = admin.CreateRobot(ctx, orgNS, "legacy", quay.RobotSpec{})
	require.NoError(t, err)
	env.mustOK(logical.CreateOperation, "static-roles/legacy", map[string]any{"namespace_name": testOrg})
	_, err = admin.RegenerateRobotToken(ctx, orgNS, "legacy")
	require.NoError(t, err)
	creds = env.mustOK(logical.ReadOperation, "static-creds/legacy", nil)
	assertSameSecret(t, env.robotToken("legacy"), creds.Data["password"], "the same robot, regenerated")
	require.NoError(t, admin.DeleteRobot(ctx, orgNS, "legacy"))
	time.Sleep(1100 * time.Millisecond) // Quay's creation times are whole seconds
	_, err = admin.CreateRobot(ctx, orgNS, "legacy", quay.RobotSpec{})
	require.NoError(t, err)
	_, err = env.requestErr(logical.ReadOperation, "static-creds/legacy", nil)
	var coded logical.HTTPCodedError
	require.ErrorAs(t, err, &coded)
	assert.Equal(t, http.StatusConflict, coded.Code())
}

// writePullRoleExisting is writePullRole for repositories that exist already.
func (e *testEnv) writePullRoleExisting() {
	e.t.Helper()
	e.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{
		"namespace_name": testOrg, "repositories": `{"app":"write"}`, "teams": `{"builders":"member"}`,
		"default_permission": "read", "create_repositories": true,
	})
}

// assertRealPullGrants: what writePullRoleExisting grants, with the three
// repositories of the real-Quay test.
func assertRealPullGrants(t *testing.T, env *testEnv) {
	t.Helper()
	assert.Equal(t, map[string]string{"app": "write", "lib": "read", "tools": "read"}, env.robotPermissions("pull"))
	_, teams, def := env.grantsOf(testOrg + "+pull")
	assert.ElementsMatch(t, []string{"builders", creatorTeam}, teams)
	assert.Equal(t, "read", def)
}
