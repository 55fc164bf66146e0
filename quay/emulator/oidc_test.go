package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator/oidcprovider"
)

// The SSO path: Entra-shaped JWTs as Bearer tokens on /api/v1 (auth/oauth.py
// validate_sso_oauth_token), against the test identity provider served over
// httptest.

const tenant = "11111111-2222-3333-4444-555555555555"

type ssoEnv struct {
	emu    *Emulator
	srv    *httptest.Server
	idp    *oidcprovider.Provider
	idpURL string
	client oidcprovider.Client
	// legacy is a client whose tokens are v1.0 (iss sts.windows.net, appid).
	legacy oidcprovider.Client
	// clock drives both the emulator and the provider.
	clock *testClock
}

// ssoConfig: Quay accepting Entra v1.0 and v2.0 tokens for api://quay-api
// from the allowed client "vault" (oauth/oidc.py OIDC_ISSUERS,
// OIDC_AUDIENCES, OIDC_ALLOWED_CLIENTS). DEBUGGING sits inside the
// block, where oauth/oidc.py reads it; FEATURE_MAILING is off, since
// client-credentials tokens carry no verified email.
func ssoConfig(server string) string {
	return `
FEATURE_MAILING: false
SUPER_USERS: [vault-sp]
AZURE_LOGIN_CONFIG:
  DEBUGGING: true
  CLIENT_ID: quay-web
  OIDC_SERVER: ` + server + `/
  OIDC_ISSUERS:
    - https://sts.windows.net/` + tenant + `/
    - https://login.microsoftonline.com/` + tenant + `/v2.0
  OIDC_AUDIENCES: [api://quay-api]
  OIDC_ALLOWED_CLIENTS: [vault]
`
}

func newSSOEnv(t *testing.T) *ssoEnv { return newSSOEnvWith(t, ssoConfig) }

func newSSOEnvWith(t *testing.T, config func(server string) string) *ssoEnv {
	return newSSOEnvFull(t, config, nil)
}

