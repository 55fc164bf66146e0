package bootstrap

import (
	"context"
	"net/http/httptest"
	"strings"
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
	assert.Equal(t, 400, quay.StatusOf(err))
}

// Quay refuses initialization on a Quay that has any user (or org, or
// robot), and without FEATURE_USER_INITIALIZE the route does not exist.
func TestInitialize_Refusals(t *testing.T) {
	emu, q := emulated(t, "FEATURE_USER_INITIALIZE: true\nFEATURE_MAILING: false\n")
	require.NoError(t, emu.CreateUser("someone", "password1", "s@example.com"))
	_, err := Initialize{Username: "quayadmin", Password: "long-enough-pw"}.Obtain(context.Background(), q)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "non-empty database")

	_, q = emulated(t, "FEATURE_MAILING: false\n")
	_, err = Initialize{Username: "quayadmin", Password: "long-enough-pw"}.Obtain(context.Background(), q)
	require.Error(t, err)
	// route_show_if answers util.http.abort's 404 {"error": "Not Found"},
	// not an ApiException: the status says it, not quay.IsNotFound.
	assert.Equal(t, 404, quay.StatusOf(err), "FEATURE_USER_INITIALIZE defaults to off: %v", err)
	assert.False(t, quay.IsNotFound(err), "the route is hidden, not an object gone")

	// With FEATURE_MAILING (Quay's default) an email is required.
	_, q = emulated(t, "FEATURE_USER_INITIALIZE: true\n")
	_, err = Initialize{Username: "quayadmin", Password: "long-enough-pw"}.Obtain(context.Background(), q)
	require.Error(t, err)
	assert.Equal(t, 400, quay.StatusOf(err))
	g, err := Initialize{Username: "quayadmin", Password: "long-enough-pw", Email: "admin@example.com"}.Obtain(context.Background(), q)
	require.NoError(t, err)
	assert.Regexp(t, `^[A-Z0-9]{40}$`, g.Token, "initialization tokens are upper-case and digits")
}

// Quay accepts its local OAuth handler only at SERVER_HOSTNAME, which is
// often not the name Vault reaches it by (an in-cluster service, a load
// balancer): the default redirect comes from Quay's own GET /config.
func TestPassword_DefaultRedirectIsQuaysServerHostname(t *testing.T) {
	emu, q := emulated(t, "SERVER_HOSTNAME: registry.example.com\nPREFERRED_URL_SCHEME: https\nSUPER_USERS: [svc]\nDIRECT_OAUTH_CLIENTID_WHITELIST: [WHITELISTED000000000]\n")
	require.NoError(t, emu.CreateUser("svc", "service-password", "svc@example.com"))
	require.NoError(t, emu.CreateOrganization("automation", "svc"))
	require.NoError(t, emu.CreateApplication("automation", "vault", "WHITELISTED000000000", ""))

	redirect, err := q.LocalOAuthRedirect(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "https://registry.example.com/oauth/localapp", redirect)

	g, err := Password{Username: "svc", Password: "service-password", ClientID: "WHITELISTED000000000", Scopes: []string{"user:read"}}.Obtain(context.Background(), q)
	require.NoError(t, err, "reached at %s, Quay still takes the handler at its SERVER_HOSTNAME", q.BaseURL())
	u, err := q.WithCredential(g.Credential).GetUser(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "svc", u.Username)
}

