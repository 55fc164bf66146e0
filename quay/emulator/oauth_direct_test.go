package emulator

import (
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
