//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Real Quay: ../shared/realquay (Quay 3.18.0 from its tagged source, on
// SQLite with a private redis) started by the suite, or the user's own Quay.
//
// Environment:
//
//	E2E_QUAY=real          run the suite against Quay 3.18.0 from REALQUAY_DIR
//	REALQUAY_DIR           start.sh/stop.sh of realquay (default <repo>/../shared/realquay)
//	E2E_QUAY_URL           run it against this Quay instead (implies a real Quay)
//	E2E_QUAY_TOKEN         an OAuth token of a superuser of E2E_QUAY_URL, with every
//	                       scope (org:admin repo:admin repo:create repo:read repo:write
//	                       user:admin user:read super:user)
//	E2E_QUAY_ORG_PREFIX    prefix of every organization and user the suite creates
//	                       (default "e2e"); all of them are deleted again
//	E2E_QUAY_CA_FILE       CA certificates (PEM) of an https E2E_QUAY_URL

// standInScopes are the scopes of a token minted for one test in place of
// the programmatic bootstrap token (BOOTSTRAP_TOKEN_SCOPE's default).
const standInScopes = "org:admin repo:admin repo:create repo:read repo:write super:user user:admin user:read"

// realQuayOwner is the superuser of a Quay the suite starts.
const realQuayOwner = "quayadmin"

// configureTarget reads E2E_QUAY and friends.
func configureTarget() error {
	suite.namePrefix = os.Getenv("E2E_QUAY_ORG_PREFIX")
	if suite.namePrefix == "" {
		suite.namePrefix = "e2e"
	}
	if !regexp.MustCompile(`^[a-z0-9]+$`).MatchString(suite.namePrefix) {
		return fmt.Errorf("E2E_QUAY_ORG_PREFIX %q: use lowercase letters and digits", suite.namePrefix)
	}
	suite.runID = randomHex(2)
	if u := os.Getenv("E2E_QUAY_URL"); u != "" {
		suite.target = targetOwn
		token := os.Getenv("E2E_QUAY_TOKEN")
		if token == "" {
			return errors.New("E2E_QUAY_URL needs E2E_QUAY_TOKEN, an OAuth token of a superuser with every scope")
		}
		client, err := realHTTPClient()
		if err != nil {
			return err
		}
		suite.ownQuay = &realQuay{url: strings.TrimSuffix(u, "/"), admin: token, http: client}
		return nil
	}
	switch os.Getenv("E2E_QUAY") {
	case "", string(targetEmulator):
		suite.target = targetEmulator
	case string(targetReal):
		suite.target = targetReal
		suite.realQuayDir = os.Getenv("REALQUAY_DIR")
		if suite.realQuayDir == "" {
			suite.realQuayDir = filepath.Join(filepath.Dir(suite.repoRoot), "shared", "realquay")
		}
		if _, err := os.Stat(filepath.Join(suite.realQuayDir, "start.sh")); err != nil {
			return fmt.Errorf("E2E_QUAY=real: no realquay at %s (set REALQUAY_DIR): %w", suite.realQuayDir, err)
		}
	default:
		return fmt.Errorf("E2E_QUAY=%q: want emulator or real (or set E2E_QUAY_URL)", os.Getenv("E2E_QUAY"))
	}
	return nil
}

func realHTTPClient() (*http.Client, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if ca := os.Getenv("E2E_QUAY_CA_FILE"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("E2E_QUAY_CA_FILE %s holds no PEM certificate", ca)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Timeout: 60 * time.Second, Transport: transport}, nil
}

