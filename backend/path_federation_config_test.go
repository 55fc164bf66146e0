package backend

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testIssuer = "https://vault.example.com/v1/quay"

func (e *testEnv) writeFederation(data map[string]any) *logical.Response {
	e.t.Helper()
	return e.mustOK(logical.UpdateOperation, "config/federation", data)
}

// rawGet reads an unauthenticated raw path and returns status, content type
// and decoded body.
func (e *testEnv) rawGet(path string) (int, string, map[string]any) {
	e.t.Helper()
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: path, Storage: e.storage, MountPoint: "quay/"})
	require.NoError(e.t, err)
	require.NotNil(e.t, resp)
	body := resp.Data[logical.HTTPRawBody].([]byte)
	var decoded map[string]any
	require.NoError(e.t, json.Unmarshal(body, &decoded), string(body))
	return resp.Data[logical.HTTPStatusCode].(int), resp.Data[logical.HTTPContentType].(string), decoded
}

func TestFederationConfig_Defaults(t *testing.T) {
	env := newTestEnv(t)
	resp := env.writeFederation(map[string]any{"federation_issuer": testIssuer + "/"})
	assert.Equal(t, testIssuer, resp.Data["federation_issuer"], "the trailing slash is dropped")
	assert.Equal(t, int64(300), resp.Data["token_ttl"])
	assert.Equal(t, int64(86400), resp.Data["key_rotation_period"])
	assert.Equal(t, "RS256", resp.Data["signing_algorithm"])
	assert.Equal(t, "", resp.Data["audience"])
	assert.Equal(t, testIssuer+"/.well-known/openid-configuration", resp.Data["discovery_url"])
	assert.Equal(t, testIssuer+"/.well-known/keys", resp.Data["jwks_uri"])
	kid := resp.Data["current_key_id"].(string)
	assert.Len(t, kid, 32)
	assert.Equal(t, []string{kid}, resp.Data["published_key_ids"])

	read := env.mustOK(logical.ReadOperation, "config/federation", nil)
	assert.Equal(t, resp.Data, read.Data)

	// Writing again keeps the key; only the given fields change.
	resp = env.writeFederation(map[string]any{"token_ttl": "2m", "audience": "quay.example.com"})
	assert.Equal(t, kid, resp.Data["current_key_id"])
	assert.Equal(t, int64(120), resp.Data["token_ttl"])
	assert.Equal(t, testIssuer, resp.Data["federation_issuer"])
	assert.Equal(t, "quay.example.com", resp.Data["audience"])

	// A new algorithm is a new key.
	resp = env.writeFederation(map[string]any{"signing_algorithm": "rs384"})
	assert.Equal(t, "RS384", resp.Data["signing_algorithm"])
	assert.NotEqual(t, kid, resp.Data["current_key_id"])
	assert.Contains(t, resp.Data["published_key_ids"], kid, "the RS256 key stays published for its tokens")
}

// Bad input is a 400 that names the field and the reason, and changes
// nothing.
func TestFederationConfig_Refusals(t *testing.T) {
	env := newTestEnv(t)
	for _, tc := range []struct {
		data  map[string]any
		field string
		says  string
	}{
		{map[string]any{}, "federation_issuer", "is required"},
		{map[string]any{"federation_issuer": "http://vault.example.com/v1/quay"}, "federation_issuer", "must start with https://"},
		{map[string]any{"federation_issuer": "vault.example.com"}, "federation_issuer", "must start with https://"},
		{map[string]any{"federation_issuer": "https:///v1/quay"}, "federation_issuer", "has no host"},
		{map[string]any{"federation_issuer": "https://u:p@vault.example.com/v1/quay"}, "federation_issuer", "credentials"},
		{map[string]any{"federation_issuer": "https://vault.example.com/v1/quay?x=1"}, "federation_issuer", "query"},
		{map[string]any{"federation_issuer": testIssuer, "token_ttl": "10s"}, "token_ttl", "between 30s and 15m0s"},
		{map[string]any{"federation_issuer": testIssuer, "token_ttl": "1h"}, "token_ttl", "between 30s and 15m0s"},
		{map[string]any{"federation_issuer": testIssuer, "key_rotation_period": "30s"}, "key_rotation_period", "at least 1m0s"},
		{map[string]any{"federation_issuer": testIssuer, "signing_algorithm": "ES256"}, "signing_algorithm", ""},
	} {
		resp, err := env.requestErr(logical.UpdateOperation, "config/federation", tc.data)
		msg := errorMessage(resp)
		if err != nil {
			msg = err.Error()
		}
		require.NotEmpty(t, msg, tc.data)
		assert.Contains(t, msg, tc.field, tc.data)
		assert.Contains(t, msg, tc.says, tc.data)
	}
	resp := env.mustOK(logical.ReadOperation, "config/federation", nil)
	assert.Nil(t, resp, "nothing was stored")
	entries, err := env.storage.List(context.Background(), "federation/")
	require.NoError(t, err)
	assert.Empty(t, entries, "no key was generated")

	env.writeFederation(map[string]any{"federation_issuer": testIssuer})
	resp, _ = env.requestErr(logical.UpdateOperation, "config/federation", map[string]any{"token_ttl": "1h"})
	assert.Contains(t, errorMessage(resp), "token_ttl")
	assert.Equal(t, int64(300), env.mustOK(logical.ReadOperation, "config/federation", nil).Data["token_ttl"], "a refused update changes nothing")
}

