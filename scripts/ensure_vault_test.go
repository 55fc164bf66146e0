// Package scripts holds the tests of the developer scripts in this
// directory (the Go module in tools/ only pins Vault's build).
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// vaultEnv runs `make vault` of this repository with bin/ in a temporary
// directory, a PATH holding only the tools the recipe needs (plus pathDir),
// and a fake `go` that records each build and writes a fake Vault v1.21.0.
type vaultEnv struct {
	t       *testing.T
	bin     string // make's BIN
	pathDir string // directory of `vault` commands on PATH
	tools   string
	goLog   string
}

func newVaultEnv(t *testing.T) *vaultEnv {
	t.Helper()
	root := t.TempDir()
	e := &vaultEnv{t: t, bin: filepath.Join(root, "bin"), pathDir: filepath.Join(root, "path"),
		tools: filepath.Join(root, "tools"), goLog: filepath.Join(root, "go.log")}
	for _, d := range []string{e.pathDir, e.tools} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tool := range []string{"bash", "env", "make", "dirname", "basename", "mkdir", "readlink", "head", "mv", "ln", "rm", "chmod"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s is not installed", tool)
		}
		if err := os.Symlink(p, filepath.Join(e.tools, tool)); err != nil {
			t.Fatal(err)
		}
	}
	// The fake go writes a Vault that reports v1.21.0 to its -o argument.
	fakeGo := `#!/usr/bin/env bash
echo "go $*" >>` + e.goLog + `
while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
printf '#!/usr/bin/env bash\necho "Vault v1.21.0 (built), built 2025-11-29T09:02:07Z"\n' >"$out"
chmod +x "$out"
`
	e.write(filepath.Join(root, "go"), fakeGo)
	return e
}

func (e *vaultEnv) write(path, content string) {
	e.t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		e.t.Fatal(err)
	}
}

// fakeVault writes an executable at path whose `vault version` prints
// version (e.g. "v1.15.0").
func (e *vaultEnv) fakeVault(path, version string) string {
	e.write(path, "#!/usr/bin/env bash\necho \"Vault "+version+" (fake), built 2025-01-01T00:00:00Z\"\n")
	return path
}

// make runs `make vault`; vaultBinary is passed as VAULT_BINARY when set.
func (e *vaultEnv) make(vaultBinary string) (string, error) {
	e.t.Helper()
	args := []string{"-C", "..", "--no-print-directory", "vault", "BIN=" + e.bin, "GO=" + filepath.Join(filepath.Dir(e.bin), "go")}
	if vaultBinary != "" {
		args = append(args, "VAULT_BINARY="+vaultBinary)
	}
	cmd := exec.Command(filepath.Join(e.tools, "make"), args...)
	cmd.Env = []string{"PATH=" + e.pathDir + ":" + e.tools, "HOME=" + e.t.TempDir()}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *vaultEnv) builds() int {
	raw, err := os.ReadFile(e.goLog)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.Count(string(raw), "\n")
}