// realQuay is a real Quay the suite reaches: one it started from
// REALQUAY_DIR (managed), or the user's own.
type realQuay struct {
	url  string
	http *http.Client
	// admin is a token of owner with every scope (managed: the token
	// POST /api/v1/user/initialize returned; own: E2E_QUAY_TOKEN).
	admin, owner string
	// ownerPassword is the owner's password (managed, when the harness
	// initialized the owner).
	ownerPassword string

	// standIn is the application minting each test's stand-in for the
	// bootstrap token.
	standIn directOAuthApp
	// direct and inspect are applications whitelisted for direct OAuth
	// (managed only): direct for the engine's bootstrap=password, inspect
	// for the harness's tokens of the users it created.
	direct, inspect directOAuthApp

	mu sync.Mutex
	// passwords of the users the harness created; inspectors are their
	// direct-OAuth tokens.
	passwords  map[string]string
	inspectors map[string]string

	// A managed Quay.
	managed   bool
	dir       string
	port      int
	userCfg   string
	tokenPath string
	watchdog  *exec.Cmd
	startLog  string
	// env is added to start.sh's environment (REQUESTS_CA_BUNDLE).
	env []string
	// dedicated: started for one test (not shared).
	dedicated bool
}

// shared returns the real Quay the tests share, starting it on first use:
// one per test binary run.
func sharedRealQuay(t testing.TB) *realQuay {
	t.Helper()
	if suite.target == targetOwn {
		suite.sharedOnce.Do(func() { suite.sharedErr = suite.ownQuay.prepareOwn() })
		if suite.sharedErr != nil {
			t.Fatalf("E2E_QUAY_URL: %v", suite.sharedErr)
		}
		return suite.ownQuay
	}
	suite.sharedOnce.Do(func() {
		start := time.Now()
		suite.sharedQuay, suite.sharedErr = startSharedQuay()
		fmt.Fprintf(os.Stderr, "e2e: real Quay 3.18.0 shared by the tests is up in %s at %s\n", time.Since(start).Round(time.Second), urlOf(suite.sharedQuay))
	})
	if suite.sharedErr != nil {
		t.Fatalf("starting the shared real Quay: %v", suite.sharedErr)
	}
	return suite.sharedQuay
}

func urlOf(r *realQuay) string {
	if r == nil {
		return "(none)"
	}
	return r.url
}

// stopSharedQuay stops the shared managed Quay, if one was started.
func stopSharedQuay() {
	if suite.sharedQuay != nil {
		suite.sharedQuay.stop()
	}
}

// startSharedQuay brings up the shared Quay as an operator would: a fresh
// Quay, its first user through POST /api/v1/user/initialize, the
// applications the suite needs, then a restart with those applications in
// DIRECT_OAUTH_CLIENTID_WHITELIST, at which boot.py writes the programmatic
// bootstrap token for the now existing owner.
func startSharedQuay() (*realQuay, error) {
	dir := filepath.Join(suite.workDir, "realquay-shared")
	r, err := newManagedQuay(dir, "")
	if err != nil {
		return nil, err
	}
	if err := r.start(); err != nil {
		return r, err
	}
	if err := r.initializeOwner(); err != nil {
		return r, err
	}
	for _, app := range []*directOAuthApp{&r.standIn, &r.direct, &r.inspect} {
		if err := r.createApplication(app); err != nil {
			return r, err
		}
	}
	if err := r.writeConfig("DIRECT_OAUTH_CLIENTID_WHITELIST: [" + r.direct.clientID + ", " + r.inspect.clientID + "]\n"); err != nil {
		return r, err
	}
	if err := r.restart(); err != nil {
		return r, err
	}
	if _, err := os.Stat(r.tokenPath); err != nil {
		return r, fmt.Errorf("boot.py wrote no bootstrap token after a restart with its owner: %w", err)
	}
	return r, nil
}

// newManagedQuay prepares a workdir and a config for a Quay on a free port.
func newManagedQuay(dir, extraConfig string) (*realQuay, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	client, _ := realHTTPClient()
	r := &realQuay{managed: true, dir: dir, owner: realQuayOwner, http: client,
		tokenPath: filepath.Join(dir, "bootstrap", "quay-machine-token.json"),
		userCfg:   filepath.Join(dir, "config.yaml"), startLog: filepath.Join(dir, "realquay-scripts.log"),
		standIn: directOAuthApp{org: "e2e-harness", name: "stand-in"},
		direct:  directOAuthApp{org: "e2e-automation", name: "vault"},
		inspect: directOAuthApp{org: "e2e-inspect", name: "inspector"},
	}
	r.port = freePortNoTest()
	r.url = fmt.Sprintf("http://127.0.0.1:%d", r.port)
	return r, r.writeConfig(extraConfig)
}

