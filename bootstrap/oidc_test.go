package bootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator/oidcprovider"
)

const entraTenant = "11111111-2222-3333-4444-555555555555"

// ssoQuay is an emulated Quay accepting the provider's v1.0 and v2.0
// tokens for api://quay-api from the allowed client "vault" (oauth/oidc.py
// OIDC_ISSUERS, OIDC_AUDIENCES, OIDC_ALLOWED_CLIENTS).
func ssoQuay(t *testing.T, idpURL string) *quay.Client {
	t.Helper()
	_, q := emulated(t, `
FEATURE_MAILING: false
SUPER_USERS: [vault-sp]
AZURE_LOGIN_CONFIG:
  DEBUGGING: true
  CLIENT_ID: quay-web
  OIDC_SERVER: `+idpURL+`/
  OIDC_ISSUERS:
    - `+oidcprovider.IssuerV1(entraTenant)+`
    - `+oidcprovider.IssuerV2(entraTenant)+`
  OIDC_AUDIENCES: [api://quay-api]
  OIDC_ALLOWED_CLIENTS: [vault]
`)
	return q
}

// entra serves a provider for the tenant; clock shifts its time (seconds,
// negative for the past) so tests can issue tokens close to expiry.
func entra(t *testing.T, clock *atomic.Int64, clients ...oidcprovider.Client) *oidcprovider.Provider {
	t.Helper()
	now := time.Now
	if clock != nil {
		now = func() time.Time { return time.Now().Add(time.Duration(clock.Load()) * time.Second) }
	}
	p, srv, err := oidcprovider.NewServer(oidcprovider.Config{Tenant: entraTenant, Clients: clients, Now: now})
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	return p
}

var (
	vaultSP  = oidcprovider.Client{ID: "vault", Secret: "client-secret-value", Subject: "vault-sp"}
	legacySP = oidcprovider.Client{ID: "legacy", Secret: "legacy-secret-value", Subject: "legacy-sp", Version: 1}
)

// The OIDC method against the emulator: the credential Obtain returns is
// accepted by Quay, for a v2.0 and a v1.0 client alike, and nothing issued
// by Quay is kept.
func TestOIDC_AgainstQuay(t *testing.T) {
	p := entra(t, nil, vaultSP, legacySP)
	q := ssoQuay(t, p.BaseURL)
	for _, c := range []oidcprovider.Client{vaultSP, legacySP} {
		m := OIDC{TokenURL: p.TokenURL(), ClientID: c.ID, ClientSecret: c.Secret, Scopes: []string{"api://quay-api/.default"}}
		assert.Equal(t, MethodOIDC, m.Name())
		g, err := m.Obtain(context.Background(), q)
		require.NoError(t, err)
		assert.Empty(t, g.Token, "no Quay token to store")
		assert.Empty(t, g.ClientID)
		assert.WithinDuration(t, time.Now().Add(time.Hour), g.ExpiresAt, 5*time.Second)
		u, err := q.WithCredential(g.Credential).GetUser(context.Background())
		require.NoError(t, err, c.ID)
		assert.Equal(t, c.Subject, u.Username)
		assert.Equal(t, c.ID == "vault", u.SuperUser)
	}
	assert.Equal(t, 2, p.TokensIssued(), "Obtain's token is the one the credential then uses")
}

// A token Quay refuses comes back as Quay's 401 reason.
func TestOIDC_QuayRefusesTheToken(t *testing.T) {
	p := entra(t, nil, vaultSP)
	q := ssoQuay(t, p.BaseURL)
	g, err := OIDC{TokenURL: p.TokenURL(), ClientID: "vault", ClientSecret: vaultSP.Secret, Scopes: []string{"api://elsewhere/.default"}}.Obtain(context.Background(), q)
	require.NoError(t, err, "the provider issues it; only Quay can say no")
	_, err = q.WithCredential(g.Credential).GetUser(context.Background())
	require.Error(t, err)
	assert.True(t, quay.IsUnauthorized(err), "%v", err)
	assert.Contains(t, err.Error(), "Audience doesn't match")
}

