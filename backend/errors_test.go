package backend

import (
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// codeOf is the HTTP status a Vault client would see for an answer.
func codeOf(t *testing.T, err error) int {
	t.Helper()
	coded, ok := err.(logical.HTTPCodedError)
	require.True(t, ok, "%T: %v", err, err)
	return coded.Code()
}

// Every path that needs Quay answers the same 400 while config is unset.
// static-creds and rotate-role used to answer 500, and the message differed
// from path to path.
func TestErrors_NotConfiguredIsOne400Everywhere(t *testing.T) {
	env := newTestEnv(t, withoutConfig())
	require.NoError(t, putStaticRole(t.Context(), env.storage, &staticRole{Name: "pull", NamespaceType: "organization", NamespaceName: testOrg, RobotName: "pull"}))
	require.NoError(t, env.b.putRole(t.Context(), env.storage, &roleEntry{Name: "ci", CredentialType: credentialTypeRobot, NamespaceType: "organization", NamespaceName: testOrg}))
	for _, tc := range []struct {
		op   logical.Operation
		path string
		data map[string]any
	}{
		{logical.ReadOperation, "creds/ci", nil},
		{logical.ReadOperation, "static-creds/pull", nil},
		{logical.UpdateOperation, "rotate-role/pull", nil},
		{logical.UpdateOperation, "tidy", nil},
		{logical.UpdateOperation, "config/rotate-root", nil},
		{logical.CreateOperation, "roles/api", map[string]any{"credential_type": "oauth_token", "namespace_name": testOrg, "scopes": "repo:read"}},
		{logical.CreateOperation, "static-roles/other", map[string]any{"namespace_name": testOrg}},
	} {
		_, err := env.requestErr(tc.op, tc.path, tc.data)
		require.Error(t, err, tc.path)
		assert.Equal(t, 400, codeOf(t, err), tc.path)
		assert.Equal(t, `the Quay secrets engine is not configured: write "config" first`, err.Error(), tc.path)
	}
}

// A tidy refused because another runs is a 409 whose message is the error
// (Vault clients show it), not response data.
func TestErrors_TidyAlreadyRunningIsA409WithItsMessage(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("ci", nil)
	env.quay.Faults().Add(emulator.Fault{Route: "getOrgRobots", Count: 1, Latency: 500 * time.Millisecond})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		env.mustOK(logical.UpdateOperation, "tidy", nil)
	}()
	require.Eventually(t, func() bool { return env.quay.Calls("getOrgRobots") == 1 }, 5*time.Second, 5*time.Millisecond)
	_, err := env.requestErr(logical.UpdateOperation, "tidy", nil)
	wg.Wait()
	require.Error(t, err)
	assert.Equal(t, 409, codeOf(t, err))
	assert.Equal(t, "a tidy is already running on this mount; read quay/tidy for the last report", err.Error())
}

// Vault reads durations in whole seconds: "500ms" was silently 0, which
// means "default" (request_timeout became 30 s) or "off" for most fields.
func TestErrors_SubSecondDurationsAreRefusedNamingTheField(t *testing.T) {
	env := newTestEnv(t)
	for _, tc := range []struct {
		path  string
		field string
		value any
	}{
		{"config", "request_timeout", "500ms"},
		{"config", "tidy_interval", "0.5s"},
		{"config", "root_token_ttl", 0.5},
		{"roles/ci", "ttl", "900ms"},
		{"static-roles/pull", "rotation_period", "10ms"},
	} {
		data := map[string]any{tc.field: tc.value, "namespace_name": testOrg}
		if tc.path == "config" {
			data = map[string]any{tc.field: tc.value}
		}
		resp := env.request(logical.UpdateOperation, tc.path, data)
		require.True(t, resp.IsError(), "%s %s", tc.path, tc.field)
		assert.Contains(t, errorMessage(resp), tc.field+": must be whole seconds")
	}
	read := env.mustOK(logical.ReadOperation, "config", nil)
	assert.EqualValues(t, 30, read.Data["request_timeout"], "the refused writes changed nothing")
}
