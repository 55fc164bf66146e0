package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator/oidcprovider"
)

const tenant = "11111111-2222-3333-4444-555555555555"

type ssoEnv struct {
	emu    *Emulator
	srv    *httptest.Server
	idp    *oidcprovider.Provider
	client oidcprovider.Client
}

// ssoConfig: Quay accepting Entra v1.0 and v2.0 tokens for api://quay-api
// from the allowed client "vault" (reference §9). DEBUGGING sits inside the
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
	t.Helper()
	client := oidcprovider.Client{ID: "vault", Secret: "s3cret", Subject: "vault-sp"}
	idp, err := oidcprovider.New(oidcprovider.Config{Issuer: oidcprovider.IssuerV2(tenant), Clients: []oidcprovider.Client{client}})
	require.NoError(t, err)
	idpSrv := httptest.NewServer(idp)
	t.Cleanup(idpSrv.Close)
	idp.BaseURL = idpSrv.URL

	cfg, err := ParseConfig([]byte(config(idpSrv.URL)))
	require.NoError(t, err)
	emu, err := New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return &ssoEnv{emu: emu, srv: srv, idp: idp, client: client}
}

func (s *ssoEnv) get(t *testing.T, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.srv.URL+"/api/v1/user/", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

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

func TestSSO_AcceptsEntraV1AndV2Tokens(t *testing.T) {
	s := newSSOEnv(t)
	code, body := s.get(t, s.mint(t, nil, nil))
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "vault-sp", body["username"])
	assert.Equal(t, true, body["super_user"], "SUPER_USERS lists the service principal")
	assert.Equal(t, []any{map[string]any{"service": "azure", "service_identifier": "vault-sp", "metadata": map[string]any{}}}, body["logins"],
		"bound to the login service (service_id: the key's first word, lower-cased) and the sub")
	assert.Equal(t, []any{"confirm_username"}, body["prompts"], "create_federated_user with FEATURE_USERNAME_CONFIRMATION")

	v1 := s.mint(t, func(c jwt.MapClaims) {
		c["iss"] = oidcprovider.IssuerV1(tenant)
		delete(c, "azp")
		c["appid"] = "vault"
	}, nil)
	code, body = s.get(t, v1)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "vault-sp", body["username"], "bound to the same (service, sub)")

	aud := s.mint(t, func(c jwt.MapClaims) { c["aud"] = "quay-web" }, nil)
	code, _ = s.get(t, aud)
	assert.Equal(t, http.StatusOK, code, "CLIENT_ID is always an accepted audience")

	rs384 := s.mint(t, nil, &oidcprovider.MintOptions{Method: jwt.SigningMethodRS384})
	code, _ = s.get(t, rs384)
	assert.Equal(t, http.StatusOK, code)
}