// x/oauth2 sends the client's credentials with HTTP Basic first; secrets
// with characters that need form-encoding still work, in one request.
func TestOIDC_SecretsThatNeedEncoding(t *testing.T) {
	odd := oidcprovider.Client{ID: "vault", Secret: "a~b.c_d+e/f=g%h", Subject: "vault-sp"}
	p := entra(t, nil, odd)
	cred := OIDC{TokenURL: p.TokenURL(), ClientID: odd.ID, ClientSecret: odd.Secret, Scopes: []string{"api://quay-api/.default"}}.Credential()
	_, err := cred.BearerToken(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, p.TokenRequests())
}

// A token is reused while more than two minutes of it remain; once fewer
// remain, the next call fetches a new one, once for any number of
// concurrent callers.
func TestOIDC_RefreshesBeforeExpiryOnceForConcurrentCallers(t *testing.T) {
	var shift atomic.Int64
	// The first token expires in a little over the early-refresh margin:
	// issued 57m58s ago with an hour's lifetime.
	shift.Store(-(57*60 + 58))
	p := entra(t, &shift, vaultSP)
	var ahead atomic.Int64 // how far the credential's clock runs ahead
	clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	cred := OIDC{TokenURL: p.TokenURL(), ClientID: "vault", ClientSecret: vaultSP.Secret, Scopes: []string{"api://quay-api/.default"}, Now: clock}.Credential()
	first, err := cred.BearerToken(context.Background())
	require.NoError(t, err)
	again, err := cred.BearerToken(context.Background())
	require.NoError(t, err)
	assert.Equal(t, first, again, "still fresh: more than two minutes left")
	assert.Equal(t, 1, p.TokensIssued())
	assert.WithinDuration(t, time.Now().Add(oidcEarlyRefresh), cred.expiry(), 3*time.Second, "expiry from the JWT's exp, not expires_in")

	ahead.Store(int64(2100 * time.Millisecond)) // now fewer than two minutes remain
	shift.Store(0)
	refreshed := sameBearerTokenConcurrently(t, cred, 16)
	assert.Equal(t, 2, p.TokensIssued(), "one refresh for sixteen concurrent callers")
	assert.NotEqual(t, first, refreshed)
	assert.WithinDuration(t, time.Now().Add(time.Hour), cred.expiry(), 5*time.Second)
}

// The JWT's exp wins over a longer expires_in, and a response without
// expires_in still expires.
func TestOIDC_ExpiryFromTheJWT(t *testing.T) {
	p := entra(t, nil, vaultSP)
	var dropExpiresIn atomic.Bool
	// A proxy claiming a day's lifetime for hour-long tokens, or none.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, r)
		var body map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		body["expires_in"] = 86400
		if dropExpiresIn.Load() {
			delete(body, "expires_in")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		_ = json.NewEncoder(w).Encode(body)
	}))
	defer srv.Close()
	m := OIDC{TokenURL: srv.URL + "/oauth2/v2.0/token", ClientID: "vault", ClientSecret: vaultSP.Secret, Scopes: []string{"api://quay-api/.default"}}
	g, err := m.Obtain(context.Background(), nil)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(time.Hour), g.ExpiresAt, 5*time.Second)

	dropExpiresIn.Store(true)
	g, err = m.Obtain(context.Background(), nil)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(time.Hour), g.ExpiresAt, 5*time.Second)
}

// sameBearerTokenConcurrently asks cred for a token from n goroutines at once
// and checks they all got the same one, which it returns.
func sameBearerTokenConcurrently(t *testing.T, cred *OIDCCredential, n int) string {
	t.Helper()
	var wg sync.WaitGroup
	tokens := make([]string, n)
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
	for _, tok := range tokens {
		assert.Equal(t, tokens[0], tok)
	}
	return tokens[0]
}

