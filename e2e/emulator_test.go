//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// directOAuthClientID is the client ID the emulator's config whitelists for
// direct OAuth (QuayOptions.DirectOAuth).
const directOAuthClientID = "VAULTCLIENT000000000"

var readyLine = regexp.MustCompile(`quay-emulator ready url=(\S+) control=(\S+)`)

// startEmulator writes a config.yaml with programmatic bootstrap on, starts
// the emulator (cmd/quay-emulator, its own process) on free loopback ports
// and waits for its ready line. As with Quay, the bootstrap token is only
// written by a start that finds the owner: the harness creates the owner and
// restarts the emulator (POST /restart), unless opts.Empty.
func startEmulator(t testing.TB, opts QuayOptions) *Quay {
	t.Helper()
	if opts.Owner == "" {
		opts.Owner = "quayadmin"
	}
	dir := t.TempDir()
	q := &Quay{Target: targetEmulator, BootstrapOwner: opts.Owner, http: &http.Client{Timeout: 30 * time.Second}}
	tokenPath := filepath.Join(dir, "quay-machine-token.json")
	q.tokenPath = tokenPath
	// SERVER_HOSTNAME is where registry clients are sent for tokens
	// (the realm of the /v2/ challenge), so it must be the real address.
	port := freePorts(t, 1)
	if opts.OIDC != nil {
		q.OIDCURL = fmt.Sprintf("http://127.0.0.1:%d", freePorts(t, 1))
	}
	bootstrap := fmt.Sprintf(`FEATURE_PROGRAMMATIC_BOOTSTRAP: true
BOOTSTRAP_TOKEN_OWNER: %s
BOOTSTRAP_TOKEN_PATH: %s
BOOTSTRAP_TOKEN_EXPIRATION: 86400`, opts.Owner, tokenPath)
	if opts.Empty {
		bootstrap += "\nFEATURE_USER_INITIALIZE: true"
	}
	if opts.DirectOAuth {
		bootstrap += "\nDIRECT_OAUTH_CLIENTID_WHITELIST: [" + directOAuthClientID + "]"
		q.directOAuth = directOAuthApp{org: "automation", name: "vault", clientID: directOAuthClientID}
	}
	extra := strings.ReplaceAll(opts.ExtraConfig, "@OIDC_URL@", q.OIDCURL)
	cfg := fmt.Sprintf(`SERVER_HOSTNAME: 127.0.0.1:%[4]d
FEATURE_MAILING: false
FEATURE_SUPER_USERS: true
SUPER_USERS:
  - %[1]s
%[2]s
%[3]s
`, opts.Owner, bootstrap, extra, port)
	cfgPath := filepath.Join(dir, "config.yaml")
	must(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))

	controlPort := freePorts(t, 1)
	args := []string{
		"-config", cfgPath,
		"-listen", fmt.Sprintf("127.0.0.1:%d", port),
		"-control-listen", fmt.Sprintf("127.0.0.1:%d", controlPort),
	}
	if opts.OIDC != nil {
		args = append(append(args, "-oidc-listen", strings.TrimPrefix(q.OIDCURL, "http://")), opts.OIDC...)
	}
	if opts.CABundle != "" {
		args = append(args, "-ca-bundle", opts.CABundle)
	}
	proc, err := startProcess("quay-emulator", filepath.Join(logDir(t), "quay-emulator.log"), suite.emulatorBin, args, cleanEnv())
	must(t, err)
	q.proc = proc
	proc.manage(t)
	m, err := proc.waitForLog(readyLine, 30*time.Second)
	must(t, err)
	q.URL, q.ServerURL = m[1], m[1]
	q.Control = &ControlClient{base: m[2], http: q.http}

	if opts.Empty {
		return q
	}
	// The owner exists (an operator created it), then Quay starts again.
	q.Control.SeedUser(t, opts.Owner, "", opts.Owner+"@localhost", false)
	q.Restart(t)
	q.BootstrapToken = q.ReadBootstrapFile(t)
	if q.BootstrapToken == "" {
		t.Fatalf("the emulator wrote no bootstrap token file at %s after a restart with its owner", tokenPath)
	}
	q.admin = q.BootstrapToken
	return q
}

// ControlClient drives the emulator's control API: fault injection, per-route
// call counters keyed by Quay's operation nicknames, and seeding.
type ControlClient struct {
	base string
	http *http.Client
}

// Do sends a request to the control API and returns status and body.
func (c *ControlClient) Do(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	return doJSON(t, c.http, method, c.base+path, "", body)
}

// must sends a request and fails the test unless the answer is want; it
// decodes a JSON answer into out when out is not nil.
func (c *ControlClient) must(t testing.TB, method, path string, body any, want int, out any) {
	t.Helper()
	code, resp := c.Do(t, method, path, body)
	if code != want {
		t.Fatalf("emulator control %s %s: %d %s (want %d)", method, path, code, resp, want)
	}
	if out != nil {
		if err := json.Unmarshal(resp, out); err != nil {
			t.Fatalf("emulator control %s %s: decoding %s: %v", method, path, resp, err)
		}
	}
}

