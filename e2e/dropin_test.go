//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The drop-in promise, proven with redhat-cop/vault-plugin-secrets-quay
// itself: its plugin runs first in a production-style Vault 1.21, fed
// exactly what its README and vault-config-operator's
// QuaySecretEngineConfig/Role/StaticRole write; then the mount is switched to
// this engine's binary the way Vault 1.21 does it, and everything the old
// plugin issued and stored keeps working.
//
// redhat-cop's plugin is built from its source at test time (its last
// commit, tagged v0.0.1-rc4: Go 1.17, vault/sdk v0.3.0), with its own go.mod
// and go.sum and the module proxy for its dependencies. The source comes from
// REDHAT_COP_QUAY_SOURCE (a checkout, or a git repository holding that
// commit), else the module proxy, else a clone from GitHub. When none of them
// works, or the build fails, the test is skipped and says why.

const (
	redHatCopModule = "github.com/redhat-cop/vault-plugin-secrets-quay"
	// redHatCopVersion is its last commit, ade3efe (2022-05-02).
	redHatCopVersion = "v0.0.1-rc4"
	redHatCopCommit  = "ade3efed264156457e158bb3ec2464beb948b3b0"
	// redHatCopPluginName is the name its README registers it under.
	redHatCopPluginName = "vault-plugin-secrets-quay"
)

// redHatCop is the plugin binary, built once per suite.
var redHatCop struct {
	once sync.Once
	bin  string
	// skip says why it could not be built.
	skip string
}

// redHatCopPlugin returns the path of redhat-cop's plugin binary, or skips
// the test saying why there is none.
func redHatCopPlugin(t testing.TB) string {
	t.Helper()
	redHatCop.once.Do(func() {
		start := time.Now()
		redHatCop.bin, redHatCop.skip = buildRedHatCop(filepath.Join(suite.workDir, "redhat-cop"))
		if redHatCop.skip == "" {
			fmt.Fprintf(os.Stderr, "e2e: built redhat-cop/vault-plugin-secrets-quay %s in %s\n", redHatCopVersion, time.Since(start).Round(time.Millisecond))
		}
	})
	if redHatCop.skip != "" {
		t.Skip(redHatCop.skip)
	}
	return redHatCop.bin
}

func buildRedHatCop(dir string) (bin, skip string) {
	src := filepath.Join(dir, "src")
	var tried []string
	got := false
	if from := os.Getenv("REDHAT_COP_QUAY_SOURCE"); from != "" {
		if err := copyRedHatCopSource(from, src); err != nil {
			tried = append(tried, "REDHAT_COP_QUAY_SOURCE="+from+": "+err.Error())
		} else {
			got = true
		}
	}
	if !got {
		if err := downloadRedHatCopModule(src); err != nil {
			tried = append(tried, "module proxy: "+err.Error())
		} else {
			got = true
		}
	}
	if !got {
		if err := cloneRedHatCop(src); err != nil {
			tried = append(tried, "git clone: "+err.Error())
		} else {
			got = true
		}
	}
	if !got {
		return "", "no source of redhat-cop/vault-plugin-secrets-quay " + redHatCopVersion + " (" + strings.Join(tried, "; ") +
			"); set REDHAT_COP_QUAY_SOURCE to a checkout or clone of it"
	}
	bin = filepath.Join(dir, "bin", "redhat-cop-vault-plugin-secrets-quay")
	// Its own go.mod and go.sum decide the dependencies; the module proxy
	// serves them. GOFLAGS=-mod=mod lets a newer Go complete go.sum.
	out, err := runIn(src, []string{"GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0"},
		"go", "build", "-trimpath", "-o", bin, "./cmd/vault-plugin-secrets-quay")
	if err != nil {
		return "", fmt.Sprintf("building redhat-cop/vault-plugin-secrets-quay %s failed (its dependencies come from the module proxy): %v\n%s", redHatCopVersion, err, tailLines(out, 15))
	}
	return bin, ""
}

