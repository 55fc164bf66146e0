//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The root credential: zero-touch bootstrap, the engine's own root token,
// its rotation (manual, scheduled, interrupted) and keyless OIDC.

const entraTenant = "11111111-2222-3333-4444-555555555555"

// rootTokenIDs lists the tokens of the engine's root application in org.
func (e *Quay) rootTokenIDs(t testing.TB, inspector, org string) []string {
	t.Helper()
	code, body := e.Do(t, http.MethodGet, "/api/v1/organization/"+org+"/applications", inspector, nil)
	if code != http.StatusOK {
		t.Fatalf("listing applications of %s: %d %s", org, code, body)
	}
	var apps struct {
		Applications []struct {
			Name     string `json:"name"`
			ClientID string `json:"client_id"`
		} `json:"applications"`
	}
	must(t, json.Unmarshal(body, &apps))
	var ids []string
	for _, a := range apps.Applications {
		if !strings.HasSuffix(a.Name, "-root") {
			continue
		}
		code, body := e.Do(t, http.MethodGet, "/api/v1/organization/"+org+"/applications/"+a.ClientID+"/tokens", inspector, nil)
		if code != http.StatusOK {
			t.Fatalf("listing the root application's tokens: %d %s", code, body)
		}
		var page struct {
			Tokens []appToken `json:"tokens"`
		}
		must(t, json.Unmarshal(body, &page))
		for _, tok := range page.Tokens {
			ids = append(ids, tok.UUID)
		}
	}
	return ids
}

// bootstrapApp names the application of the credential an engine
// bootstrapped from: Quay's authorizations view shows a token's application
// by name and organization, not by client ID.
type bootstrapApp struct{ name, org string }

// assertOnlyOwnRootToken checks, looking at Quay as owner, that the engine's
// root application in rootOrg holds exactly the token the config names, and
// that the bootstrap credential (a token of app) was revoked.
func (q *Quay) assertOnlyOwnRootToken(t testing.TB, owner string, cfg map[string]any, rootOrg string, app bootstrapApp) {
	t.Helper()
	insp := q.inspector(t, owner)
	if ids := q.rootTokenIDs(t, insp, rootOrg); len(ids) != 1 || ids[0] != cfg["root_token_id"] {
		t.Fatalf("root application tokens %v, want exactly [%v]", ids, cfg["root_token_id"])
	}
	code, body := q.Do(t, http.MethodGet, "/api/v1/user/authorizations", insp, nil)
	if code != http.StatusOK {
		t.Fatalf("listing authorizations: %d %s", code, body)
	}
	var auths struct {
		Authorizations []struct {
			Application struct {
				Name         string `json:"name"`
				Organization struct {
					Name string `json:"name"`
				} `json:"organization"`
			} `json:"application"`
		} `json:"authorizations"`
	}
	must(t, json.Unmarshal(body, &auths))
	for _, a := range auths.Authorizations {
		if a.Application.Name == app.name && a.Application.Organization.Name == app.org {
			t.Errorf("the bootstrap token (application %s of %s) was not revoked", app.name, app.org)
		}
	}
}

func configData(t testing.TB, v *Vault) map[string]any {
	t.Helper()
	var out struct {
		Data map[string]any `json:"data"`
	}
	v.CLIJSON(t, &out, []string{"read"}, mount+"/config")
	return out.Data
}

// assertIssues reads creds for a fresh oauth_token role in org and checks the
// token works in Quay.
func assertIssues(t testing.TB, v *Vault, q *Quay, org, role string) {
	t.Helper()
	s := &stack{Vault: v, Quay: q, Org: org}
	s.writeOAuthRole(t, role)
	sec := s.readCreds(t, role)
	if code, _ := q.WhoAmI(t, sec.str(t, "token")); code != http.StatusOK {
		t.Fatalf("a token issued after the root credential changed does not work: %d", code)
	}
}

func TestZeroTouchInitialize(t *testing.T) {
	q := StartQuay(t, QuayOptions{Empty: true})
	v := StartDevVault(t)
	v.EnablePlugin(t, mount)
	rootOrg := q.Name("vault-root")

	out := v.MustCLI(t, "write", mount+"/config", "url="+q.URL, "bootstrap=initialize", "username=quayadmin", "root_organization="+rootOrg)
	if strings.Contains(strings.ToLower(out), "warning") {
		t.Logf("config write warned:\n%s", out)
	}
	cfg := configData(t, v)
	for key, want := range map[string]any{"bootstrap": "initialize", "root_token_owner": "quayadmin", "password_set": true} {
		if cfg[key] != want {
			t.Errorf("config %s = %v, want %v", key, cfg[key], want)
		}
	}
	for _, key := range []string{"token", "password"} {
		if _, present := cfg[key]; present {
			t.Errorf("config read returned %q", key)
		}
	}
	if cfg["root_token_id"] == "" || cfg["next_root_rotation"] == "" {
		t.Errorf("config read lacks the root token's id or schedule: %v", cfg)
	}

	// Nobody ever saw a Quay secret: inspect Quay through the emulator,
	// or (real Quay) with the bootstrap token Quay writes for the owner
	// at its next start. Quay names the initialization token's application
	// "automation", in the owner's namespace.
	q.assertOnlyOwnRootToken(t, "quayadmin", cfg, rootOrg, bootstrapApp{name: "automation", org: "quayadmin"})

	org := q.Name("acme")
	q.seedOrg(t, org, "quayadmin")
	assertIssues(t, v, q, org, "ci")
}