// newSSOEnvFull serves the provider behind wrap (when given), so tests can
// break its endpoints.
func newSSOEnvFull(t *testing.T, config func(server string) string, wrap func(http.Handler) http.Handler) *ssoEnv {
	t.Helper()
	clock := &testClock{now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	client := oidcprovider.Client{ID: "vault", Secret: "s3cret", Subject: "vault-sp"}
	legacy := oidcprovider.Client{ID: "legacy-app", Secret: "l3gacy", Subject: "legacy-sp", Version: 1}
	idp, err := oidcprovider.New(oidcprovider.Config{Tenant: tenant, Clients: []oidcprovider.Client{client, legacy}, Now: clock.Now})
	require.NoError(t, err)
	var h http.Handler = idp
	if wrap != nil {
		h = wrap(idp)
	}
	idpSrv := httptest.NewServer(h)
	t.Cleanup(idpSrv.Close)
	idp.BaseURL = idpSrv.URL

	cfg, err := ParseConfig([]byte(config(idpSrv.URL)))
	require.NoError(t, err)
	emu, err := New(cfg, WithClock(clock.Now))
	require.NoError(t, err)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return &ssoEnv{emu: emu, srv: srv, idp: idp, idpURL: idpSrv.URL, client: client, legacy: legacy, clock: clock}
}

func (s *ssoEnv) call(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// get is GET /api/v1/user/ with the token.
func (s *ssoEnv) get(t *testing.T, token string) (int, map[string]any) {
	t.Helper()
	return s.call(t, http.MethodGet, "/api/v1/user/", token, "")
}

// mint signs the vault client's v2.0 claims for api://quay-api, edited.
func (s *ssoEnv) mint(t *testing.T, edit func(jwt.MapClaims), opts *oidcprovider.MintOptions) string {
	t.Helper()
	claims := s.idp.Claims(s.client, "api://quay-api")
	if edit != nil {
		edit(claims)
	}
	tok, err := s.idp.Mint(claims, opts)
	require.NoError(t, err)
	return tok
}

// fetch gets a token from the provider's token endpoint, as a client would.
func (s *ssoEnv) fetch(t *testing.T, c oidcprovider.Client, scope string) string {
	t.Helper()
	resp, err := http.PostForm(s.idp.TokenURL(), url.Values{"grant_type": {"client_credentials"},
		"client_id": {c.ID}, "client_secret": {c.Secret}, "scope": {scope}})
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	return body["access_token"].(string)
}

func (s *ssoEnv) now() time.Time { return s.clock.Now() }

func TestSSO_AcceptsEntraV1AndV2Tokens(t *testing.T) {
	s := newSSOEnv(t)
	code, body := s.get(t, s.fetch(t, s.client, "api://quay-api/.default"))
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "vault-sp", body["username"])
	assert.Equal(t, true, body["super_user"], "SUPER_USERS lists the service principal")
	assert.Equal(t, []any{map[string]any{"service": "azure", "service_identifier": "vault-sp", "metadata": map[string]any{}}}, body["logins"],
		"bound to the login service (service_id: the key's first word, lower-cased) and the sub")
	assert.Equal(t, []any{"confirm_username"}, body["prompts"], "create_federated_user with FEATURE_USERNAME_CONFIRMATION")

	// The same service principal with a v1.0 token (sts.windows.net, appid).
	v1 := s.mint(t, func(c jwt.MapClaims) {
		c["iss"] = oidcprovider.IssuerV1(tenant)
		delete(c, "azp")
		c["appid"] = "vault"
	}, nil)
	code, body = s.get(t, v1)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "vault-sp", body["username"], "bound to the same (service, sub)")

	// A v1.0 client straight from the token endpoint.
	code, body = s.get(t, s.fetch(t, s.legacy, "api://quay-api/.default"))
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "legacy-sp", body["username"])
	assert.NotContains(t, body, "super_user", "not in SUPER_USERS")

	aud := s.mint(t, func(c jwt.MapClaims) { c["aud"] = "quay-web" }, nil)
	code, _ = s.get(t, aud)
	assert.Equal(t, http.StatusOK, code, "CLIENT_ID is always an accepted audience")
	list := s.mint(t, func(c jwt.MapClaims) { c["aud"] = []string{"api://other", "api://quay-api"} }, nil)
	code, _ = s.get(t, list)
	assert.Equal(t, http.StatusOK, code, "one shared member of an aud list is enough")

	rs384 := s.mint(t, nil, &oidcprovider.MintOptions{Method: jwt.SigningMethodRS384})
	code, _ = s.get(t, rs384)
	assert.Equal(t, http.StatusOK, code)
	atJWT := s.mint(t, nil, &oidcprovider.MintOptions{Type: "at+jwt"})
	code, _ = s.get(t, atJWT)
	assert.Equal(t, http.StatusOK, code, "RFC 9068 typ at+jwt is a JWT too")
	trailing := s.mint(t, func(c jwt.MapClaims) { c["iss"] = strings.TrimSuffix(oidcprovider.IssuerV1(tenant), "/") }, nil)
	code, body = s.get(t, trailing)
	assert.Equal(t, http.StatusOK, code, "issuers compare without trailing slashes: %v", body)
}