// copyRedHatCopSource exports redHatCopCommit from a git repository (bare
// or not), or copies a source tree.
func copyRedHatCopSource(from, dst string) error {
	gitDir := ""
	switch {
	case isDir(filepath.Join(from, ".git")):
		gitDir = filepath.Join(from, ".git")
	case isFile(filepath.Join(from, "HEAD")) && isDir(filepath.Join(from, "objects")):
		gitDir = from
	case isFile(filepath.Join(from, "go.mod")):
		return os.CopyFS(dst, os.DirFS(from))
	default:
		return fmt.Errorf("neither a git repository nor a source tree")
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	archive := filepath.Join(filepath.Dir(dst), "src.tar")
	if out, err := runIn("", nil, "git", "--git-dir="+gitDir, "archive", "--format=tar", "-o", archive, redHatCopCommit); err != nil {
		return fmt.Errorf("git archive %s: %v: %s", redHatCopCommit, err, tailLines(out, 3))
	}
	if out, err := runIn(dst, nil, "tar", "-xf", archive); err != nil {
		return fmt.Errorf("tar: %v: %s", err, tailLines(out, 3))
	}
	return nil
}

// downloadRedHatCopModule fetches the module from the module proxy (GOPROXY)
// and copies it out of the read-only module cache.
func downloadRedHatCopModule(dst string) error {
	out, err := runIn("", []string{"GOFLAGS=-mod=mod", "GOWORK=off"}, "go", "mod", "download", "-json", redHatCopModule+"@"+redHatCopVersion)
	var mod struct{ Dir, Error string }
	if jsonErr := json.Unmarshal([]byte(out), &mod); jsonErr != nil || mod.Dir == "" {
		if mod.Error != "" {
			return fmt.Errorf("%s", firstLine(mod.Error))
		}
		return fmt.Errorf("%v: %s", err, tailLines(out, 3))
	}
	if err := os.CopyFS(dst, os.DirFS(mod.Dir)); err != nil {
		return err
	}
	// The module cache is read-only; the build may complete go.sum.
	return filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	})
}

func cloneRedHatCop(dst string) error {
	if out, err := runIn("", nil, "git", "clone", "--quiet", "https://"+redHatCopModule, dst); err != nil {
		return fmt.Errorf("%v: %s", err, firstLine(out))
	}
	if out, err := runIn(dst, nil, "git", "checkout", "--quiet", redHatCopCommit); err != nil {
		return fmt.Errorf("%v: %s", err, firstLine(out))
	}
	return nil
}

