package backend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// verifyFederationToken checks a minted token against the published key
// set, as a relying party would, and returns its claims.
func (e *testEnv) verifyFederationToken(token string) (jwt.Claims, map[string]any) {
	e.t.Helper()
	_, _, body := e.rawGet(".well-known/keys")
	raw, _ := json.Marshal(body)
	var set jose.JSONWebKeySet
	require.NoError(e.t, json.Unmarshal(raw, &set))
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.RS384})
	require.NoError(e.t, err)
	require.Len(e.t, parsed.Headers, 1)
	keys := set.Key(parsed.Headers[0].KeyID)
	require.Len(e.t, keys, 1, "the token's kid is published")
	var claims jwt.Claims
	var all map[string]any
	require.NoError(e.t, parsed.Claims(keys[0].Key, &claims, &all))
	return claims, all
}

func TestMintFederationToken(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	_, err := env.b.mintFederationToken(ctx, env.storage, "acme+ci", "https://quay.example.com")
	assert.ErrorIs(t, err, errFederationNotConfigured)

	kid := env.writeFederation(map[string]any{"federation_issuer": testIssuer, "token_ttl": "2m"}).Data["current_key_id"]
	now := env.clock.Now().Truncate(time.Second)
	minted, err := env.b.mintFederationToken(ctx, env.storage, "acme+ci", "https://quay.example.com")
	require.NoError(t, err)
	assert.Equal(t, kid, minted.KeyID)
	assert.WithinDuration(t, now.Add(2*time.Minute), minted.ExpiresAt, time.Second)

	claims, all := env.verifyFederationToken(minted.Token)
	assert.Equal(t, testIssuer, claims.Issuer)
	assert.Equal(t, "acme+ci", claims.Subject)
	assert.Equal(t, jwt.Audience{"https://quay.example.com"}, claims.Audience, "Quay's url when no audience is configured")
	assert.Equal(t, 2*time.Minute, claims.Expiry.Time().Sub(claims.IssuedAt.Time()))
	assert.Equal(t, claims.IssuedAt, claims.NotBefore)
	assert.WithinDuration(t, now, claims.IssuedAt.Time(), time.Second)
	assert.Len(t, claims.ID, 32)
	assert.ElementsMatch(t, []string{"iss", "sub", "aud", "iat", "nbf", "exp", "jti"}, keysOf(all))
	parsed, err := jwt.ParseSigned(minted.Token, []jose.SignatureAlgorithm{jose.RS256})
	require.NoError(t, err)
	assert.Equal(t, "JWT", parsed.Headers[0].ExtraHeaders["typ"], "Quay takes a JWT password for one only with typ JWT")

	again, err := env.b.mintFederationToken(ctx, env.storage, "acme+ci", "https://quay.example.com")
	require.NoError(t, err)
	second, _ := env.verifyFederationToken(again.Token)
	assert.NotEqual(t, claims.ID, second.ID, "every token has its own jti")

	env.writeFederation(map[string]any{"audience": "quay-prod"})
	minted, err = env.b.mintFederationToken(ctx, env.storage, "acme+ci", "https://quay.example.com")
	require.NoError(t, err)
	claims, _ = env.verifyFederationToken(minted.Token)
	assert.Equal(t, jwt.Audience{"quay-prod"}, claims.Audience)

	env.writeFederation(map[string]any{"signing_algorithm": "RS384"})
	minted, err = env.b.mintFederationToken(ctx, env.storage, "acme+ci", "")
	require.NoError(t, err)
	parsed, err = jwt.ParseSigned(minted.Token, []jose.SignatureAlgorithm{jose.RS384})
	require.NoError(t, err, "signed with the new algorithm and its own key")
	assert.Equal(t, minted.KeyID, parsed.Headers[0].KeyID)

	env.assertNoSecretLogged(minted.Token, again.Token)
}

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// vaultFront serves the mount's unauthenticated paths over HTTPS under
// /v1/quay/, the way Vault's HTTP layer writes raw responses; its
// certificate comes from its own test CA, which Quay must be told to trust.
type vaultFront struct {
	srv *httptest.Server
	env atomic.Pointer[testEnv]
}

func newVaultFront(t testing.TB) *vaultFront { return newVaultFrontWithCert(t, nil) }

