package backend

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// federatedEnv is an engine configured as an issuer Quay trusts (through
// the emulator's CA bundle), with a robot acme+ci that has read on acme/app.
type federatedEnv struct {
	*testEnv
	vault *vaultFront
	robot federatedRobot
}

func newFederatedEnv(t *testing.T) *federatedEnv {
	t.Helper()
	vault := newVaultFront(t)
	env := newTestEnv(t, withEmulatorOptions(emulator.WithRootCAs(vault.roots())))
	vault.env.Store(env)
	env.writeFederation(map[string]any{"federation_issuer": vault.issuer()})
	ctx := context.Background()
	acme := quay.Namespace{Kind: quay.NamespaceOrganization, Name: testOrg}
	_, err := env.adminClient.CreateRobot(ctx, acme, "ci", quay.RobotSpec{})
	require.NoError(t, err)
	require.NoError(t, env.quay.CreateRepository(testOrg, "app", false))
	require.NoError(t, env.adminClient.SetUserPermission(ctx, testOrg, "app", "acme+ci", quay.RoleRead))
	return &federatedEnv{testEnv: env, vault: vault, robot: federatedRobot{Role: "ci", NamespaceType: "organization", NamespaceName: testOrg, RobotName: "ci"}}
}

func (e *federatedEnv) federation() []quay.FederationEntry {
	e.t.Helper()
	list, err := e.adminClient.GetRobotFederation(context.Background(), e.robot.namespace(), e.robot.RobotName)
	require.NoError(e.t, err)
	return list
}

// The role write's federation step keeps other issuers' entries, replaces
// this mount's former issuer, and costs one call when nothing changes.
func TestEnsureFederationEntry(t *testing.T) {
	env := newFederatedEnv(t)
	ctx := context.Background()
	ns, short := env.robot.namespace(), env.robot.RobotName
	k8s := quay.FederationEntry{Issuer: "https://kubernetes.example.com", Subject: "system:serviceaccount:ci:builder"}
	old := quay.FederationEntry{Issuer: "https://old-vault.example.com/v1/quay", Subject: "acme+ci"}
	_, err := env.adminClient.SetRobotFederation(ctx, ns, short, []quay.FederationEntry{k8s, old})
	require.NoError(t, err)

	require.NoError(t, ensureFederationEntry(ctx, env.adminClient, ns, short, env.vault.issuer(), old.Issuer))
	assert.Equal(t, []quay.FederationEntry{k8s, {Issuer: env.vault.issuer(), Subject: "acme+ci"}}, env.federation())

	env.quay.ResetCalls()
	require.NoError(t, ensureFederationEntry(ctx, env.adminClient, ns, short, env.vault.issuer(), ""))
	assert.Equal(t, map[string]int{"getOrgRobotFederation": 1}, env.quay.CallCounts(), "in place: one read, no write")

	require.NoError(t, removeFederationEntry(ctx, env.adminClient, ns, short, env.vault.issuer()))
	assert.Equal(t, []quay.FederationEntry{k8s}, env.federation(), "only this mount's entry goes")
	_, err = env.adminClient.SetRobotFederation(ctx, ns, short, []quay.FederationEntry{{Issuer: env.vault.issuer(), Subject: "acme+ci"}})
	require.NoError(t, err)
	env.quay.ResetCalls()
	require.NoError(t, removeFederationEntry(ctx, env.adminClient, ns, short, env.vault.issuer()))
	assert.Empty(t, env.federation())
	assert.Equal(t, 1, env.quay.Calls("deleteOrgRobotFederation"), "the last entry goes with a DELETE")
	require.NoError(t, removeFederationEntry(ctx, env.adminClient, ns, "gone", env.vault.issuer()), "a deleted robot has nothing to withdraw")
}