func runIn(dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

func isDir(p string) bool  { st, err := os.Stat(p); return err == nil && st.IsDir() }
func isFile(p string) bool { st, err := os.Stat(p); return err == nil && st.Mode().IsRegular() }

// registryLogin is a docker client's login to the emulator's registry
// (/v2/auth with Basic credentials) asking to pull and push repo. It returns
// the status and the actions Quay granted on repo (from the token's access
// claim).
func (s *stack) registryLogin(t testing.TB, username, password, repo string) (int, []string) {
	t.Helper()
	u := s.Quay.URL + "/v2/auth?service=" + s.registryHost() + "&scope=repository:" + s.Org + "/" + repo + ":pull,push"
	req, err := http.NewRequest(http.MethodGet, u, nil)
	must(t, err)
	req.SetBasicAuth(username, password)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	var answer struct {
		Token string `json:"token"`
	}
	must(t, json.Unmarshal(body, &answer))
	parts := strings.Split(answer.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("the registry token is not a JWT")
	}
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	must(t, err)
	var access struct {
		Access []struct {
			Name    string   `json:"name"`
			Actions []string `json:"actions"`
		} `json:"access"`
	}
	must(t, json.Unmarshal(claims, &access))
	for _, a := range access.Access {
		if a.Name == s.Org+"/"+repo {
			return resp.StatusCode, a.Actions
		}
	}
	return resp.StatusCode, nil
}

// robotPermissions reads a robot's repository permissions from Quay (as its
// admin): repository -> role.
func (s *stack) robotPermissions(t testing.TB, username string) map[string]string {
	t.Helper()
	short := strings.TrimPrefix(username, s.Org+"+")
	code, body := s.Quay.Do(t, http.MethodGet, "/api/v1/organization/"+s.Org+"/robots/"+short+"/permissions", s.Quay.BootstrapToken, nil)
	if code != http.StatusOK {
		t.Fatalf("robot permissions of %s: %d %s", username, code, body)
	}
	var out struct {
		Permissions []struct {
			Repository struct {
				Name string `json:"name"`
			} `json:"repository"`
			Role string `json:"role"`
		} `json:"permissions"`
	}
	must(t, json.Unmarshal(body, &out))
	perms := map[string]string{}
	for _, p := range out.Permissions {
		perms[p.Repository.Name] = p.Role
	}
	return perms
}

// writeAPI writes data to path through Vault's HTTP API, as
// vault-config-operator does (JSON, nulls included).
func writeAPI(t testing.TB, v *Vault, path string, data map[string]any) []string {
	t.Helper()
	sec, err := v.Client.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	if sec == nil {
		return nil
	}
	return sec.Warnings
}

func TestDropInReplacesRedHatCopPlugin(t *testing.T) {
	rhc := redHatCopPlugin(t)
	q := StartEmulator(t, EmulatorOptions{})
	s := &stack{Quay: q, Org: q.Name("acme")}
	q.CreateOrganization(t, s.Org)
	for _, repo := range []string{"app", "lib", "tools"} {
		s.seedRepo(t, repo)
	}

	// A production Vault whose plugin_directory holds redhat-cop's binary
	// under the name its README gives it.
	pluginDir := filepath.Join(t.TempDir(), "plugins")
	must(t, os.MkdirAll(pluginDir, 0o755))
	pluginDir, err := filepath.EvalSymlinks(pluginDir)
	must(t, err)
	must(t, copyFile(rhc, filepath.Join(pluginDir, redHatCopPluginName), 0o755))
	rhcSHA, err := sha256File(rhc)
	must(t, err)
	v := StartFileVaultWithPlugins(t, pluginDir)
	s.Vault = v

	// redhat-cop's README: register, enable at quay/. Vault 1.21 wants the
	// plugin type.
	v.MustCLI(t, "plugin", "register", "-sha256="+rhcSHA, "secret", redHatCopPluginName)
	v.MustCLI(t, "secrets", "enable", "-path="+mount, redHatCopPluginName)

	// vault-config-operator: QuaySecretEngineConfig ...
	operatorConfig := map[string]any{"url": q.URL, "token": q.BootstrapToken, "ca_certificate": "", "disable_ssl_verification": false}
	writeAPI(t, v, mount+"/config", operatorConfig)
	// ... QuaySecretEngineRole: teams and repositories as JSON strings,
	// durations as strings, an unset createRepositories as null ...
	operatorRole := map[string]any{
		"namespace_type": "organization", "namespace_name": s.Org, "create_repositories": nil, "default_permission": "read",
		"teams": `{"builders":"member"}`, "repositories": `{"app":"write"}`, "ttl": "1h0m0s", "max_ttl": "24h0m0s",
	}
	writeAPI(t, v, mount+"/roles/ci", operatorRole)
	// ... QuaySecretEngineStaticRole.
	operatorStaticRole := map[string]any{
		"namespace_type": "organization", "namespace_name": s.Org, "create_repositories": false, "repositories": `{"app":"read"}`,
	}
	writeAPI(t, v, mount+"/static-roles/pull", operatorStaticRole)
	// redhat-cop's README: a static role that may create repositories,
	// written but never read before the swap (its robot does not exist),
	// and a dynamic role, with the CLI.
	v.MustCLI(t, "write", mount+"/static-roles/my-static-account", "namespace_name="+s.Org, "create_repositories=true")
	v.MustCLI(t, "write", mount+"/roles/my-dynamic-account", "namespace_name="+s.Org, "create_repositories=true")
	readmeLease := s.readCreds(t, "my-dynamic-account")

	// What redhat-cop's plugin issues.
	oldLease := s.readCreds(t, "ci")
	oldRobot := oldLease.str(t, "username")
	if !strings.HasPrefix(oldRobot, s.Org+"+ci-") {
		t.Fatalf("redhat-cop's robot is %q, want acme+ci-<5 letters>", oldRobot)
	}
	oldGrants := s.robotPermissions(t, oldRobot)
	if want := map[string]string{"app": "write", "lib": "read", "tools": "read"}; !sameMap(oldGrants, want) {
		t.Fatalf("redhat-cop's robot holds %v, want %v (default_permission on every existing repository)", oldGrants, want)
	}
	var static cliSecret
	v.CLIJSON(t, &static, []string{"read"}, mount+"/static-creds/pull")
	staticPassword := static.str(t, "password")
	if static.str(t, "username") != s.Org+"+pull" || static.Data["namespaces_name"] != s.Org {
		t.Fatalf("redhat-cop's static-creds: username %v namespaces_name %v", static.Data["username"], static.Data["namespaces_name"])
	}
	// Its rotate-role answered with the new password (README: "The output
	// returned will contain the updated password").
	var oldRotation cliSecret
	v.CLIJSON(t, &oldRotation, []string{"write"}, "-force", mount+"/rotate-role/pull")
	rotatedPassword := oldRotation.str(t, "password")
	if rotatedPassword == staticPassword || oldRotation.Data["namespaces_name"] != s.Org {
		t.Fatalf("redhat-cop's rotate-role: a new password %v, namespaces_name %v", rotatedPassword != staticPassword, oldRotation.Data["namespaces_name"])
	}
	staticPassword = rotatedPassword

	// The swap, as it works on Vault 1.21: the new binary beside the old
	// one, registered under the same name with a version, the mount pinned
	// to that version, the plugin reloaded.
	ours := "vault-plugin-secrets-quay-" + pluginVersion
	must(t, copyFile(suite.pluginPath, filepath.Join(pluginDir, ours), 0o755))
	v.MustCLI(t, "plugin", "register", "-sha256="+suite.pluginSHA, "-command="+ours, "-version="+pluginVersion, "secret", redHatCopPluginName)
	v.MustCLI(t, "secrets", "tune", "-plugin-version="+pluginVersion, mount+"/")
	v.MustCLI(t, "plugin", "reload", "-plugin="+redHatCopPluginName)
	var mounts map[string]struct {
		RunningPluginVersion string `json:"running_plugin_version"`
		RunningSHA256        string `json:"running_sha256"`
	}
	v.CLIJSON(t, &mounts, []string{"secrets", "list"}, "-detailed")
	if got := mounts[mount+"/"]; got.RunningPluginVersion != pluginVersion || got.RunningSHA256 != suite.pluginSHA {
		t.Fatalf("after the swap quay/ runs version %q (sha256 %s), want %s", got.RunningPluginVersion, got.RunningSHA256, pluginVersion)
	}

	// The old plugin's lease renews under the new one.
	v.MustCLI(t, "lease", "renew", oldLease.LeaseID)
	if info := v.LookupLease(t, oldLease.LeaseID); info.TTL < 3000 {
		t.Errorf("renewed lease of redhat-cop's robot has ttl %d, want about 1h", info.TTL)
	}

	// Its static role, stored in its shape, serves the same robot and
	// token (not rotated), with both spellings of the namespace.
	var after cliSecret
	v.CLIJSON(t, &after, []string{"read"}, mount+"/static-creds/pull")
	if after.str(t, "username") != s.Org+"+pull" || after.Data["namespaces_name"] != s.Org || after.Data["namespace_name"] != s.Org {
		t.Fatalf("static-creds after the swap: username %v namespaces_name %v namespace_name %v", after.Data["username"], after.Data["namespaces_name"], after.Data["namespace_name"])
	}
	if after.str(t, "password") != staticPassword {
		t.Fatalf("static-creds after the swap serves another token than redhat-cop's (values not shown)")
	}
	if code, actions := s.registryLogin(t, s.Org+"+pull", staticPassword, "app"); code != http.StatusOK || !sameSet(actions, []string{"pull"}) {
		t.Fatalf("redhat-cop's static robot after the swap: login %d, actions on app %v", code, actions)
	}
	// Its static role that had no robot yet gets one.
	var created cliSecret
	v.CLIJSON(t, &created, []string{"read"}, mount+"/static-creds/my-static-account")
	if !q.RobotExists(t, s.Org+"+my-static-account") {
		t.Fatalf("static-creds/my-static-account created no robot")
	}
	if code, _ := s.registryLogin(t, s.Org+"+my-static-account", created.str(t, "password"), "app"); code != http.StatusOK {
		t.Fatalf("the robot created for my-static-account: login %d", code)
	}

	// rotate-role works on it, and hands out the password as redhat-cop's
	// did when asked to.
	var rotated cliSecret
	v.CLIJSON(t, &rotated, []string{"write"}, mount+"/rotate-role/pull", "return_password=true")
	newPassword := rotated.str(t, "password")
	if newPassword == staticPassword || rotated.Data["namespaces_name"] != s.Org {
		t.Fatalf("rotate-role after the swap: same password, or namespaces_name %v", rotated.Data["namespaces_name"])
	}
	if code, _ := s.registryLogin(t, s.Org+"+pull", staticPassword, "app"); code != http.StatusUnauthorized {
		t.Errorf("the password from before the rotation: login %d, want 401", code)
	}
	v.CLIJSON(t, &after, []string{"read"}, mount+"/static-creds/pull")
	if after.str(t, "password") != newPassword {
		t.Fatalf("static-creds does not serve the rotated password (values not shown)")
	}

	// vault-config-operator keeps rewriting what it manages.
	writeAPI(t, v, mount+"/config", operatorConfig)
	writeAPI(t, v, mount+"/roles/ci", operatorRole)
	writeAPI(t, v, mount+"/static-roles/pull", operatorStaticRole)

	// default_permission means what it meant: the new engine's robot
	// holds what redhat-cop's held.
	newLease := s.readCreds(t, "ci")
	newRobot := newLease.str(t, "username")
	if got := s.robotPermissions(t, newRobot); !sameMap(got, oldGrants) {
		t.Errorf("the engine's robot holds %v, redhat-cop's held %v", got, oldGrants)
	}

	// Leases of both plugins revoke: their robots are deleted in Quay.
	for _, lease := range []cliSecret{oldLease, readmeLease, newLease} {
		v.MustCLI(t, "lease", "revoke", "-sync", lease.LeaseID)
		if robot := lease.str(t, "username"); q.RobotExists(t, robot) {
			t.Errorf("robot %s outlived its revoked lease", robot)
		}
	}

	// Deleting its static role keeps the robot redhat-cop created (it
	// carries no marker of this mount); the old plugin deleted it.
	deleted, err := v.Client.Logical().Delete(mount + "/static-roles/pull")
	must(t, err)
	if deleted == nil || !strings.Contains(strings.Join(deleted.Warnings, " "), "kept in Quay") || !q.RobotExists(t, s.Org+"+pull") {
		t.Errorf("deleting redhat-cop's static role: %+v; robot exists: %v", deleted, q.RobotExists(t, s.Org+"+pull"))
	}
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
