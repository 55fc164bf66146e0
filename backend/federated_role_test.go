package backend

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// newFederationEnv is an engine configured as an issuer that Quay trusts
// (through the emulator's CA bundle), with repositories acme/app and
// acme/lib, and no robot yet.
func newFederationEnv(t testing.TB) (*testEnv, *vaultFront) {
	t.Helper()
	vault := newVaultFront(t)
	env := newTestEnv(t, withEmulatorOptions(emulator.WithRootCAs(vault.roots())))
	vault.env.Store(env)
	env.writeFederation(map[string]any{"federation_issuer": vault.issuer()})
	env.createRepo("app")
	env.createRepo("lib")
	return env, vault
}

func (e *testEnv) writeFederatedRole(name string, data map[string]any) *logical.Response {
	e.t.Helper()
	d := map[string]any{"credential_type": "federated", "namespace_name": testOrg, "ttl": "10m", "max_ttl": "2h"}
	for k, v := range data {
		d[k] = v
	}
	return e.mustOK(logical.CreateOperation, "roles/"+name, d)
}

func (e *testEnv) federationOf(short string) []quay.FederationEntry {
	e.t.Helper()
	list, err := e.adminClient.GetRobotFederation(context.Background(), orgNS, short)
	require.NoError(e.t, err)
	return list
}

// The whole life of a federated role: the write creates the robot with
// its grants and federation entry; each read is one Quay call that returns
// docker-ready credentials Quay takes for the robot, with a lease that ends
// with Quay's token; revoking it deletes nothing; deleting the role deletes
// the robot the engine created, which ends its tokens at once.
func TestFederatedRoles_CreateReadRevokeDelete(t *testing.T) {
	env, vault := newFederationEnv(t)
	env.writeFederatedRole("ci", map[string]any{"repositories": `{"app":"write"}`, "description": "CI pipelines"})

	robot, err := env.adminClient.GetRobot(context.Background(), orgNS, "ci")
	require.NoError(t, err)
	kind, role, ok := describedRole(robot.Description)
	assert.True(t, ok && kind == robotKindFederated && role == "ci", "the robot carries this mount's marker: %q", robot.Description)
	assert.Contains(t, robot.Description, "CI pipelines")
	repos, _, _ := env.grantsOf("acme+ci")
	assert.Equal(t, []string{"app"}, repos)
	assert.Equal(t, []quay.FederationEntry{{Issuer: vault.issuer(), Subject: "acme+ci"}}, env.federationOf("ci"))

	read := env.mustOK(logical.ReadOperation, "roles/ci", nil)
	assert.Equal(t, "federated", read.Data["credential_type"])
	assert.Equal(t, "ci", read.Data["robot_name"])
	assert.Equal(t, "acme+ci", read.Data["username"])
	assert.Equal(t, true, read.Data["created_by_vault"])
	assert.Equal(t, vault.issuer(), read.Data["federation_issuer"])
	assert.Equal(t, map[string]string{"app": "write"}, read.Data["repositories"])

	env.quay.ResetCalls()
	resp := env.issue("ci")
	assert.Equal(t, map[string]int{"authFederatedRobotIdentity": 1}, env.quay.CallCounts(), "one Quay call per read")
	password := resp.Data["password"].(string)
	assert.Equal(t, "acme+ci", resp.Data["username"])
	assert.Equal(t, secretTypeFederatedRobot, resp.Secret.InternalData["secret_type"])
	assert.Equal(t, 10*time.Minute, resp.Secret.TTL)
	assert.InDelta(t, time.Hour.Seconds(), resp.Secret.MaxTTL.Seconds(), 2, "the lease ends with Quay's token, not the role's 2h")
	internal, _ := json.Marshal(resp.Secret.InternalData)
	assertNoSecretIn(t, string(internal), "lease data", password)
	assert.Contains(t, resp.Warnings[0], "revoking the lease does not end it sooner")
	assert.Equal(t, http.StatusOK, env.registryLogin(t, "acme+ci", password))

	// Renewing goes through Vault's framework to the lease type's handler.
	renewed, err := env.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RenewOperation, Storage: env.storage, Secret: resp.Secret,
	})
	require.NoError(t, err)
	assert.LessOrEqual(t, renewed.Secret.TTL, time.Hour)
	assert.Empty(t, renewed.Data, "a renewal answers with the lease only")

	env.quay.ResetCalls()
	_, err = env.revoke(resp.Secret)
	require.NoError(t, err)
	assert.Zero(t, env.quay.TotalCalls(), "revoking has nothing to delete")
	assert.Equal(t, http.StatusOK, env.registryLogin(t, "acme+ci", password), "the token lives its hour")

	deleted := env.mustOK(logical.DeleteOperation, "roles/ci", nil)
	assert.Nil(t, deleted, "nothing to warn about: the robot is gone")
	assert.False(t, env.robotExists("ci"), "the engine created the robot, so it deletes it")
	assert.NotEqual(t, http.StatusOK, env.registryLogin(t, "acme+ci", password), "a deleted robot's tokens end at once")
	assert.Nil(t, env.mustOK(logical.ReadOperation, "roles/ci", nil))
	env.assertNoSecretLogged(password)
}