func TestRotateRootReplacesTheRootToken(t *testing.T) {
	s := newStack(t, withoutConfig(), withBootstrapFile())
	rootOrg := s.Quay.Name("vault-root")
	s.Vault.MustCLI(t, "write", mount+"/config", "url="+s.Quay.URL, "token="+s.Quay.BootstrapToken, "root_organization="+rootOrg)
	if code, _ := s.Quay.WhoAmI(t, s.Quay.BootstrapToken); code != http.StatusUnauthorized {
		t.Errorf("the programmatic bootstrap token still works (%d) after the engine minted its own", code)
	}
	insp := s.Quay.inspector(t, s.Quay.BootstrapOwner)
	before := configData(t, s.Vault)["root_token_id"].(string)

	var rotated struct {
		Data map[string]any `json:"data"`
	}
	s.Vault.CLIJSON(t, &rotated, []string{"write"}, "-f", mount+"/config/rotate-root")
	for key, val := range rotated.Data {
		if s, ok := val.(string); ok && len(s) == 40 && !strings.ContainsAny(s, "-:") {
			t.Errorf("rotate-root answered something token-shaped in %q", key)
		}
	}
	after := configData(t, s.Vault)["root_token_id"].(string)
	if after == before || rotated.Data["root_token_id"] != after {
		t.Fatalf("root_token_id before %s, after %s, answer %v", before, after, rotated.Data["root_token_id"])
	}
	// The old root token is gone from Quay, so it no longer authenticates.
	if ids := s.Quay.rootTokenIDs(t, insp, rootOrg); len(ids) != 1 || ids[0] != after {
		t.Fatalf("root application tokens %v, want exactly [%s]", ids, after)
	}
	assertIssues(t, s.Vault, s.Quay, s.Org, "after-rotation")
}

func TestRootRotatesOnSchedule(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a scheduled rotation (about two minutes)")
	}
	s := newStack(t, withoutConfig())
	s.Vault.MustCLI(t, "write", mount+"/config", "url="+s.Quay.URL, "token="+s.Quay.BootstrapToken,
		"root_organization="+s.Quay.Name("vault-root"), "root_rotation_period=1m")
	first := configData(t, s.Vault)["root_token_id"]
	eventually(t, 4*time.Minute, "the root token rotates by itself", func() error {
		if id := configData(t, s.Vault)["root_token_id"]; id == first {
			return fmt.Errorf("still %v", id)
		}
		return nil
	})
	assertIssues(t, s.Vault, s.Quay, s.Org, "after-schedule")
}

// Keyless: the engine presents short-lived Entra-shaped access tokens from
// the identity provider; Quay validates them; no Quay secret is stored.
func TestOIDCBootstrapStoresNoQuayToken(t *testing.T) {
	q := StartQuay(t, QuayOptions{
		OIDC: []string{"-oidc-issuer", "https://login.microsoftonline.com/" + entraTenant + "/v2.0", "-oidc-client", "vault:s3cret:vault-sp"},
		ExtraConfig: `AZURE_LOGIN_CONFIG:
  DEBUGGING: true
  CLIENT_ID: quay-web
  OIDC_SERVER: @OIDC_URL@/
  OIDC_ISSUERS:
    - https://sts.windows.net/` + entraTenant + `/
    - https://login.microsoftonline.com/` + entraTenant + `/v2.0
  OIDC_AUDIENCES: [api://quay-api]
  OIDC_ALLOWED_CLIENTS: [vault]
`})
	v := StartDevVault(t)
	v.EnablePlugin(t, mount)

	res := v.CLI(t, "write", mount+"/config", "url="+q.URL, "bootstrap=oidc", "oidc_token_url="+q.OIDCURL+"/oauth2/v2.0/token",
		"oidc_client_id=vault", "oidc_client_secret=wrong", "oidc_scopes=api://quay-api/.default")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "oidc_client_secret") {
		t.Fatalf("a wrong client secret must be a 400 naming oidc_client_secret:\n%s", res)
	}
	v.MustCLI(t, "write", mount+"/config", "url="+q.URL, "bootstrap=oidc", "oidc_token_url="+q.OIDCURL+"/oauth2/v2.0/token",
		"oidc_client_id=vault", "oidc_client_secret=s3cret", "oidc_scopes=api://quay-api/.default")
	cfg := configData(t, v)
	if cfg["bootstrap"] != "oidc" || cfg["root_token_owner"] != "vault-sp" {
		t.Fatalf("config after an OIDC bootstrap: %v", cfg)
	}
	if _, stored := cfg["root_token_fingerprint"]; stored {
		t.Errorf("an OIDC-configured mount reports a stored Quay token: %v", cfg)
	}
	if raw, _ := json.Marshal(cfg); strings.Contains(string(raw), "s3cret") {
		t.Error("the client secret appears in the config read")
	}

	// The service principal's own access token acts as vault-sp in Quay.
	q.SSOLogin(t, "vault-sp", clientCredentialsToken(t, q.OIDCURL+"/oauth2/v2.0/token", "vault", "s3cret", "api://quay-api/.default"))
	org := q.Name("acme")
	q.seedOrg(t, org, "vault-sp")
	assertIssues(t, v, q, org, "ci")
}