// writeConfig writes the user config start.sh lays over its defaults.
func (r *realQuay) writeConfig(extra string) error {
	cfg := fmt.Sprintf(`SERVER_HOSTNAME: 127.0.0.1:%d
PREFERRED_URL_SCHEME: http
SUPER_USERS:
  - %s
FEATURE_SUPER_USERS: true
FEATURE_USER_INITIALIZE: true
FEATURE_PROGRAMMATIC_BOOTSTRAP: true
BOOTSTRAP_TOKEN_OWNER: %s
BOOTSTRAP_TOKEN_PATH: %s
BOOTSTRAP_TOKEN_EXPIRATION: 86400
FEATURE_MAILING: false
# Quay's own test config: tag lists are not cached, so a pull right after a
# push sees the tag.
DATA_MODEL_CACHE_CONFIG:
  engine: inmemory
  active_repo_tags_cache_ttl: 0s
%s`, r.port, realQuayOwner, realQuayOwner, r.tokenPath, extra)
	return os.WriteFile(r.userCfg, []byte(cfg), 0o600)
}

// start runs start.sh and a watchdog that runs stop.sh should the test
// binary die without stopping Quay (start.sh daemonizes gunicorn and redis,
// out of the suite's process groups).
func (r *realQuay) start() error {
	if err := r.script("start.sh", strconv.Itoa(r.port), r.userCfg, r.dir); err != nil {
		return err
	}
	if r.watchdog == nil {
		script := `while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" "$3"`
		cmd := exec.Command("/bin/sh", "-c", script, "e2e-realquay-watchdog", strconv.Itoa(os.Getpid()),
			filepath.Join(suite.realQuayDir, "stop.sh"), r.dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err == nil {
			r.watchdog = cmd
			go cmd.Wait() //nolint:errcheck // reaped only
		}
	}
	return nil
}

// stop runs stop.sh and ends the watchdog.
func (r *realQuay) stop() {
	if !r.managed {
		return
	}
	if err := r.script("stop.sh", r.dir); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: stopping real Quay %s: %v\n", r.dir, err)
	}
	if r.watchdog != nil && r.watchdog.Process != nil {
		_ = syscall.Kill(-r.watchdog.Process.Pid, syscall.SIGKILL)
		r.watchdog = nil
	}
}

// restart is stop.sh then start.sh on the same workdir: the database stays,
// boot.py runs again.
func (r *realQuay) restart() error {
	if err := r.script("stop.sh", r.dir); err != nil {
		return err
	}
	return r.start()
}

func (r *realQuay) script(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logFile, err := os.OpenFile(r.startLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "==== e2e: %s %s at %s\n", name, strings.Join(args, " "), time.Now().Format(time.RFC3339))
	cmd := exec.CommandContext(ctx, filepath.Join(suite.realQuayDir, name), args...)
	cmd.Env = cleanEnv(r.env...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = logFile, &stderr
	err = cmd.Run()
	_, _ = logFile.Write(stderr.Bytes())
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s\nQuay's log: %s", name, strings.Join(args, " "), err,
			tailLines(stderr.String(), 30), filepath.Join(r.dir, "quay.log"))
	}
	return nil
}

// initializeOwner creates the first user, a superuser, with
// POST /api/v1/user/initialize; its access token is the harness's admin.
func (r *realQuay) initializeOwner() error {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	password := "e2e-" + randomHex(12)
	code, body, err := r.call(http.MethodPost, "/api/v1/user/initialize", "", map[string]any{
		"username": realQuayOwner, "password": password, "email": realQuayOwner + "@example.com", "access_token": true,
	})
	if err != nil {
		return err
	}
	if code != http.StatusOK || json.Unmarshal(body, &out) != nil || out.AccessToken == "" {
		return fmt.Errorf("POST /api/v1/user/initialize: %d %s", code, redactSecrets(string(body)))
	}
	r.admin, r.ownerPassword = out.AccessToken, password
	return nil
}