// Each refusal is a 401 {"error": …} at once, worded as Quay (and PyJWT
// under it) words it.
func TestSSO_Refusals(t *testing.T) {
	s := newSSOEnv(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	for _, tc := range []struct{ name, token, error string }{
		{"unknown issuer", s.mint(t, func(c jwt.MapClaims) { c["iss"] = "https://login.microsoftonline.com/other/v2.0" }, nil),
			"Issuer https://login.microsoftonline.com/other/v2.0 not configured"},
		{"no issuer", s.mint(t, func(c jwt.MapClaims) { delete(c, "iss") }, nil), "Token does not contain issuer"},
		{"wrong audience", s.mint(t, func(c jwt.MapClaims) { c["aud"] = "api://something-else" }, nil), "Audience doesn't match"},
		{"no audience", s.mint(t, func(c jwt.MapClaims) { delete(c, "aud") }, nil), `Token is missing the "aud" claim`},
		{"unlisted azp", s.mint(t, func(c jwt.MapClaims) { c["azp"] = "intruder" }, nil), "Client 'intruder' is not in the allowed clients list"},
		{"expired", s.mint(t, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }, nil), "Signature has expired"},
		{"expired past the leeway", s.mint(t, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-45 * time.Second).Unix() }, nil), "Signature has expired"},
		{"issued in the future", s.mint(t, func(c jwt.MapClaims) { c["iat"] = time.Now().Add(time.Minute).Unix() }, nil), "The token is not yet valid (iat)"},
		{"bad signature", s.mint(t, nil, &oidcprovider.MintOptions{Key: other}), "Signature verification failed"},
		{"missing kid", s.mint(t, nil, &oidcprovider.MintOptions{NoKid: true}), "Missing `kid` header"},
		{"HS256", s.mint(t, nil, &oidcprovider.MintOptions{Method: jwt.SigningMethodHS256}), "The specified alg value is not allowed"},
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
	// An SSO failure is a 401 for mutations too (no CSRF 403 first).
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/api/v1/organization/", strings.NewReader(`{"name":"x-org"}`))
	req.Header.Set("Authorization", "Bearer "+s.mint(t, nil, &oidcprovider.MintOptions{Key: other}))
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// Within the 30 s leeway an expired token still passes; nbf is not
	// checked on this path.
	code, _ := s.get(t, s.mint(t, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-10 * time.Second).Unix() }, nil))
	assert.Equal(t, http.StatusOK, code)
	code, _ = s.get(t, s.mint(t, func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }, nil))
	assert.Equal(t, http.StatusOK, code)
	// No azp at all skips the allowed-clients check.
	code, _ = s.get(t, s.mint(t, func(c jwt.MapClaims) { delete(c, "azp") }, nil))
	assert.Equal(t, http.StatusOK, code)
}

// The provider's helpers mint the refusal cases a client test needs.
func TestSSO_ProviderRefusalHelpers(t *testing.T) {
	s := newSSOEnv(t)
	for refusal, want := range map[oidcprovider.Refusal]string{
		oidcprovider.UnknownIssuer:    "Issuer https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0 not configured",
		oidcprovider.WrongAudience:    "Audience doesn't match",
		oidcprovider.UnlistedClient:   "Client 'unlisted-client' is not in the allowed clients list",
		oidcprovider.Expired:          "Signature has expired",
		oidcprovider.BadSignature:     "Signature verification failed",
		oidcprovider.MissingKeyID:     "Missing `kid` header",
		oidcprovider.UnknownKeyID:     "Public key unknown-kid not found",
		oidcprovider.DisallowedMethod: "The specified alg value is not allowed",
	} {
		tok, err := s.idp.MintRefused(refusal, s.client, "api://quay-api")
		require.NoError(t, err)
		code, body := s.get(t, tok)
		assert.Equal(t, http.StatusUnauthorized, code, refusal)
		assert.Equal(t, want, body["error"], refusal)
	}
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

// A taken username gets Quay's next free variant (generate_valid_usernames);
// the binding is by (service, sub), not by name.
func TestSSO_UsernameCollisionsAndClaims(t *testing.T) {
	s := newSSOEnv(t)
	require.NoError(t, s.emu.CreateUser("vault-sp", "password1", "v@example.com"))
	code, body := s.get(t, s.mint(t, nil, nil))
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "vault-sp0", body["username"])

	code, body = s.get(t, s.mint(t, func(c jwt.MapClaims) { c["sub"], c["preferred_username"] = "other-sub", "Jane.Doe@contoso.com" }, nil))
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "jane_doe", body["username"], "cut at @, lower-cased, invalid characters as _")

	code, body = s.get(t, s.mint(t, func(c jwt.MapClaims) { c["sub"], c["upn"] = "third-sub", "x@contoso.com" }, nil))
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "x0", body["username"], "padded to two characters")
}

// An SSO JWT is not scope-capped and skips CSRF on mutations.
func TestSSO_MutationsWithoutCSRF(t *testing.T) {
	s := newSSOEnv(t)
	tok := s.mint(t, nil, nil)
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/api/v1/organization/", strings.NewReader(`{"name":"sso-org"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
}
