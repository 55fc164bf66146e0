//go:build docscheck

package docs

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDocExamplesRunAgainstSandbox runs every runnable ```shell example of
// docs/ as written, with bash, against a running `make sandbox`
// (SANDBOX_DIR names it; `make docs-check` starts one, runs this, and stops
// it). Each document starts from a fresh quay/ mount configured as the
// sandbox configures it (scripts/sandbox.sh reset) and runs its commands in
// order, in one shell, in SANDBOX_DIR (where the @file examples' files are),
// with a scratch HOME. A command fails the document when it exits non-zero;
// curl runs with --fail-with-body, so an HTTP error fails too. Output is
// shown only for a failing command, with secrets masked.
func TestDocExamplesRunAgainstSandbox(t *testing.T) {
	sandbox := os.Getenv("SANDBOX_DIR")
	if sandbox == "" {
		t.Skip("SANDBOX_DIR is not set: run `make docs-check`, or `make sandbox` and SANDBOX_DIR=<its directory>")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	env := sandboxEnv(t, sandbox)
	secrets := []string{env["VAULT_TOKEN"], env["QUAY_TOKEN"]}
	for _, f := range []string{"password.txt", "secret.txt", "quay-token.txt"} {
		if raw, err := os.ReadFile(filepath.Join(sandbox, f)); err == nil {
			secrets = append(secrets, strings.TrimSpace(string(raw)))
		}
	}

	byDoc := map[string][]shellBlock{}
	for _, b := range docShellBlocks(t) {
		byDoc[b.Doc] = append(byDoc[b.Doc], b)
	}
	docs := make([]string, 0, len(byDoc))
	for doc := range byDoc {
		docs = append(docs, doc)
	}
	sort.Strings(docs)

	ran, ranDocs := 0, 0
	for _, doc := range docs {
		var commands []shellCommand
		for _, b := range byDoc[doc] {
			if b.NotRunnable == "" {
				commands = append(commands, b.Commands...)
			}
		}
		if len(commands) == 0 {
			continue
		}
		t.Run(doc, func(t *testing.T) {
			reset := exec.Command(filepath.Join(repo, "scripts", "sandbox.sh"), "reset")
			reset.Env = append(os.Environ(), "SANDBOX_DIR="+sandbox)
			if out, err := reset.CombinedOutput(); err != nil {
				t.Fatalf("resetting the sandbox: %v\n%s", err, mask(string(out), secrets))
			}
			failed, out, err := runExamples(t, repo, sandbox, commands)
			if err != nil {
				t.Fatalf("%s:%d: %s\nfailed (%v):\n%s", doc, failed.Line, failed, err, mask(out, secrets))
			}
			ran, ranDocs = ran+len(commands), ranDocs+1
		})
	}
	t.Logf("%d examples of %d documents ran", ran, ranDocs)
}

// sandboxEnv reads the sandbox's export lines.
func sandboxEnv(t *testing.T, sandbox string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(sandbox, "env"))
	if err != nil {
		t.Fatalf("no running sandbox in %s: %v", sandbox, err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			env[name] = value
		}
	}
	return env
}

// runExamples runs commands in order in one bash, and returns the failing
// command with its output, or a nil error.
func runExamples(t *testing.T, repo, sandbox string, commands []shellCommand) (shellCommand, string, error) {
	t.Helper()
	work := t.TempDir()
	home := filepath.Join(work, "home")
	if err := os.MkdirAll(filepath.Join(home, ".docker"), 0o700); err != nil {
		t.Fatal(err)
	}
	progress := filepath.Join(work, "progress")
	var script strings.Builder
	fmt.Fprintf(&script, "set -euo pipefail\nsource %q\ncd %q\n", filepath.Join(sandbox, "env"), sandbox)
	script.WriteString("curl() { command curl --fail-with-body \"$@\"; }\n")
	for i, c := range commands {
		fmt.Fprintf(&script, "echo %d >%q\n{ %s\n} >%q 2>&1\n", i, progress, c.Text, filepath.Join(work, strconv.Itoa(i)+".out"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Env = append(os.Environ(), "HOME="+home, "PATH="+filepath.Join(repo, "bin")+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err == nil {
		return shellCommand{}, "", nil
	}
	raw, _ := os.ReadFile(progress)
	i, convErr := strconv.Atoi(strings.TrimSpace(string(raw)))
	if convErr != nil {
		return shellCommand{Text: "(before the first command)"}, string(out), err
	}
	cmdOut, _ := os.ReadFile(filepath.Join(work, strconv.Itoa(i)+".out"))
	return commands[i], string(cmdOut) + string(out), err
}
