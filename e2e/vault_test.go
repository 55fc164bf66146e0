//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// Vault is a real `vault server` process: a dev server (in-memory storage,
// plugins auto-registered from the suite's plugin directory) or a server on
// persistent file storage that survives restarts.
type Vault struct {
	// Addr is http://127.0.0.1:<port> (https:// for StartDevVaultTLS);
	// Token is the root token.
	Addr  string
	Token string
	// CACert is the PEM file of the CA of Vault's TLS certificate
	// (StartDevVaultTLS only).
	CACert string
	// Client is an API client with the root token.
	Client *api.Client

	dev       bool
	dir       string
	cfgPath   string
	unsealKey string
	proc      *process
}

// StartDevVault starts `vault server -dev` on free loopback ports with the
// suite's plugin directory; the plugin is in the catalog but not enabled.
func StartDevVault(t testing.TB) *Vault {
	t.Helper()
	return startDevVault(t, false)
}

// StartDevVaultTLS is StartDevVault serving HTTPS (`-dev-tls`) with a
// certificate for 127.0.0.1 from a CA Vault generates: CACert, for the
// clients and for a Quay that must trust Vault (robot federation).
func StartDevVaultTLS(t testing.TB) *Vault {
	t.Helper()
	return startDevVault(t, true)
}

func startDevVault(t testing.TB, withTLS bool) *Vault {
	t.Helper()
	return startDevVaultIn(t, suite.pluginDir, withTLS)
}

// startDevVaultIn is startDevVault with another plugin directory (absolute,
// free of symlinks; dev mode registers every binary in it) and more server
// arguments (e.g. -config with a telemetry block).
func startDevVaultIn(t testing.TB, pluginDir string, withTLS bool, extraArgs ...string) *Vault {
	t.Helper()
	dir := t.TempDir()
	logs := logDir(t)
	token := "e2e-" + randomHex(12)
	var lastErr error
	// A port found free can be taken before Vault binds it; try again.
	for attempt := 0; attempt < 3; attempt++ {
		port := freePorts(t, 2) // API and cluster (port+1) listeners
		v := &Vault{dev: true, dir: dir, Token: token, Addr: fmt.Sprintf("http://127.0.0.1:%d", port)}
		args := []string{
			"server", "-dev",
			"-dev-root-token-id=" + token,
			"-dev-listen-address=" + fmt.Sprintf("127.0.0.1:%d", port),
			"-dev-plugin-dir=" + pluginDir,
			"-dev-no-store-token",
			"-log-level=debug",
		}
		args = append(args, extraArgs...)
		if withTLS {
			certDir := filepath.Join(dir, "tls")
			must(t, os.MkdirAll(certDir, 0o700))
			args = append(args, "-dev-tls", "-dev-tls-cert-dir="+certDir)
			v.Addr = fmt.Sprintf("https://127.0.0.1:%d", port)
			v.CACert = filepath.Join(certDir, "vault-ca.pem")
		}
		proc, err := startProcess("vault", filepath.Join(logs, "vault.log"), suite.vaultBin, args, v.serverEnv())
		must(t, err)
		v.proc = proc
		proc.manage(t)
		if lastErr = v.waitHealthy(60 * time.Second); lastErr == nil {
			v.Client = v.newClient(t)
			return v
		}
		proc.stop(time.Second)
		if !strings.Contains(proc.logContents(), "address already in use") {
			break
		}
	}
	t.Fatalf("dev Vault did not start: %v", lastErr)
	return nil
}

// StartFileVault starts a production-style Vault: file storage under the
// test's temporary directory, plugin_directory, api_addr, TLS disabled. It
// initialises it with one key share and unseals it. The plugin is not
// registered yet (see RegisterPlugin).
func StartFileVault(t testing.TB) *Vault {
	t.Helper()
	return StartFileVaultWithPlugins(t, suite.pluginDir)
}

// StartFileVaultWithPlugins is StartFileVault with another plugin_directory
// (absolute, free of symlinks), for tests that register other binaries.
func StartFileVaultWithPlugins(t testing.TB, pluginDir string) *Vault {
	t.Helper()
	dir := t.TempDir()
	port := freePorts(t, 2)
	v := &Vault{dir: dir, Addr: fmt.Sprintf("http://127.0.0.1:%d", port)}
	v.cfgPath = filepath.Join(dir, "vault.hcl")
	cfg := fmt.Sprintf(`
storage "file" {
  path = %q
}

listener "tcp" {
  address         = "127.0.0.1:%d"
  cluster_address = "127.0.0.1:%d"
  tls_disable     = true
}

api_addr         = "http://127.0.0.1:%d"
cluster_addr     = "https://127.0.0.1:%d"
plugin_directory = %q
disable_mlock    = true
ui               = false
log_level        = "debug"
`, filepath.Join(dir, "data"), port, port+1, port, port+1, pluginDir)
	must(t, os.WriteFile(v.cfgPath, []byte(cfg), 0o600))

	proc, err := startProcess("vault", filepath.Join(logDir(t), "vault.log"), suite.vaultBin,
		[]string{"server", "-config=" + v.cfgPath}, v.serverEnv())
	must(t, err)
	v.proc = proc
	proc.manage(t)
	must(t, v.waitListening(60*time.Second))

	client := v.newClient(t)
	init, err := client.Sys().Init(&api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("vault operator init: %v", err)
	}
	v.unsealKey, v.Token = init.Keys[0], init.RootToken
	client.SetToken(v.Token)
	v.Client = client
	v.unseal(t)
	return v
}