// Each refusal is a 401 {"error": …} at once, worded as Quay (and PyJWT
// under it) words it.
func TestSSO_Refusals(t *testing.T) {
	s := newSSOEnv(t)
	now := s.now()
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	for _, tc := range []struct{ name, token, error string }{
		{"unknown issuer", s.mint(t, func(c jwt.MapClaims) { c["iss"] = "https://login.microsoftonline.com/other/v2.0" }, nil),
			"Issuer https://login.microsoftonline.com/other/v2.0 not configured"},
		{"no issuer", s.mint(t, func(c jwt.MapClaims) { delete(c, "iss") }, nil), "Token does not contain issuer"},
		{"wrong audience", s.mint(t, func(c jwt.MapClaims) { c["aud"] = "api://something-else" }, nil), "Audience doesn't match"},
		{"no audience", s.mint(t, func(c jwt.MapClaims) { delete(c, "aud") }, nil), `Token is missing the "aud" claim`},
		{"unlisted azp", s.mint(t, func(c jwt.MapClaims) { c["azp"] = "intruder" }, nil), "Client 'intruder' is not in the allowed clients list"},
		{"numeric azp", s.mint(t, func(c jwt.MapClaims) { c["azp"] = 42 }, nil), "Client '42' is not in the allowed clients list"},
		{"expired", s.mint(t, func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }, nil), "Signature has expired"},
		{"expired past the leeway", s.mint(t, func(c jwt.MapClaims) { c["exp"] = now.Add(-31 * time.Second).Unix() }, nil), "Signature has expired"},
		{"expired at the leeway", s.mint(t, func(c jwt.MapClaims) { c["exp"] = now.Add(-30 * time.Second).Unix() }, nil), "Signature has expired"},
		// PyJWT's "The token is not yet valid (iat)" is replaced by the
		// last, unverified decode's _StrictJWT message.
		{"issued in the future", s.mint(t, func(c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() }, nil), "Issued At claim (iat) cannot be in the future."},
		{"iat not a number", s.mint(t, func(c jwt.MapClaims) { c["iat"] = "soon" }, nil), "Issued At claim (iat) must be an integer."},
		{"bad signature", s.mint(t, nil, &oidcprovider.MintOptions{Key: other}), "Signature verification failed"},
		{"missing kid", s.mint(t, nil, &oidcprovider.MintOptions{NoKid: true}), "Missing `kid` header"},
		{"unknown kid", s.mint(t, nil, &oidcprovider.MintOptions{KeyID: "nope"}), "Public key nope not found"},
		{"HS256", s.mint(t, nil, &oidcprovider.MintOptions{Method: jwt.SigningMethodHS256}), "The specified alg value is not allowed"},
		{"RS512", s.mint(t, nil, &oidcprovider.MintOptions{Method: jwt.SigningMethodRS512}), "The specified alg value is not allowed"},
		{"missing iat", s.mint(t, func(c jwt.MapClaims) { delete(c, "iat") }, nil), `Token is missing the "iat" claim`},
		{"missing exp", s.mint(t, func(c jwt.MapClaims) { delete(c, "exp") }, nil), `Token is missing the "exp" claim`},
		{"impersonated", s.mint(t, func(c jwt.MapClaims) { c["impersonated"] = true }, nil), "Requests from impersonated principals are not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := s.get(t, tc.token)
			assert.Equal(t, http.StatusUnauthorized, code)
			assert.Equal(t, map[string]any{"error": tc.error}, body)
		})
	}

	// Within the 30 s leeway an expired token still passes, as does an iat
	// up to 30 s ahead; nbf is not checked on this path.
	for name, edit := range map[string]func(jwt.MapClaims){
		"expired within the leeway": func(c jwt.MapClaims) { c["exp"] = now.Add(-29 * time.Second).Unix() },
		"iat within the leeway":     func(c jwt.MapClaims) { c["iat"] = now.Add(30 * time.Second).Unix() },
		"nbf in the future":         func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() },
		"no nbf":                    func(c jwt.MapClaims) { delete(c, "nbf") },
	} {
		code, body := s.get(t, s.mint(t, edit, nil))
		assert.Equal(t, http.StatusOK, code, "%s: %v", name, body)
	}
}

// OIDC_ALLOWED_CLIENTS is checked against azp only, and only when the token
// has one: tokens without azp (v1.0 tokens carry appid) skip it.
func TestSSO_AllowedClients(t *testing.T) {
	s := newSSOEnv(t)
	for name, tc := range map[string]struct {
		edit func(jwt.MapClaims)
		code int
	}{
		"listed azp":          {nil, http.StatusOK},
		"unlisted azp":        {func(c jwt.MapClaims) { c["azp"] = "intruder" }, http.StatusUnauthorized},
		"no azp":              {func(c jwt.MapClaims) { delete(c, "azp") }, http.StatusOK},
		"empty azp":           {func(c jwt.MapClaims) { c["azp"] = "" }, http.StatusOK},
		"unlisted v1.0 appid": {func(c jwt.MapClaims) { delete(c, "azp"); c["appid"] = "intruder" }, http.StatusOK},
	} {
		code, body := s.get(t, s.mint(t, tc.edit, nil))
		assert.Equal(t, tc.code, code, "%s: %v", name, body)
	}
	tok, err := s.idp.MintRefused(oidcprovider.UnlistedClient, s.legacy, "api://quay-api")
	require.NoError(t, err)
	code, _ := s.get(t, tok)
	assert.Equal(t, http.StatusUnauthorized, code, "an azp added to a v1.0 token is checked")

	// Without OIDC_ALLOWED_CLIENTS any azp passes.
	open := newSSOEnvWith(t, func(server string) string {
		return strings.Replace(ssoConfig(server), "  OIDC_ALLOWED_CLIENTS: [vault]\n", "", 1)
	})
	code, body := open.get(t, open.mint(t, func(c jwt.MapClaims) { c["azp"] = "anyone" }, nil))
	assert.Equal(t, http.StatusOK, code, body)
}

