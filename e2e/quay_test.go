//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// One suite, several Quays. E2E_QUAY picks the Quay every test talks to:
//
//	emulator (default)  the Quay emulator (cmd/quay-emulator), one process per test
//	real                Quay 3.18.0 itself (REALQUAY_DIR, default ../shared/realquay),
//	                    one server per test binary run, shared by the tests, each test
//	                    in organizations and users of its own; tests that need a Quay
//	                    configured for them (empty, OIDC, restarts) start one more
//
// and E2E_QUAY_URL with E2E_QUAY_TOKEN (a superuser's OAuth token) point the
// suite at a Quay you already run instead: every name it creates starts with
// E2E_QUAY_ORG_PREFIX (default "e2e") and is deleted at the end of its test.
//
// Against real Quay the tests talk to it through the emulator's fault layer
// (`quay-emulator -upstream`), so faults and call counters work the same.

// quayTarget is the kind of Quay under test.
type quayTarget string

const (
	targetEmulator quayTarget = "emulator"
	// targetReal is ../shared/realquay, started and configured by the suite.
	targetReal quayTarget = "real"
	// targetOwn is the user's own Quay (E2E_QUAY_URL).
	targetOwn quayTarget = "own"
)

// Quay is the Quay server one test talks to.
type Quay struct {
	// Target says which kind of Quay this is.
	Target quayTarget
	// URL is where Vault and the tests reach Quay: the emulator, or the
	// fault proxy in front of a real Quay.
	URL string
	// ServerURL is Quay's own address (SERVER_HOSTNAME): URL for the
	// emulator, the upstream of the fault proxy for a real Quay. Quay builds
	// the registry's token realm and its local OAuth redirect from it.
	ServerURL string
	// BootstrapToken is a superuser token for BootstrapOwner, the credential
	// an operator writes to quay/config: the programmatic bootstrap token for
	// the emulator (and for a real Quay with QuayOptions.BootstrapFile), a
	// token minted for this test otherwise.
	BootstrapToken string
	BootstrapOwner string
	// Control drives faults and call counters (and, for the emulator only,
	// seeding and the clock).
	Control *ControlClient
	// OIDCURL is the test identity provider's address (QuayOptions.OIDC).
	OIDCURL string

	// proc is the emulator, or the fault proxy.
	proc *process
	// admin is a token of BootstrapOwner the harness inspects and seeds with.
	admin string
	http  *http.Client
	// real is the real Quay behind the proxy (nil for the emulator).
	real *realQuay
	// names prefixes the names this test creates in a shared Quay.
	names *testNames
	// directOAuth is the application direct OAuth may use (QuayOptions.DirectOAuth).
	directOAuth directOAuthApp
	// tokenPath is BOOTSTRAP_TOKEN_PATH, when the suite can read it.
	tokenPath string
}

// QuayOptions say what a test needs from Quay.
type QuayOptions struct {
	// Owner is the bootstrap token's owner (default "quayadmin"; the
	// emulator only).
	Owner string
	// ExtraConfig is appended to Quay's config.yaml. A real Quay with extra
	// config is started for the test alone.
	ExtraConfig string
	// Empty is a Quay with no users at all and FEATURE_USER_INITIALIZE on,
	// programmatic bootstrap configured for "quayadmin" (zero-touch
	// initialize). A real one is started for the test alone.
	Empty bool
	// OIDC also starts the test identity provider (Entra-shaped) with these
	// extra flags (e.g. -oidc-client id:secret:subject); its address is known
	// before the config is written, as OIDC_SERVER needs.
	OIDC []string
	// DirectOAuth: an application whose client ID is in
	// DIRECT_OAUTH_CLIENTID_WHITELIST (see EnableDirectOAuth).
	DirectOAuth bool
	// BootstrapFile: BootstrapToken must be the token Quay's programmatic
	// bootstrap wrote to BOOTSTRAP_TOKEN_PATH (the test lets the engine
	// revoke it), not a stand-in.
	BootstrapFile bool
	// CABundle is the PEM file of the only CAs Quay trusts for its own
	// HTTPS requests (the emulator's -ca-bundle; REQUESTS_CA_BUNDLE for a
	// real Quay, which is then started for the test alone), e.g. a TLS
	// Vault's CACert for robot federation.
	CABundle string
}