// An adopted robot keeps the entries of other issuers; deleting the role
// withdraws only this mount's entry and keeps the robot, and says that
// tokens already exchanged outlive it.
func TestFederatedRoles_AdoptedRobotKeepsOtherIssuers(t *testing.T) {
	env, vault := newFederationEnv(t)
	ctx := context.Background()
	_, err := env.adminClient.CreateRobot(ctx, orgNS, "builder", quay.RobotSpec{Description: "the team's own"})
	require.NoError(t, err)
	k8s := quay.FederationEntry{Issuer: "https://kubernetes.example.com", Subject: "system:serviceaccount:ci:builder"}
	_, err = env.adminClient.SetRobotFederation(ctx, orgNS, "builder", []quay.FederationEntry{k8s})
	require.NoError(t, err)

	env.writeFederatedRole("ci", map[string]any{"robot_name": "acme+builder", "repositories": `{"app":"read"}`})
	read := env.mustOK(logical.ReadOperation, "roles/ci", nil)
	assert.Equal(t, "builder", read.Data["robot_name"], "the <namespace>+ form is accepted")
	assert.Equal(t, false, read.Data["created_by_vault"])
	assert.Equal(t, []quay.FederationEntry{k8s, {Issuer: vault.issuer(), Subject: "acme+builder"}}, env.federationOf("builder"))

	password := env.issue("ci").Data["password"].(string)
	resp := env.mustOK(logical.DeleteOperation, "roles/ci", nil)
	require.NotNil(t, resp)
	assert.Contains(t, resp.Warnings[0], "stay valid until Quay expires them")
	assert.True(t, env.robotExists("builder"), "an adopted robot is kept")
	assert.Equal(t, []quay.FederationEntry{k8s}, env.federationOf("builder"), "only this mount's entry goes")
	assert.Equal(t, http.StatusOK, env.registryLogin(t, "acme+builder", password), "Quay does not revoke exchanged tokens")
	env.assertNoSecretLogged(password)
}

// A robot the engine created but someone replaced since (deleted, and made
// again under its name without the engine's marker) is not the engine's to
// delete: only this mount's entry goes.
func TestFederatedRoles_DeleteKeepsARobotSomeoneReplaced(t *testing.T) {
	env, vault := newFederationEnv(t)
	ctx := context.Background()
	env.writeFederatedRole("ci", nil)
	require.NoError(t, env.adminClient.DeleteRobot(ctx, orgNS, "ci"))
	_, err := env.adminClient.CreateRobot(ctx, orgNS, "ci", quay.RobotSpec{Description: "a person's robot"})
	require.NoError(t, err)
	_, err = env.adminClient.SetRobotFederation(ctx, orgNS, "ci", []quay.FederationEntry{{Issuer: vault.issuer(), Subject: "acme+ci"}})
	require.NoError(t, err)

	resp := env.mustOK(logical.DeleteOperation, "roles/ci", nil)
	require.NotNil(t, resp)
	assert.Contains(t, resp.Warnings[0], "no longer carries this mount's marker")
	assert.True(t, env.robotExists("ci"))
	assert.Empty(t, env.federationOf("ci"))
}

