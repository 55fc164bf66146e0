package backend

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// validRootTokens lists the engine's root tokens that Quay still accepts.
func (e *testEnv) validRootTokens() []string {
	e.t.Helper()
	var ids []string
	for _, tok := range e.rootTokens(e.adminClient) {
		if strings.HasPrefix(tok.Name, e.b.rootTokenNamePrefix()) {
			ids = append(ids, tok.UUID)
		}
	}
	return ids
}

// works says whether Quay accepts token.
func (e *testEnv) works(token string) bool {
	e.t.Helper()
	_, err := e.quayClient(token).GetUser(context.Background())
	if quay.IsUnauthorized(err) {
		return false
	}
	require.NoError(e.t, err)
	return true
}

// configSnapshot is the stored config as JSON, to compare before and after.
func (e *testEnv) configSnapshot() string {
	e.t.Helper()
	raw, err := json.Marshal(e.storedConfig())
	require.NoError(e.t, err)
	return string(raw)
}

// A refused config write changes nothing. A weak token with root_organization
// used to be answered "400 root_token_scopes: could not mint…" while config
// already held the weak token and no root token: the working credential was
// gone.
func TestConfigWrite_ARefusedWriteChangesNothing(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("ci", nil)
	before := env.configSnapshot()
	weak, err := env.quay.IssueToken(testAdmin, "user:read", time.Hour)
	require.NoError(t, err)

	resp := env.request(logical.UpdateOperation, "config", map[string]any{"token": weak, "root_organization": "vault-root"})
	require.True(t, resp.IsError())
	assert.True(t, strings.HasPrefix(errorMessage(resp), "root_token_scopes: could not mint the engine's own root token"), errorMessage(resp))
	assert.Contains(t, errorMessage(resp), "the stored config is unchanged")
	assert.JSONEq(t, before, env.configSnapshot(), "the stored config is exactly as before")
	assert.NotNil(t, env.issue("ci").Secret, "the engine still works with its credential")
	env.assertNoSecretLogged(weak)
}

// The engine keeps exactly one valid root token of its own, always. A config
// rewrite that bootstraps again used to save the config with no root token
// ID before minting; a failed mint left the old engine-minted token
// referenced nowhere and valid in Quay for up to ten years.
func TestConfigWrite_AFailedRebootstrapKeepsTheRootToken(t *testing.T) {
	env := ownRoot(t, nil)
	old := env.storedConfig()
	before := env.configSnapshot()
	fresh, err := env.quay.IssueToken(testAdmin, strings.Join(quay.KnownScopes(), " "), time.Hour)
	require.NoError(t, err)

	env.quay.Faults().Add(emulator.Fault{Route: "createOrganizationApplicationToken", Count: 1, Status: 400, Body: `{"message": "Token limit reached: maximum 5 non-expired tokens per application"}`})
	resp := env.request(logical.UpdateOperation, "config", map[string]any{"token": fresh})
	require.True(t, resp.IsError())
	assert.Contains(t, errorMessage(resp), "Token limit reached")
	assert.JSONEq(t, before, env.configSnapshot())
	assert.True(t, env.works(old.Token), "the engine's root token still works")
	assert.Equal(t, []string{old.RootTokenID}, env.validRootTokens(), "exactly one root token")
	assert.Zero(t, env.walCount())
}

// Replacing the engine's root token records the old one in the same storage
// write as the new one, and deletes it in Quay after. A failed delete used to
// be a warning only, never retried (a root_organization change), and a crash
// between the switch and the delete lost the old token. Now the config lists
// it until Quay no longer holds it, and the engine retries every minute and
// at every start.
func TestConfigWrite_TheReplacedRootTokenIsDeletedEventually(t *testing.T) {
	env := ownRoot(t, nil)
	old := env.storedConfig()
	require.NoError(t, env.adminClient.CreateOrganization(context.Background(), "vault-root-2", ""))

	env.quay.Faults().Add(emulator.Fault{Route: "deleteOrganizationApplicationToken", Status: 503})
	resp := env.writeConfig(map[string]any{"root_organization": "vault-root-2"})
	assert.Contains(t, strings.Join(resp.Warnings, "\n"), "the engine's previous root token "+old.RootTokenID+" in vault-root is not deleted yet")
	read := env.mustOK(logical.ReadOperation, "config", nil)
	retiring := read.Data["retiring_root_tokens"].([]map[string]any)
	require.Len(t, retiring, 1)
	assert.Equal(t, old.RootTokenID, retiring[0]["id"])
	raw, _ := json.Marshal(read.Data)
	assert.False(t, strings.Contains(string(raw), old.Token), "a config read never shows a retiring token's secret")
	assert.True(t, env.works(old.Token))

	// A restart (here: a crash right after the switch) retries it.
	env.restart()
	assert.True(t, env.works(old.Token), "Quay still fails the delete")
	env.quay.Faults().Reset()
	env.periodic()
	assert.False(t, env.works(old.Token), "deleted once Quay answers")
	assert.Nil(t, env.mustOK(logical.ReadOperation, "config", nil).Data["retiring_root_tokens"])
	current := env.storedConfig()
	assert.Equal(t, "vault-root-2", current.RootOrganization)
	assert.True(t, env.works(current.Token))
}

