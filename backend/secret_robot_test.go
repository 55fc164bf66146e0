package backend

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

var orgNS = quay.Namespace{Kind: quay.NamespaceOrganization, Name: testOrg}

func (e *testEnv) createRepo(name string) {
	e.t.Helper()
	require.NoError(e.t, e.adminClient.CreateRepository(context.Background(), quay.NewRepository{Namespace: testOrg, Repository: name}))
}

func (e *testEnv) writeRobotRole(name string, data map[string]any) *logical.Response {
	e.t.Helper()
	d := map[string]any{"namespace_name": testOrg, "ttl": "1h", "max_ttl": "2h"}
	for k, v := range data {
		d[k] = v
	}
	return e.mustOK(logical.CreateOperation, "roles/"+name, d)
}

func (e *testEnv) robotExists(short string) bool {
	e.t.Helper()
	_, err := e.adminClient.GetRobot(context.Background(), orgNS, short)
	if quay.IsRobotNotFound(err) {
		return false
	}
	require.NoError(e.t, err)
	return true
}

func TestCredsRobot_DockerReadyRobotWithItsGrants(t *testing.T) {
	env := newTestEnv(t)
	env.createRepo("app")
	env.createRepo("lib")
	env.writeRobotRole("ci", map[string]any{
		"repositories":       `{"app":"write","lib":"read"}`,
		"teams":              map[string]any{"builders": "member"},
		"default_permission": "read",
		"description":        "CI pipelines",
	})
	env.quay.ResetCalls()

	resp := env.issue("ci")

	username := resp.Data["username"].(string)
	password := resp.Data["password"].(string)
	assert.Regexp(t, `^acme\+vault_ci_[a-z0-9]{10}$`, username)
	assert.Equal(t, 64, len(password), "robot tokens have 64 characters")
	registry := strings.TrimPrefix(env.server.URL, "http://")
	assert.Equal(t, registry, resp.Data["registry"])
	assert.Equal(t, "organization", resp.Data["namespace_type"])
	assert.Equal(t, testOrg, resp.Data["namespace_name"])

	auth := base64.StdEncoding.EncodeToString([]byte(username + ":" + password))
	assertSameSecret(t, auth, resp.Data["auth"], "auth is base64(username:password)")
	var dockerConfig struct {
		Auths map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	require.NoError(t, json.Unmarshal([]byte(resp.Data["docker_config_json"].(string)), &dockerConfig))
	assert.Equal(t, auth, dockerConfig.Auths[registry].Auth)

	// One call per thing granted: robot, two repositories, one team, the
	// default permission.
	assert.Equal(t, 1, env.quay.Calls("createOrgRobot"))
	assert.Equal(t, 2, env.quay.Calls("changeUserPermissions"))
	assert.Equal(t, 1, env.quay.Calls("updateOrganizationTeamMember"))
	assert.Equal(t, 1, env.quay.Calls("createOrganizationPrototypePermission"))

	// Quay shows the grants, and the marks tidy relies on.
	short := strings.TrimPrefix(username, testOrg+"+")
	robots, err := env.adminClient.ListRobots(context.Background(), orgNS, quay.ListRobotsOptions{Permissions: true})
	require.NoError(t, err)
	var found *quay.Robot
	for i := range robots {
		if robots[i].Name == username {
			found = &robots[i]
		}
	}
	require.NotNil(t, found)
	assert.ElementsMatch(t, []string{"app", "lib"}, found.Repositories)
	require.Len(t, found.Teams, 1)
	assert.Equal(t, "builders", found.Teams[0].Name)
	assert.True(t, strings.HasPrefix(short, robotNamePrefix), short)
	assert.Equal(t, ownerThisCluster, env.b.ownerOf(env.ownMark().cluster, found.Description, false), found.Description)
	assert.Contains(t, found.Description, "CI pipelines")

	internal, _ := json.Marshal(resp.Secret.InternalData)
	assertNoSecretIn(t, string(internal), "lease internal data", password)
	env.assertNoSecretLogged(password)
}

func TestCredsRobot_MissingRepositoryIsAWarningNotAFailure(t *testing.T) {
	env := newTestEnv(t)
	resp := env.writeRobotRole("ci", map[string]any{"repositories": `{"later":"write"}`, "create_repositories": true})
	require.NotNil(t, resp)
	assert.Contains(t, strings.Join(resp.Warnings, " "), "acme/later")

	creds := env.issue("ci")
	assert.Contains(t, strings.Join(creds.Warnings, " "), "acme/later")
	assert.NotEmpty(t, creds.Data["password"])
}

func TestCredsRobot_RevokeDeletesTheRobot(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("ci", nil)
	resp := env.issue("ci")
	short := strings.TrimPrefix(resp.Data["username"].(string), testOrg+"+")
	require.True(t, env.robotExists(short))

	env.mustOK(logical.DeleteOperation, "roles/ci", nil) // revoke must not need the role
	_, err := env.revoke(resp.Secret)
	require.NoError(t, err)
	assert.False(t, env.robotExists(short))

	_, err = env.revoke(resp.Secret)
	require.NoError(t, err, "already gone is revoked")
	index, err := listIssuedRobots(context.Background(), env.storage)
	require.NoError(t, err)
	assert.Empty(t, index)
}

// Leases issued by redhat-cop/vault-plugin-secrets-quay carry only the role
// and the robot's username; they must still revoke, even without the role.
func TestCredsRobot_RevokesLeasesOfRedHatCOPsPlugin(t *testing.T) {
	env := newTestEnv(t)
	_, err := env.adminClient.CreateRobot(context.Background(), orgNS, "ci-abcde", quay.RobotSpec{})
	require.NoError(t, err)

	_, err = env.revoke(&logical.Secret{InternalData: map[string]any{
		"secret_type": "quay_robot", "role": "ci", "username": testOrg + "+ci-abcde",
	}})
	require.NoError(t, err)
	assert.False(t, env.robotExists("ci-abcde"))
}

func TestCredsRobot_ConcurrentReadsGiveDistinctRobots(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("ci", nil)
	var mu sync.Mutex
	names := map[string]bool{}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := env.requestErr(logical.ReadOperation, "creds/ci", nil)
			if !assert.NoError(t, err) || !assert.False(t, resp.IsError()) {
				return
			}
			mu.Lock()
			names[resp.Data["username"].(string)] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	assert.Len(t, names, 20)
}

// A grant that fails after the robot exists: the robot is deleted at once,
// and nothing is left in Quay or in the index.
func TestCredsRobot_FailedGrantLeavesNoRobot(t *testing.T) {
	env := newTestEnv(t)
	env.createRepo("app")
	env.writeRobotRole("ci", map[string]any{"repositories": `{"app":"write"}`})
	env.quay.Faults().FailNext("changeUserPermissions", 10, 503)

	_, err := env.requestErr(logical.ReadOperation, "creds/ci", nil)
	require.Error(t, err)
	env.quay.Faults().Reset()

	robots, err := env.adminClient.ListRobots(context.Background(), orgNS, quay.ListRobotsOptions{})
	require.NoError(t, err)
	assert.Empty(t, robots)
	wals, _ := framework.ListWAL(context.Background(), env.storage)
	assert.Empty(t, wals)
	index, _ := listIssuedRobots(context.Background(), env.storage)
	assert.Empty(t, index)
}

// The robot was created but the request died before its lease existed (the
// create answer came too late): the write-ahead entry's rollback deletes it.
func TestCredsRobot_RollbackDeletesAHalfMadeRobot(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("ci", nil)
	env.writeConfig(map[string]any{"request_timeout": "1s"})
	env.quay.Faults().AddLatency("createOrgRobot", 1500*time.Millisecond)
	_, err := env.requestErr(logical.ReadOperation, "creds/ci", nil)
	require.Error(t, err)
	env.quay.Faults().Reset()

	require.Eventually(t, func() bool {
		robots, err := env.adminClient.ListRobots(context.Background(), orgNS, quay.ListRobotsOptions{})
		return err == nil && len(robots) == 1
	}, 5*time.Second, 20*time.Millisecond, "Quay created the robot after the client gave up")

	env.rollback()
	robots, err := env.adminClient.ListRobots(context.Background(), orgNS, quay.ListRobotsOptions{})
	require.NoError(t, err)
	assert.Empty(t, robots)
}

func TestCredsRobot_UserNamespace(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("mine", map[string]any{"namespace_type": "user", "namespace_name": testAdmin})
	resp := env.issue("mine")
	assert.Regexp(t, `^quayadmin\+vault_mine_`, resp.Data["username"])
	_, err := env.revoke(resp.Secret)
	require.NoError(t, err)

	bad := env.request(logical.CreateOperation, "roles/other", map[string]any{"namespace_type": "user", "namespace_name": "someone"})
	require.True(t, bad.IsError())
	assert.Contains(t, errorMessage(bad), "namespace_name:")
}

// At info the engine logs one line per credential issued, revoked or
// rotated, with the IDs that tie it to Vault (the request ID, which Vault's
// audit log pairs with the lease ID; the lease ID on revoke) and to Quay
// (the robot's name, the token's UUID), never a secret.
func TestLogs_OneInfoLinePerCredential(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("ci", nil)
	env.writeOAuthRole("api", nil)
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg})
	robot := env.issue("ci")
	token := env.issue("api")
	robot.Secret.LeaseID = "quay/creds/ci/LEASE1"
	token.Secret.LeaseID = "quay/creds/api/LEASE2"
	_, err := env.revoke(robot.Secret)
	require.NoError(t, err)
	_, err = env.revoke(token.Secret)
	require.NoError(t, err)
	env.mustOK(logical.UpdateOperation, "rotate-role/pull", nil)

	logs := env.logs.String()
	username := robot.Data["username"].(string)
	tokenID := token.Data["token_id"].(string)
	for _, want := range []string{
		`[INFO]  issued a robot: role=ci robot="` + username + `"`,
		"[INFO]  issued an OAuth token: role=api token_id=" + tokenID,
		`[INFO]  revoked a robot: lease_id=quay/creds/ci/LEASE1 robot="` + username + `"`,
		"[INFO]  revoked an OAuth token: lease_id=quay/creds/api/LEASE2 token_id=" + tokenID,
		`[INFO]  rotated a static robot: role=pull robot="acme+pull"`,
		"[DEBUG] quay: quay call: route=createOrgRobot",
	} {
		assert.True(t, strings.Contains(logs, want), "no log line %q", want)
	}
	env.assertNoSecretLogged(robot.Data["password"].(string), token.Data["token"].(string), env.admin)
}
