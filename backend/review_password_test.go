package backend

import (
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// Sibling of issue 8, findings 2 and 12 (config rewrites must not orphan a
// credential the engine obtained). With bootstrap=password and no
// root_organization, the engine's credential is a direct-OAuth token it
// obtained itself: ten years, the root scopes. Setting root_organization
// later mints the engine's own root token and switches to it, but the
// direct-OAuth token is neither revoked (there is no "grant" in this write,
// so revokeBootstrapToken is skipped) nor recorded anywhere: a ten-year
// credential created by the engine that nothing tracks.
func TestReview_SettingRootOrganizationOnAPasswordConfigOrphansTheDirectOAuthToken(t *testing.T) {
	env := passwordQuay(t)
	tap := newTokenTap(t, env.server.URL)
	env.writeConfig(map[string]any{
		"url": tap.srv.URL, "bootstrap": "password", "username": "svc-vault", "password": "service-account-pw",
		"oauth_client_id": directOAuthClientID,
	})
	issued := tap.issued()
	require.Len(t, issued, 1)
	direct := issued[0]
	assertSameSecret(t, direct, env.storedConfig().Token, "the direct-OAuth token is the credential")

	resp := env.writeConfig(map[string]any{"root_organization": "vault-root"})
	stored := env.storedConfig()
	require.NotEmpty(t, stored.RootTokenID, "the engine now acts with its own root token")
	assertDifferentSecret(t, direct, stored.Token, "and no longer with the direct-OAuth token")

	assert.False(t, env.quay.TokenValid(direct),
		"the direct-OAuth token the engine obtained must be revoked once nothing uses it (warnings: %v)", resp.Warnings)
	assert.Empty(t, env.authorizationsOf("svc-vault", "automation", "vault"))
}

// The same for a rewrite that logs in again (a new password, another
// oauth_client_id): the new direct-OAuth token replaces the old one in
// config, and the old one (ten years) stays valid in Quay.
func TestReview_APasswordReloginOrphansThePreviousDirectOAuthToken(t *testing.T) {
	env := newTestEnv(t, withEmptyQuay(`
SUPER_USERS: [svc-vault]
FEATURE_MAILING: false
DIRECT_OAUTH_CLIENTID_WHITELIST: [`+directOAuthClientID+`, VAULTCLIENT000000001]
`))
	require.NoError(t, env.quay.CreateUser("svc-vault", "service-account-pw", "svc@example.com"))
	require.NoError(t, env.quay.CreateOrganization("automation", "svc-vault"))
	require.NoError(t, env.quay.CreateApplication("automation", "vault", directOAuthClientID, ""))
	require.NoError(t, env.quay.CreateApplication("automation", "vault-2", "VAULTCLIENT000000001", ""))
	tap := newTokenTap(t, env.server.URL)
	env.writeConfig(map[string]any{
		"url": tap.srv.URL, "bootstrap": "password", "username": "svc-vault", "password": "service-account-pw",
		"oauth_client_id": directOAuthClientID,
	})
	first := tap.issued()[0]

	env.writeConfig(map[string]any{"oauth_client_id": "VAULTCLIENT000000001"})
	require.Len(t, tap.issued(), 2, "the engine logged in again")
	assertDifferentSecret(t, first, env.storedConfig().Token, "and acts with the new token")

	assert.False(t, env.quay.TokenValid(first), "the replaced direct-OAuth token the engine obtained must not stay valid, untracked")
}

// A refused config write leaves behind the credential it obtained: with
// bootstrap=password the engine logs in (a new ten-year direct-OAuth token
// with the root scopes), then verifies it with GET /api/v1/user/; when that
// check fails (here Quay answers 500 once), the write is answered 400 and
// stores nothing, but the token it just obtained is neither revoked nor
// recorded. mintFailed revokes such a token; this earlier refusal does not.
func TestReview_ARefusedPasswordConfigWriteLeavesTheObtainedTokenValid(t *testing.T) {
	env := passwordQuay(t)
	tap := newTokenTap(t, env.server.URL)
	env.quay.Faults().Add(emulator.Fault{Route: "getLoggedInUser", Count: 1, Status: 500})

	resp := env.request(logical.UpdateOperation, "config", map[string]any{
		"url": tap.srv.URL, "bootstrap": "password", "username": "svc-vault", "password": "service-account-pw",
		"oauth_client_id": directOAuthClientID,
	})
	require.True(t, resp.IsError(), "the write is refused")
	require.False(t, env.configSaved(), "and stores nothing")
	issued := tap.issued()
	require.Len(t, issued, 1, "but the engine had logged in")

	assert.False(t, env.quay.TokenValid(issued[0]), "the token a refused write obtained must not stay valid, untracked")
}