// Clearing root_organization used to keep the engine-minted token, which
// could no longer be rotated ("the engine rotates only a root token it
// minted") and would silently stop working when it expired; setting it again
// minted another and left the first alive. Clearing it now needs the
// credential to use instead and retires the minted one.
func TestConfigWrite_ClearingTheRootOrganization(t *testing.T) {
	env := ownRoot(t, nil)
	minted := env.storedConfig()

	resp := env.request(logical.UpdateOperation, "config", map[string]any{"root_organization": ""})
	require.True(t, resp.IsError())
	assert.True(t, strings.HasPrefix(errorMessage(resp), "token: is required when root_organization is cleared"), errorMessage(resp))
	assert.Equal(t, minted.RootTokenID, env.storedConfig().RootTokenID)

	env.writeConfig(map[string]any{"root_organization": "", "token": env.admin})
	cleared := env.storedConfig()
	assert.Empty(t, cleared.RootTokenID)
	assert.Equal(t, fingerprint(env.admin), fingerprint(cleared.Token), "the written token is the credential now")
	assert.False(t, env.works(minted.Token), "the engine's own token was deleted")
	assert.Zero(t, len(cleared.RetiringRootTokens), "nothing left to retire")

	env.writeConfig(map[string]any{"root_organization": "vault-root"})
	again := env.storedConfig()
	assert.NotEmpty(t, again.RootTokenID)
	assert.Equal(t, []string{again.RootTokenID}, env.validRootTokens(), "one root token, no leftover")
}

// root_token_scopes used to be accepted and neither applied nor shown: the
// read kept showing the current token's scopes and the next rotation failed
// with 403. A change now mints a token with the new scopes at once (and the
// read shows them), or is refused when the current credential cannot mint
// them, changing nothing.
func TestConfigWrite_RootTokenScopesApplyAtOnceOrAreRefused(t *testing.T) {
	env := ownRoot(t, nil)
	before := env.storedConfig()
	narrower := []string{"org:admin", "repo:admin", "repo:read", "repo:write", "user:admin", "user:read"}

	env.writeConfig(map[string]any{"root_token_scopes": strings.Join(narrower, ",")})
	after := env.storedConfig()
	assert.NotEqual(t, before.RootTokenID, after.RootTokenID, "a new root token")
	assert.ElementsMatch(t, narrower, after.TokenScopes)
	read := env.mustOK(logical.ReadOperation, "config", nil)
	assert.ElementsMatch(t, narrower, read.Data["root_token_scopes"])
	assert.False(t, env.works(before.Token))
	assert.Equal(t, []string{after.RootTokenID}, env.validRootTokens())

	snapshot := env.configSnapshot()
	resp := env.request(logical.UpdateOperation, "config", map[string]any{"root_token_scopes": "org:admin,user:read,super:user"})
	require.True(t, resp.IsError(), "the current token holds no super:user, and Quay mints only subsets")
	assert.True(t, strings.HasPrefix(errorMessage(resp), "root_token_scopes:"), errorMessage(resp))
	assert.JSONEq(t, snapshot, env.configSnapshot())
	assert.Equal(t, []string{after.RootTokenID}, env.validRootTokens())

	pasted := newTestEnv(t)
	resp = pasted.request(logical.UpdateOperation, "config", map[string]any{"root_token_scopes": "org:admin,user:read"})
	require.True(t, resp.IsError(), "a pasted token's scopes cannot be changed")
	assert.True(t, strings.HasPrefix(errorMessage(resp), "root_token_scopes: applies only when"), errorMessage(resp))
}