// createApplication creates app's organization and the application, and
// fills in its client ID.
func (r *realQuay) createApplication(app *directOAuthApp) error {
	code, body, err := r.call(http.MethodPost, "/api/v1/organization/", r.admin, map[string]string{"name": app.org, "email": app.org + "@example.com"})
	if err != nil {
		return err
	}
	if code != http.StatusCreated {
		return fmt.Errorf("creating organization %s: %d %s", app.org, code, body)
	}
	code, body, err = r.call(http.MethodPost, "/api/v1/organization/"+app.org+"/applications", r.admin, map[string]string{"name": app.name})
	if err != nil {
		return err
	}
	var created struct {
		ClientID string `json:"client_id"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &created) != nil || created.ClientID == "" {
		return fmt.Errorf("creating application %s in %s: %d %s", app.name, app.org, code, redactSecrets(string(body)))
	}
	app.clientID = created.ClientID
	return nil
}

// prepareOwn checks E2E_QUAY_TOKEN against the user's Quay and creates the
// run's application for stand-in tokens (deleted at the end of the run).
func (r *realQuay) prepareOwn() error {
	code, body, err := r.call(http.MethodGet, "/api/v1/user/", r.admin, nil)
	if err != nil {
		return err
	}
	var user struct {
		Username  string `json:"username"`
		SuperUser bool   `json:"super_user"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &user) != nil {
		return fmt.Errorf("E2E_QUAY_TOKEN: GET /api/v1/user/ answered %d %s", code, body)
	}
	if !user.SuperUser {
		return fmt.Errorf("E2E_QUAY_TOKEN belongs to %s, who is not a superuser (or the token lacks super:user)", user.Username)
	}
	r.owner = user.Username
	r.standIn = directOAuthApp{org: suite.namePrefix + "-" + suite.runID + "-harness", name: "stand-in"}
	suite.ownLeftovers = append(suite.ownLeftovers, r.standIn.org)
	return r.createApplication(&r.standIn)
}

// cleanupOwn deletes what prepareOwn created and checks that no name the
// run handed out is left in the user's Quay.
func cleanupOwn() error {
	r := suite.ownQuay
	if r == nil || r.owner == "" {
		return nil
	}
	r.deleteNamespace(r.standIn.org)
	var left []string
	for _, name := range suite.ownLeftovers {
		if code, _, err := r.call(http.MethodGet, "/api/v1/organization/"+url.PathEscape(name), r.admin, nil); err != nil || code != http.StatusNotFound {
			left = append(left, name)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("organizations left behind in %s: %s", r.url, strings.Join(left, ", "))
	}
	return nil
}

// call sends one request straight to this Quay (not through a test's proxy).
func (r *realQuay) call(method, path, token string, body any) (int, []byte, error) {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequestWithContext(ctx, method, r.url+path, rd)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, r.url+path, nil)
	}
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes(), err
}

// startRealQuayForTest gives a test its view of a real Quay: the shared one
// (or one started for the test alone when it needs its own config), behind
// a fault proxy of its own, with names of its own.
func startRealQuayForTest(t testing.TB, opts QuayOptions) *Quay {
	t.Helper()
	dedicated := opts.Empty || opts.ExtraConfig != "" || opts.OIDC != nil || opts.CABundle != ""
	if suite.target == targetOwn {
		switch {
		case dedicated:
			t.Skip("needs a Quay configured for this test (empty, its own config.yaml, or trusting a test CA); E2E_QUAY_URL is a Quay the suite does not configure")
		case opts.DirectOAuth:
			t.Skip("needs an application in DIRECT_OAUTH_CLIENTID_WHITELIST; E2E_QUAY_URL is a Quay the suite does not configure")
		case opts.BootstrapFile:
			t.Skip("needs the programmatic bootstrap token file, which lives on the Quay host; E2E_QUAY_URL is a Quay the suite does not configure")
		}
	}
	if opts.Owner != "" && opts.Owner != realQuayOwner {
		t.Fatalf("QuayOptions.Owner %q: a real Quay's owner is %s (create other users with CreateUser)", opts.Owner, realQuayOwner)
	}
	names := &testNames{prefix: fmt.Sprintf("%s-%s%d", suite.namePrefix, suite.runID, suite.testSeq.Add(1))}
	q := &Quay{Target: suite.target, http: &http.Client{Timeout: 60 * time.Second}, names: names}

	var r *realQuay
	if dedicated {
		r = startDedicatedQuay(t, q, opts)
	} else {
		r = sharedRealQuay(t)
	}
	q.real, q.ServerURL, q.BootstrapOwner, q.admin = r, r.url, r.owner, r.admin
	if r.managed {
		q.tokenPath = r.tokenPath
	}
	if opts.DirectOAuth {
		q.directOAuth = r.direct
	}
	// Deletes what the test created, after Vault (started later) is gone.
	t.Cleanup(func() { r.cleanupTest(names) })
	q.startProxy(t)

	switch {
	case opts.Empty:
	case opts.BootstrapFile:
		q.BootstrapToken = r.bootstrapFileToken(t)
	default:
		q.BootstrapToken = r.standInToken(t, names.prefix)
	}
	return q
}

