package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDirectOAuth(t *testing.T) {
	q := newQuayEnv(t, "DIRECT_OAUTH_CLIENTID_WHITELIST: [VAULTCLIENT]\n")
	require.NoError(t, q.emu.CreateApplication("acme", "vault", "VAULTCLIENT", "https://vault.example/cb"))
	require.NoError(t, q.emu.CreateApplication("acme", "other", "OTHERCLIENT", "https://vault.example/cb"))
	post := func(user, password string, form url.Values) *http.Response {
		req, _ := http.NewRequest("POST", q.srv.URL+"/oauth/authorizeapp", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		client := q.srv.Client()
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	form := func(kv ...string) url.Values {
		v := url.Values{"client_id": {"VAULTCLIENT"}, "redirect_uri": {"https://vault.example/cb"}, "response_type": {"token"}, "scope": {"repo:read org:admin"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}

	resp := post("admin", "password1", form("state", "s1"))
	require.Equal(t, 302, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	assert.Equal(t, "https://vault.example/cb?scope=repo%3Aread+org%3Aadmin&state=s1", strings.SplitN(loc.String(), "#", 2)[0],
		"build_url(redirect_uri, {scope, state})")
	frag, err := url.ParseQuery(loc.Fragment)
	require.NoError(t, err)
	assert.Equal(t, "Bearer", frag.Get("token_type"))
	assert.Equal(t, "315576000", frag.Get("expires_in"))
	tok := frag.Get("access_token")
	assert.Regexp(t, `^[A-Za-z0-9]{40}$`, tok)
	code, _, _ := q.do(t, "GET", "/api/v1/organization/acme/robots", tok, "")
	assert.Equal(t, 200, code, "the token carries the requested scopes")
	q.clock.Advance(10 * 365 * 24 * time.Hour)
	assert.True(t, q.emu.TokenValid(tok), "ten years (315576000 s)")

	// Credentials first: none or wrong ones are Flask's 401.
	q2 := newQuayEnv(t, "DIRECT_OAUTH_CLIENTID_WHITELIST: [VAULTCLIENT]\n")
	require.NoError(t, q2.emu.CreateApplication("acme", "vault", "VAULTCLIENT", "https://vault.example/cb"))
	q = q2
	assert.Equal(t, 401, post("", "", form()).StatusCode)
	assert.Equal(t, 401, post("admin", "wrong", form()).StatusCode)
	assert.Equal(t, 429, post("admin", "password1", form()).StatusCode, "Quay's back-off after a wrong password")
	q.clock.Advance(time.Second)
	// A client ID outside the whitelist: CSRF.
	resp = post("admin", "password1", form("client_id", "OTHERCLIENT"))
	assert.Equal(t, 403, resp.StatusCode)

	// OAuth errors go back to the redirect URI.
	resp = post("admin", "password1", form("scope", "repo:read,bogus"))
	assert.Equal(t, 302, resp.StatusCode)
	assert.Equal(t, "https://vault.example/cb?error=invalid_scope", resp.Header.Get("Location"))
	resp = post("admin", "password1", form("response_type", "code"))
	assert.Equal(t, "https://vault.example/cb?error=unsupported_response_type", resp.Header.Get("Location"))
	require.NoError(t, q.emu.CreateUser("bob", "password2", "bob@example.com"))
	resp = post("bob", "password2", form())
	assert.Equal(t, "https://vault.example/cb?error=unauthorized_client", resp.Header.Get("Location"), "bob does not administer acme")
	for _, redirect := range []string{"https://evil.example/cb", "http://vault.example/cb", "https://vault.example/other", "https://vault.example/cb/../x", "https://u:p@vault.example/cb"} {
		resp = post("admin", "password1", form("redirect_uri", redirect))
		assert.Equal(t, 400, resp.StatusCode, redirect)
	}
	resp = post("admin", "password1", form("redirect_uri", "https://vault.example/cb/sub"))
	assert.Equal(t, 302, resp.StatusCode, "a path below the registered one")
	resp = post("admin", "password1", form("redirect_uri", q.srv.URL+"/oauth/localapp"))
	assert.Equal(t, 302, resp.StatusCode, "Quay's local handler")
}

// directOAuth posts a direct-OAuth request and returns the response, the
// fragment's parameters and the Location without its fragment.
func directOAuth(t *testing.T, q *quayEnv, user, password string, form url.Values) (*http.Response, url.Values, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, q.srv.URL+"/oauth/authorizeapp", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, password)
	client := q.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode == http.StatusForbidden {
		assert.Equal(t, map[string]any{"error": "CSRF token was invalid or missing."}, body)
	}
	base, fragment, _ := strings.Cut(resp.Header.Get("Location"), "#")
	frag, err := url.ParseQuery(fragment)
	require.NoError(t, err)
	return resp, frag, base
}

// The direct-OAuth token carries the scopes asked for (and no more), shows
// in the user's authorizations under the application, and can be revoked
// there: how the engine gets rid of it once it has its own token.
func TestDirectOAuth_TokenScopesAndRevocation(t *testing.T) {
	q := newQuayEnv(t, "DIRECT_OAUTH_CLIENTID_WHITELIST: [VAULTCLIENT, GHOSTCLIENT]\n")
	require.NoError(t, q.emu.CreateApplication("acme", "vault", "VAULTCLIENT", ""))
	form := url.Values{"client_id": {"VAULTCLIENT"}, "response_type": {"token"}, "redirect_uri": {q.srv.URL + "/oauth/localapp"}}

	form.Set("scope", "repo:read")
	resp, frag, base := directOAuth(t, q, "admin", "password1", form)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	assert.Equal(t, q.srv.URL+"/oauth/localapp?scope=repo%3Aread", base, "no state sent, none returned")
	narrow := frag.Get("access_token")
	code, _, _ := q.do(t, http.MethodPut, "/api/v1/organization/acme/robots/r1", narrow, "{}")
	assert.Equal(t, http.StatusForbidden, code, "repo:read does not administer the organization")
	code, _, _ = q.do(t, http.MethodGet, "/api/v1/user/authorizations", narrow, "")
	assert.Equal(t, http.StatusForbidden, code, "listing authorizations needs user:admin")

	form.Set("scope", "org:admin user:admin user:read")
	resp, frag, _ = directOAuth(t, q, "admin", "password1", form)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	broad := frag.Get("access_token")
	code, body, _ := q.do(t, http.MethodGet, "/api/v1/user/authorizations", broad, "")
	require.Equal(t, http.StatusOK, code)
	var vaultTokens []string
	for _, a := range body["authorizations"].([]any) {
		a := a.(map[string]any)
		app := a["application"].(map[string]any)
		if app["name"] == "vault" && app["organization"].(map[string]any)["name"] == "acme" {
			vaultTokens = append(vaultTokens, a["uuid"].(string))
		}
	}
	require.Len(t, vaultTokens, 2, "both direct-OAuth tokens, under the application")
	// Revoked with the user's other token: revoking broad with itself first
	// would leave nothing to revoke narrow with (the list's order is not
	// fixed).
	for _, uuid := range vaultTokens {
		code, _, _ = q.do(t, http.MethodDelete, "/api/v1/user/authorizations/"+uuid, q.admin, "")
		assert.Equal(t, http.StatusNoContent, code)
	}
	assert.False(t, q.emu.TokenValid(narrow))
	assert.False(t, q.emu.TokenValid(broad))

	// Whitelisted but no such application: unauthorized_client.
	form.Set("client_id", "GHOSTCLIENT")
	resp, _, base = directOAuth(t, q, "admin", "password1", form)
	assert.Equal(t, http.StatusFound, resp.StatusCode)
	assert.Equal(t, q.srv.URL+"/oauth/localapp?error=unauthorized_client", base)

	// Not whitelisted: CSRF, before anything else is looked at.
	form.Set("client_id", "NOTLISTED")
	resp, _, _ = directOAuth(t, q, "admin", "password1", form)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}
