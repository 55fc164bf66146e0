package emulator

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfig_Defaults(t *testing.T) {
	cfg, err := ParseConfig([]byte("{}"))
	require.NoError(t, err)
	assert.True(t, cfg.superUsersEnabled(), "FEATURE_SUPER_USERS defaults to true")
	assert.True(t, cfg.mailing(), "FEATURE_MAILING defaults to true")
	assert.True(t, cfg.databaseAuth(), "AUTHENTICATION_TYPE defaults to Database")
	assert.True(t, cfg.createPrivateRepoOnPush())
	assert.False(t, cfg.FeatureUserInitialize)
	assert.False(t, cfg.FeatureProgrammaticBootstrap)
	assert.False(t, cfg.FeatureSuperusersFullAccess)
	assert.Nil(t, cfg.OAuthApplicationMaximumTokenCount, "no token cap by default")
	assert.Equal(t, "http", cfg.scheme())
	assert.Empty(t, cfg.LoginConfigs)

	cfg, err = ParseConfig([]byte(`
SERVER_HOSTNAME: quay.example.com
PREFERRED_URL_SCHEME: https
AUTHENTICATION_TYPE: LDAP
FEATURE_SUPER_USERS: false
FEATURE_MAILING: false
SUPER_USERS: [a, b]
OAUTH_APPLICATION_MAXIMUM_TOKEN_COUNT: 0
DIRECT_OAUTH_CLIENTID_WHITELIST: [CLIENT]
BOOTSTRAP_TOKEN_EXPIRATION: 120
SOMETHING_QUAY_HAS: [1, 2]
`))
	require.NoError(t, err, "unknown keys are ignored")
	assert.Equal(t, "quay.example.com", cfg.ServerHostname)
	assert.Equal(t, "https", cfg.scheme())
	assert.False(t, cfg.databaseAuth())
	assert.False(t, cfg.superUsersEnabled())
	assert.False(t, cfg.mailing())
	assert.Equal(t, []string{"a", "b"}, cfg.SuperUsers)
	require.NotNil(t, cfg.OAuthApplicationMaximumTokenCount)
	assert.Equal(t, 0, *cfg.OAuthApplicationMaximumTokenCount)
	assert.Equal(t, 120, cfg.BootstrapTokenExpiration)

	_, err = ParseConfig([]byte("SUPER_USERS: {not: a list}\n"))
	assert.Error(t, err)
	_, err = ParseConfig([]byte("a: [unclosed\n"))
	assert.Error(t, err)
}

func TestConfig_LoginConfigBlocks(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
AZURE_LOGIN_CONFIG:
  CLIENT_ID: web
  OIDC_SERVER: https://login.example/
  SERVICE_NAME: Azure
  OIDC_ISSUERS: [https://a/, https://b/]
  OIDC_AUDIENCES: [api://quay]
  OIDC_ALLOWED_CLIENTS: [vault]
  PREFERRED_USERNAME_CLAIM_NAME: upn
RHSSO_LOGIN_CONFIG:
  CLIENT_ID: rh
GITHUB_LOGIN_CONFIG:
  CLIENT_ID: gh
GOOGLE_LOGIN_CONFIG:
  CLIENT_ID: gg
`))
	require.NoError(t, err)
	require.Len(t, cfg.LoginConfigs, 2, "GitHub and Google are no OIDC services")
	assert.Equal(t, []string{"AZURE", "RHSSO"}, cfg.LoginConfigOrder, "the document's order")
	az := cfg.LoginConfigs["AZURE"]
	assert.Equal(t, "web", az.ClientID)
	assert.Equal(t, "https://login.example/", az.OIDCServer)
	assert.Equal(t, []string{"https://a/", "https://b/"}, az.OIDCIssuers)
	assert.Equal(t, []string{"api://quay"}, az.OIDCAudiences)
	assert.Equal(t, []string{"vault"}, az.OIDCAllowedClients)
	assert.Equal(t, "upn", az.PreferredUsernameClaimName)
	assert.Equal(t, "rh", cfg.LoginConfigs["RHSSO"].ClientID)

	for _, key := range []string{"OIDC_ISSUERS", "OIDC_AUDIENCES", "OIDC_ALLOWED_CLIENTS"} {
		_, err := ParseConfig([]byte("X_LOGIN_CONFIG:\n  CLIENT_ID: c\n  " + key + ": []\n"))
		require.Error(t, err, key)
		assert.Contains(t, err.Error(), "X_LOGIN_CONFIG."+key)
	}
	_, err = ParseConfig([]byte("X_LOGIN_CONFIG:\n  OIDC_ISSUERS: not-a-list\n"))
	assert.Error(t, err, "a string where Quay wants a list")
	for _, reserved := range []string{"LDAP", "JWT", "KEYSTONE"} {
		_, err = ParseConfig([]byte(reserved + "_LOGIN_CONFIG: {}\n"))
		assert.ErrorContains(t, err, "Cannot use reserved config name "+reserved+"_LOGIN_CONFIG", "loginmanager.py refuses to start")
	}
}

func TestConfig_LoadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte("SERVER_HOSTNAME: q.example\n"), 0o600))
	cfg, err := LoadConfig(path)
	require.NoError(t, err)
	assert.Equal(t, "q.example", cfg.ServerHostname)
	_, err = LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"))
	assert.Error(t, err)
}
