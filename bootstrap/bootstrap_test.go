package bootstrap

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator/oidcprovider"
)

func emulated(t *testing.T, config string) (*emulator.Emulator, *quay.Client) {
	t.Helper()
	cfg, err := emulator.ParseConfig([]byte(config))
	require.NoError(t, err)
	emu, err := emulator.New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	c, err := quay.New(quay.Config{BaseURL: srv.URL})
	require.NoError(t, err)
	return emu, c
}

func TestInitialize_CreatesTheFirstUserAndItsToken(t *testing.T) {
	_, q := emulated(t, "FEATURE_USER_INITIALIZE: true\nFEATURE_MAILING: false\nSUPER_USERS: [quayadmin]\n")
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	pw, err := GeneratePassword()
	require.NoError(t, err)
	m := Initialize{Username: "quayadmin", Password: pw, Now: func() time.Time { return now }}
	assert.Equal(t, MethodInitialize, m.Name())

	g, err := m.Obtain(context.Background(), q)
	require.NoError(t, err)
	assert.Len(t, g.Token, 40)
	assert.Equal(t, now.Add(9000*time.Second), g.ExpiresAt)
	assert.Equal(t, "quayadmin", g.ClientID, "Quay names the initialization app after the user")
	assert.Contains(t, g.Scopes, "super:user")
	u, err := q.WithCredential(g.Credential).GetUser(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "quayadmin", u.Username)
	assert.True(t, u.SuperUser)

	_, err = m.Obtain(context.Background(), q)
	require.Error(t, err, "initialization only works on an empty Quay")
	assert.Contains(t, err.Error(), "non-empty database")
}

func TestPassword_DirectOAuth(t *testing.T) {
	emu, q := emulated(t, "SUPER_USERS: [svc]\nDIRECT_OAUTH_CLIENTID_WHITELIST: [WHITELISTED000000000]\n")
	require.NoError(t, emu.CreateUser("svc", "service-password", "svc@example.com"))
	require.NoError(t, emu.CreateOrganization("automation", "svc"))
	require.NoError(t, emu.CreateApplication("automation", "vault", "WHITELISTED000000000", ""))

	m := Password{Username: "svc", Password: "service-password", ClientID: "WHITELISTED000000000", Scopes: []string{"org:admin", "user:read"}}
	g, err := m.Obtain(context.Background(), q)
	require.NoError(t, err)
	assert.Equal(t, "WHITELISTED000000000", g.ClientID)
	assert.False(t, g.ExpiresAt.IsZero(), "direct OAuth tokens carry expires_in")
	u, err := q.WithCredential(g.Credential).GetUser(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "svc", u.Username)

	require.NoError(t, emu.CreateApplication("automation", "other", "NOTLISTED00000000000", ""))
	_, err = Password{Username: "svc", Password: "service-password", ClientID: "NOTLISTED00000000000", Scopes: []string{"user:read"}}.Obtain(context.Background(), q)
	require.Error(t, err)
	assert.True(t, quay.IsUnauthorized(err), "not whitelisted: Quay's CSRF 403: %v", err)

	// A wrong password is refused, and Quay then throttles the user's logins.
	m.Password = "wrong-password"
	_, err = m.Obtain(context.Background(), q)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "wrong-password")
	m.Password = "service-password"
	_, err = m.Obtain(context.Background(), q)
	require.Error(t, err)
	assert.True(t, quay.IsRateLimited(err), "Quay backs off after a failed login: %v", err)
}

func idp(t *testing.T, ttl time.Duration) *oidcprovider.Provider {
	t.Helper()
	p, err := oidcprovider.New(oidcprovider.Config{
		Issuer: oidcprovider.IssuerV2("t"), TokenTTL: ttl,
		Clients: []oidcprovider.Client{{ID: "vault", Secret: "client-secret-value", Subject: "vault-sp"}},
	})
	require.NoError(t, err)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.BaseURL = srv.URL
	return p
}

func TestOIDC_CachesTheTokenAndFetchesOnceForConcurrentCallers(t *testing.T) {
	p := idp(t, time.Hour)
	cred := OIDC{TokenURL: p.TokenURL(), ClientID: "vault", ClientSecret: "client-secret-value", Scopes: []string{"api://quay-api/.default"}}.Credential()

	var wg sync.WaitGroup
	tokens := make([]string, 20)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := cred.BearerToken(context.Background())
			assert.NoError(t, err)
			tokens[i] = tok
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, p.TokensIssued(), "one token for twenty concurrent callers")
	for _, tok := range tokens {
		assert.Equal(t, tokens[0], tok)
	}
	assert.WithinDuration(t, time.Now().Add(time.Hour), cred.expiry(), 5*time.Second, "expiry from the JWT's exp")
}

func TestOIDC_RefreshesBeforeExpiry(t *testing.T) {
	// Tokens that live less than the early-refresh margin are never reused.
	p := idp(t, time.Minute)
	cred := OIDC{TokenURL: p.TokenURL(), ClientID: "vault", ClientSecret: "client-secret-value", Scopes: []string{"api://quay-api/.default"}}.Credential()
	_, err := cred.BearerToken(context.Background())
	require.NoError(t, err)
	_, err = cred.BearerToken(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, p.TokensIssued())
}

func TestOIDC_ProviderErrorsNeverCarryTheSecret(t *testing.T) {
	p := idp(t, time.Hour)
	m := OIDC{TokenURL: p.TokenURL(), ClientID: "vault", ClientSecret: "wrong-secret-value", Scopes: []string{"api://quay-api/.default"}}
	_, err := m.Obtain(context.Background(), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "invalid_client")
	assert.NotContains(t, err.Error(), "wrong-secret-value")
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		pw, err := GeneratePassword()
		require.NoError(t, err)
		assert.Len(t, pw, 32)
		assert.False(t, strings.ContainsAny(pw, " \t\n"), "Quay refuses whitespace")
		for _, r := range pw {
			assert.Contains(t, passwordAlphabet, string(r))
		}
		assert.False(t, seen[pw])
		seen[pw] = true
	}
}

func TestToken_IsUsedAsIs(t *testing.T) {
	g, err := Token{Value: "abc"}.Obtain(context.Background(), nil)
	require.NoError(t, err)
	tok, _ := g.Credential.BearerToken(context.Background())
	assert.Equal(t, "abc", tok)
	assert.Equal(t, "abc", g.Token)
}