// Restart kills Vault with SIGKILL (its plugin processes too: a crash, not a
// shutdown), starts it again on the same address and storage and unseals it.
// Only for file-storage servers: a dev server forgets everything.
func (v *Vault) Restart(t testing.TB) {
	t.Helper()
	v.Kill(t)
	v.Start(t)
}

// Kill kills Vault and its plugins with SIGKILL and waits until they are gone.
func (v *Vault) Kill(t testing.TB) {
	t.Helper()
	if v.dev {
		t.Fatal("Kill/Restart need a file-storage Vault (StartFileVault); a dev server loses its data")
	}
	v.proc.kill()
}

// Start starts a killed file-storage Vault again and unseals it.
func (v *Vault) Start(t testing.TB) {
	t.Helper()
	must(t, v.proc.restart())
	must(t, v.waitListening(60*time.Second))
	v.unseal(t)
}

func (v *Vault) unseal(t testing.TB) {
	t.Helper()
	status, err := v.Client.Sys().Unseal(v.unsealKey)
	if err != nil {
		t.Fatalf("vault operator unseal: %v", err)
	}
	if status.Sealed {
		t.Fatalf("vault is still sealed after unseal: %+v", status)
	}
	must(t, v.waitHealthy(60*time.Second))
}

// serverEnv keeps Vault away from the user's home (token helper, config).
func (v *Vault) serverEnv() []string {
	home := filepath.Join(v.dir, "home")
	_ = os.MkdirAll(home, 0o700)
	return cleanEnv("HOME=" + home)
}

func (v *Vault) newClient(t testing.TB) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = v.Addr
	cfg.MaxRetries = 0
	cfg.Timeout = 60 * time.Second
	if v.CACert != "" {
		must(t, cfg.ConfigureTLS(&api.TLSConfig{CACert: v.CACert}))
	}
	c, err := api.NewClient(cfg)
	must(t, err)
	c.SetToken(v.Token)
	return c
}

// health answers Vault's sys/health status code (200 active, 429 standby,
// 501 not initialised, 503 sealed), or an error when nothing answers.
func (v *Vault) health() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, v.Addr+"/v1/sys/health", nil)
	resp, err := v.HTTPClient().Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// HTTPClient is a plain HTTP client for Vault's address, trusting CACert
