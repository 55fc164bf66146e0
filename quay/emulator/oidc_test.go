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

// newSSOEnv: Quay accepting Entra v1.0 and v2.0 tokens for api://quay-api
// from the allowed client "vault" (reference §9).
func newSSOEnv(t *testing.T) *ssoEnv {
	t.Helper()
	client := oidcprovider.Client{ID: "vault", Secret: "s3cret", Subject: "vault-sp"}
	idp, err := oidcprovider.New(oidcprovider.Config{Issuer: oidcprovider.IssuerV2(tenant), Clients: []oidcprovider.Client{client}})
	require.NoError(t, err)
	idpSrv := httptest.NewServer(idp)
	t.Cleanup(idpSrv.Close)
	idp.BaseURL = idpSrv.URL

	cfg, err := ParseConfig([]byte(`
DEBUGGING: true
SUPER_USERS: [vault-sp]
AZURE_LOGIN_CONFIG:
  CLIENT_ID: quay-web
  OIDC_SERVER: ` + idpSrv.URL + `/
  OIDC_ISSUERS:
    - https://sts.windows.net/` + tenant + `/
    - https://login.microsoftonline.com/` + tenant + `/v2.0
  OIDC_AUDIENCES: [api://quay-api]
  OIDC_ALLOWED_CLIENTS: [vault]
`))
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

func TestSSO_Refusals(t *testing.T) {
	s := newSSOEnv(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	cases := map[string]string{
		"unknown issuer":    s.mint(t, func(c jwt.MapClaims) { c["iss"] = "https://login.microsoftonline.com/other/v2.0" }, nil),
		"wrong audience":    s.mint(t, func(c jwt.MapClaims) { c["aud"] = "api://something-else" }, nil),
		"unlisted azp":      s.mint(t, func(c jwt.MapClaims) { c["azp"] = "intruder" }, nil),
		"expired":           s.mint(t, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }, nil),
		"bad signature":     s.mint(t, nil, &oidcprovider.MintOptions{Key: other}),
		"missing kid":       s.mint(t, nil, &oidcprovider.MintOptions{NoKid: true}),
		"HS256":             s.mint(t, nil, &oidcprovider.MintOptions{Method: jwt.SigningMethodHS256}),
		"missing iat":       s.mint(t, func(c jwt.MapClaims) { delete(c, "iat") }, nil),
		"expired too early": s.mint(t, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-45 * time.Second).Unix() }, nil),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			code, body := s.get(t, tok)
			assert.Equal(t, http.StatusUnauthorized, code)
			assert.NotEmpty(t, body["error"], "401 {\"error\": …} at once")
		})
	}
	// Within the 30 s leeway an expired token still passes.
	code, _ := s.get(t, s.mint(t, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-10 * time.Second).Unix() }, nil))
	assert.Equal(t, http.StatusOK, code)
	// No azp at all skips the allowed-clients check.
	code, _ = s.get(t, s.mint(t, func(c jwt.MapClaims) { delete(c, "azp") }, nil))
	assert.Equal(t, http.StatusOK, code)
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
