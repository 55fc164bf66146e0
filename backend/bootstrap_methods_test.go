package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator/oidcprovider"
)

// The engine configured with bootstrap=password (Quay's direct OAuth) and
// bootstrap=oidc (identity-provider access tokens Quay validates itself),
// in process against the emulator and the test identity provider.

const directOAuthClientID = "VAULTCLIENT000000000"

// passwordQuay is an empty Quay whose service account svc-vault
// administers "automation", which holds the whitelisted application, and
// the organization the roles use.
func passwordQuay(t *testing.T) *testEnv {
	t.Helper()
	env := newTestEnv(t, withEmptyQuay(`
SUPER_USERS: [svc-vault]
FEATURE_MAILING: false
DIRECT_OAUTH_CLIENTID_WHITELIST: [`+directOAuthClientID+`]
`))
	require.NoError(t, env.quay.CreateUser("svc-vault", "service-account-pw", "svc@example.com"))
	require.NoError(t, env.quay.CreateOrganization("automation", "svc-vault"))
	require.NoError(t, env.quay.CreateApplication("automation", "vault", directOAuthClientID, ""))
	require.NoError(t, env.quay.CreateOrganization(testOrg, "svc-vault"))
	return env
}

// tokenTap is a reverse proxy in front of Quay that keeps the access tokens
// Quay's direct-OAuth redirects carry, so tests can follow them.
type tokenTap struct {
	srv    *httptest.Server
	mu     sync.Mutex
	tokens []string
}