// Without OIDC_AUDIENCES the audience is CLIENT_ID alone; with it,
// CLIENT_ID is appended.
func TestSSO_Audiences(t *testing.T) {
	s := newSSOEnvWith(t, func(server string) string {
		return strings.Replace(ssoConfig(server), "  OIDC_AUDIENCES: [api://quay-api]\n", "", 1)
	})
	code, body := s.get(t, s.mint(t, nil, nil))
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, "Audience doesn't match", body["error"], "api://quay-api is not CLIENT_ID")
	code, _ = s.get(t, s.mint(t, func(c jwt.MapClaims) { c["aud"] = "quay-web" }, nil))
	assert.Equal(t, http.StatusOK, code)

	// Neither CLIENT_ID nor OIDC_AUDIENCES: PyJWT gets an empty list, which
	// no token matches.
	none := newSSOEnvWith(t, func(server string) string {
		cfg := strings.Replace(ssoConfig(server), "  OIDC_AUDIENCES: [api://quay-api]\n", "", 1)
		return strings.Replace(cfg, "  CLIENT_ID: quay-web\n", "", 1)
	})
	code, body = none.get(t, none.mint(t, nil, nil))
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, "Audience doesn't match", body["error"])
}

// get_issuers: OIDC_ISSUERS, else OIDC_ISSUER, else the discovery's issuer,
// else OIDC_SERVER.
func TestSSO_IssuerFallbacks(t *testing.T) {
	block := func(lines string) func(string) string {
		return func(server string) string {
			return "FEATURE_MAILING: false\nAZURE_LOGIN_CONFIG:\n  DEBUGGING: true\n  CLIENT_ID: quay-web\n  OIDC_AUDIENCES: [api://quay-api]\n" +
				strings.ReplaceAll(lines, "@SERVER@", server)
		}
	}
	// The discovery's issuer (the provider's v2.0 issuer).
	s := newSSOEnvWith(t, block("  OIDC_SERVER: @SERVER@\n"))
	code, body := s.get(t, s.mint(t, nil, nil))
	assert.Equal(t, http.StatusOK, code, body)
	code, body = s.get(t, s.fetch(t, s.legacy, "api://quay-api/.default"))
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, "Issuer "+oidcprovider.IssuerV1(tenant)+" not configured", body["error"], "one issuer only without OIDC_ISSUERS")

	// OIDC_ISSUER overrides the discovery.
	s = newSSOEnvWith(t, block("  OIDC_SERVER: @SERVER@\n  OIDC_ISSUER: "+oidcprovider.IssuerV1(tenant)+"\n"))
	code, _ = s.get(t, s.fetch(t, s.legacy, "api://quay-api/.default"))
	assert.Equal(t, http.StatusOK, code)
	code, _ = s.get(t, s.mint(t, nil, nil))
	assert.Equal(t, http.StatusUnauthorized, code)

	// The service is found by its single issuer (the discovery's) but the
	// token's issuer must also be in OIDC_ISSUERS.
	s = newSSOEnvWith(t, block("  OIDC_SERVER: @SERVER@\n  OIDC_ISSUERS: ["+oidcprovider.IssuerV1(tenant)+"]\n"))
	code, body = s.get(t, s.mint(t, nil, nil))
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, "Issuer '"+oidcprovider.IssuerV2(tenant)+"' not in configured issuers: ['"+oidcprovider.IssuerV1(tenant)+"']", body["error"])

	// A discovery document without issuer: OIDC_SERVER is the issuer.
	s = newSSOEnvFull(t, block("  OIDC_SERVER: @SERVER@\n"), func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
				writeJSON(w, http.StatusOK, map[string]any{"jwks_uri": "http://" + r.Host + "/discovery/v2.0/keys"})
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	code, _ = s.get(t, s.mint(t, func(c jwt.MapClaims) { c["iss"] = s.idpURL }, nil))
	assert.Equal(t, http.StatusOK, code)

	// No OIDC_SERVER: Quay's _issuer raises KeyError, which escapes (500).
	s = newSSOEnvWith(t, block("  OIDC_ISSUER: https://nowhere.example/\n"))
	code, _ = s.get(t, s.mint(t, nil, nil))
	assert.Equal(t, http.StatusInternalServerError, code)
}