// A service account's username and password (a database user here; an LDAP
// account matching LDAP_SUPERUSER_FILTER in production) exchanged through
// Quay's direct OAuth; the engine then mints its own root token and revokes
// the direct-OAuth one.
func TestPasswordBootstrapThroughDirectOAuth(t *testing.T) {
	q := StartQuay(t, QuayOptions{DirectOAuth: true})
	user, rootOrg := q.Name("svc-vault"), q.Name("vault-root")
	q.CreateUser(t, user, "service-account-pw", user+"@example.com")
	clientID := q.EnableDirectOAuth(t, user)
	v := StartDevVault(t)
	v.EnablePlugin(t, mount)
	args := func(password string) []string {
		return []string{"write", mount + "/config", "url=" + q.URL, "bootstrap=password", "username=" + user,
			"password=" + password, "oauth_client_id=" + clientID, "root_organization=" + rootOrg}
	}

	res := v.CLI(t, args("not-the-password")...)
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "password: ") || strings.Contains(res.Stderr, "not-the-password") {
		t.Fatalf("a wrong password must be a 400 naming the field, without the value:\n%s", res)
	}

	// Straight after the failure, inside Quay's login throttle: the engine
	// waits it out.
	v.MustCLI(t, args("service-account-pw")...)
	cfg := configData(t, v)
	for key, want := range map[string]any{"bootstrap": "password", "root_token_owner": user, "password_set": true} {
		if cfg[key] != want {
			t.Errorf("config %s = %v, want %v", key, cfg[key], want)
		}
	}
	if raw, _ := json.Marshal(cfg); strings.Contains(string(raw), "service-account-pw") {
		t.Error("the password appears in the config read")
	}

	q.assertOnlyOwnRootToken(t, user, cfg, rootOrg, bootstrapApp{name: q.directOAuth.name, org: q.directOAuth.org})

	org := q.Name("acme")
	q.seedOrg(t, org, user)
	assertIssues(t, v, q, org, "ci")
}

// A crash between "new root token created" and "persisted": after the
// restart exactly one valid root token remains (the one in the config) and
// no orphan.
func TestRootRotationInterruptedByACrash(t *testing.T) {
	v := StartFileVault(t)
	q := StartQuay(t, QuayOptions{})
	v.RegisterPlugin(t, pluginVersion)
	v.EnablePlugin(t, mount)
	org, rootOrg := q.Name("acme"), q.Name("vault-root")
	q.CreateOrganization(t, org)
	v.MustCLI(t, "write", mount+"/config", "url="+q.URL, "token="+q.BootstrapToken, "root_organization="+rootOrg)
	insp := q.inspector(t, q.BootstrapOwner)
	original := configData(t, v)["root_token_id"].(string)

	// rotate-root mints the new token, then verifies it with GET
	// /api/v1/user/: hold that call and kill Vault meanwhile.
	code, body := q.Control.Do(t, http.MethodPost, "/faults", map[string]any{"route": "getLoggedInUser", "latency_ms": 60000, "count": 1})
	if code != http.StatusNoContent {
		t.Fatalf("installing the fault: %d %s", code, body)
	}
	go func() { _ = v.CLI(t, "write", "-f", mount+"/config/rotate-root") }()
	eventually(t, 30*time.Second, "the new root token exists in Quay", func() error {
		if ids := q.rootTokenIDs(t, insp, rootOrg); len(ids) != 2 {
			return fmt.Errorf("root tokens: %v", ids)
		}
		return nil
	})
	v.Kill(t)
	q.Control.Do(t, http.MethodDelete, "/faults", nil)
	v.Start(t)

	eventually(t, 90*time.Second, "exactly one root token is left", func() error {
		if ids := q.rootTokenIDs(t, insp, rootOrg); len(ids) != 1 || ids[0] != original {
			return fmt.Errorf("root tokens %v, want [%s]", ids, original)
		}
		return nil
	})
	if id := configData(t, v)["root_token_id"]; id != original {
		t.Fatalf("config names root token %v, want %s", id, original)
	}
	assertIssues(t, v, q, org, "after-crash")
}

// clientCredentialsToken asks an identity provider for an access token with
// the OAuth2 client-credentials grant.
func clientCredentialsToken(t testing.TB, tokenURL, clientID, secret, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {scope}}
	resp, err := http.PostForm(tokenURL, form)
	must(t, err)
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil || out.AccessToken == "" {
		t.Fatalf("client-credentials token from %s: %d", tokenURL, resp.StatusCode)
	}
	return out.AccessToken
}
