//go:build e2e

// Package e2e runs the plugin the way users run it: a real Vault server
// (bin/vault, Vault v1.21.0) loads the plugin binary, and the plugin talks to
// the Quay emulator running as its own process. Tests drive Vault through its
// HTTP API and the real `vault` CLI.
//
// Every file carries the e2e build tag, so `go test ./...` stays unit-only:
//
//	make test-e2e                       # builds bin/vault when missing, then
//	go test -tags e2e -count=1 ./e2e/...
//
// Environment:
//
//	VAULT_BINARY   Vault to run (default <repo>/bin/vault; `make vault` builds it)
//	E2E_EMULATOR_BINARY  use this quay-emulator instead of building cmd/quay-emulator
//	REDHAT_COP_QUAY_SOURCE  a checkout (or git repository) of
//	               redhat-cop/vault-plugin-secrets-quay for the drop-in test
//	               (dropin_test.go; default: the module proxy, then GitHub)
//	E2E_LOG_DIR    keep every process log under this directory (default: the
//	               test's temporary directory, removed afterwards; tails of the
//	               logs are printed when a test fails either way)
//
// Process hygiene: every server runs in its own process group. Groups are
// killed when the test that started them ends (pass, failure or panic), when
// the test binary gets SIGINT/SIGTERM, shortly before -timeout fires, and, if
// the test binary dies anyway, by a small watchdog process per group.
package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	pluginName = "vault-plugin-secrets-quay"
	// pluginVersion is stamped into the suite's plugin binary. It differs
	// from the unstamped default (v0.0.0-dev), so a test seeing it proves
	// the stamp reached Vault.
	pluginVersion = "v1.2.3"
	modulePath    = "github.com/quay-vault/vault-plugin-secrets-quay"
)

// suite holds what TestMain prepares once for all tests.
var suite struct {
	repoRoot string
	// workDir holds the built binaries; removed when the suite ends.
	workDir string
	// pluginDir is absolute, free of symlinks and holds only the plugin
	// binary: Vault's dev mode registers every file in it, and Vault
	// refuses plugins whose resolved directory differs from the configured one.
	pluginDir   string
	pluginPath  string
	pluginSHA   string
	emulatorBin string
	vaultBin    string

	// The Quay under test (quay_test.go, realquay_test.go).
	target      quayTarget
	realQuayDir string
	// namePrefix and runID start the names tests create in a shared Quay.
	namePrefix, runID string
	testSeq           atomic.Int64
	sharedOnce        sync.Once
	sharedQuay        *realQuay
	sharedErr         error
	ownQuay           *realQuay
	// ownLeftovers are the names created in the user's own Quay, checked
	// to be gone at the end of the run.
	ownLeftovers []string
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	if err := setupSuite(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(suite.workDir)
	stopGuards := guardProcesses(testTimeout())
	defer stopGuards()
	defer killAllProcesses()
	defer stopSharedQuay()
	code := m.Run()
	if err := cleanupOwn(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		code = 1
	}
	return code
}

func testTimeout() time.Duration {
	if f := flag.Lookup("test.timeout"); f != nil {
		if g, ok := f.Value.(flag.Getter); ok {
			if d, ok := g.Get().(time.Duration); ok {
				return d
			}
		}
	}
	return 0
}

func setupSuite() error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	// `go test` runs in the package directory, <repo>/e2e.
	suite.repoRoot = filepath.Dir(wd)
	if _, err := os.Stat(filepath.Join(suite.repoRoot, "go.mod")); err != nil {
		return fmt.Errorf("cannot find the repository root above %s: %w", wd, err)
	}

	if err := configureTarget(); err != nil {
		return err
	}

	suite.vaultBin = os.Getenv("VAULT_BINARY")
	if suite.vaultBin == "" {
		suite.vaultBin = filepath.Join(suite.repoRoot, "bin", "vault")
	}
	if abs, err := filepath.Abs(suite.vaultBin); err == nil {
		suite.vaultBin = abs
	}
	if st, err := os.Stat(suite.vaultBin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("no Vault binary at %s: run `make vault` (or set VAULT_BINARY)", suite.vaultBin)
	}

	dir, err := os.MkdirTemp("", "quay-e2e-")
	if err != nil {
		return err
	}
	// /tmp may itself be a symlink (macOS); Vault compares resolved paths.
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		return err
	}
	suite.workDir = dir
	suite.pluginDir = filepath.Join(dir, "plugins")
	suite.pluginPath = filepath.Join(suite.pluginDir, pluginName)
	suite.emulatorBin = filepath.Join(dir, "bin", "quay-emulator")
	for _, d := range []string{suite.pluginDir, filepath.Dir(suite.emulatorBin)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}

	start := time.Now()
	if err := goBuild(suite.pluginPath, "./cmd/"+pluginName, "-ldflags", "-X "+modulePath+"/version.Version="+pluginVersion); err != nil {
		return err
	}
	if prebuilt := os.Getenv("E2E_EMULATOR_BINARY"); prebuilt != "" {
		suite.emulatorBin = prebuilt
	} else if err := goBuild(suite.emulatorBin, "./cmd/quay-emulator"); err != nil {
		return err
	}
	if suite.pluginSHA, err = sha256File(suite.pluginPath); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "e2e: built plugin %s and emulator in %s; vault=%s; quay=%s\n", pluginVersion, time.Since(start).Round(time.Millisecond), suite.vaultBin, suite.target)
	return nil
}

func goBuild(out, pkg string, extra ...string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the e2e suite builds the plugin and needs go on PATH: %w", err)
	}
	args := append([]string{"build", "-trimpath", "-o", out}, extra...)
	args = append(args, pkg)
	cmd := exec.Command(gobin, args...)
	cmd.Dir = suite.repoRoot
	cmd.Env = os.Environ()
	var outBuf strings.Builder
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, outBuf.String())
	}
	return nil
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