// vaultAt is what `<bin>/vault version` reports.
func (e *vaultEnv) vaultAt() string {
	e.t.Helper()
	out, err := exec.Command(filepath.Join(e.bin, "vault"), "version").Output()
	if err != nil {
		e.t.Fatalf("bin/vault does not run: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestMakeVault_UsesVaultOnPath(t *testing.T) {
	e := newVaultEnv(t)
	onPath := e.fakeVault(filepath.Join(e.pathDir, "vault"), "v1.15.0")
	out, err := e.make("")
	if err != nil {
		t.Fatalf("make vault: %v\n%s", err, out)
	}
	if e.builds() != 0 {
		t.Fatalf("built Vault although PATH has Vault v1.15.0:\n%s", out)
	}
	if target, _ := os.Readlink(filepath.Join(e.bin, "vault")); target != onPath {
		t.Fatalf("bin/vault links to %q, want the vault on PATH %q", target, onPath)
	}
	if !strings.Contains(out, "using Vault v1.15.0 from PATH") {
		t.Errorf("make vault does not say which Vault it uses:\n%s", out)
	}
	// A second run keeps the link and says nothing.
	if out, err := e.make(""); err != nil || out != "" || e.builds() != 0 {
		t.Fatalf("second make vault: err=%v builds=%d\n%s", err, e.builds(), out)
	}
}

func TestMakeVault_BuildsWhenPathHasOnlyAnOldVault(t *testing.T) {
	e := newVaultEnv(t)
	e.fakeVault(filepath.Join(e.pathDir, "vault"), "v1.14.9")
	out, err := e.make("")
	if err != nil {
		t.Fatalf("make vault: %v\n%s", err, out)
	}
	if e.builds() != 1 || !strings.Contains(out, "15-40 min") {
		t.Fatalf("want one build announced with its honest duration, got %d builds:\n%s", e.builds(), out)
	}
	if raw, _ := os.ReadFile(e.goLog); !strings.Contains(string(raw), "-o "+filepath.Join(e.bin, "vault.tmp")+" github.com/hashicorp/vault") {
		t.Errorf("the build is not of github.com/hashicorp/vault into a temporary file: %s", raw)
	}
	if got := e.vaultAt(); !strings.Contains(got, "(built)") {
		t.Fatalf("bin/vault is %q, want the built one", got)
	}
	if _, err := os.Stat(filepath.Join(e.bin, "vault.tmp")); !os.IsNotExist(err) {
		t.Errorf("the temporary build output was left behind: %v", err)
	}
	// Built once: the next run uses it.
	if out, err := e.make(""); err != nil || e.builds() != 1 {
		t.Fatalf("second make vault rebuilt: err=%v builds=%d\n%s", err, e.builds(), out)
	}
}

func TestMakeVault_BuildsWhenNoVaultAnywhere(t *testing.T) {
	e := newVaultEnv(t)
	if out, err := e.make(""); err != nil || e.builds() != 1 {
		t.Fatalf("make vault on a fresh machine: err=%v builds=%d\n%s", err, e.builds(), out)
	}
}

func TestMakeVault_VaultBinaryWinsAndKeepsABuiltVault(t *testing.T) {
	e := newVaultEnv(t)
	e.fakeVault(filepath.Join(e.pathDir, "vault"), "v1.20.0")
	if out, err := e.make(""); err != nil {
		t.Fatalf("make vault: %v\n%s", err, out)
	}
	// Replace the link by a "built" Vault, then ask for another one.
	if err := os.Remove(filepath.Join(e.bin, "vault")); err != nil {
		t.Fatal(err)
	}
	e.fakeVault(filepath.Join(e.bin, "vault"), "v1.21.0")
	chosen := e.fakeVault(filepath.Join(t.TempDir(), "my-vault"), "v1.19.2")
	out, err := e.make(chosen)
	if err != nil {
		t.Fatalf("make vault VAULT_BINARY=…: %v\n%s", err, out)
	}
	if got := e.vaultAt(); !strings.Contains(got, "v1.19.2") {
		t.Fatalf("bin/vault reports %q, want VAULT_BINARY's v1.19.2", got)
	}
	kept, err := exec.Command(filepath.Join(e.bin, "vault.built"), "version").Output()
	if err != nil || !strings.Contains(string(kept), "v1.21.0") {
		t.Fatalf("the Vault that was at bin/vault is not kept as bin/vault.built: %v %s", err, kept)
	}
	if e.builds() != 0 {
		t.Fatal("built Vault although VAULT_BINARY was given")
	}
}

func TestMakeVault_RefusesAnOldVaultBinary(t *testing.T) {
	e := newVaultEnv(t)
	old := e.fakeVault(filepath.Join(t.TempDir(), "vault"), "v1.14.0")
	out, err := e.make(old)
	if err == nil || !strings.Contains(out, "is not a Vault >= 1.15") {
		t.Fatalf("want a refusal naming the minimum version, got err=%v:\n%s", err, out)
	}
	if e.builds() != 0 {
		t.Fatal("built Vault instead of reporting the bad VAULT_BINARY")
	}
	if _, err := os.Lstat(filepath.Join(e.bin, "vault")); !os.IsNotExist(err) {
		t.Fatalf("bin/vault exists after a refusal: %v", err)
	}
}

func TestMakeVault_ReplacesADanglingLink(t *testing.T) {
	e := newVaultEnv(t)
	if err := os.MkdirAll(e.bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent/vault", filepath.Join(e.bin, "vault")); err != nil {
		t.Fatal(err)
	}
	onPath := e.fakeVault(filepath.Join(e.pathDir, "vault"), "v1.21.0")
	if out, err := e.make(""); err != nil || e.builds() != 0 {
		t.Fatalf("make vault: err=%v builds=%d\n%s", err, e.builds(), out)
	}
	if target, _ := os.Readlink(filepath.Join(e.bin, "vault")); target != onPath {
		t.Fatalf("bin/vault links to %q, want %q", target, onPath)
	}
}
