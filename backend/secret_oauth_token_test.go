package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// issue reads creds/<role> and returns the response, failing on any error.
func (e *testEnv) issue(role string) *logical.Response {
	e.t.Helper()
	resp := e.mustOK(logical.ReadOperation, "creds/"+role, nil)
	require.NotNil(e.t, resp.Secret)
	resp.Secret.IssueTime = time.Now()
	return resp
}

func (e *testEnv) revoke(secret *logical.Secret) (*logical.Response, error) {
	e.t.Helper()
	return e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RevokeOperation, Storage: e.storage, Secret: secret,
	})
}

func (e *testEnv) renew(secret *logical.Secret, data map[string]any) (*logical.Response, error) {
	e.t.Helper()
	return e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RenewOperation, Storage: e.storage, Secret: secret, Data: data,
	})
}

// appTokens lists the tokens Quay holds for the role's application.
func (e *testEnv) appTokens(clientID string) []quay.ApplicationToken {
	e.t.Helper()
	tokens, err := e.adminClient.ListApplicationTokens(context.Background(), testOrg, clientID)
	require.NoError(e.t, err)
	return tokens
}

func TestCredsOAuth_IssuesAWorkingTokenInOneQuayCall(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", nil)
	env.quay.ResetCalls()

	resp := env.issue("ci")

	assert.Equal(t, 1, env.quay.Calls("createOrganizationApplicationToken"), "creds makes exactly one Quay call")
	token := resp.Data["token"].(string)
	require.Equal(t, 40, len(token), "Quay's tokens have 40 characters")
	assert.NotEmpty(t, resp.Data["token_id"])
	assert.Regexp(t, `^vault-ci-[a-z0-9]{10}$`, resp.Data["token_name"])
	assert.Equal(t, []string{"repo:read", "user:read"}, resp.Data["scopes"])
	assert.Equal(t, testOrg, resp.Data["namespace_name"])
	clientID := resp.Data["client_id"].(string)
	assert.NotEmpty(t, clientID)

	// The lease: TTL from the role, max TTL bounds renewals.
	assert.Equal(t, time.Hour, resp.Secret.TTL)
	assert.Equal(t, 2*time.Hour, resp.Secret.MaxTTL)
	assert.True(t, resp.Secret.Renewable)

	// Quay expires the token itself at the lease's max TTL.
	expiresAt, err := time.Parse(time.RFC3339, resp.Data["expires_at"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(2*time.Hour), expiresAt, 10*time.Second)

	// The token works, acting as the root credential's user.
	user, err := env.quayClient(token).GetUser(context.Background())
	require.NoError(t, err)
	assert.Equal(t, testAdmin, user.Username)

	// Quay lists it on the application with the role's scopes.
	listed := env.appTokens(clientID)
	require.Len(t, listed, 1)
	assert.Equal(t, resp.Data["token_id"], listed[0].UUID)
	assert.ElementsMatch(t, []string{"repo:read", "user:read"}, listed[0].Scopes())
	assert.WithinDuration(t, expiresAt, listed[0].ExpiresAt.Time, time.Second)

	// Lease data holds identifiers, never the token.
	internal, err := json.Marshal(resp.Secret.InternalData)
	require.NoError(t, err)
	assertNoSecretIn(t, string(internal), "lease internal data", token)
	env.assertNoSecretLogged(token, env.admin)
}

func TestCredsOAuth_MountDefaultsWhenRoleHasNoTTL(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", map[string]any{"ttl": "0", "max_ttl": "0"})
	resp := env.issue("ci")
	assert.Equal(t, time.Hour, resp.Secret.TTL, "the mount's default")
	assert.Equal(t, 24*time.Hour, resp.Secret.MaxTTL, "the mount's maximum")
	expiresAt, err := time.Parse(time.RFC3339, resp.Data["expires_at"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(24*time.Hour), expiresAt, 10*time.Second)
}

func TestCredsOAuth_UnknownRoleIs400(t *testing.T) {
	env := newTestEnv(t)
	resp := env.request(logical.ReadOperation, "creds/nope", nil)
	require.True(t, resp.IsError())
	assert.Contains(t, errorMessage(resp), `"nope"`)
}

func TestCredsOAuth_RevokeDeletesTheTokenInQuay(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", nil)
	resp := env.issue("ci")
	token, clientID := resp.Data["token"].(string), resp.Data["client_id"].(string)

	_, err := env.revoke(resp.Secret)
	require.NoError(t, err)

	assert.Empty(t, env.appTokens(clientID))
	_, err = env.quayClient(token).GetUser(context.Background())
	require.Error(t, err)
	assert.True(t, quay.IsUnauthorized(err), "the revoked token is refused: %v", err)

	// Revoking again (Vault retries) succeeds: already gone is revoked.
	_, err = env.revoke(resp.Secret)
	require.NoError(t, err)
}

func TestCredsOAuth_RevokeWorksAfterRoleDeletedAndConfigChanged(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", nil)
	resp := env.issue("ci")
	clientID := resp.Data["client_id"].(string)

	env.mustOK(logical.DeleteOperation, "roles/ci", nil)
	env.writeConfig(map[string]any{"request_timeout": "20s"})

	_, err := env.revoke(resp.Secret)
	require.NoError(t, err)
	assert.Empty(t, env.appTokens(clientID))
}

func TestCredsOAuth_RevokeOfATokenDeletedInQuaySucceeds(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", nil)
	resp := env.issue("ci")
	require.NoError(t, env.adminClient.DeleteApplicationToken(context.Background(), testOrg,
		resp.Data["client_id"].(string), resp.Data["token_id"].(string)))

	_, err := env.revoke(resp.Secret)
	require.NoError(t, err)
}

func TestCredsOAuth_RenewKeepsTheMaxTTL(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", nil)
	resp := env.issue("ci")

	// The role's ttl changed since: renewals follow it.
	env.mustOK(logical.UpdateOperation, "roles/ci", map[string]any{"ttl": "45m"})
	renewed, err := env.renew(resp.Secret, resp.Data)
	require.NoError(t, err)
	require.NotNil(t, renewed.Secret)
	assert.Equal(t, 45*time.Minute, renewed.Secret.TTL)
	assert.Equal(t, 2*time.Hour, renewed.Secret.MaxTTL, "never past the token's expiry in Quay")

	// Renewal does not need the role.
	env.mustOK(logical.DeleteOperation, "roles/ci", nil)
	renewed, err = env.renew(resp.Secret, resp.Data)
	require.NoError(t, err)
	assert.Equal(t, time.Hour, renewed.Secret.TTL, "the ttl the lease was issued with")
}

func TestCredsOAuth_ConcurrentReadsGiveDistinctWorkingTokens(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", nil)

	const n = 20
	tokens := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := env.requestErr(logical.ReadOperation, "creds/ci", nil)
			if err != nil || resp.IsError() {
				errs <- fmt.Errorf("read %d: %v %v", i, err, resp.Error())
				return
			}
			tokens[i] = resp.Data["token"].(string)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	seen := map[string]bool{}
	for _, tok := range tokens {
		require.False(t, seen[tok], "duplicate token")
		seen[tok] = true
		_, err := env.quayClient(tok).GetUser(context.Background())
		require.NoError(t, err)
	}
}

// A creds request that dies after Quay minted the token (here: Quay answers
// too late) leaves a write-ahead entry; its rollback deletes the token, so
// nothing the request created survives in Quay.
func TestCredsOAuth_FailureHalfwayLeavesNothingInQuay(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", nil)
	env.writeConfig(map[string]any{"request_timeout": "1s"})
	clientID := env.mustOK(logical.ReadOperation, "roles/ci", nil).Data["client_id"].(string)

	env.quay.Faults().AddLatency("createOrganizationApplicationToken", 1500*time.Millisecond)
	_, err := env.requestErr(logical.ReadOperation, "creds/ci", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "timed out")
	env.quay.Faults().Reset()

	// Quay did create the token after the client gave up.
	require.Eventually(t, func() bool { return len(env.appTokens(clientID)) == 1 }, 5*time.Second, 20*time.Millisecond)
	wals, err := framework.ListWAL(context.Background(), env.storage)
	require.NoError(t, err)
	require.Len(t, wals, 1, "the write-ahead entry survives the failure")

	env.rollback()
	assert.Empty(t, env.appTokens(clientID), "the rollback deleted the orphaned token")
	wals, err = framework.ListWAL(context.Background(), env.storage)
	require.NoError(t, err)
	assert.Empty(t, wals)
}

// rollback runs Vault's rollback operation at once, ignoring the minimum age.
func (e *testEnv) rollback() {
	e.t.Helper()
	_, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RollbackOperation, Storage: e.storage, Data: map[string]any{"immediate": true},
	})
	require.NoError(e.t, err)
}