// Emulator, EmulatorOptions and StartEmulator are the names from before the
// suite ran against real Quay too.
type (
	Emulator        = Quay
	EmulatorOptions = QuayOptions
)

// StartEmulator is StartQuay.
func StartEmulator(t testing.TB, opts QuayOptions) *Quay { return StartQuay(t, opts) }

// StartQuay gives the test a Quay of the suite's target (E2E_QUAY).
func StartQuay(t testing.TB, opts QuayOptions) *Quay {
	t.Helper()
	switch suite.target {
	case targetReal, targetOwn:
		return startRealQuayForTest(t, opts)
	default:
		return startEmulator(t, opts)
	}
}

// requireEmulator skips a test that only the emulator can serve.
func requireEmulator(t testing.TB, why string) {
	t.Helper()
	if suite.target != targetEmulator {
		t.Skipf("emulator only: %s", why)
	}
}

// Name is the name this test gives a Quay namespace it creates (an
// organization, a user): base itself in the emulator, which each test has
// to itself; base behind the run's and the test's prefix in a shared Quay.
func (q *Quay) Name(base string) string {
	if q.names == nil {
		return base
	}
	return q.names.name(base)
}

// Stop stops Quay as Vault sees it: the emulator, or the proxy in front of a
// real Quay (the shared server keeps running for the other tests).
func (q *Quay) Stop(t testing.TB) {
	t.Helper()
	q.proc.stop(5 * time.Second)
}

// Log returns the emulator's (or the proxy's) log so far.
func (q *Quay) Log() string { return q.proc.logContents() }

// Do sends one request to Quay's API with an optional Bearer token and JSON
// body, and returns the status and body.
func (q *Quay) Do(t testing.TB, method, path, token string, body any) (int, []byte) {
	t.Helper()
	return doJSON(t, q.http, method, q.URL+path, token, body)
}

// WhoAmI is GET /api/v1/user/ with token: the status and the username.
func (q *Quay) WhoAmI(t testing.TB, token string) (int, string) {
	t.Helper()
	code, body := q.Do(t, http.MethodGet, "/api/v1/user/", token, nil)
	var user struct {
		Username string `json:"username"`
	}
	_ = json.Unmarshal(body, &user)
	return code, user.Username
}

// CreateOrganization creates an organization through Quay's API with the
// harness's token of the owner (which holds user:admin), as an operator
// would. name is the organization's full name (see Name).
func (q *Quay) CreateOrganization(t testing.TB, name string) {
	t.Helper()
	q.createOrganizationAs(t, q.admin, name)
}

func (q *Quay) createOrganizationAs(t testing.TB, token, name string) {
	t.Helper()
	code, body := q.Do(t, http.MethodPost, "/api/v1/organization/", token,
		map[string]string{"name": name, "email": name + "@example.com"})
	if code != http.StatusCreated {
		t.Fatalf("POST /api/v1/organization/ %s: %d %s", name, code, body)
	}
}

// CreateRepository creates a private repository in namespace, as an
// operator would, with the owner's token (or the emulator's seeding).
func (q *Quay) CreateRepository(t testing.TB, namespace, name string) {
	t.Helper()
	if q.real == nil {
		code, body := q.Control.Do(t, http.MethodPost, "/repositories", map[string]any{"namespace": namespace, "name": name})
		if code != http.StatusNoContent {
			t.Fatalf("seeding repository %s/%s: %d %s", namespace, name, code, body)
		}
		return
	}
	code, body := q.Do(t, http.MethodPost, "/api/v1/repository", q.admin,
		map[string]string{"namespace": namespace, "repository": name, "visibility": "private", "description": ""})
	if code != http.StatusCreated {
		t.Fatalf("POST /api/v1/repository %s/%s: %d %s", namespace, name, code, body)
	}
}

// CreateUser creates a user with a password (a database user; in
// production it could be an LDAP account). Its token for inspection comes
// from inspector.
func (q *Quay) CreateUser(t testing.TB, username, password, email string) {
	t.Helper()
	if q.real == nil {
		q.Control.SeedUser(t, username, password, email, false)
		return
	}
	q.real.createUser(t, q, username, password, email)
}