// Keys come from the discovery's jwks_uri, cached an hour; a kid the cache
// lacks loads the set again, and a failed decode reloads it once and
// retries.
func TestSSO_KeyRotation(t *testing.T) {
	s := newSSOEnv(t)
	ok := func(tok string) {
		t.Helper()
		code, body := s.get(t, tok)
		require.Equal(t, http.StatusOK, code, body)
	}
	ok(s.mint(t, nil, nil))
	ok(s.mint(t, nil, nil))
	assert.Equal(t, 1, s.idp.DiscoveryFetches(), "discovery is kept once it succeeded")
	assert.Equal(t, 1, s.idp.KeySetFetches(), "keys are cached")

	// A new kid (Entra publishes the next key before signing with it).
	require.NoError(t, s.idp.RotateKey(false))
	ok(s.mint(t, nil, nil))
	assert.Equal(t, 2, s.idp.KeySetFetches(), "an unknown kid loads the set again")

	// The same kid with another key: the cached key fails, the set is
	// reloaded once and the decode retried.
	require.NoError(t, s.idp.ReplaceKey())
	ok(s.mint(t, nil, nil))
	assert.Equal(t, 3, s.idp.KeySetFetches())

	// A bad signature also reloads once per request, then fails.
	bad, err := s.idp.MintRefused(oidcprovider.BadSignature, s.client, "api://quay-api")
	require.NoError(t, err)
	code, body := s.get(t, bad)
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, "Signature verification failed", body["error"])
	assert.Equal(t, 4, s.idp.KeySetFetches(), "exactly one refresh")

	// A retired key's tokens pass while the cached set has their kid, and
	// fail once the cache (an hour) is reloaded without it.
	old := s.mint(t, nil, nil)
	require.NoError(t, s.idp.RotateKey(true))
	ok(old)
	assert.Equal(t, 4, s.idp.KeySetFetches())
	s.clock.Advance(time.Hour)
	code, body = s.get(t, old)
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Contains(t, body["error"], "not found")
	assert.Equal(t, 5, s.idp.KeySetFetches(), "one load for the expired cache")
	assert.Equal(t, 1, s.idp.DiscoveryFetches())
}

// A key set that does not load is a 401 with PublicKeyLoadException's
// message; a discovery that does not load escapes Quay's handler (500).
func TestSSO_ProviderFailures(t *testing.T) {
	failKeys := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/keys") {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	s := newSSOEnvFull(t, ssoConfig, failKeys)
	code, body := s.get(t, s.mint(t, nil, nil))
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, map[string]any{"error": "Error loading JWK set - HTTP GET error: 503"}, body)

	failDiscovery := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, ".well-known") {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	s = newSSOEnvFull(t, ssoConfig, failDiscovery)
	code, _ = s.get(t, s.mint(t, nil, nil))
	assert.Equal(t, http.StatusInternalServerError, code)
}