// A refusal by Quay means nothing was created: no write-ahead entry stays.
func TestCredsOAuth_RefusalLeavesNoWriteAheadEntry(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", map[string]any{"scopes": "super:user"})
	_, err := env.requestErr(logical.ReadOperation, "creds/ci", nil)
	require.NoError(t, err, "super:user is within the admin's scopes")

	env.writeOAuthRole("narrow", nil)
	env.quay.Faults().FailNext("createOrganizationApplicationToken", 1, 403)
	_, err = env.requestErr(logical.ReadOperation, "creds/narrow", nil)
	require.Error(t, err)
	coded, ok := err.(logical.HTTPCodedError)
	require.True(t, ok, "%T", err)
	assert.Equal(t, 502, coded.Code())
	wals, _ := framework.ListWAL(context.Background(), env.storage)
	assert.Empty(t, wals)
}

func TestCredsOAuth_RateLimitIsRetried(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", nil)
	env.quay.Faults().Burst429("createOrganizationApplicationToken", 2)
	resp := env.issue("ci")
	assert.NotEmpty(t, resp.Data["token"])
}

func TestCredsOAuth_RevokeReturnsARetryableErrorWhenQuayIsDown(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", nil)
	resp := env.issue("ci")

	env.quay.Faults().FailNext("deleteOrganizationApplicationToken", 10, 503)
	_, err := env.revoke(resp.Secret)
	require.Error(t, err, "Vault must retry later")
	assert.NotErrorIs(t, err, logical.ErrUnrecoverable)
	env.quay.Faults().Reset()

	_, err = env.revoke(resp.Secret)
	require.NoError(t, err)
	assert.Empty(t, env.appTokens(resp.Data["client_id"].(string)))
}

func BenchmarkCredsOAuth(b *testing.B) {
	env := newTestEnv(b)
	env.writeOAuthRole("ci", nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := env.b.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "creds/ci", Storage: env.storage})
		if err != nil || failed(resp) {
			b.Fatal(err, errorAnswer(resp))
		}
	}
}

// A Quay without the route (older than 3.18, or a proxy that does not pass
// it) answers a DELETE with Werkzeug's HTML 405 page. That is no "already
// gone": revoke fails, so Vault keeps the lease and retries, the token
// stays tracked, and the error says what is missing.
func TestRevoke_HTMLPageForAMissingRouteIsNotAlreadyGone(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("ci", nil)
	resp := env.issue("ci")
	token := resp.Data["token"].(string)
	env.quay.Faults().Add(emulator.Fault{Route: "deleteOrganizationApplicationToken", Count: 1, Status: 405,
		Body: "<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n"})

	_, err := env.revoke(resp.Secret)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no such API route")
	assert.True(t, env.works(token), "the token is alive in Quay")

	_, err = env.revoke(resp.Secret)
	require.NoError(t, err, "Vault's retry deletes it once Quay serves the route")
	assert.False(t, env.works(token))
	env.assertNoSecretLogged(token)
}