func newTokenTap(t *testing.T, target string) *tokenTap {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	tap := &tokenTap{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(resp *http.Response) error {
		if loc := resp.Header.Get("Location"); strings.Contains(loc, "#") {
			frag, _ := url.ParseQuery(loc[strings.Index(loc, "#")+1:])
			if tok := frag.Get("access_token"); tok != "" {
				tap.mu.Lock()
				tap.tokens = append(tap.tokens, tok)
				tap.mu.Unlock()
			}
		}
		return nil
	}
	tap.srv = httptest.NewServer(proxy)
	t.Cleanup(tap.srv.Close)
	return tap
}

func (tap *tokenTap) issued() []string {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return append([]string(nil), tap.tokens...)
}

// authorizationsOf lists the user's OAuth authorizations of an application.
func (e *testEnv) authorizationsOf(user, org, app string) []string {
	e.t.Helper()
	tok, err := e.quay.IssueToken(user, "user:admin", 0)
	require.NoError(e.t, err)
	auths, err := e.quayClient(tok).ListAuthorizations(context.Background())
	require.NoError(e.t, err)
	var out []string
	for _, a := range auths {
		if a.Application.Name == app && a.Application.Organization.Name == org {
			out = append(out, a.UUID)
		}
	}
	return out
}

// With root_organization the engine trades the direct-OAuth token for one
// of its own and revokes the direct-OAuth token, which it can tell apart.
func TestBootstrap_PasswordThroughDirectOAuth(t *testing.T) {
	env := passwordQuay(t)
	tap := newTokenTap(t, env.server.URL)

	resp := env.writeConfig(map[string]any{
		"url": tap.srv.URL, "bootstrap": "password", "username": "svc-vault", "password": "service-account-pw",
		"oauth_client_id": directOAuthClientID, "root_organization": "vault-root",
	})
	assert.Empty(t, resp.Warnings, "the direct-OAuth token was identified and revoked")
	assert.Equal(t, "svc-vault", resp.Data["root_token_owner"], "the write says whose credential it is")

	issued := tap.issued()
	require.Len(t, issued, 1, "one direct-OAuth request")
	direct := issued[0]
	assert.False(t, env.quay.TokenValid(direct), "the direct-OAuth token is revoked")
	assert.Empty(t, env.authorizationsOf("svc-vault", "automation", "vault"))

	stored := env.storedConfig()
	assertDifferentSecret(t, direct, stored.Token, "the engine minted its own token")
	assert.True(t, env.quay.TokenValid(stored.Token), "the engine's own token")
	assert.NotEmpty(t, stored.RootTokenID)

	read := env.mustOK(logical.ReadOperation, "config", nil)
	assert.Equal(t, "password", read.Data["bootstrap"])
	assert.Equal(t, "svc-vault", read.Data["root_token_owner"])
	assert.Equal(t, true, read.Data["password_set"])
	assert.Equal(t, "vault-root", read.Data["root_organization"])
	assert.Equal(t, stored.RootTokenID, read.Data["root_token_id"])
	assertNoKey(t, read.Data, "password")
	raw, _ := json.Marshal(read.Data)
	assertNoSecretIn(t, string(raw), "config read", "service-account-pw", direct, stored.Token)
	env.assertNoSecretLogged("service-account-pw", direct, stored.Token)

	// The credentials work.
	env.writeOAuthRole("ci", nil)
	creds := env.issue("ci")
	u, err := env.quayClient(creds.Data["token"].(string)).GetUser(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "svc-vault", u.Username)

	// A wrong password is a 400 naming the field, without the password.
	bad := env.request(logical.UpdateOperation, "config", map[string]any{"password": "wrong-password"})
	require.True(t, bad.IsError())
	assert.True(t, strings.HasPrefix(errorMessage(bad), "password: "), errorMessage(bad))
	assertNoSecretIn(t, errorMessage(bad), "the refusal", "wrong-password")
	assertSameSecret(t, stored.Token, env.storedConfig().Token, "the failed write changed nothing")
	env.assertNoSecretLogged("wrong-password")
}

// Without root_organization the engine acts with the direct-OAuth token
// itself: ten years, the root scopes, nothing revoked.
func TestBootstrap_PasswordWithoutRootOrganization(t *testing.T) {
	env := passwordQuay(t)
	tap := newTokenTap(t, env.server.URL)
	resp := env.writeConfig(map[string]any{
		"url": tap.srv.URL, "bootstrap": "password", "username": "svc-vault", "password": "service-account-pw",
		"oauth_client_id": directOAuthClientID,
	})
	assert.Empty(t, resp.Warnings)
	issued := tap.issued()
	require.Len(t, issued, 1)
	assertSameSecret(t, issued[0], env.storedConfig().Token, "the direct-OAuth token is the credential")
	assert.True(t, env.quay.TokenValid(issued[0]))
	read := env.mustOK(logical.ReadOperation, "config", nil)
	assert.Contains(t, read.Data, "root_token_expires_at")
	assert.Equal(t, env.storedConfig().TokenExpiresAt.Year(), env.clock.Now().Year()+10, "direct OAuth tokens live ten years")
	assert.NotContains(t, read.Data, "root_organization")
	env.assertNoSecretLogged("service-account-pw", issued[0])

	env.writeOAuthRole("ci", nil)
	env.issue("ci")
}

// When the user already holds tokens of the same application the engine
// cannot tell which one it got, so it revokes none and says so.
func TestBootstrap_PasswordRevokesOnlyWhatItCanIdentify(t *testing.T) {
	env := passwordQuay(t)
	earlier, err := env.quayClient("").AuthorizeApp(context.Background(), quay.DirectOAuthRequest{
		Username: "svc-vault", Password: "service-account-pw", ClientID: directOAuthClientID,
		RedirectURI: env.server.URL + "/oauth/localapp", Scopes: []string{"user:read"},
	})
	require.NoError(t, err)

	resp := env.writeConfig(map[string]any{
		"url": env.server.URL, "bootstrap": "password", "username": "svc-vault", "password": "service-account-pw",
		"oauth_client_id": directOAuthClientID, "root_organization": "vault-root",
	})
	require.Len(t, resp.Warnings, 1, "%v", resp.Warnings)
	assert.Contains(t, resp.Warnings[0], "could not tell the bootstrap token apart from 2 tokens")
	assert.True(t, env.quay.TokenValid(earlier.AccessToken), "an operator's token is not revoked by guesswork")
	assert.Len(t, env.authorizationsOf("svc-vault", "automation", "vault"), 2)
}

func (e *testEnv) configSaved() bool {
	e.t.Helper()
	cfg, err := getConfig(context.Background(), e.storage)
	require.NoError(e.t, err)
	return cfg != nil
}

// Quay's refusals of the direct-OAuth request name the field to fix.
func TestBootstrap_PasswordRefusals(t *testing.T) {
	env := passwordQuay(t)
	require.NoError(t, env.quay.CreateApplication("automation", "unlisted", "UNLISTED000000000000", ""))
	require.NoError(t, env.quay.CreateUser("bystander", "bystander-pw", "b@example.com"))
	base := map[string]any{"url": env.server.URL, "bootstrap": "password", "username": "svc-vault", "password": "service-account-pw",
		"oauth_client_id": directOAuthClientID}
	with := func(kv ...string) map[string]any {
		out := map[string]any{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	for name, tc := range map[string]struct {
		data  map[string]any
		field string
		hint  string
	}{
		"not whitelisted":  {with("oauth_client_id", "UNLISTED000000000000"), "password", "DIRECT_OAUTH_CLIENTID_WHITELIST"},
		"not an org admin": {with("username", "bystander", "password", "bystander-pw"), "oauth_client_id", "unauthorized_client"},
		"bad redirect":     {with("oauth_redirect_uri", "https://evil.example/cb"), "oauth_client_id", "oauth_redirect_uri"},
		"no username":      {with("username", ""), "username", "required"},
	} {
		resp := env.request(logical.UpdateOperation, "config", tc.data)
		require.True(t, resp.IsError(), name)
		assert.True(t, strings.HasPrefix(errorMessage(resp), tc.field+": "), "%s: %s", name, errorMessage(resp))
		assert.Contains(t, errorMessage(resp), tc.hint, name)
		assert.NotContains(t, errorMessage(resp), "service-account-pw", name)
	}
	assert.False(t, env.configSaved(), "nothing saved")
}

// entraQuay is an empty Quay accepting the provider's tokens for
// api://quay-api from the allowed client "vault" (oauth/oidc.py
// OIDC_AUDIENCES, OIDC_ALLOWED_CLIENTS), plus the provider.
// tokens collects every access token the provider hands out.
type entraEnv struct {
	*testEnv
	idp    *oidcprovider.Provider
	mu     sync.Mutex
	tokens []string
}

func newEntraEnv(t *testing.T) *entraEnv {
	t.Helper()
	idp, err := oidcprovider.New(oidcprovider.Config{
		Tenant: "tenant-1",
		Clients: []oidcprovider.Client{
			{ID: "vault", Secret: "idp-client-secret", Subject: "vault-sp"},
			{ID: "legacy", Secret: "legacy-client-secret", Subject: "legacy-sp", Version: 1},
			{ID: "intruder", Secret: "intruder-secret", Subject: "intruder-sp"},
		},
	})
	require.NoError(t, err)
	e := &entraEnv{idp: idp}
	idpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		idp.ServeHTTP(rec, r)
		var body map[string]any
		if json.Unmarshal(rec.Body.Bytes(), &body) == nil {
			if tok, ok := body["access_token"].(string); ok {
				e.mu.Lock()
				e.tokens = append(e.tokens, tok)
				e.mu.Unlock()
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = io.Copy(w, bytes.NewReader(rec.Body.Bytes()))
	}))
	t.Cleanup(idpSrv.Close)
	idp.BaseURL = idpSrv.URL

	e.testEnv = newTestEnv(t, withEmptyQuay(`
FEATURE_MAILING: false
SUPER_USERS: [vault-sp]
AZURE_LOGIN_CONFIG:
  DEBUGGING: true
  CLIENT_ID: quay-web
  OIDC_SERVER: `+idpSrv.URL+`/
  OIDC_ISSUERS:
    - `+oidcprovider.IssuerV1("tenant-1")+`
    - `+oidcprovider.IssuerV2("tenant-1")+`
  OIDC_AUDIENCES: [api://quay-api]
  OIDC_ALLOWED_CLIENTS: [vault]
`))
	return e
}

func (e *entraEnv) config(kv ...string) map[string]any {
	data := map[string]any{"url": e.server.URL, "bootstrap": "oidc", "oidc_token_url": e.idp.TokenURL(),
		"oidc_client_id": "vault", "oidc_client_secret": "idp-client-secret", "oidc_scopes": "api://quay-api/.default"}
	for i := 0; i+1 < len(kv); i += 2 {
		data[kv[i]] = kv[i+1]
	}
	return data
}

func (e *entraEnv) issuedTokens() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.tokens...)
}