// startDedicatedQuay starts a real Quay for one test, with the test's extra
// config (and its identity provider), stopped when the test ends.
func startDedicatedQuay(t testing.TB, q *Quay, opts QuayOptions) *realQuay {
	t.Helper()
	extra := opts.ExtraConfig
	if opts.OIDC != nil {
		q.OIDCURL = startIdentityProvider(t, opts.OIDC)
		extra = strings.ReplaceAll(extra, "@OIDC_URL@", q.OIDCURL)
	}
	r, err := newManagedQuay(filepath.Join(t.TempDir(), "realquay"), extra)
	must(t, err)
	r.dedicated = true
	if opts.CABundle != "" {
		// Quay's HTTPS client (requests) trusts only these CAs, as the
		// emulator's -ca-bundle does.
		r.env = append(r.env, "REQUESTS_CA_BUNDLE="+opts.CABundle)
	}
	r.startLog = filepath.Join(logDir(t), "realquay-scripts.log")
	started := time.Now()
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("---- real Quay log (%s), last lines:\n%s", filepath.Join(r.dir, "quay.log"), redactSecrets(tailLines(readFile(filepath.Join(r.dir, "quay.log")), 60)))
		}
	})
	must(t, r.start())
	if !opts.Empty {
		must(t, r.initializeOwner())
		must(t, r.createApplication(&r.standIn))
	}
	t.Logf("a real Quay for this test alone is up in %s at %s", time.Since(started).Round(time.Second), r.url)
	return r
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// startIdentityProvider runs the emulator's test identity provider alone
// (its Quay surface unused) and returns its address.
func startIdentityProvider(t testing.TB, flags []string) string {
	t.Helper()
	oidcURL := fmt.Sprintf("http://127.0.0.1:%d", freePorts(t, 1))
	args := append([]string{"-listen", "127.0.0.1:0", "-control-listen", "", "-oidc-listen", strings.TrimPrefix(oidcURL, "http://")}, flags...)
	proc, err := startProcess("identity-provider", filepath.Join(logDir(t), "identity-provider.log"), suite.emulatorBin, args, cleanEnv())
	must(t, err)
	proc.manage(t)
	_, err = proc.waitForLog(regexp.MustCompile(`quay-emulator ready .* oidc=(\S+)`), 30*time.Second)
	must(t, err)
	return oidcURL
}

// proxyReadyLine is the fault proxy's ready line.
var proxyReadyLine = regexp.MustCompile(`quay-emulator ready url=(\S+) control=(\S+) upstream=`)

// startProxy puts the emulator's fault layer in front of the real Quay:
// Vault and the tests reach Quay through it, so faults and call counters
// work as with the emulator, and Stop is "Quay is down".
func (q *Quay) startProxy(t testing.TB) {
	t.Helper()
	args := []string{"-upstream", q.ServerURL, "-listen", "127.0.0.1:0", "-control-listen", "127.0.0.1:0"}
	if ca := os.Getenv("E2E_QUAY_CA_FILE"); ca != "" {
		args = append(args, "-upstream-ca", ca)
	}
	proc, err := startProcess("quay-proxy", filepath.Join(logDir(t), "quay-proxy.log"), suite.emulatorBin, args, cleanEnv())
	must(t, err)
	proc.manage(t)
	m, err := proc.waitForLog(proxyReadyLine, 30*time.Second)
	must(t, err)
	q.proc = proc
	q.URL = m[1]
	q.Control = &ControlClient{base: m[2], http: q.http}
}

