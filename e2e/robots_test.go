//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// Robot credentials used by real clients: Vault Agent renders
// ~/.docker/config.json from quay/creds/<role>, skopeo pushes and pulls
// through the emulator's registry with that file.

// seedRepo creates a repository in the stack's organization (as an
// operator would).
func (s *stack) seedRepo(t testing.TB, name string) {
	t.Helper()
	s.Quay.CreateRepository(t, s.Org, name)
}

// registryHost is host:port of the emulator, the registry docker clients use.
func (s *stack) registryHost() string { return strings.TrimPrefix(s.Quay.URL, "http://") }

// ociImage writes a small random image as an OCI layout and returns the
// skopeo reference to it.
func ociImage(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "image")
	img, err := random.Image(2048, 2)
	must(t, err)
	p, err := layout.Write(dir, empty.Index)
	must(t, err)
	must(t, p.AppendImage(img))
	return "oci:" + dir
}

// skopeo runs skopeo with an auth file; the emulator serves plain HTTP.
func skopeo(t testing.TB, authFile string, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo is not installed (.ci/run installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{args[0], "--authfile", authFile}, args[1:]...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = cleanEnv("HOME=" + t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

func (s *stack) push(t testing.TB, authFile, src, repo string) (string, error) {
	return skopeo(t, authFile, "copy", "--dest-tls-verify=false", src, "docker://"+s.registryHost()+"/"+s.Org+"/"+repo+":v1")
}

func (s *stack) pull(t testing.TB, authFile, repo string) (string, error) {
	return skopeo(t, authFile, "copy", "--src-tls-verify=false", "docker://"+s.registryHost()+"/"+s.Org+"/"+repo+":v1", "oci:"+filepath.Join(t.TempDir(), "pulled")+":v1")
}

// agent runs a real `vault agent` that authenticates with a token file and
// renders one template; it returns the rendered file's path.
type agent struct {
	proc *process
	dest string
}

func startAgent(t testing.TB, v *Vault, template string) *agent {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	must(t, os.WriteFile(tokenFile, []byte(v.Token), 0o600))
	dest := filepath.Join(dir, "home", ".docker", "config.json")
	tplFile := filepath.Join(dir, "config.json.tpl")
	must(t, os.WriteFile(tplFile, []byte(template), 0o600))
	cfg := fmt.Sprintf(`
vault {
  address = %q
  ca_cert = %q
}
auto_auth {
  method "token_file" {
    config = {
      token_file_path = %q
    }
  }
}
template_config {
  exit_on_retry_failure = true
}
template {
  source               = %q
  destination          = %q
  perms                = "0600"
  create_dest_dirs     = true
  error_on_missing_key = true
}
`, v.Addr, v.CACert, tokenFile, tplFile, dest)
	cfgPath := filepath.Join(dir, "agent.hcl")
	must(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	proc, err := startProcess("vault-agent", filepath.Join(logDir(t), "vault-agent.log"), suite.vaultBin,
		[]string{"agent", "-config=" + cfgPath, "-log-level=debug"}, cleanEnv("HOME="+dir))
	must(t, err)
	proc.manage(t)
	a := &agent{proc: proc, dest: dest}
	eventually(t, 60*time.Second, "vault agent renders "+dest, func() error {
		b, err := os.ReadFile(dest)
		if err != nil || len(b) == 0 {
			return fmt.Errorf("not rendered yet")
		}
		return nil
	})
	return a
}

// snapshot copies the rendered file, so later re-renders do not change what
// a test step uses.
func (a *agent) snapshot(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(a.dest)
	must(t, err)
	p := filepath.Join(t.TempDir(), "config.json")
	must(t, os.WriteFile(p, b, 0o600))
	return p
}

func dockerAuthUser(t testing.TB, path, registry string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	var cfg struct {
		Auths map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s is not a docker config.json: %v", path, err)
	}
	entry, ok := cfg.Auths[registry]
	if !ok {
		t.Fatalf("%s has no entry for %s: %s", path, registry, b)
	}
	return entry.Auth
}

func TestRobotCredsWithVaultAgentAndSkopeo(t *testing.T) {
	s := newStack(t)
	s.seedRepo(t, "app")
	s.seedRepo(t, "other")
	s.Vault.MustCLI(t, "write", mount+"/roles/ci", "namespace_name="+s.Org, `repositories={"app":"write"}`, "ttl=10m", "max_ttl=1h")

	a := startAgent(t, s.Vault, `{{ with secret "quay/creds/ci" }}{{ .Data.docker_config_json }}{{ end }}`)
	authFile := a.snapshot(t)
	if dockerAuthUser(t, authFile, s.registryHost()) == "" {
		t.Fatal("empty auth in the rendered config.json")
	}
	// Stop the agent: after the revocation below it would fetch a new robot.
	a.proc.stop(5 * time.Second)

	image := ociImage(t)
	if out, err := s.push(t, authFile, image, "app"); err != nil {
		t.Fatalf("skopeo push to the granted repository failed: %v\n%s", err, out)
	}
	if out, err := s.pull(t, authFile, "app"); err != nil {
		t.Fatalf("skopeo pull from the granted repository failed: %v\n%s", err, out)
	}
	if out, err := s.push(t, authFile, image, "other"); err == nil {
		t.Fatalf("skopeo push to a repository the role does not grant succeeded:\n%s", out)
	}

	s.Vault.MustCLI(t, "lease", "revoke", "-sync", "-prefix", mount+"/creds/ci")
	if out, err := s.pull(t, authFile, "app"); err == nil {
		t.Fatalf("skopeo pull with a revoked robot succeeded:\n%s", out)
	}
}

// A static robot's scheduled rotation: the agent re-renders right after it
// (static-creds' ttl), the old password stops working, the new file works.
func TestStaticRobotRotationReRendersWithAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a scheduled rotation (about two minutes)")
	}
	s := newStack(t)
	s.seedRepo(t, "app")
	s.Vault.MustCLI(t, "write", mount+"/static-roles/pull", "namespace_name="+s.Org, `repositories={"app":"write"}`, "rotation_period=1m")

	a := startAgent(t, s.Vault, `{{ with secret "quay/static-creds/pull" }}{{ .Data.docker_config_json }}{{ end }}`)
	before := a.snapshot(t)
	oldAuth := dockerAuthUser(t, before, s.registryHost())
	image := ociImage(t)
	if out, err := s.push(t, before, image, "app"); err != nil {
		t.Fatalf("push with the static robot failed: %v\n%s", err, out)
	}

	// Vault's rollback manager runs the plugin's periodic function about
	// once a minute; the agent re-reads static-creds at its ttl.
	var after string
	eventually(t, 4*time.Minute, "the agent renders the rotated password", func() error {
		p := a.snapshot(t)
		if dockerAuthUser(t, p, s.registryHost()) == oldAuth {
			return fmt.Errorf("still the old password")
		}
		after = p
		return nil
	})
	if out, err := s.pull(t, before, "app"); err == nil {
		t.Fatalf("the password from before the rotation still works:\n%s", out)
	}
	if out, err := s.pull(t, after, "app"); err != nil {
		t.Fatalf("the re-rendered file does not work: %v\n%s", err, out)
	}
}

// Vault killed after the robot was created in Quay but before the lease
// existed: the robot is not lost. As the engine starts again it deletes it
// (its write-ahead entry belongs to a process that no longer runs), without
// waiting for Vault's rollback (five minutes) or a tidy.
func TestVaultKilledMidIssueLeavesNoRobot(t *testing.T) {
	v := StartFileVault(t)
	q := StartQuay(t, QuayOptions{})
	v.RegisterPlugin(t, pluginVersion)
	v.EnablePlugin(t, mount)
	s := &stack{Vault: v, Quay: q, Org: q.Name("acme")}
	q.CreateOrganization(t, s.Org)
	s.configure(t)
	s.seedRepo(t, "app")
	v.MustCLI(t, "write", mount+"/roles/ci", "namespace_name="+s.Org, `repositories={"app":"write"}`)

	// Hold the permission grant, which comes right after the robot exists.
	code, body := q.Control.Do(t, http.MethodPost, "/faults", map[string]any{"route": "changeUserPermissions", "latency_ms": 60000, "count": 1})
	if code != http.StatusNoContent {
		t.Fatalf("installing the fault: %d %s", code, body)
	}
	go func() { _ = v.CLI(t, "read", mount+"/creds/ci") }() // dies with Vault
	robots := func() []string {
		code, body := q.Do(t, http.MethodGet, "/api/v1/organization/"+s.Org+"/robots?token=false", q.BootstrapToken, nil)
		if code != http.StatusOK {
			t.Fatalf("listing robots: %d %s", code, body)
		}
		var out struct {
			Robots []struct{ Name string } `json:"robots"`
		}
		must(t, json.Unmarshal(body, &out))
		var names []string
		for _, r := range out.Robots {
			names = append(names, r.Name)
		}
		return names
	}
	eventually(t, 30*time.Second, "the robot exists in Quay", func() error {
		if len(robots()) == 0 {
			return fmt.Errorf("no robot yet")
		}
		return nil
	})
	orphan := robots()[0]

	v.Kill(t)
	q.Control.Do(t, http.MethodDelete, "/faults", nil)
	v.Start(t)

	if ids := v.LeaseIDs(t, mount+"/creds/ci/"); len(ids) != 0 {
		t.Fatalf("a lease exists for the interrupted read: %v", ids)
	}
	eventually(t, 30*time.Second, "the restarted engine deletes the robot", func() error {
		if left := robots(); len(left) != 0 {
			return fmt.Errorf("robots in Quay: %v", left)
		}
		return nil
	})
	var dry struct {
		Data map[string]any `json:"data"`
	}
	v.CLIJSON(t, &dry, []string{"write"}, mount+"/tidy", "dry_run=true")
	t.Logf("tidy (dry run) after the restart: %v", dry.Data)
	if found := stringList(dry.Data["orphans_found"]); len(found) != 0 {
		t.Fatalf("tidy found %v, want nothing left (%s was deleted)", found, orphan)
	}
	if left := robots(); len(left) != 0 {
		t.Fatalf("robots left in Quay after tidy: %v", left)
	}
}