// Keyless: the engine presents the provider's short-lived tokens; Quay
// validates them; no Quay token is stored.
func TestBootstrap_OIDCStoresNoQuayToken(t *testing.T) {
	env := newEntraEnv(t)
	resp := env.writeConfig(env.config())
	assert.Equal(t, "vault-sp", resp.Data["root_token_owner"], "the write says whose credential it is")
	assert.Equal(t, true, resp.Data["root_token_super_user"])

	read := env.mustOK(logical.ReadOperation, "config", nil)
	assert.Equal(t, "oidc", read.Data["bootstrap"])
	assert.Equal(t, "vault-sp", read.Data["root_token_owner"])
	assert.Equal(t, "vault", read.Data["oidc_client_id"])
	assert.NotContains(t, read.Data, "root_token_fingerprint", "no Quay token is stored")
	assertNoKey(t, read.Data, "oidc_client_secret")
	stored := env.storedConfig()
	assert.True(t, stored.Token == "", "no Quay token is stored")
	assert.Empty(t, stored.RootTokenID)

	require.NoError(t, env.quay.CreateOrganization(testOrg, "vault-sp"))
	env.writeOAuthRole("ci", nil)
	fetched := env.idp.TokensIssued()
	creds := env.issue("ci")
	u, err := env.quayClient(creds.Data["token"].(string)).GetUser(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "vault-sp", u.Username)
	env.issue("ci")
	assert.LessOrEqual(t, env.idp.TokensIssued()-fetched, 1, "the access token is cached across calls")

	raw, _ := json.Marshal(read.Data)
	idpTokens := env.issuedTokens()
	require.NotEmpty(t, idpTokens)
	assertNoSecretIn(t, string(raw), "config read", append([]string{"idp-client-secret"}, idpTokens...)...)
	env.assertNoSecretLogged(append([]string{"idp-client-secret"}, idpTokens...)...)

	// A v1.0 client (sts.windows.net issuer, appid) is just as good.
	require.NoError(t, env.quay.CreateOrganization("legacy-org", "vault-sp"))
	resp = env.writeConfig(env.config("oidc_client_id", "legacy", "oidc_client_secret", "legacy-client-secret"))
	assert.Equal(t, "legacy-sp", resp.Data["root_token_owner"])
	assert.Equal(t, false, resp.Data["root_token_super_user"])
}