// standInToken mints, with the owner's admin token, a token for the owner
// through the application token API, in place of the programmatic bootstrap
// token (one per Quay) for a test; it is deleted when the test ends.
func (r *realQuay) standInToken(t testing.TB, name string) string {
	t.Helper()
	var tok struct {
		UUID  string `json:"uuid"`
		Token string `json:"token"`
	}
	path := appTokensPath(r.standIn.org, r.standIn.clientID)
	code, body, err := r.call(http.MethodPost, path, r.admin, map[string]any{"name": name, "scope": standInScopes, "expiration": 4 * 3600})
	must(t, err)
	if code != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.Token == "" {
		t.Fatalf("minting the test's stand-in bootstrap token: %d %s", code, redactSecrets(string(body)))
	}
	t.Cleanup(func() { _, _, _ = r.call(http.MethodDelete, path+"/"+tok.UUID, r.admin, nil) })
	return tok.Token
}

// bootstrapFileToken is the token in BOOTSTRAP_TOKEN_PATH. A test that used
// it before may have let the engine revoke it; then Quay is restarted, as an
// operator would, and boot.py writes a new one.
func (r *realQuay) bootstrapFileToken(t testing.TB) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for attempt := 0; ; attempt++ {
		raw, err := os.ReadFile(r.tokenPath)
		var file struct {
			AccessToken string `json:"access_token"`
		}
		if err == nil && json.Unmarshal(raw, &file) == nil && file.AccessToken != "" {
			code, _, err := r.call(http.MethodGet, "/api/v1/user/", file.AccessToken, nil)
			must(t, err)
			if code == http.StatusOK {
				return file.AccessToken
			}
		}
		if attempt > 0 {
			t.Fatalf("no working bootstrap token in %s after a restart", r.tokenPath)
		}
		must(t, r.restart())
	}
}

// restartFor restarts a Quay the test has to itself.
func (r *realQuay) restartFor(t testing.TB, q *Quay) {
	t.Helper()
	if !r.dedicated {
		t.Fatal("only a Quay started for this test alone restarts (QuayOptions.Empty or ExtraConfig)")
	}
	started := time.Now()
	must(t, r.restart())
	t.Logf("real Quay restarted in %s", time.Since(started).Round(time.Second))
}