// seedOrg creates an organization administered by admin.
func (q *Quay) seedOrg(t testing.TB, name, admin string) {
	t.Helper()
	if q.real == nil {
		code, body := q.Control.Do(t, http.MethodPost, "/organizations", map[string]any{"name": name, "admin": admin})
		if code != http.StatusNoContent {
			t.Fatalf("seeding organization %s: %d %s", name, code, body)
		}
		return
	}
	q.createOrganizationAs(t, q.inspector(t, admin), name)
}

// inspector is a token with every scope for a Quay user, so tests can look
// at Quay without any secret Vault holds: minted through the emulator's
// control API, or (real Quay) the harness's own token of the owner, or a
// direct-OAuth token of a user the harness created.
func (q *Quay) inspector(t testing.TB, user string) string {
	t.Helper()
	if q.real == nil {
		code, body := q.Control.Do(t, http.MethodPost, "/tokens", map[string]any{
			"username": user, "scope": "org:admin repo:admin user:admin user:read", "ttl_seconds": 3600,
		})
		if code != http.StatusOK {
			t.Fatalf("minting an inspection token: %d %s", code, body)
		}
		var out struct{ Token string }
		must(t, json.Unmarshal(body, &out))
		return out.Token
	}
	return q.real.inspector(t, q, user)
}

// SSOLogin tells the harness how to act as user, a Quay user an identity
// provider's token (token) signs in: real Quay has no other way to give the
// harness a token of that user. The emulator mints its own.
func (q *Quay) SSOLogin(t testing.TB, user, token string) {
	t.Helper()
	if q.real == nil {
		return
	}
	q.real.mu.Lock()
	defer q.real.mu.Unlock()
	if q.real.inspectors == nil {
		q.real.inspectors = map[string]string{}
	}
	q.real.inspectors[user] = token
}

// RobotExists reports whether the robot <namespace>+<short> exists: the
// emulator's control API, or (real Quay) GET of the robot with the owner's
// token, which Quay answers 400 "Could not find robot" for a missing one.
func (q *Quay) RobotExists(t testing.TB, username string) bool {
	t.Helper()
	if q.real == nil {
		return q.Control.RobotExists(t, username)
	}
	ns, short, ok := strings.Cut(username, "+")
	if !ok {
		t.Fatalf("%q is not a robot name", username)
	}
	path := "/api/v1/organization/" + url.PathEscape(ns) + "/robots/" + url.PathEscape(short)
	code, body := q.Do(t, http.MethodGet, path, q.admin, nil)
	switch {
	case code == http.StatusOK:
		return true
	case code == http.StatusBadRequest && strings.Contains(string(body), "Could not find robot"):
		return false
	}
	t.Fatalf("GET %s: %d %s", path, code, body)
	return false
}

// TokenExists reports whether the application token uuid of org's
// application clientID exists in Quay, expired or not. Real Quay lists only
// unexpired tokens, so there the probe is a DELETE: a token that should be
// gone and is not is deleted as it is found.
func (q *Quay) TokenExists(t testing.TB, org, clientID, uuid string) bool {
	t.Helper()
	if q.real == nil {
		return q.Control.TokenExists(t, uuid)
	}
	code, body := q.Do(t, http.MethodDelete, appTokensPath(org, clientID)+"/"+url.PathEscape(uuid), q.admin, nil)
	switch code {
	case http.StatusNoContent:
		return true
	case http.StatusNotFound:
		return false
	}
	t.Fatalf("probing token %s: %d %s", uuid, code, body)
	return false
}

// Restart restarts Quay on the same database: boot.py runs again (the
// emulator's POST /restart). Only a Quay the test has to itself restarts.
func (q *Quay) Restart(t testing.TB) {
	t.Helper()
	if q.real == nil {
		q.Control.must(t, http.MethodPost, "/restart", struct{}{}, http.StatusNoContent, nil)
		return
	}
	q.real.restartFor(t, q)
}

// ReadBootstrapFile returns the access token in BOOTSTRAP_TOKEN_PATH, or ""
// when Quay has not written the file.
func (q *Quay) ReadBootstrapFile(t testing.TB) string {
	t.Helper()
	path := q.tokenPath
	if path == "" {
		t.Fatal("this Quay has no bootstrap token file the suite can read")
	}
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return ""
	}
	must(t, err)
	var file struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(raw, &file); err != nil || file.AccessToken == "" {
		t.Fatalf("bootstrap token file %s: want {\"access_token\": ...}: %v", path, err)
	}
	return file.AccessToken
}