// Failures name the field to fix, with the provider's or Quay's reason.
func TestBootstrap_OIDCRefusals(t *testing.T) {
	env := newEntraEnv(t)
	for name, tc := range map[string]struct {
		data         map[string]any
		field        string
		reasons      []string
		secretAbsent string
	}{
		"wrong client secret": {env.config("oidc_client_secret", "wrong-secret"), "oidc_client_secret",
			[]string{"invalid_client", "AADSTS7000215"}, "wrong-secret"},
		"unknown client": {env.config("oidc_client_id", "nobody"), "oidc_client_secret",
			[]string{"unauthorized_client", "AADSTS700016"}, "idp-client-secret"},
		"scope without /.default": {env.config("oidc_scopes", "api://quay-api"), "oidc_client_secret",
			[]string{"invalid_scope"}, "idp-client-secret"},
		"wrong audience": {env.config("oidc_scopes", "api://elsewhere/.default"), "oidc_client_id",
			[]string{"Audience doesn't match", "OIDC_AUDIENCES"}, "idp-client-secret"},
		"client not allowed": {env.config("oidc_client_id", "intruder", "oidc_client_secret", "intruder-secret"), "oidc_client_id",
			[]string{"Client 'intruder' is not in the allowed clients list"}, "intruder-secret"},
		"token url unreachable": {env.config("oidc_token_url", "http://127.0.0.1:1/token"), "oidc_token_url",
			[]string{"127.0.0.1:1"}, "idp-client-secret"},
	} {
		resp := env.request(logical.UpdateOperation, "config", tc.data)
		require.True(t, resp.IsError(), name)
		msg := errorMessage(resp)
		assert.True(t, strings.HasPrefix(msg, tc.field+": "), "%s: %s", name, msg)
		for _, r := range tc.reasons {
			assert.Contains(t, msg, r, name)
		}
		assertNoSecretIn(t, msg, name, tc.secretAbsent)
	}
	assert.False(t, env.configSaved(), "nothing saved")
	env.assertNoSecretLogged("idp-client-secret", "wrong-secret", "intruder-secret")
	env.assertNoSecretLogged(env.issuedTokens()...)

	// root_organization does not apply: the engine keeps no Quay token.
	resp := env.request(logical.UpdateOperation, "config", env.config("root_organization", "vault-root"))
	require.True(t, resp.IsError())
	assert.True(t, strings.HasPrefix(errorMessage(resp), "root_organization: "), errorMessage(resp))
}

// Quay hides POST /api/v1/user/initialize unless FEATURE_USER_INITIALIZE
// is on (route_show_if answers a bare 404, not Quay's "not found"): the
// operator is told which switch to turn, and nothing is saved.
func TestBootstrap_InitializeWithoutTheFeature(t *testing.T) {
	env := newTestEnv(t, withEmptyQuay("SUPER_USERS: [quayadmin]\nFEATURE_MAILING: false\n"))
	resp := env.request(logical.UpdateOperation, "config", map[string]any{
		"url": env.server.URL, "bootstrap": "initialize", "username": "quayadmin", "email": "admin@example.com", "root_organization": "automation",
	})
	require.True(t, resp.IsError())
	assert.True(t, strings.HasPrefix(errorMessage(resp), "bootstrap: "), errorMessage(resp))
	assert.Contains(t, errorMessage(resp), "FEATURE_USER_INITIALIZE")
	assert.False(t, env.configSaved(), "nothing saved")
}