// newVaultFrontWithCert is newVaultFront with a certificate of the
// caller's CA (nil: httptest's own).
func newVaultFrontWithCert(t testing.TB, cert *tls.Certificate) *vaultFront {
	t.Helper()
	f := &vaultFront{}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env := f.env.Load()
		path, ok := strings.CutPrefix(r.URL.Path, "/v1/quay/")
		if env == nil || !ok || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		resp, err := env.b.HandleRequest(r.Context(), &logical.Request{
			Operation: logical.ReadOperation, Path: path, Storage: env.storage, MountPoint: "quay/", Unauthenticated: true,
		})
		if err != nil || resp == nil || resp.Data[logical.HTTPRawBody] == nil {
			http.Error(w, "not a raw response", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", resp.Data[logical.HTTPContentType].(string))
		w.WriteHeader(resp.Data[logical.HTTPStatusCode].(int))
		_, _ = w.Write(resp.Data[logical.HTTPRawBody].([]byte))
	}))
	if cert != nil {
		f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *vaultFront) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	return pool
}

func (f *vaultFront) issuer() string { return f.srv.URL + "/v1/quay" }

// Quay (the emulator, trusting Vault's CA as REQUESTS_CA_BUNDLE would make
// real Quay do) exchanges the engine's tokens for robot tokens, and only
// for the robot and issuer it was told; a key rotation does not break a
// token already minted.
func TestFederationTokensAreExchangedByQuay(t *testing.T) {
	vault := newVaultFront(t)
	env := newTestEnv(t, withEmulatorOptions(emulator.WithRootCAs(vault.roots())))
	vault.env.Store(env)
	ctx := context.Background()
	env.writeFederation(map[string]any{"federation_issuer": vault.issuer()})

	acme := quay.Namespace{Kind: quay.NamespaceOrganization, Name: testOrg}
	for _, short := range []string{"ci", "other"} {
		_, err := env.adminClient.CreateRobot(ctx, acme, short, quay.RobotSpec{})
		require.NoError(t, err)
	}
	_, err := env.adminClient.SetRobotFederation(ctx, acme, "ci", []quay.FederationEntry{{Issuer: vault.issuer(), Subject: "acme+ci"}})
	require.NoError(t, err)
	anon := env.quayClient("")
	mint := func(subject string) string {
		t.Helper()
		minted, err := env.b.mintFederationToken(ctx, env.storage, subject, env.server.URL)
		require.NoError(t, err)
		return minted.Token
	}

	inFlight := mint("acme+ci")
	got, err := anon.ExchangeFederatedRobotToken(ctx, "acme+ci", inFlight)
	require.NoError(t, err)
	assert.WithinDuration(t, env.clock.Now().Add(quay.FederatedTokenLifetime), got.ExpiresAt, 2*time.Second)

	env.mustOK(logical.UpdateOperation, "config/federation/rotate-key", nil)
	_, err = anon.ExchangeFederatedRobotToken(ctx, "acme+ci", inFlight)
	assert.NoError(t, err, "a token signed before the rotation is still accepted")
	_, err = anon.ExchangeFederatedRobotToken(ctx, "acme+ci", mint("acme+ci"))
	assert.NoError(t, err, "and one signed with the new key")

	_, err = anon.ExchangeFederatedRobotToken(ctx, "acme+ci", mint("acme+other"))
	assert.Equal(t, 400, quay.StatusOf(err))
	assert.ErrorContains(t, err, "Token does not match robot")
	_, err = anon.ExchangeFederatedRobotToken(ctx, "acme+other", mint("acme+other"))
	assert.ErrorContains(t, err, "Robot does not have federated login configured")

	env.advance(6 * time.Minute)
	_, err = anon.ExchangeFederatedRobotToken(ctx, "acme+ci", inFlight)
	assert.ErrorContains(t, err, "Invalid token: Signature has expired", "tokens are short-lived")

	// An issuer URL Quay cannot reach over trusted HTTPS fails in Quay.
	_, err = env.adminClient.SetRobotFederation(ctx, acme, "ci", []quay.FederationEntry{{Issuer: "https://127.0.0.1:1/v1/quay", Subject: "acme+ci"}})
	require.NoError(t, err)
	env.writeFederation(map[string]any{"federation_issuer": "https://127.0.0.1:1/v1/quay"})
	_, err = anon.ExchangeFederatedRobotToken(ctx, "acme+ci", mint("acme+ci"))
	assert.Equal(t, 500, quay.StatusOf(err))

	env.assertNoSecretLogged(inFlight, got.Token)
}

// BenchmarkMintFederationToken: the engine's side of a federated read.
func BenchmarkMintFederationToken(b *testing.B) {
	env := newTestEnv(b)
	env.writeFederation(map[string]any{"federation_issuer": testIssuer})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := env.b.mintFederationToken(ctx, env.storage, "acme+ci", "https://quay.example.com"); err != nil {
			b.Fatal(err)
		}
	}
}