// The provider's helpers mint the refusal cases a client test needs.
func TestSSO_ProviderRefusalHelpers(t *testing.T) {
	s := newSSOEnv(t)
	want := map[oidcprovider.Refusal]string{
		oidcprovider.UnknownIssuer:    "Issuer " + oidcprovider.OtherTenantIssuer + " not configured",
		oidcprovider.WrongAudience:    "Audience doesn't match",
		oidcprovider.UnlistedClient:   "Client '" + oidcprovider.UnlistedClientID + "' is not in the allowed clients list",
		oidcprovider.Expired:          "Signature has expired",
		oidcprovider.BadSignature:     "Signature verification failed",
		oidcprovider.MissingKeyID:     "Missing `kid` header",
		oidcprovider.UnknownKeyID:     "Public key unknown-kid not found",
		oidcprovider.DisallowedMethod: "The specified alg value is not allowed",
	}
	require.Len(t, want, len(oidcprovider.Refusals()))
	for _, refusal := range oidcprovider.Refusals() {
		tok, err := s.idp.MintRefused(refusal, s.client, "api://quay-api")
		require.NoError(t, err)
		code, body := s.get(t, tok)
		assert.Equal(t, http.StatusUnauthorized, code, refusal)
		assert.Equal(t, map[string]any{"error": want[refusal]}, body, refusal)
	}
}

// Any SSO failure is a 401 {"error"} at once, whatever the method: no CSRF
// 403 first, unlike an opaque token that does not validate.
func TestSSO_FailuresAre401ForEveryMethod(t *testing.T) {
	s := newSSOEnv(t)
	bad, err := s.idp.MintRefused(oidcprovider.Expired, s.client, "api://quay-api")
	require.NoError(t, err)
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/user/", ""},
		{http.MethodPost, "/api/v1/organization/", `{"name":"x-org"}`},
		{http.MethodPut, "/api/v1/user/", `{"password":"newpassword"}`},
		{http.MethodDelete, "/api/v1/organization/acme/robots/r", ""},
	} {
		code, body := s.call(t, r.method, r.path, bad, r.body)
		assert.Equal(t, http.StatusUnauthorized, code, r.method)
		assert.Equal(t, map[string]any{"error": "Signature has expired"}, body, r.method)
	}

	// Without a typ header the token is not a JWT to Quay: an opaque token
	// that does not validate leaves the request anonymous.
	untyped := s.mint(t, nil, &oidcprovider.MintOptions{Type: "-"})
	code, _ := s.call(t, http.MethodGet, "/api/v1/user/", untyped, "")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, body := s.call(t, http.MethodPost, "/api/v1/organization/", untyped, `{"name":"x-org"}`)
	assert.Equal(t, http.StatusForbidden, code)
	assert.Equal(t, "CSRF token was invalid or missing.", body["error"])
}

// Quay reads DEBUGGING inside the *_LOGIN_CONFIG block (oauth/oidc.py's
// self.config is the block). A top-level DEBUGGING does not allow plain
// HTTP: discovery fails, and DiscoveryFailureException escapes Quay's
// handler as a 500.
func TestSSO_DebuggingIsReadFromTheLoginBlock(t *testing.T) {
	s := newSSOEnvWith(t, func(server string) string {
		return strings.Replace(ssoConfig(server), "  DEBUGGING: true\n", "", 1) + "DEBUGGING: true\n"
	})
	code, _ := s.get(t, s.mint(t, nil, nil))
	assert.Equal(t, http.StatusInternalServerError, code)
	assert.Equal(t, 0, s.idp.DiscoveryFetches(), "not even tried over http")
}

// With FEATURE_MAILING on (Quay's default) a new SSO user needs a verified
// email; a client-credentials token has none, so the first login is refused
// with the message _conduct_oauth_login gives InvalidEmailAddressException.
// An email with email_verified, or VERIFIED_EMAIL_CLAIM_NAME, passes.
func TestSSO_NewUsersNeedAVerifiedEmailWithMailing(t *testing.T) {
	s := newSSOEnvWith(t, func(server string) string {
		return strings.Replace(ssoConfig(server), "FEATURE_MAILING: false\n", "", 1)
	})
	code, body := s.get(t, s.mint(t, nil, nil))
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, "The e-mail address None is already associated with an existing Project Quay account. \n"+
		"Please log in with your username and password and associate your azure account to use it in the future.", body["error"])

	unverified := s.mint(t, func(c jwt.MapClaims) { c["email"] = "sp@example.com" }, nil)
	code, _ = s.get(t, unverified)
	assert.Equal(t, http.StatusUnauthorized, code, "email without email_verified does not count")

	verified := s.mint(t, func(c jwt.MapClaims) { c["email"], c["email_verified"] = "sp@example.com", true }, nil)
	code, body = s.get(t, verified)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "vault-sp", body["username"])
	// Bound now: later tokens of the same sub log in without an email.
	code, _ = s.get(t, s.mint(t, nil, nil))
	assert.Equal(t, http.StatusOK, code)
}