// directOAuthApp is an application whose client ID Quay's config whitelists
// for direct OAuth, and the organization holding it.
type directOAuthApp struct{ org, name, clientID string }

// EnableDirectOAuth lets user take tokens through direct OAuth
// (bootstrap=password): Quay issues them only to administrators of the
// whitelisted application's organization. It returns the client ID.
func (q *Quay) EnableDirectOAuth(t testing.TB, user string) (clientID string) {
	t.Helper()
	if q.directOAuth.clientID == "" {
		t.Fatal("StartQuay without QuayOptions.DirectOAuth")
	}
	if q.real == nil {
		q.Control.SeedOrganization(t, q.directOAuth.org, user)
		q.Control.SeedApplication(t, q.directOAuth.org, q.directOAuth.name, q.directOAuth.clientID, "")
	} else {
		q.real.addOrgAdmin(t, q, q.directOAuth.org, user)
	}
	// Behind the fault proxy, Vault reaches Quay at another address than
	// Quay's SERVER_HOSTNAME, to which its local OAuth redirect must point:
	// the engine learns it from Quay's GET /config, no oauth_redirect_uri.
	return q.directOAuth.clientID
}

// appToken is one entry of Quay's application token list.
type appToken struct {
	UUID      string  `json:"uuid"`
	Name      string  `json:"name"`
	Scope     string  `json:"scope"`
	ExpiresAt string  `json:"expires_at"`
	Created   string  `json:"created"`
	CreatedBy string  `json:"created_by"`
	LastUsed  *string `json:"last_accessed"`
}

func appTokensPath(org, clientID string) string {
	return fmt.Sprintf("/api/v1/organization/%s/applications/%s/tokens", url.PathEscape(org), url.PathEscape(clientID))
}

// AppTokens lists the application's (non-expired) tokens, all pages.
func (q *Quay) AppTokens(t testing.TB, org, clientID string) []appToken {
	t.Helper()
	return q.appTokensAs(t, q.admin, org, clientID)
}

// appTokensAs lists the application's tokens as the holder of token.
func (q *Quay) appTokensAs(t testing.TB, token, org, clientID string) []appToken {
	t.Helper()
	var all []appToken
	next := ""
	for {
		path := appTokensPath(org, clientID)
		if next != "" {
			path += "?next_page=" + url.QueryEscape(next)
		}
		code, body := q.Do(t, http.MethodGet, path, token, nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		var page struct {
			Tokens   []appToken `json:"tokens"`
			NextPage string     `json:"next_page"`
		}
		must(t, json.Unmarshal(body, &page))
		all = append(all, page.Tokens...)
		if page.NextPage == "" {
			return all
		}
		next = page.NextPage
	}
}

func (q *Quay) findAppToken(t testing.TB, org, clientID, uuid string) (appToken, bool) {
	t.Helper()
	for _, tok := range q.AppTokens(t, org, clientID) {
		if tok.UUID == uuid {
			return tok, true
		}
	}
	return appToken{}, false
}

// DeleteAppToken deletes a token directly in Quay (behind Vault's back).
func (q *Quay) DeleteAppToken(t testing.TB, org, clientID, uuid string) {
	t.Helper()
	path := appTokensPath(org, clientID) + "/" + url.PathEscape(uuid)
	if code, body := q.Do(t, http.MethodDelete, path, q.admin, nil); code != http.StatusNoContent {
		t.Fatalf("DELETE %s: %d %s", path, code, body)
	}
}

// parseQuayTime parses the ISO-8601 timestamps of the application token API
// (Python isoformat() + "Z", with or without microseconds).
func parseQuayTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999Z", "2006-01-02T15:04:05.999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unparseable Quay timestamp %q", s)
}

// testNames hands out the names one test creates in a shared Quay, and
// remembers them so the test's cleanup deletes them.
type testNames struct {
	prefix string
	given  []string
}

func (n *testNames) name(base string) string {
	full := n.prefix + "-" + strings.ToLower(base)
	for _, g := range n.given {
		if g == full {
			return full
		}
	}
	n.given = append(n.given, full)
	return full
}
