package quay_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// httpsIssuer is a minimal OIDC issuer over HTTPS: discovery, one key, and
// a function to sign tokens for a subject.
func httpsIssuer(t *testing.T) (url string, roots *x509.CertPool, sign func(sub string, ttl time.Duration) string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	mux := http.NewServeMux()
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	require.NoError(t, err)
	roots = x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return srv.URL, roots, func(sub string, ttl time.Duration) string {
		now := time.Now()
		token, err := jwt.Signed(signer).Claims(jwt.Claims{
			Issuer: srv.URL, Subject: sub, Audience: jwt.Audience{"quay"},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(ttl)),
		}).Serialize()
		require.NoError(t, err)
		return token
	}
}

// The federation calls against the emulator: configure, exchange, and the
// refusals the engine has to tell apart.
func TestEmulator_RobotFederation(t *testing.T) {
	issuer, roots, sign := httpsIssuer(t)
	cfg, err := emulator.ParseConfig([]byte("SUPER_USERS: [admin]\n"))
	require.NoError(t, err)
	emu, err := emulator.New(cfg, emulator.WithRootCAs(roots))
	require.NoError(t, err)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	require.NoError(t, emu.CreateUser("admin", "password1", "admin@example.com"))
	require.NoError(t, emu.CreateOrganization("acme", "admin"))
	token, err := emu.IssueToken("admin", "org:admin", time.Hour)
	require.NoError(t, err)
	c := client(t, srv.URL, quay.StaticToken(token))
	acme := quay.Namespace{Kind: quay.NamespaceOrganization, Name: "acme"}

	_, err = c.SetRobotFederation(ctx, acme, "ci", []quay.FederationEntry{{Issuer: issuer, Subject: "acme+ci"}})
	assert.True(t, quay.IsRobotNotFound(err), err)
	_, err = c.CreateRobot(ctx, acme, "ci", quay.RobotSpec{})
	require.NoError(t, err)
	_, err = c.SetRobotFederation(ctx, acme, "ci", []quay.FederationEntry{{Issuer: "ftp://x", Subject: "s"}})
	assert.Equal(t, 400, quay.StatusOf(err))
	assert.ErrorContains(t, err, "Issuer must be a URL")

	want := []quay.FederationEntry{{Issuer: issuer, Subject: "acme+ci"}}
	stored, err := c.SetRobotFederation(ctx, acme, "ci", want)
	require.NoError(t, err)
	assert.Equal(t, want, stored)
	list, err := c.GetRobotFederation(ctx, acme, "ci")
	require.NoError(t, err)
	assert.Equal(t, want, list)

	before := time.Now().Truncate(time.Second)
	got, err := c.ExchangeFederatedRobotToken(ctx, "acme+ci", sign("acme+ci", 5*time.Minute))
	require.NoError(t, err)
	assert.NotEmpty(t, got.Token)
	assert.WithinDuration(t, before.Add(quay.FederatedTokenLifetime), got.ExpiresAt, 2*time.Second)

	_, err = c.ExchangeFederatedRobotToken(ctx, "acme+ci", sign("acme+other", 5*time.Minute))
	assert.Equal(t, 400, quay.StatusOf(err))
	assert.ErrorContains(t, err, "Token does not match robot")
	_, err = c.ExchangeFederatedRobotToken(ctx, "acme+ci", sign("acme+ci", -time.Minute))
	assert.ErrorContains(t, err, "Invalid token: Signature has expired")

	require.NoError(t, c.DeleteRobotFederation(ctx, acme, "ci"))
	list, err = c.GetRobotFederation(ctx, acme, "ci")
	require.NoError(t, err)
	assert.Empty(t, list)
	_, err = c.ExchangeFederatedRobotToken(ctx, "acme+ci", sign("acme+ci", 5*time.Minute))
	assert.ErrorContains(t, err, "Robot does not have federated login configured")
}
