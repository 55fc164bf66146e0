package backend

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/version"
)

// Vault probes the binary at registration with an empty config; the factory
// must succeed and report the stamped version.
func TestFactory_EmptyConfigReportsVersion(t *testing.T) {
	b, err := Factory(context.Background(), &logical.BackendConfig{})
	require.NoError(t, err)
	assert.Equal(t, logical.TypeLogical, b.Type())
	versioner, ok := b.(logical.PluginVersioner)
	require.True(t, ok)
	assert.Equal(t, version.Version, versioner.PluginVersion().Version)
	assert.True(t, strings.HasPrefix(versioner.PluginVersion().Version, "v"), "Vault needs the leading v")
}

func TestConfig_WriteVerifiesTokenAndReadNeverShowsIt(t *testing.T) {
	env := newTestEnv(t, withoutConfig())

	resp := env.writeConfig(map[string]any{"url": env.server.URL, "token": env.admin})
	require.NotNil(t, resp)
	assert.Equal(t, testAdmin, resp.Data["root_token_owner"], "the write says whose token it is")

	read := env.mustOK(logical.ReadOperation, "config", nil)
	assert.Equal(t, env.server.URL, read.Data["url"])
	assert.Equal(t, testAdmin, read.Data["root_token_owner"])
	assert.Equal(t, true, read.Data["root_token_super_user"])
	assert.Equal(t, fingerprint(env.admin), read.Data["root_token_fingerprint"])
	assert.Regexp(t, `^sha256:[0-9a-f]{16}$`, read.Data["root_token_fingerprint"])
	assertNoKey(t, read.Data, "token")

	raw, err := json.Marshal(read.Data)
	require.NoError(t, err)
	assertNoSecretIn(t, string(raw), "config read", env.admin)
	env.assertNoSecretLogged(env.admin)
}

func TestConfig_BadInputNamesTheField(t *testing.T) {
	env := newTestEnv(t, withoutConfig())
	wrongToken := strings.Repeat("A", 40)

	cases := []struct {
		name  string
		data  map[string]any
		field string
	}{
		{"missing token", map[string]any{"url": env.server.URL}, "token:"},
		{"token Quay rejects", map[string]any{"url": env.server.URL, "token": wrongToken}, "token:"},
		{"token with whitespace", map[string]any{"url": env.server.URL, "token": "abc def"}, "token:"},
		{"unreachable url", map[string]any{"url": "http://127.0.0.1:1", "token": env.admin}, "url:"},
		{"url without scheme", map[string]any{"url": "quay.example.com", "token": env.admin}, "url:"},
		{"ftp url", map[string]any{"url": "ftp://quay.example.com", "token": env.admin}, "url:"},
		{"garbage CA", map[string]any{"url": env.server.URL, "token": env.admin, "ca_certificate": "not a pem"}, "ca_certificate:"},
		{"timeout too long", map[string]any{"url": env.server.URL, "token": env.admin, "request_timeout": "10m"}, "request_timeout:"},
		{"timeout not a duration", map[string]any{"url": env.server.URL, "token": env.admin, "request_timeout": "soon"}, "request_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := env.request(logical.UpdateOperation, "config", tc.data)
			require.True(t, resp.IsError(), "expected a 400")
			assert.Contains(t, errorMessage(resp), tc.field)
			assert.NotContains(t, errorMessage(resp), env.admin)
		})
	}
	// Nothing was stored by the failed writes.
	read := env.request(logical.ReadOperation, "config", nil)
	assert.Nil(t, read)
}

// A token without user:read cannot tell whose it is; the write says so.
func TestConfig_TokenWithoutUserReadScope(t *testing.T) {
	env := newTestEnv(t, withoutConfig())
	ctx := context.Background()
	app, err := env.adminClient.CreateApplication(ctx, testOrg, quay.NewApplication{Name: "narrow"})
	require.NoError(t, err)
	narrow, err := env.adminClient.CreateApplicationToken(ctx, testOrg, app.ClientID, quay.NewApplicationToken{Name: "narrow", Scopes: []string{"repo:read"}})
	require.NoError(t, err)

	resp := env.request(logical.UpdateOperation, "config", map[string]any{"url": env.server.URL, "token": narrow.Token})
	require.True(t, resp.IsError())
	assert.Contains(t, errorMessage(resp), "token:")
	assert.Contains(t, errorMessage(resp), "user:read")
}

func TestConfig_VerifyConnectionOffSavesWithWarning(t *testing.T) {
	env := newTestEnv(t, withoutConfig())
	resp := env.writeConfig(map[string]any{"url": "http://127.0.0.1:1", "token": env.admin, "verify_connection": false})
	require.NotEmpty(t, resp.Warnings)
	read := env.mustOK(logical.ReadOperation, "config", nil)
	assert.Equal(t, "http://127.0.0.1:1", read.Data["url"])
	assert.Equal(t, "", read.Data["root_token_owner"], "unverified: owner unknown")
}

func TestConfig_UpdateKeepsFieldsNotGiven(t *testing.T) {
	env := newTestEnv(t)
	env.writeConfig(map[string]any{"request_timeout": "45s"})
	read := env.mustOK(logical.ReadOperation, "config", nil)
	assert.EqualValues(t, 45, read.Data["request_timeout"])
	assert.Equal(t, fingerprint(env.admin), read.Data["root_token_fingerprint"], "token kept")
	assert.Equal(t, env.server.URL, read.Data["url"], "url kept")
}

func TestConfig_TLSVerificationIsOnUnlessTurnedOff(t *testing.T) {
	env := newTestEnv(t, withTLS())

	resp := env.request(logical.UpdateOperation, "config", map[string]any{"url": env.server.URL, "token": env.admin})
	require.True(t, resp.IsError(), "an untrusted certificate must be refused")
	assert.Contains(t, errorMessage(resp), "url:")
	assert.Contains(t, errorMessage(resp), "certificate")

	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: env.server.Certificate().Raw}))
	resp = env.writeConfig(map[string]any{"url": env.server.URL, "token": env.admin, "ca_certificate": caPEM})
	assert.Empty(t, resp.Warnings)
	assert.Equal(t, testAdmin, resp.Data["root_token_owner"])

	resp = env.writeConfig(map[string]any{"ca_certificate": "", "disable_ssl_verification": true})
	require.NotEmpty(t, resp.Warnings, "turning verification off is worth a warning")
	assert.Contains(t, resp.Warnings[0], "disable_ssl_verification")
}

func TestConfig_DeleteStopsIssuing(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", nil)
	env.mustOK(logical.DeleteOperation, "config", nil)

	resp := env.request(logical.ReadOperation, "creds/ci", nil)
	require.True(t, resp.IsError(), "a 400, not a server error")
	assert.Contains(t, errorMessage(resp), "not configured")
}

// Writing the same config again (vault-config-operator rewrites it on every
// reconcile) must keep working.
func TestConfig_RewriteIsIdempotent(t *testing.T) {
	env := newTestEnv(t)
	for i := 0; i < 3; i++ {
		env.writeConfig(map[string]any{"url": env.server.URL, "token": env.admin, "ca_certificate": "", "disable_ssl_verification": false})
	}
	read := env.mustOK(logical.ReadOperation, "config", nil)
	assert.Equal(t, fingerprint(env.admin), read.Data["root_token_fingerprint"])
}