func TestPassword_DirectOAuth(t *testing.T) {
	emu, q := emulated(t, "SUPER_USERS: [svc]\nDIRECT_OAUTH_CLIENTID_WHITELIST: [WHITELISTED000000000, REDIRECTING000000000]\n")
	require.NoError(t, emu.CreateUser("svc", "service-password", "svc@example.com"))
	require.NoError(t, emu.CreateOrganization("automation", "svc"))
	require.NoError(t, emu.CreateApplication("automation", "vault", "WHITELISTED000000000", ""))

	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	m := Password{Username: "svc", Password: "service-password", ClientID: "WHITELISTED000000000", Scopes: []string{"org:admin", "user:read"},
		Now: func() time.Time { return now }}
	assert.Equal(t, MethodPassword, m.Name())
	g, err := m.Obtain(context.Background(), q)
	require.NoError(t, err)
	assert.Equal(t, "WHITELISTED000000000", g.ClientID)
	assert.Equal(t, now.Add(315576000*time.Second), g.ExpiresAt, "direct OAuth tokens live ten years (expires_in)")
	assert.Equal(t, []string{"org:admin", "user:read"}, g.Scopes)
	assert.Regexp(t, `^[A-Za-z0-9]{40}$`, g.Token)
	u, err := q.WithCredential(g.Credential).GetUser(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "svc", u.Username)

	// The user must administer the application's organization.
	require.NoError(t, emu.CreateUser("bystander", "bystander-password", "b@example.com"))
	_, err = Password{Username: "bystander", Password: "bystander-password", ClientID: "WHITELISTED000000000", Scopes: []string{"user:read"}}.Obtain(context.Background(), q)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unauthorized_client")

	// The redirect URI must be the application's or Quay's local handler.
	require.NoError(t, emu.CreateApplication("automation", "with-redirect", "REDIRECTING000000000", "https://vault.example/cb"))
	_, err = Password{Username: "svc", Password: "service-password", ClientID: "REDIRECTING000000000", RedirectURI: "https://evil.example/cb", Scopes: []string{"user:read"}}.Obtain(context.Background(), q)
	require.Error(t, err)
	assert.Equal(t, 400, quay.StatusOf(err))

	require.NoError(t, emu.CreateApplication("automation", "other", "NOTLISTED00000000000", ""))
	_, err = Password{Username: "svc", Password: "service-password", ClientID: "NOTLISTED00000000000", Scopes: []string{"user:read"}}.Obtain(context.Background(), q)
	require.Error(t, err)
	assert.True(t, quay.IsUnauthorized(err), "not whitelisted: Quay's CSRF 403: %v", err)

	// A wrong password is refused and starts Quay's login throttle (0.5 s
	// after one failure, sent as "Retry-After: 0"). The right password
	// straight after still gets through: the client waits the hint out
	// with its backoff, as an operator correcting a typo expects.
	m.Password = "wrong-password"
	_, err = m.Obtain(context.Background(), q)
	require.Error(t, err)
	assertNoSecretIn(t, err.Error(), "wrong-password")
	m.Password = "service-password"
	_, err = m.Obtain(context.Background(), q)
	require.NoError(t, err, "the one-failure throttle is ridden out")

	// Failures pile up (Quay's back-off doubles each time: 31.5 s after six),
	// and a wait beyond the client's 15 s cap fails at once with the hint.
	m.Password = "wrong-password"
	for i := range 6 {
		if i > 0 {
			emu.AdvanceClock(time.Hour) // past the previous failure's back-off
		}
		_, err = m.Obtain(context.Background(), q)
		require.True(t, quay.IsUnauthorized(err), "%v", err)
	}
	m.Password = "service-password"
	_, err = m.Obtain(context.Background(), q)
	require.Error(t, err)
	assert.True(t, quay.IsRateLimited(err), "Quay backs off after failed logins: %v", err)
	var qe *quay.Error
	require.ErrorAs(t, err, &qe)
	assert.Equal(t, 31*time.Second, qe.RetryAfter, "Quay's hint, rounded down")
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

	sameBearerTokenConcurrently(t, cred, 20)
	assert.Equal(t, 1, p.TokensIssued(), "one token for twenty concurrent callers")
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
	// Quay accepts it (at least 8 characters, no whitespace).
	_, q := emulated(t, "FEATURE_USER_INITIALIZE: true\nFEATURE_MAILING: false\n")
	pw, err := GeneratePassword()
	require.NoError(t, err)
	_, err = Initialize{Username: "quayadmin", Password: pw}.Obtain(context.Background(), q)
	require.NoError(t, err)
}

func TestToken_IsUsedAsIs(t *testing.T) {
	g, err := Token{Value: "abc"}.Obtain(context.Background(), nil)
	require.NoError(t, err)
	tok, _ := g.Credential.BearerToken(context.Background())
	assert.Equal(t, "abc", tok)
	assert.Equal(t, "abc", g.Token)
}

// GeneratePassword maps random bytes onto the alphabet with byte%len: that
// is unbiased only when the length divides 256, and every character of a
// generated password comes from the alphabet.
func TestGeneratePassword_Unbiased(t *testing.T) {
	require.Zero(t, 256%len(passwordAlphabet), "passwordAlphabet has %d characters, so byte%%%d favours its first %d",
		len(passwordAlphabet), len(passwordAlphabet), 256%len(passwordAlphabet))
	used := map[rune]bool{}
	for range 200 {
		pw, err := GeneratePassword()
		require.NoError(t, err)
		for _, r := range pw {
			require.True(t, strings.ContainsRune(passwordAlphabet, r), "%q outside the alphabet", r)
			used[r] = true
		}
	}
	// 6400 draws from 64 characters: missing one has probability ~64*e^-100.
	assert.Len(t, used, len(passwordAlphabet))
}

// assertNoSecretIn fails when secret appears in text, without printing
// either: a failing test must not put a credential in its output.
func assertNoSecretIn(t testing.TB, text, secret string) {
	t.Helper()
	if secret != "" && strings.Contains(text, secret) {
		t.Errorf("a secret (%d characters) appears in the text (neither shown)", len(secret))
	}
}