// The private key stays in (seal-wrapped) storage: no read, write or
// published document carries it.
func TestFederationConfig_PrivateKeyNeverLeaves(t *testing.T) {
	env := newTestEnv(t)
	assert.Contains(t, env.b.PathsSpecial.SealWrapStorage, federationKeysStoragePath)
	written := env.writeFederation(map[string]any{"federation_issuer": testIssuer})
	ring, err := getFederationKeys(context.Background(), env.storage)
	require.NoError(t, err)
	priv, err := json.Marshal(ring.Current.Key)
	require.NoError(t, err)
	var jwk map[string]any
	require.NoError(t, json.Unmarshal(priv, &jwk))
	d := jwk["d"].(string)
	require.NotEmpty(t, d)

	rotated := env.mustOK(logical.UpdateOperation, "config/federation/rotate-key", nil)
	read := env.mustOK(logical.ReadOperation, "config/federation", nil)
	_, _, keys := env.rawGet(".well-known/keys")
	_, _, discovery := env.rawGet(".well-known/openid-configuration")
	for name, v := range map[string]any{"write": written.Data, "rotate": rotated.Data, "read": read.Data, "keys": keys, "discovery": discovery} {
		out, err := json.Marshal(v)
		require.NoError(t, err)
		assertNoSecretIn(t, string(out), name, d)
		assert.False(t, strings.Contains(string(out), `"d"`), "%s: a private exponent (not shown)", name)
	}
}

// Quay reads the discovery document and the keys without a Vault token,
// as plain JSON.
func TestFederationWellKnown(t *testing.T) {
	env := newTestEnv(t)
	assert.ElementsMatch(t, []string{".well-known/openid-configuration", ".well-known/keys"}, env.b.PathsSpecial.Unauthenticated)

	status, _, body := env.rawGet(".well-known/openid-configuration")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Contains(t, body["errors"], errFederationNotConfigured.Error())
	status, _, _ = env.rawGet(".well-known/keys")
	assert.Equal(t, http.StatusNotFound, status)

	resp := env.writeFederation(map[string]any{"federation_issuer": testIssuer})
	status, contentType, body := env.rawGet(".well-known/openid-configuration")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "application/json", contentType)
	assert.Equal(t, testIssuer, body["issuer"])
	assert.Equal(t, testIssuer+"/.well-known/keys", body["jwks_uri"])
	assert.Equal(t, []any{"RS256", "RS384"}, body["id_token_signing_alg_values_supported"])

	status, _, body = env.rawGet(".well-known/keys")
	assert.Equal(t, http.StatusOK, status)
	raw, _ := json.Marshal(body)
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(raw, &set))
	require.Len(t, set.Keys, 1)
	key := set.Keys[0]
	assert.Equal(t, resp.Data["current_key_id"], key.KeyID)
	assert.Equal(t, "RS256", key.Algorithm)
	assert.Equal(t, "sig", key.Use)
	assert.True(t, key.IsPublic())
	assert.True(t, key.Valid())

	env.mustOK(logical.DeleteOperation, "config/federation", nil)
	status, _, _ = env.rawGet(".well-known/keys")
	assert.Equal(t, http.StatusNotFound, status, "deleting the issuer unpublishes it")
	entries, err := env.storage.List(context.Background(), "federation/")
	require.NoError(t, err)
	assert.Empty(t, entries, "and removes its keys")
	resp, _ = env.requestErr(logical.UpdateOperation, "config/federation/rotate-key", nil)
	assert.Contains(t, errorMessage(resp), "not configured")
}

// Keys rotate on schedule; a replaced key stays published for as long as
// a token it signed can still be exchanged, then goes.
func TestFederationKeyRotation(t *testing.T) {
	env := newTestEnv(t)
	first := env.writeFederation(map[string]any{"federation_issuer": testIssuer, "key_rotation_period": "1h"}).Data["current_key_id"].(string)
	env.periodic()
	assert.Equal(t, first, env.federationRead()["current_key_id"], "not due yet")

	env.advance(time.Hour)
	env.periodic()
	second := env.federationRead()["current_key_id"].(string)
	assert.NotEqual(t, first, second)
	assert.ElementsMatch(t, []string{first, second}, env.publishedKids())

	env.advance(maxFederationTokenTTL + quayClockSkew - time.Second)
	env.periodic()
	assert.ElementsMatch(t, []string{first, second}, env.publishedKids(), "inside the window of the old key's last token")
	env.advance(time.Second)
	assert.ElementsMatch(t, []string{second}, env.publishedKids(), "past it, the set no longer offers the old key")
	env.periodic()
	ring, err := getFederationKeys(context.Background(), env.storage)
	require.NoError(t, err)
	assert.Empty(t, ring.Retired, "and the periodic function drops it")

	third := env.mustOK(logical.UpdateOperation, "config/federation/rotate-key", nil).Data["current_key_id"].(string)
	assert.NotEqual(t, second, third)
	assert.ElementsMatch(t, []string{second, third}, env.publishedKids())
	next, err := time.Parse(time.RFC3339, env.federationRead()["next_key_rotation"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, env.clock.Now().Add(time.Hour), next, 2*time.Second, "a manual rotation restarts the schedule")
}

func (e *testEnv) federationRead() map[string]any {
	e.t.Helper()
	return e.mustOK(logical.ReadOperation, "config/federation", nil).Data
}

func (e *testEnv) publishedKids() []string {
	e.t.Helper()
	_, _, body := e.rawGet(".well-known/keys")
	var kids []string
	for _, k := range body["keys"].([]any) {
		kids = append(kids, k.(map[string]any)["kid"].(string))
	}
	return kids
}