// inspector is a token with every scope for user: the harness's own token
// of the owner, or a direct-OAuth token of a user the harness created. On a
// Quay whose owner Vault created (initialize), nobody knows the owner's
// password: the harness restarts Quay and uses the programmatic bootstrap
// token boot.py then writes for the owner, as an operator would.
func (r *realQuay) inspector(t testing.TB, q *Quay, user string) string {
	t.Helper()
	if user == r.owner {
		if r.admin == "" {
			if !r.dedicated {
				t.Fatal("no token of the owner")
			}
			r.restartFor(t, q)
			raw, err := os.ReadFile(r.tokenPath)
			must(t, err)
			var file struct {
				AccessToken string `json:"access_token"`
			}
			must(t, json.Unmarshal(raw, &file))
			r.admin, q.admin = file.AccessToken, file.AccessToken
		}
		return r.admin
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if tok := r.inspectors[user]; tok != "" {
		return tok
	}
	pw, ok := r.passwords[user]
	if !ok || r.inspect.clientID == "" {
		t.Fatalf("the harness has no way to act as %s on this Quay", user)
	}
	r.addOrgAdminLocked(t, r.inspect.org, user)
	tok := r.directOAuth(t, user, pw, r.inspect.clientID)
	if r.inspectors == nil {
		r.inspectors = map[string]string{}
	}
	r.inspectors[user] = tok
	return tok
}

// directOAuth takes a token for user through Quay's direct OAuth
// (POST /oauth/authorizeapp with Basic credentials, redirected to Quay's
// local handler).
func (r *realQuay) directOAuth(t testing.TB, user, password, clientID string) string {
	t.Helper()
	form := url.Values{"client_id": {clientID}, "redirect_uri": {r.url + "/oauth/localapp"}, "response_type": {"token"},
		"scope": {"org:admin repo:admin repo:create repo:read repo:write user:admin user:read"}}
	req, err := http.NewRequest(http.MethodPost, r.url+"/oauth/authorizeapp", strings.NewReader(form.Encode()))
	must(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, password)
	client := *r.http
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	must(t, err)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	must(t, err)
	frag, _ := url.ParseQuery(loc.EscapedFragment())
	if resp.StatusCode != http.StatusFound || frag.Get("access_token") == "" {
		t.Fatalf("direct OAuth for %s: %d, redirect query %q", user, resp.StatusCode, loc.RawQuery)
	}
	return frag.Get("access_token")
}

// createUser creates a database user with a password through the superuser
// API (Quay generates a password, the harness then sets the test's).
func (r *realQuay) createUser(t testing.TB, q *Quay, username, password, email string) {
	t.Helper()
	code, body, err := r.call(http.MethodPost, "/api/v1/superuser/users/", r.admin, map[string]string{"username": username, "email": email})
	must(t, err)
	if code != http.StatusOK {
		t.Fatalf("creating user %s: %d %s", username, code, redactSecrets(string(body)))
	}
	code, body, err = r.call(http.MethodPut, "/api/v1/superuser/users/"+url.PathEscape(username), r.admin, map[string]string{"password": password})
	must(t, err)
	if code != http.StatusOK {
		t.Fatalf("setting the password of %s: %d %s", username, code, redactSecrets(string(body)))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.passwords == nil {
		r.passwords = map[string]string{}
	}
	r.passwords[username] = password
}

// addOrgAdmin makes user an administrator of org (its owners team).
func (r *realQuay) addOrgAdmin(t testing.TB, q *Quay, org, user string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addOrgAdminLocked(t, org, user)
}

func (r *realQuay) addOrgAdminLocked(t testing.TB, org, user string) {
	t.Helper()
	path := "/api/v1/organization/" + url.PathEscape(org) + "/team/owners/members/" + url.PathEscape(user)
	code, body, err := r.call(http.MethodPut, path, r.admin, nil)
	must(t, err)
	if code != http.StatusOK {
		t.Fatalf("PUT %s: %d %s", path, code, body)
	}
}

// cleanupTest deletes every organization and user named with the test's
// prefix, in the user's Quay as in the shared one, so that the suite leaves
// nothing behind.
func (r *realQuay) cleanupTest(names *testNames) {
	for _, name := range names.given {
		if r.dedicated {
			continue // the whole Quay goes
		}
		r.deleteNamespace(name)
		if suite.target == targetOwn {
			suite.ownLeftovers = append(suite.ownLeftovers, name)
		}
	}
}

// deleteNamespace deletes an organization, or a user, of that name if
// there is one.
func (r *realQuay) deleteNamespace(name string) {
	esc := url.PathEscape(name)
	if code, _, err := r.call(http.MethodDelete, "/api/v1/organization/"+esc, r.admin, nil); err == nil && code == http.StatusNoContent {
		return
	}
	if code, _, err := r.call(http.MethodDelete, "/api/v1/superuser/organizations/"+esc, r.admin, nil); err == nil && code == http.StatusNoContent {
		return
	}
	_, _, _ = r.call(http.MethodDelete, "/api/v1/superuser/users/"+esc, r.admin, nil)
}

// freePortNoTest is freePorts outside a test (the shared Quay starts
// within the first test that needs it, but outlives it).
func freePortNoTest() int {
	var port int
	tb := &portT{}
	port = freePorts(tb, 1)
	return port
}

// portT is the smallest testing.TB freePorts accepts outside a test.
type portT struct{ testing.TB }

func (*portT) Helper()               {}
func (*portT) Fatalf(string, ...any) { panic("no free loopback port") }