// A scheduled root rotation must be invisible to requests in flight. It used
// to delete the old token at once, so a creds read holding the client with
// the old token got 403 on its next Quay call and failed (leaving a half-made
// robot to the rollback). The old token now stays valid for a grace period.
func TestRotateRoot_ScheduledRotationDoesNotFailRequestsInFlight(t *testing.T) {
	env := ownRoot(t, map[string]any{"root_rotation_period": "1h"})
	env.createRepo("app")
	env.writeRobotRole("ci", map[string]any{"repositories": `{"app": "read"}`})
	old := env.storedConfig()

	env.quay.Faults().Add(emulator.Fault{Route: "changeUserPermissions", Count: 1, Latency: 400 * time.Millisecond})
	var wg sync.WaitGroup
	var resp *logical.Response
	var err error
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, err = env.requestErr(logical.ReadOperation, "creds/ci", nil)
	}()
	require.Eventually(t, func() bool { return env.quay.Calls("changeUserPermissions") == 1 }, 5*time.Second, 5*time.Millisecond)
	env.advance(61 * time.Minute)
	env.periodic() // the scheduled rotation, while the grant is held in Quay
	wg.Wait()
	require.NoError(t, err)
	require.False(t, resp.IsError(), "%v", resp.Error())
	assert.NotEqual(t, old.RootTokenID, env.storedConfig().RootTokenID, "it rotated meanwhile")

	assert.True(t, env.works(old.Token), "the replaced token lives through the grace period")
	env.advance(scheduledRetireGrace + time.Minute)
	env.periodic()
	assert.False(t, env.works(old.Token), "and is deleted after it")
	assert.Equal(t, []string{env.storedConfig().RootTokenID}, env.validRootTokens())
}

// bootstrapQuay is a Quay with programmatic bootstrap, whose owner exists.
func bootstrapQuay(t *testing.T) (*testEnv, string) {
	dir := t.TempDir()
	tokenPath := filepath.Join(dir, "quay-machine-token.json")
	env := newTestEnv(t, withEmptyQuay(`
SERVER_HOSTNAME: quay.test
SUPER_USERS: [quayadmin]
FEATURE_MAILING: false
FEATURE_PROGRAMMATIC_BOOTSTRAP: true
BOOTSTRAP_TOKEN_OWNER: quayadmin
BOOTSTRAP_TOKEN_PATH: `+tokenPath+"\n"))
	// As in Quay, the token file comes with a start that finds the owner.
	require.NoError(t, env.quay.CreateUser("quayadmin", "", "quayadmin@example.com"))
	require.NoError(t, env.quay.Restart())
	raw, err := os.ReadFile(tokenPath)
	require.NoError(t, err)
	var file struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.Unmarshal(raw, &file))
	env.admin = file.AccessToken
	env.adminClient = env.quayClient(env.admin)
	return env, tokenPath
}

// With bootstrap=token, the engine used to revoke the owner's only
// __quay_bootstrap_app token whatever token it was given: a token pasted
// from Quay's UI stayed valid, with no warning, and the bootstrap token in
// Quay's file (which the operator may rely on) was revoked instead. The
// engine now revokes only a token Quay proves is its bootstrap token.
func TestBootstrap_PastedTokenRevokedOnlyWhenProvenToBeQuaysBootstrapToken(t *testing.T) {
	t.Run("another token", func(t *testing.T) {
		env, _ := bootstrapQuay(t)
		pasted, err := env.quay.IssueToken(testAdmin, strings.Join(quay.KnownScopes(), " "), time.Hour)
		require.NoError(t, err)
		resp := env.writeConfig(map[string]any{"url": env.server.URL, "token": pasted, "root_organization": "vault-root"})
		assert.Contains(t, strings.Join(resp.Warnings, "\n"), "the token you wrote to config is not Quay's programmatic bootstrap token")
		assert.True(t, env.works(env.admin), "Quay's bootstrap token, never given to the engine, is untouched")
		assert.True(t, env.works(pasted), "the pasted token is the operator's to revoke")
		env.assertNoSecretLogged(pasted, env.admin)
	})
	t.Run("Quay's bootstrap token", func(t *testing.T) {
		env, tokenPath := bootstrapQuay(t)
		resp := env.writeConfig(map[string]any{"url": env.server.URL, "token": env.admin, "root_organization": "vault-root"})
		assert.Empty(t, resp.Warnings)
		assert.False(t, env.works(env.admin), "the bootstrap token is revoked")
		raw, err := os.ReadFile(tokenPath)
		require.NoError(t, err)
		var file struct {
			AccessToken string `json:"access_token"`
		}
		require.NoError(t, json.Unmarshal(raw, &file))
		assert.False(t, env.works(file.AccessToken), "and so is the one Quay's renewal wrote to its file")
		auths, err := env.quayClient(env.storedConfig().Token).ListAuthorizations(context.Background())
		require.NoError(t, err)
		for _, a := range auths {
			assert.NotEqual(t, bootstrapApplication, a.Application.Name)
		}
		env.assertNoSecretLogged(env.admin, file.AccessToken)
	})
}
