package backend

import (
	"context"
	"encoding/json"
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

// emptyQuayConfig is a fresh Quay a zero-touch deployment bootstraps.
const emptyQuayConfig = `
SERVER_HOSTNAME: quay.test
SUPER_USERS: [quayadmin]
FEATURE_USER_INITIALIZE: true
FEATURE_MAILING: false
`

// storedConfig reads the config as stored (tests only: it holds the token).
func (e *testEnv) storedConfig() *quayConfig {
	e.t.Helper()
	cfg, err := getConfig(context.Background(), e.storage)
	require.NoError(e.t, err)
	require.NotNil(e.t, cfg)
	return cfg
}

// rootTokens lists the tokens of the engine's root application.
func (e *testEnv) rootTokens(client *quay.Client) []quay.ApplicationToken {
	e.t.Helper()
	cfg := e.storedConfig()
	tokens, err := client.ListApplicationTokens(context.Background(), cfg.RootOrganization, cfg.RootClientID)
	require.NoError(e.t, err)
	return tokens
}

// ownRoot configures the engine with the admin token and root_organization,
// so it mints and owns its root token.
func ownRoot(t *testing.T, extra map[string]any) *testEnv {
	env := newTestEnv(t, withoutConfig())
	data := map[string]any{"url": env.server.URL, "token": env.admin, "root_organization": "vault-root"}
	for k, v := range extra {
		data[k] = v
	}
	env.writeConfig(data)
	return env
}

func TestBootstrap_InitializeIsZeroTouch(t *testing.T) {
	env := newTestEnv(t, withEmptyQuay(emptyQuayConfig))
	resp := env.writeConfig(map[string]any{
		"url": env.server.URL, "bootstrap": "initialize", "username": testAdmin, "root_organization": "vault",
	})
	assert.Empty(t, resp.Warnings, "the initialization token was revoked")

	read := env.mustOK(logical.ReadOperation, "config", nil)
	assert.Equal(t, "initialize", read.Data["bootstrap"])
	assert.Equal(t, testAdmin, read.Data["root_token_owner"])
	// The engine's own token leaves super:user out: it needs no superuser rights.
	assert.Equal(t, false, read.Data["root_token_super_user"])
	assert.Equal(t, true, read.Data["password_set"])
	assert.NotEmpty(t, read.Data["root_token_id"])
	assert.NotEmpty(t, read.Data["root_token_expires_at"])
	assert.NotEmpty(t, read.Data["next_root_rotation"])

	cfg := env.storedConfig()
	raw, _ := json.Marshal(read.Data)
	for _, secret := range []string{cfg.Password, cfg.Token} {
		require.NotEmpty(t, secret)
		assertNoSecretIn(t, string(raw), "config read", secret)
	}
	env.assertNoSecretLogged(cfg.Password, cfg.Token)

	// The engine's root token is the only token of the user left: the
	// 9000-second initialization token was revoked.
	root := env.quayClient(cfg.Token)
	auths, err := root.ListAuthorizations(context.Background())
	require.NoError(t, err)
	require.Len(t, auths, 1)
	assert.Equal(t, cfg.RootTokenID, auths[0].UUID)
	assert.Len(t, env.rootTokens(root), 1)

	// Writing the same config again does not initialize again.
	env.writeConfig(map[string]any{"url": env.server.URL, "bootstrap": "initialize", "username": testAdmin, "root_organization": "vault"})
	assert.Equal(t, cfg.RootTokenID, env.storedConfig().RootTokenID)

	// And the engine issues credentials.
	require.NoError(t, root.CreateOrganization(context.Background(), testOrg, ""))
	env.writeOAuthRole("ci", nil)
	creds := env.issue("ci")
	_, err = env.quayClient(creds.Data["token"].(string)).GetUser(context.Background())
	require.NoError(t, err)
}

func TestBootstrap_InitializeErrors(t *testing.T) {
	env := newTestEnv(t) // Quay already has its first user
	resp := env.request(logical.UpdateOperation, "config", map[string]any{
		"url": env.server.URL, "bootstrap": "initialize", "username": "another", "root_organization": "vault",
	})
	require.True(t, resp.IsError())
	assert.Contains(t, errorMessage(resp), "bootstrap:")
	assert.Contains(t, errorMessage(resp), "non-empty")

	resp = env.request(logical.UpdateOperation, "config", map[string]any{"url": env.server.URL, "bootstrap": "initialize", "username": "x1"})
	require.True(t, resp.IsError())
	assert.Contains(t, errorMessage(resp), "root_organization:")
}

func TestRotateRoot_ReplacesTheTokenAndCredsKeepWorking(t *testing.T) {
	env := ownRoot(t, nil)
	before := env.storedConfig()
	assertDifferentSecret(t, env.admin, before.Token, "the engine minted its own token")
	assert.ElementsMatch(t, defaultRootTokenScopes(), before.TokenScopes)
	env.writeOAuthRole("ci", nil)

	resp := env.mustOK(logical.UpdateOperation, "config/rotate-root", nil)
	assert.Empty(t, resp.Warnings)
	raw, _ := json.Marshal(resp.Data)
	after := env.storedConfig()
	assertNoSecretIn(t, string(raw), "the rotate-root answer", after.Token)
	assert.NotEqual(t, before.RootTokenID, after.RootTokenID)
	assert.Equal(t, after.RootTokenID, resp.Data["root_token_id"])

	_, err := env.quayClient(before.Token).GetUser(context.Background())
	require.Error(t, err)
	assert.True(t, quay.IsUnauthorized(err), "the old root token no longer works")
	tokens := env.rootTokens(env.quayClient(after.Token))
	require.Len(t, tokens, 1)
	assert.Equal(t, after.RootTokenID, tokens[0].UUID)

	creds := env.issue("ci")
	assert.NotEmpty(t, creds.Data["token"])
	env.assertNoSecretLogged(before.Token, after.Token, env.admin)
}

func TestRotateRoot_NeedsATokenTheEngineMinted(t *testing.T) {
	env := newTestEnv(t)
	resp := env.request(logical.UpdateOperation, "config/rotate-root", nil)
	require.True(t, resp.IsError())
	assert.Contains(t, errorMessage(resp), "root_organization")
}

func TestRotateRoot_OnSchedule(t *testing.T) {
	env := ownRoot(t, map[string]any{"root_rotation_period": "1h"})
	first := env.storedConfig().RootTokenID

	env.periodic()
	assert.Equal(t, first, env.storedConfig().RootTokenID, "not due yet")

	env.advance(61 * time.Minute)
	env.periodic()
	second := env.storedConfig()
	assert.NotEqual(t, first, second.RootTokenID)
	read := env.mustOK(logical.ReadOperation, "config", nil)
	next, err := time.Parse(time.RFC3339, read.Data["next_root_rotation"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, second.LastRootRotation.Add(time.Hour), next, time.Second)
}

func TestRotateRoot_BeforeExpiry(t *testing.T) {
	env := ownRoot(t, map[string]any{"root_token_ttl": "4h", "rotate_before": "1h"})
	cfg := env.storedConfig()
	assert.WithinDuration(t, env.clock.Now().Add(4*time.Hour), cfg.TokenExpiresAt, 5*time.Second)

	env.advance(2 * time.Hour)
	env.periodic()
	assert.Equal(t, cfg.RootTokenID, env.storedConfig().RootTokenID)

	env.advance(61 * time.Minute)
	env.periodic()
	assert.NotEqual(t, cfg.RootTokenID, env.storedConfig().RootTokenID, "rotated an hour before expiry")
}

func TestRotateRoot_ValidationNamesTheField(t *testing.T) {
	env := newTestEnv(t)
	cases := map[string]map[string]any{
		"root_token_ttl:":       {"root_organization": "vault-root", "root_token_ttl": "10m"},
		"rotate_before:":        {"root_organization": "vault-root", "root_token_ttl": "2h", "rotate_before": "3h"},
		"root_rotation_period:": {"root_organization": "vault-root", "root_rotation_period": "10s"},
		"root_token_scopes:":    {"root_organization": "vault-root", "root_token_scopes": "repo:read"},
		"root_organization:":    {"root_organization": "Not Valid"},
	}
	for field, data := range cases {
		t.Run(field, func(t *testing.T) {
			resp := env.request(logical.UpdateOperation, "config", data)
			require.True(t, resp.IsError())
			assert.Contains(t, errorMessage(resp), field)
		})
	}
}

// A crash after the new root token was minted but before it was persisted:
// the next start deletes the unpersisted token, leaving exactly one valid
// root token and no orphan.
func TestRotateRoot_CrashBeforePersistRollsBack(t *testing.T) {
	env := ownRoot(t, nil)
	cfg := env.storedConfig()
	root := env.quayClient(cfg.Token)
	orphanName := "vault-root-crashed-0000000000"
	_, err := framework.PutWAL(context.Background(), env.storage, walKindRootRotation, &rootRotationWAL{
		Organization: cfg.RootOrganization, ClientID: cfg.RootClientID, OldTokenID: cfg.RootTokenID,
		NewTokenName: orphanName, InstanceID: "crashed-process",
	})
	require.NoError(t, err)
	_, err = root.CreateApplicationToken(context.Background(), cfg.RootOrganization, cfg.RootClientID,
		quay.NewApplicationToken{Name: orphanName, Scopes: []string{"user:read"}})
	require.NoError(t, err)
	require.Len(t, env.rootTokens(root), 2)

	env.restart()

	tokens := env.rootTokens(root)
	require.Len(t, tokens, 1, "exactly one root token")
	assert.Equal(t, cfg.RootTokenID, tokens[0].UUID)
	_, err = root.GetUser(context.Background())
	require.NoError(t, err, "the persisted root token still works")
	wals, _ := framework.ListWAL(context.Background(), env.storage)
	assert.Empty(t, wals)
}

// A crash after the new token was persisted but before the old one was
// deleted: the next start deletes the old one.
func TestRotateRoot_CrashAfterPersistRollsForward(t *testing.T) {
	env := ownRoot(t, nil)
	old := env.storedConfig()
	env.quay.Faults().FailNext("deleteOrganizationApplicationToken", 10, 503)
	resp := env.mustOK(logical.UpdateOperation, "config/rotate-root", nil)
	require.NotEmpty(t, resp.Warnings, "a failed delete of the old token is a warning")
	env.quay.Faults().Reset()
	current := env.storedConfig()
	require.Len(t, env.rootTokens(env.quayClient(current.Token)), 2)

	env.restart()

	tokens := env.rootTokens(env.quayClient(current.Token))
	require.Len(t, tokens, 1)
	assert.Equal(t, current.RootTokenID, tokens[0].UUID)
	_, err := env.quayClient(old.Token).GetUser(context.Background())
	assert.True(t, quay.IsUnauthorized(err))
}

// restart replaces the backend with a new instance on the same storage, as a
// Vault or plugin restart does, and runs its initialization.
func (e *testEnv) restart() {
	e.t.Helper()
	b, _ := newTestBackend(e.t, e.logs, time.Hour, 24*time.Hour)
	b.now = e.clock.Now
	e.b = b
	// Vault calls an external plugin's Initialize over gRPC: its context
	// ends when the call returns.
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(e.t, b.Initialize(ctx, &logical.InitializationRequest{Storage: e.storage}))
	cancel()
	b.waitRecovered()
}

func TestBootstrap_TokenWithRootOrganizationStopsUsingIt(t *testing.T) {
	env := ownRoot(t, nil)
	cfg := env.storedConfig()
	assertDifferentSecret(t, env.admin, cfg.Token, "the engine minted its own token")
	assert.Equal(t, "vault-root", cfg.RootOrganization)

	// Rewriting the same token (as vault-config-operator does) changes nothing.
	env.writeConfig(map[string]any{"url": env.server.URL, "token": env.admin, "root_organization": "vault-root"})
	assert.Equal(t, cfg.RootTokenID, env.storedConfig().RootTokenID)

	// A new token bootstraps again: a new root token replaces the old one.
	fresh, err := env.adminClient.CreateApplicationToken(context.Background(), "vault-root", cfg.RootClientID,
		quay.NewApplicationToken{Name: "fresh-admin", Scopes: quay.KnownScopes()})
	require.NoError(t, err)
	env.writeConfig(map[string]any{"token": fresh.Token})
	next := env.storedConfig()
	assert.NotEqual(t, cfg.RootTokenID, next.RootTokenID)
	ids := []string{}
	for _, tok := range env.rootTokens(env.quayClient(next.Token)) {
		if strings.HasPrefix(tok.Name, "vault-root-") {
			ids = append(ids, tok.UUID)
		}
	}
	assert.Equal(t, []string{next.RootTokenID}, ids, "the previous root token was deleted")
}

// config/rotate-root deletes the old root token at once. A creds read in
// flight at that moment reaches Quay with the old token, which Quay refuses
// (CSRF 403) before acting: the engine sends the call again with the new
// one, so the read succeeds and the rest of it (the robot's grants) uses
// the new token. Before, such reads failed with 502, and a robot created
// with the old token whose grant then failed waited for the rollback.
func TestRotateRoot_RequestsInFlightSurviveIt(t *testing.T) {
	env := ownRoot(t, nil)
	env.createRepo("app")
	env.writeRobotRole("ci", map[string]any{"repositories": `{"app":"read"}`})
	before := env.storedConfig()
	env.quay.Faults().Add(emulator.Fault{Route: "createOrgRobot", Count: 1, Latency: 300 * time.Millisecond})

	type result struct {
		resp *logical.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := env.requestErr(logical.ReadOperation, "creds/ci", nil)
		done <- result{resp, err}
	}()
	require.Eventually(t, func() bool { return env.quay.Calls("createOrgRobot") == 1 }, 5*time.Second, 5*time.Millisecond, "the read is in flight")
	env.mustOK(logical.UpdateOperation, "config/rotate-root", nil)
	require.False(t, env.works(before.Token), "the old root token is gone")

	got := <-done
	require.NoError(t, got.err)
	require.NotNil(t, got.resp.Secret)
	username := got.resp.Data["username"].(string)
	assert.Equal(t, 2, env.quay.Calls("createOrgRobot"), "sent again with the new token")
	perms, err := env.adminClient.GetRobotPermissions(context.Background(), orgNS, strings.TrimPrefix(username, testOrg+"+"))
	require.NoError(t, err)
	require.Len(t, perms, 1, "granted with the new token")
	assert.Equal(t, 0, env.walCount())
	env.assertNoSecretLogged(before.Token, env.storedConfig().Token)
}