// Fault is a misbehaviour injected into Quay's API (quay/emulator.Fault):
// select calls by Route (Quay's operation nickname, e.g.
// "createOrganizationApplicationToken") or by Method and PathPrefix.
type Fault struct {
	Route      string `json:"route,omitempty"`
	Method     string `json:"method,omitempty"`
	PathPrefix string `json:"path_prefix,omitempty"`
	// Count is how many matching calls the fault affects; 0 means all.
	Count int `json:"count,omitempty"`
	// LatencyMillis delays the call, which then proceeds (unless Status
	// or Drop is set).
	LatencyMillis int64 `json:"latency_ms,omitempty"`
	// Status answers with this status (and Body, RetryAfter) instead.
	Status     int    `json:"status,omitempty"`
	Body       string `json:"body,omitempty"`
	RetryAfter string `json:"retry_after,omitempty"`
	// Drop closes the connection without an answer.
	Drop bool `json:"drop,omitempty"`
}

// AddFault installs a fault.
func (c *ControlClient) AddFault(t testing.TB, f Fault) {
	t.Helper()
	c.must(t, http.MethodPost, "/faults", f, http.StatusNoContent, nil)
}

// ClearFaults removes every fault.
func (c *ControlClient) ClearFaults(t testing.TB) {
	t.Helper()
	c.must(t, http.MethodDelete, "/faults", nil, http.StatusNoContent, nil)
}

// Calls returns the per-route call counters, keyed by operation nickname.
func (c *ControlClient) Calls(t testing.TB) map[string]int {
	t.Helper()
	var out map[string]int
	c.must(t, http.MethodGet, "/calls", nil, http.StatusOK, &out)
	return out
}

// ResetCalls zeroes the counters.
func (c *ControlClient) ResetCalls(t testing.TB) {
	t.Helper()
	c.must(t, http.MethodDelete, "/calls", nil, http.StatusNoContent, nil)
}

// AdvanceClock moves the emulator's clock forward (token expiry).
func (c *ControlClient) AdvanceClock(t testing.TB, d time.Duration) {
	t.Helper()
	c.must(t, http.MethodPost, "/clock", map[string]int64{"advance_seconds": int64(d / time.Second)}, http.StatusNoContent, nil)
}

// SeedUser creates a user directly (no API call is counted).
func (c *ControlClient) SeedUser(t testing.TB, username, password, email string, superuser bool) {
	t.Helper()
	c.must(t, http.MethodPost, "/users", map[string]any{"username": username, "password": password, "email": email, "superuser": superuser}, http.StatusNoContent, nil)
}

// SeedOrganization creates an organization administered by admin.
func (c *ControlClient) SeedOrganization(t testing.TB, name, admin string) {
	t.Helper()
	c.must(t, http.MethodPost, "/organizations", map[string]string{"name": name, "admin": admin}, http.StatusNoContent, nil)
}

// SeedApplication creates an OAuth application in org.
func (c *ControlClient) SeedApplication(t testing.TB, org, name, clientID, redirectURI string) {
	t.Helper()
	c.must(t, http.MethodPost, "/applications", map[string]string{"organization": org, "name": name, "client_id": clientID, "redirect_uri": redirectURI}, http.StatusNoContent, nil)
}

// SeedRepository creates a repository.
func (c *ControlClient) SeedRepository(t testing.TB, namespace, name string, public bool) {
	t.Helper()
	c.must(t, http.MethodPost, "/repositories", map[string]any{"namespace": namespace, "name": name, "public": public}, http.StatusNoContent, nil)
}

// IssueToken mints an OAuth token for username directly.
func (c *ControlClient) IssueToken(t testing.TB, username, scope string, ttl time.Duration) string {
	t.Helper()
	var out struct {
		Token string `json:"token"`
	}
	c.must(t, http.MethodPost, "/tokens", map[string]any{"username": username, "scope": scope, "ttl_seconds": int64(ttl / time.Second)}, http.StatusOK, &out)
	return out.Token
}

// TokenValid reports whether Quay accepts token.
func (c *ControlClient) TokenValid(t testing.TB, token string) bool {
	t.Helper()
	var out struct {
		Valid bool `json:"valid"`
	}
	c.must(t, http.MethodGet, "/tokens/valid?token="+url.QueryEscape(token), nil, http.StatusOK, &out)
	return out.Valid
}

// TokenExists reports whether a token with this UUID exists (expired or not).
func (c *ControlClient) TokenExists(t testing.TB, uuid string) bool {
	t.Helper()
	return c.exists(t, "/tokens/exists?uuid="+url.QueryEscape(uuid))
}

// ApplicationExists reports whether an application with this client ID exists.
func (c *ControlClient) ApplicationExists(t testing.TB, clientID string) bool {
	t.Helper()
	return c.exists(t, "/applications/exists?client_id="+url.QueryEscape(clientID))
}

// RobotExists reports whether a robot (namespace+short) exists.
func (c *ControlClient) RobotExists(t testing.TB, username string) bool {
	t.Helper()
	return c.exists(t, "/robots/exists?username="+url.QueryEscape(username))
}

func (c *ControlClient) exists(t testing.TB, path string) bool {
	t.Helper()
	var out struct {
		Exists bool `json:"exists"`
	}
	c.must(t, http.MethodGet, path, nil, http.StatusOK, &out)
	return out.Exists
}

func doJSON(t testing.TB, client *http.Client, method, u, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		must(t, err)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	must(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, redactURL(u), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp.StatusCode, b
}

func redactURL(u string) string {
	if i := strings.Index(u, "?"); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}