// A failed delete keeps the role, so it can be retried.
func TestFederatedRoles_FailedDeleteKeepsTheRole(t *testing.T) {
	env, _ := newFederationEnv(t)
	env.writeFederatedRole("ci", nil)
	env.quay.Faults().FailNext("deleteOrgRobot", 10, http.StatusServiceUnavailable)
	_, err := env.requestErr(logical.DeleteOperation, "roles/ci", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the role is kept")
	assert.NotNil(t, env.mustOK(logical.ReadOperation, "roles/ci", nil))
	assert.True(t, env.robotExists("ci"))

	env.quay.Faults().Reset()
	env.mustOK(logical.DeleteOperation, "roles/ci", nil)
	assert.False(t, env.robotExists("ci"))
}

// Bad input is a 400 that names the field, and changes nothing: no role
// stored, no robot created.
func TestFederatedRoles_Refusals(t *testing.T) {
	env, _ := newFederationEnv(t)
	env.mustOK(logical.CreateOperation, "static-roles/pull", map[string]any{"namespace_name": testOrg})
	env.writeFederatedRole("taken", map[string]any{"robot_name": "shared"})
	env.writeRobotRole("dynamic", nil)

	for _, tc := range []struct {
		name, says string
		data       map[string]any
	}{
		{"bad1", "robot_name: \"Not_Valid\" is not a valid Quay robot name", map[string]any{"robot_name": "Not_Valid"}},
		{"bad2", "scopes: applies only to credential_type=oauth_token", map[string]any{"scopes": "repo:read"}},
		{"bad3", "client_id: applies only to credential_type=oauth_token", map[string]any{"client_id": "abc"}},
		{"bad4", "robot_name: robot acme+pull already belongs to static role \"pull\"", map[string]any{"robot_name": "pull"}},
		{"bad5", "robot_name: robot acme+shared already belongs to federated role \"taken\"", map[string]any{"robot_name": "shared"}},
		{"bad6", "teams: teams exist only in organizations", map[string]any{"namespace_type": "user", "namespace_name": testAdmin, "teams": `{"t1":"member"}`}},
		{"bad7", "namespace_name: Quay has no organization \"nope\"", map[string]any{"namespace_name": "nope"}},
		{"bad8", "ttl: (2h0m0s) must not exceed max_ttl", map[string]any{"ttl": "2h", "max_ttl": "1h"}},
	} {
		data := map[string]any{"credential_type": "federated", "namespace_name": testOrg}
		for k, v := range tc.data {
			data[k] = v
		}
		resp, err := env.requestErr(logical.CreateOperation, "roles/"+tc.name, data)
		require.NoError(t, err, tc.name)
		assert.Contains(t, errorMessage(resp), tc.says, tc.name)
		assert.Nil(t, env.mustOK(logical.ReadOperation, "roles/"+tc.name, nil), "%s: nothing stored", tc.name)
	}
	assert.False(t, env.robotExists("bad1"))

	// Identity and type are fixed once the role exists.
	for _, tc := range []struct{ role, field, value, says string }{
		{"taken", "robot_name", "other", "robot_name: cannot change on an existing federated role"},
		{"taken", "namespace_type", "user", "namespace_type: cannot change on an existing federated role"},
		{"taken", "credential_type", "robot", "credential_type: role \"taken\" is federated and owns robot acme+shared"},
		{"dynamic", "credential_type", "federated", "credential_type: role \"dynamic\" issues robot credentials and cannot become federated"},
	} {
		resp, err := env.requestErr(logical.UpdateOperation, "roles/"+tc.role, map[string]any{tc.field: tc.value})
		require.NoError(t, err)
		assert.Contains(t, errorMessage(resp), tc.says, "%s %s", tc.role, tc.field)
	}
	resp, err := env.requestErr(logical.CreateOperation, "roles/dyn2", map[string]any{"namespace_name": testOrg, "robot_name": "x1"})
	require.NoError(t, err)
	assert.Contains(t, errorMessage(resp), "robot_name: applies only to credential_type=federated")

	// A dynamic robot belongs to its lease.
	leased := env.issue("dynamic").Data["username"].(string)
	resp, err = env.requestErr(logical.CreateOperation, "roles/grab", map[string]any{"credential_type": "federated", "namespace_name": testOrg, "robot_name": leased})
	require.NoError(t, err)
	assert.Contains(t, errorMessage(resp), "was issued by role \"dynamic\" and is deleted when its lease ends")
	assert.Empty(t, env.federationOf(strings.TrimPrefix(leased, testOrg+"+")), "nothing was set on it")

	// Without the issuer there is nothing Quay could trust.
	env.mustOK(logical.DeleteOperation, "config/federation", nil)
	resp, err = env.requestErr(logical.CreateOperation, "roles/late", map[string]any{"credential_type": "federated", "namespace_name": testOrg})
	require.NoError(t, err)
	assert.Contains(t, errorMessage(resp), `write "config/federation" first`)
	assert.False(t, env.robotExists("late"))
	_, err = env.requestErr(logical.ReadOperation, "creds/taken", nil)
	assert.ErrorContains(t, err, `write "config/federation" first`)
	assert.Equal(t, 400, codeOf(t, err), "a 400, not a 500")
}

// Updates re-apply what Quay lost (a robot deleted by hand, a grant or the
// federation entry removed) and withdraw what the role no longer grants.
func TestFederatedRoles_UpdateHealsAndWithdraws(t *testing.T) {
	env, vault := newFederationEnv(t)
	ctx := context.Background()
	env.writeFederatedRole("ci", map[string]any{"repositories": `{"app":"write","lib":"read"}`, "default_permission": "read"})

	env.mustOK(logical.UpdateOperation, "roles/ci", map[string]any{"repositories": `{"app":"read"}`, "default_permission": ""})
	repos, _, def := env.grantsOf("acme+ci")
	assert.Equal(t, []string{"app"}, repos, "lib is no longer granted")
	assert.Empty(t, def)

	require.NoError(t, env.adminClient.DeleteUserPermission(ctx, testOrg, "app", "acme+ci"))
	require.NoError(t, env.adminClient.DeleteRobotFederation(ctx, orgNS, "ci"))
	env.mustOK(logical.UpdateOperation, "roles/ci", nil)
	repos, _, _ = env.grantsOf("acme+ci")
	assert.Equal(t, []string{"app"}, repos, "the grant removed by hand is back")
	assert.Equal(t, []quay.FederationEntry{{Issuer: vault.issuer(), Subject: "acme+ci"}}, env.federationOf("ci"))

	require.NoError(t, env.adminClient.DeleteRobot(ctx, orgNS, "ci"))
	_, err := env.requestErr(logical.ReadOperation, "creds/ci", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "write roles/ci again", "the read says how to heal")
	resp := env.mustOK(logical.UpdateOperation, "roles/ci", nil)
	assert.Contains(t, resp.Warnings, "robot acme+ci was missing in Quay and was created again")
	assert.True(t, env.robotExists("ci"))
	password := env.issue("ci").Data["password"].(string)
	code := env.registryLogin(t, "acme+ci", password)
	assert.Equal(t, http.StatusOK, code, "the recreated robot works")

	// A failure halfway through a first write leaves no robot behind.
	env.quay.Faults().FailNext("createOrgRobotFederation", 10, http.StatusServiceUnavailable)
	_, err = env.requestErr(logical.CreateOperation, "roles/cd", map[string]any{"credential_type": "federated", "namespace_name": testOrg})
	require.Error(t, err)
	env.quay.Faults().Reset()
	assert.False(t, env.robotExists("cd"), "the robot the failed write created is deleted")
	assert.Nil(t, env.mustOK(logical.ReadOperation, "roles/cd", nil))
	wals, err := framework.ListWAL(ctx, env.storage)
	require.NoError(t, err)
	assert.Empty(t, wals, "and its write-ahead entry with it")
}

// When federation_issuer changes, the robots follow: at once from the
// config write, or, if Quay failed then, from the periodic function.
func TestFederatedRoles_FollowTheIssuer(t *testing.T) {
	env, vault := newFederationEnv(t)
	k8s := quay.FederationEntry{Issuer: "https://kubernetes.example.com", Subject: "system:serviceaccount:ci:builder"}
	env.writeFederatedRole("ci", nil)
	_, err := env.adminClient.SetRobotFederation(context.Background(), orgNS, "ci",
		[]quay.FederationEntry{k8s, {Issuer: vault.issuer(), Subject: "acme+ci"}})
	require.NoError(t, err)

	// A second front on another port: another issuer URL for the same
	// mount (httptest's servers share one certificate).
	second := newVaultFront(t)
	second.env.Store(env)
	env.quay.Faults().FailNext("createOrgRobotFederation", 10, http.StatusServiceUnavailable)
	resp := env.writeFederation(map[string]any{"federation_issuer": second.issuer()})
	require.NotEmpty(t, resp.Warnings)
	assert.Contains(t, resp.Warnings[0], "retries every minute")
	assert.Contains(t, resp.Warnings[0], `role "ci"`)
	assert.NotContains(t, resp.Warnings[0], "error occurred", "no Go multi-error wrapper in an answer")
	env.quay.Faults().Reset()
	_, err = env.requestErr(logical.ReadOperation, "creds/ci", nil)
	assert.ErrorContains(t, err, "not configured for this robot", "until the robot trusts the new URL")

	env.periodic()
	assert.Equal(t, []quay.FederationEntry{k8s, {Issuer: second.issuer(), Subject: "acme+ci"}}, env.federationOf("ci"),
		"the old issuer's entry is replaced; the other issuer's stays")
	assert.Equal(t, second.issuer(), env.mustOK(logical.ReadOperation, "roles/ci", nil).Data["federation_issuer"])
	env.issue("ci")

	env.quay.ResetCalls()
	env.periodic()
	assert.Zero(t, env.quay.Calls("getOrgRobotFederation"), "nothing to do once in step")

	env.writeFederation(map[string]any{"federation_issuer": vault.issuer()})
	assert.Equal(t, []quay.FederationEntry{k8s, {Issuer: vault.issuer(), Subject: "acme+ci"}}, env.federationOf("ci"), "the config write itself moves them")
	env.issue("ci")
}

// Tidy never takes a federated role's robot for an orphan, even one named
// like the engine's dynamic robots, and neither does a write-ahead entry's
// rollback that outlived the role's write.
func TestFederatedRoles_TidyAndRollbackLeaveTheRobot(t *testing.T) {
	env, _ := newFederationEnv(t)
	ctx := context.Background()
	env.writeFederatedRole("ci", map[string]any{"robot_name": "vault_ci"})
	for range 3 {
		env.issue("ci")
	}

	dry := env.mustOK(logical.UpdateOperation, "tidy", map[string]any{"dry_run": true})
	assert.Empty(t, tidyList(dry, "orphans_found"))
	assert.EqualValues(t, 1, dry.Data["robots_owned"])
	tidied := env.mustOK(logical.UpdateOperation, "tidy", nil)
	assert.Empty(t, tidyList(tidied, "orphans_deleted"))

	walID, err := framework.PutWAL(ctx, env.storage, walKindRobot, &robotWAL{NamespaceType: "organization", NamespaceName: testOrg, ShortName: "vault_ci", InstanceID: "gone"})
	require.NoError(t, err)
	entry, err := framework.GetWAL(ctx, env.storage, walID)
	require.NoError(t, err)
	require.NoError(t, env.b.walRollback(ctx, &logical.Request{Storage: env.storage}, walKindRobot, entry.Data))
	assert.True(t, env.robotExists("vault_ci"), "the role owns the robot")
}

// A user namespace works when the root credential acts as that user, and
// is refused otherwise.
func TestFederatedRoles_UserNamespace(t *testing.T) {
	env, vault := newFederationEnv(t)
	env.writeFederatedRole("mine", map[string]any{"namespace_type": "user", "namespace_name": testAdmin})
	user := quay.Namespace{Kind: quay.NamespaceUser, Name: testAdmin}
	list, err := env.adminClient.GetRobotFederation(context.Background(), user, "mine")
	require.NoError(t, err)
	assert.Equal(t, []quay.FederationEntry{{Issuer: vault.issuer(), Subject: testAdmin + "+mine"}}, list)
	creds := env.issue("mine")
	assert.Equal(t, testAdmin+"+mine", creds.Data["username"])

	resp, err := env.requestErr(logical.CreateOperation, "roles/theirs", map[string]any{"credential_type": "federated", "namespace_type": "user", "namespace_name": "someone"})
	require.NoError(t, err)
	assert.Contains(t, errorMessage(resp), "namespace_name:")
	assert.Contains(t, errorMessage(resp), testAdmin)

	env.mustOK(logical.DeleteOperation, "roles/mine", nil)
	_, err = env.adminClient.GetRobot(context.Background(), user, "mine")
	assert.True(t, quay.IsRobotNotFound(err))
}

// BenchmarkCredsRead: a creds read through the backend's request handling,
// federated next to a dynamic robot with one repository grant. quay-calls/op
// counts the read's Quay calls (the dynamic robot's revoke, one more call,
// comes later and is not counted).
func BenchmarkCredsRead(b *testing.B) {
	env, _ := newFederationEnv(b)
	env.writeFederatedRole("federated", map[string]any{"repositories": `{"app":"write"}`})
	env.writeRobotRole("dynamic", map[string]any{"repositories": `{"app":"write"}`})
	for _, role := range []string{"federated", "dynamic"} {
		b.Run(role, func(b *testing.B) {
			env.quay.ResetCalls()
			b.ReportAllocs()
			for b.Loop() {
				resp, err := env.requestErr(logical.ReadOperation, "creds/"+role, nil)
				if err != nil || resp == nil || resp.Secret == nil {
					b.Fatalf("creds/%s: %v %v", role, err, errorMessage(resp))
				}
			}
			b.ReportMetric(float64(env.quay.TotalCalls())/float64(b.N), "quay-calls/op")
		})
	}
}
