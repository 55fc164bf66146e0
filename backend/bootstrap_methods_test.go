package backend

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator/oidcprovider"
)

func TestBootstrap_PasswordThroughDirectOAuth(t *testing.T) {
	env := newTestEnv(t, withEmptyQuay(`
SUPER_USERS: [svc-vault]
FEATURE_MAILING: false
DIRECT_OAUTH_CLIENTID_WHITELIST: [VAULTCLIENT000000000]
`))
	require.NoError(t, env.quay.CreateUser("svc-vault", "service-account-pw", "svc@example.com"))
	require.NoError(t, env.quay.CreateOrganization("automation", "svc-vault"))
	require.NoError(t, env.quay.CreateApplication("automation", "vault", "VAULTCLIENT000000000", ""))
	require.NoError(t, env.quay.CreateOrganization(testOrg, "svc-vault"))

	resp := env.writeConfig(map[string]any{
		"url": env.server.URL, "bootstrap": "password", "username": "svc-vault", "password": "service-account-pw",
		"oauth_client_id": "VAULTCLIENT000000000", "root_organization": "vault-root",
	})
	assert.Empty(t, resp.Warnings, "the direct-OAuth token was identified and revoked")
	read := env.mustOK(logical.ReadOperation, "config", nil)
	assert.Equal(t, "password", read.Data["bootstrap"])
	assert.Equal(t, "svc-vault", read.Data["root_token_owner"])
	assert.Equal(t, true, read.Data["password_set"])
	raw, _ := json.Marshal(read.Data)
	assert.NotContains(t, string(raw), "service-account-pw")
	env.assertNoSecretLogged("service-account-pw", env.storedConfig().Token)

	env.writeOAuthRole("ci", nil)
	env.issue("ci")

	bad := env.request(logical.UpdateOperation, "config", map[string]any{"password": "wrong-password"})
	require.True(t, bad.IsError())
	assert.Contains(t, errorMessage(bad), "password:")
	assert.NotContains(t, errorMessage(bad), "wrong-password")
}

func TestBootstrap_OIDCStoresNoQuayToken(t *testing.T) {
	idp, err := oidcprovider.New(oidcprovider.Config{
		Issuer:  oidcprovider.IssuerV2("tenant-1"),
		Clients: []oidcprovider.Client{{ID: "vault", Secret: "idp-client-secret", Subject: "vault-sp"}},
	})
	require.NoError(t, err)
	idpSrv := httptest.NewServer(idp)
	t.Cleanup(idpSrv.Close)
	idp.BaseURL = idpSrv.URL

	env := newTestEnv(t, withEmptyQuay(`
FEATURE_MAILING: false
SUPER_USERS: [vault-sp]
AZURE_LOGIN_CONFIG:
  DEBUGGING: true
  CLIENT_ID: quay-web
  OIDC_SERVER: `+idpSrv.URL+`/
  OIDC_ISSUERS: [https://login.microsoftonline.com/tenant-1/v2.0]
  OIDC_AUDIENCES: [api://quay-api]
  OIDC_ALLOWED_CLIENTS: [vault]
`))
	base := map[string]any{"url": env.server.URL, "bootstrap": "oidc", "oidc_token_url": idp.TokenURL(),
		"oidc_client_id": "vault", "oidc_client_secret": "idp-client-secret", "oidc_scopes": "api://quay-api/.default"}

	// The provider issues a token Quay does not accept (wrong audience).
	wrongAud := map[string]any{}
	for k, v := range base {
		wrongAud[k] = v
	}
	wrongAud["oidc_scopes"] = "api://elsewhere/.default"
	resp := env.request(logical.UpdateOperation, "config", wrongAud)
	require.True(t, resp.IsError())
	assert.Contains(t, errorMessage(resp), "oidc_client_id:")
	assert.Contains(t, strings.ToLower(errorMessage(resp)), "audience")

	env.writeConfig(base)
	read := env.mustOK(logical.ReadOperation, "config", nil)
	assert.Equal(t, "oidc", read.Data["bootstrap"])
	assert.Equal(t, "vault-sp", read.Data["root_token_owner"])
	assert.NotContains(t, read.Data, "root_token_fingerprint", "no Quay token is stored")
	assert.Empty(t, env.storedConfig().Token)
	raw, _ := json.Marshal(read.Data)
	assert.NotContains(t, string(raw), "idp-client-secret")

	require.NoError(t, env.quay.CreateOrganization(testOrg, "vault-sp"))
	env.writeOAuthRole("ci", nil)
	creds := env.issue("ci")
	u, err := env.quayClient(creds.Data["token"].(string)).GetUser(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "vault-sp", u.Username)
	env.assertNoSecretLogged("idp-client-secret")
}