// when Vault serves TLS.
func (v *Vault) HTTPClient() *http.Client {
	if v.CACert == "" {
		return http.DefaultClient
	}
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(v.CACert); err == nil {
		pool.AppendCertsFromPEM(pem)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

func (v *Vault) waitUntil(timeout time.Duration, what string, ok func(code int) bool) error {
	deadline := time.Now().Add(timeout)
	for {
		code, err := v.health()
		if err == nil && ok(code) {
			return nil
		}
		if v.proc.exited() {
			return fmt.Errorf("vault %s before it was %s; log tail:\n%s", v.proc.exitStatus(), what, redactSecrets(v.proc.tail(40)))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vault not %s after %s (last: code %d, %v); log tail:\n%s", what, timeout, code, err, redactSecrets(v.proc.tail(40)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (v *Vault) waitHealthy(timeout time.Duration) error {
	return v.waitUntil(timeout, "active and unsealed", func(code int) bool { return code == http.StatusOK })
}

func (v *Vault) waitListening(timeout time.Duration) error {
	return v.waitUntil(timeout, "answering", func(int) bool { return true })
}

// Log returns Vault's log so far.
func (v *Vault) Log() string { return v.proc.logContents() }

// EnablePlugin mounts the plugin at path with `vault secrets enable`.
func (v *Vault) EnablePlugin(t testing.TB, path string) {
	t.Helper()
	v.MustCLI(t, "secrets", "enable", "-path="+path, pluginName)
}

// RegisterPlugin registers the suite's plugin binary in the catalog the way
// an operator does on a production server.
func (v *Vault) RegisterPlugin(t testing.TB, version string) {
	t.Helper()
	v.MustCLI(t, "plugin", "register", "-sha256="+suite.pluginSHA, "-version="+version, "secret", pluginName)
}

// CLIResult is one run of the vault CLI.
type CLIResult struct {
	Args     []string
	Stdout   string
	Stderr   string
	ExitCode int
	Duration time.Duration
}

// String shows the run for a failure message, with credentials redacted:
// the arguments carry tokens, passwords and client secrets, and the output
// of a creds read carries the credentials themselves.
func (r CLIResult) String() string {
	return fmt.Sprintf("vault %s: exit %d after %s\nstdout:\n%s\nstderr:\n%s",
		redactSecrets(strings.Join(r.Args, " ")), r.ExitCode, r.Duration.Round(time.Millisecond),
		redactSecrets(r.Stdout), redactSecrets(r.Stderr))
}

// CLI runs the real vault CLI against this server with VAULT_ADDR and
// VAULT_TOKEN set (the root token), and a private HOME. It does not fail the
// test on a non-zero exit; see MustCLI.
func (v *Vault) CLI(t testing.TB, args ...string) CLIResult {
	t.Helper()
	return v.CLIWithToken(t, v.Token, args...)
}

// CLIWithToken is CLI with another Vault token.
func (v *Vault) CLIWithToken(t testing.TB, token string, args ...string) CLIResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite.vaultBin, args...)
	home := filepath.Join(v.dir, "cli-home")
	_ = os.MkdirAll(home, 0o700)
	cmd.Env = cleanEnv("HOME="+home, "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+token, "VAULT_CACERT="+v.CACert)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := CLIResult{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Duration: time.Since(start)}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitCode()
	default:
		t.Fatalf("running vault %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// MustCLI runs the CLI and fails the test unless it exits 0. It returns stdout.
func (v *Vault) MustCLI(t testing.TB, args ...string) string {
	t.Helper()
	res := v.CLI(t, args...)
	if res.ExitCode != 0 {
		t.Fatalf("%s", res)
	}
	return res.Stdout
}

// CLIJSON runs `vault <cmd...> -format=json <rest...>`: args[0:split] are
// the subcommand words, flags go right after them. It decodes stdout into out.
func (v *Vault) CLIJSON(t testing.TB, out any, subcommand []string, args ...string) {
	t.Helper()
	full := append(append(append([]string{}, subcommand...), "-format=json"), args...)
	stdout := v.MustCLI(t, full...)
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatalf("vault %s: decoding JSON output: %v\n%s", strings.Join(full, " "), err, stdout)
	}
}

// LeaseIDs lists the lease IDs under prefix (e.g. "quay/creds/ci/") via
// sys/leases/lookup, which lists only leases that exist.
func (v *Vault) LeaseIDs(t testing.TB, prefix string) []string {
	t.Helper()
	prefix = strings.TrimSuffix(prefix, "/") + "/"
	secret, err := v.Client.Logical().List("sys/leases/lookup/" + prefix)
	must(t, err)
	if secret == nil || secret.Data["keys"] == nil {
		return nil
	}
	var ids []string
	for _, k := range secret.Data["keys"].([]any) {
		ids = append(ids, prefix+k.(string))
	}
	return ids
}

// CLI output shapes.

// cliSecret is `vault read -format=json` of a leased secret.
type cliSecret struct {
	RequestID     string         `json:"request_id"`
	LeaseID       string         `json:"lease_id"`
	LeaseDuration int            `json:"lease_duration"`
	Renewable     bool           `json:"renewable"`
	Data          map[string]any `json:"data"`
	Warnings      []string       `json:"warnings"`
}

func (s cliSecret) str(t testing.TB, key string) string {
	t.Helper()
	v, ok := s.Data[key].(string)
	if !ok || v == "" {
		keys := make([]string, 0, len(s.Data))
		for k := range s.Data {
			keys = append(keys, k)
		}
		t.Fatalf("secret data has no string %q (keys: %v)", key, keys)
	}
	return v
}

// leaseInfo is `vault lease lookup -format=json`.
type leaseInfo struct {
	ID         string    `json:"id"`
	IssueTime  time.Time `json:"issue_time"`
	ExpireTime time.Time `json:"expire_time"`
	TTL        int       `json:"ttl"`
	Renewable  bool      `json:"renewable"`
}

func (v *Vault) LookupLease(t testing.TB, leaseID string) leaseInfo {
	t.Helper()
	var out struct {
		Data leaseInfo `json:"data"`
	}
	v.CLIJSON(t, &out, []string{"lease", "lookup"}, leaseID)
	return out.Data
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// writeStatus writes data to path through the API and returns the HTTP
// status with Vault's error messages (200/204 and "" on success).
func (v *Vault) writeStatus(t testing.TB, path string, data map[string]any) (int, string) {
	t.Helper()
	_, err := v.Client.Logical().Write(path, data)
	if err == nil {
		return http.StatusOK, ""
	}
	var re *api.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("write %s: %v", path, err)
	}
	return re.StatusCode, strings.Join(re.Errors, "; ")
}