// A federated read: one Quay call, docker-ready credentials that Quay takes
// for the robot, a lease that ends with Quay's token, nothing to revoke.
func TestIssueFederatedRobot(t *testing.T) {
	env := newFederatedEnv(t)
	ctx := context.Background()
	require.NoError(t, ensureFederationEntry(ctx, env.adminClient, env.robot.namespace(), env.robot.RobotName, env.vault.issuer(), ""))
	env.robot.TTL, env.robot.MaxTTL = 10*time.Minute, 2*time.Hour
	req := &logical.Request{Storage: env.storage}

	env.quay.ResetCalls()
	resp, err := env.b.issueFederatedRobot(ctx, req, env.robot)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"authFederatedRobotIdentity": 1}, env.quay.CallCounts(), "one Quay call per read")

	password := resp.Data["password"].(string)
	assert.Equal(t, "acme+ci", resp.Data["username"])
	assert.Equal(t, env.registryHost(), resp.Data["registry"])
	assertSameSecret(t, base64.StdEncoding.EncodeToString([]byte("acme+ci:"+password)), resp.Data["auth"], "auth")
	var dockerConfig map[string]map[string]map[string]string
	require.NoError(t, json.Unmarshal([]byte(resp.Data["docker_config_json"].(string)), &dockerConfig))
	assertSameSecret(t, resp.Data["auth"], any(dockerConfig["auths"][env.registryHost()]["auth"]), "docker_config_json's auth")
	expires, err := time.Parse(time.RFC3339, resp.Data["expires_at"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, env.clock.Now().Add(time.Hour), expires, 2*time.Second)

	assert.Equal(t, 10*time.Minute, resp.Secret.TTL)
	assert.InDelta(t, time.Hour.Seconds(), resp.Secret.MaxTTL.Seconds(), 2, "the lease's max is Quay's hour, not the role's 2h")
	assert.Equal(t, secretTypeFederatedRobot, resp.Secret.InternalData["secret_type"])
	internal, _ := json.Marshal(resp.Secret.InternalData)
	assertNoSecretIn(t, string(internal), "lease data", password)
	assert.Contains(t, resp.Warnings[0], "revoking the lease does not end it sooner")

	code := env.registryLogin(t, "acme+ci", password)
	assert.Equal(t, http.StatusOK, code, "Quay takes the token as the robot's password")

	// Renewal never goes past Quay's expiry; revocation deletes nothing.
	env.advance(59 * time.Minute)
	renewed, err := env.b.renewFederatedRobot(ctx, &logical.Request{Secret: resp.Secret}, nil)
	require.NoError(t, err)
	assert.InDelta(t, time.Minute.Seconds(), renewed.Secret.TTL.Seconds(), 3)
	env.quay.ResetCalls()
	_, err = env.b.revokeFederatedRobot(ctx, &logical.Request{Secret: resp.Secret}, nil)
	require.NoError(t, err)
	assert.Zero(t, env.quay.TotalCalls())
	assert.Equal(t, http.StatusOK, env.registryLogin(t, "acme+ci", password), "revoking the lease leaves the token to its hour")

	env.advance(2 * time.Minute)
	_, err = env.b.renewFederatedRobot(ctx, &logical.Request{Secret: resp.Secret}, nil)
	assert.ErrorContains(t, err, "expired in Quay")
	assert.Equal(t, http.StatusInternalServerError, env.registryLogin(t, "acme+ci", password), "after its hour Quay refuses it (with Quay 3.18's 500)")
	env.assertNoSecretLogged(password)
}

// Quay's refusals say what to fix.
func TestIssueFederatedRobot_Refusals(t *testing.T) {
	env := newFederatedEnv(t)
	ctx := context.Background()
	_, err := env.b.issueFederatedRobot(ctx, &logical.Request{Storage: env.storage}, env.robot)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Robot does not have federated login configured")
	assert.Contains(t, err.Error(), "write roles/ci again")

	require.NoError(t, ensureFederationEntry(ctx, env.adminClient, env.robot.namespace(), env.robot.RobotName, "https://127.0.0.1:1/v1/quay", ""))
	env.writeFederation(map[string]any{"federation_issuer": "https://127.0.0.1:1/v1/quay"})
	_, err = env.b.issueFederatedRobot(ctx, &logical.Request{Storage: env.storage}, env.robot)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "REQUESTS_CA_BUNDLE")
}

func (e *testEnv) registryHost() string {
	e.t.Helper()
	_, cfg, err := e.b.client(context.Background(), e.storage)
	require.NoError(e.t, err)
	return cfg.registryHost()
}

// registryLogin is docker login's first step: /v2/auth with Basic
// credentials; it returns the status.
func (e *testEnv) registryLogin(t *testing.T, username, password string) int {
	t.Helper()
	host := strings.TrimPrefix(e.server.URL, "http://")
	req, err := http.NewRequest(http.MethodGet, e.server.URL+"/v2/auth?service="+host+"&scope=repository:acme/app:pull", nil)
	require.NoError(t, err)
	req.SetBasicAuth(username, password)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// BenchmarkCredsFederated: a federated read (mint, one exchange at Quay,
// which reads the issuer's documents from Vault over TLS).
func BenchmarkCredsFederated(b *testing.B) {
	vault := newVaultFront(b)
	env := newTestEnv(b, withEmulatorOptions(emulator.WithRootCAs(vault.roots())))
	vault.env.Store(env)
	env.writeFederation(map[string]any{"federation_issuer": vault.issuer()})
	ctx := context.Background()
	robot := federatedRobot{Role: "ci", NamespaceType: "organization", NamespaceName: testOrg, RobotName: "ci"}
	if _, err := env.adminClient.CreateRobot(ctx, robot.namespace(), "ci", quay.RobotSpec{}); err != nil {
		b.Fatal(err)
	}
	if err := ensureFederationEntry(ctx, env.adminClient, robot.namespace(), "ci", vault.issuer(), ""); err != nil {
		b.Fatal(err)
	}
	req := &logical.Request{Storage: env.storage}
	env.quay.ResetCalls()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := env.b.issueFederatedRobot(ctx, req, robot); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(env.quay.TotalCalls())/float64(b.N), "quay-calls/op")
}