// The provider's refusal keeps its error code and description (what an
// operator needs: Entra's AADSTS code) and never the client secret.
func TestOIDC_ProviderErrors(t *testing.T) {
	p := entra(t, nil, vaultSP)
	for name, tc := range map[string]struct {
		m    OIDC
		want []string
	}{
		"wrong secret":   {OIDC{ClientID: "vault", ClientSecret: "wrong-secret-value", Scopes: []string{"api://quay-api/.default"}}, []string{"invalid_client", "AADSTS7000215"}},
		"unknown client": {OIDC{ClientID: "nobody", ClientSecret: "wrong-secret-value", Scopes: []string{"api://quay-api/.default"}}, []string{"unauthorized_client", "AADSTS700016"}},
		"bad scope":      {OIDC{ClientID: "vault", ClientSecret: vaultSP.Secret, Scopes: []string{"api://quay-api"}}, []string{"invalid_scope", "AADSTS1002012"}},
	} {
		tc.m.TokenURL = p.TokenURL()
		_, err := tc.m.Obtain(context.Background(), nil)
		require.Error(t, err, name)
		for _, w := range tc.want {
			assert.Contains(t, err.Error(), w, name)
		}
		assertNoSecretIn(t, err.Error(), tc.m.ClientSecret)
	}
	assert.Equal(t, 0, p.TokensIssued())

	// Not an OAuth endpoint at all: the status, not the page.
	notOAuth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "<html>client-secret-value</html>")
	}))
	defer notOAuth.Close()
	_, err := OIDC{TokenURL: notOAuth.URL, ClientID: "vault", ClientSecret: vaultSP.Secret, Scopes: []string{"x/.default"}}.Obtain(context.Background(), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "404")
	assertNoSecretIn(t, err.Error(), vaultSP.Secret)

	// Unreachable.
	_, err = OIDC{TokenURL: "http://127.0.0.1:1/token", ClientID: "vault", ClientSecret: vaultSP.Secret, Scopes: []string{"x/.default"}}.Obtain(context.Background(), nil)
	require.Error(t, err)
	assertNoSecretIn(t, err.Error(), vaultSP.Secret)
}

// A provider (or a proxy, or a token URL pointing at an echo service) that
// repeats the request in its error_description.
func TestOIDC_EchoedSecretIsNotRepeated(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		user, pass, _ := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": "got " + string(body) + " " + user + ":" + pass})
	}))
	defer echo.Close()
	for _, secret := range []string{"echoed-secret-value", "echoed secret+with/escapes&="} {
		_, err := OIDC{TokenURL: echo.URL, ClientID: "vault", ClientSecret: secret, Scopes: []string{"x/.default"}}.Obtain(context.Background(), nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "invalid_client")
		assert.Contains(t, err.Error(), "[redacted]", "the echo is there, without the secret")
		assertNoSecretIn(t, err.Error(), secret)
		assertNoSecretIn(t, err.Error(), url.QueryEscape(secret))
	}
}

// The token the credential presents is the provider's, untouched: an
// Entra-shaped RS256 JWT for the requested resource.
func TestOIDC_PresentsTheProvidersToken(t *testing.T) {
	p := entra(t, nil, vaultSP)
	var seen bytes.Buffer
	var mu sync.Mutex
	quaySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen.WriteString(r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"anonymous": false, "username": "vault-sp"}`)
	}))
	defer quaySrv.Close()
	q, err := quay.New(quay.Config{BaseURL: quaySrv.URL})
	require.NoError(t, err)
	g, err := OIDC{TokenURL: p.TokenURL(), ClientID: "vault", ClientSecret: vaultSP.Secret, Scopes: []string{"api://quay-api/.default"}}.Obtain(context.Background(), q)
	require.NoError(t, err)
	_, err = q.WithCredential(g.Credential).GetUser(context.Background())
	require.NoError(t, err)
	mu.Lock()
	auth := seen.String()
	mu.Unlock()
	raw, ok := strings.CutPrefix(auth, "Bearer ")
	require.True(t, ok, auth)
	claims := jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(raw, claims)
	require.NoError(t, err)
	assert.Equal(t, "RS256", tok.Header["alg"])
	assert.Equal(t, "JWT", tok.Header["typ"])
	assert.Equal(t, "api://quay-api", claims["aud"])
	assert.Equal(t, "vault", claims["azp"])
	assert.Equal(t, oidcprovider.IssuerV2(entraTenant), claims["iss"])
}