// The user is created on first use and bound by (service, sub): later
// tokens find it whatever their username claims say; another login service
// with the same sub is another user.
func TestSSO_UsersAreBoundByServiceAndSub(t *testing.T) {
	s := newSSOEnvWith(t, func(server string) string {
		return ssoConfig(server) + `PARTNER_LOGIN_CONFIG:
  DEBUGGING: true
  CLIENT_ID: partner-web
  OIDC_SERVER: ` + server + `/
  OIDC_ISSUERS: [` + oidcprovider.OtherTenantIssuer + `]
  OIDC_AUDIENCES: [api://quay-api]
`
	})
	code, body := s.get(t, s.mint(t, func(c jwt.MapClaims) { c["preferred_username"] = "robot.one@contoso.com" }, nil))
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "robot_one", body["username"], "named after preferred_username, cut at @")

	code, body = s.get(t, s.mint(t, func(c jwt.MapClaims) { c["preferred_username"] = "renamed@contoso.com" }, nil))
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "robot_one", body["username"], "found by sub, not by name")

	partner := s.mint(t, func(c jwt.MapClaims) {
		c["iss"] = oidcprovider.OtherTenantIssuer
		c["preferred_username"] = "robot.one"
	}, nil)
	code, body = s.get(t, partner)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "robot_one0", body["username"], "the same sub at another service is another user")
	assert.Equal(t, "partner", body["logins"].([]any)[0].(map[string]any)["service"])
}

// A taken username gets Quay's next free variant (generate_valid_usernames);
// the username claims fall back in Quay's order.
func TestSSO_UsernameCollisionsAndClaims(t *testing.T) {
	s := newSSOEnv(t)
	require.NoError(t, s.emu.CreateUser("vault-sp", "password1", "v@example.com"))
	code, body := s.get(t, s.mint(t, nil, nil))
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "vault-sp0", body["username"])
	assert.NotContains(t, body, "super_user", "SUPER_USERS names vault-sp, not vault-sp0")

	code, body = s.get(t, s.mint(t, func(c jwt.MapClaims) { c["sub"], c["preferred_username"] = "other-sub", "Jane.Doe@contoso.com" }, nil))
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "jane_doe", body["username"], "cut at @, lower-cased, invalid characters as _")

	code, body = s.get(t, s.mint(t, func(c jwt.MapClaims) { c["sub"], c["upn"] = "third-sub", "x@contoso.com" }, nil))
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "x0", body["username"], "upn, padded to two characters")

	code, body = s.get(t, s.mint(t, func(c jwt.MapClaims) {
		c["sub"], c["unique_name"], c["upn"] = "fourth-sub", "live.com#first@contoso.com", "second@contoso.com"
	}, nil))
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "live_com_first", body["username"], "unique_name before upn")

	code, body = s.get(t, s.mint(t, func(c jwt.MapClaims) { c["sub"] = "" }, nil))
	assert.Equal(t, http.StatusInternalServerError, code, "get_user_id's OAuthUserIdException escapes: %v", body)
}

// An SSO JWT is not scope-capped and skips CSRF on mutations; the identity
// acts with the user's full rights (auth/auth_context_type.py identity:
// direct_user_login; endpoints/csrf.py csrf_protect skips an SSO token).
func TestSSO_MutationsWithoutCSRF(t *testing.T) {
	s := newSSOEnv(t)
	tok := s.fetch(t, s.client, "api://quay-api/.default")
	code, body := s.call(t, http.MethodPost, "/api/v1/organization/", tok, `{"name":"sso-org"}`)
	assert.Equal(t, http.StatusCreated, code, body)
	code, body = s.call(t, http.MethodPut, "/api/v1/organization/sso-org/robots/builder", tok, `{}`)
	assert.Equal(t, http.StatusCreated, code, body)
	assert.Equal(t, "sso-org+builder", body["name"])
	code, _ = s.call(t, http.MethodDelete, "/api/v1/organization/sso-org/robots/builder", tok, "")
	assert.Equal(t, http.StatusNoContent, code)
}
