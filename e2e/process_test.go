//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// process is a server started by the suite, leader of its own process group
// (Vault's plugin processes join Vault's group, so killing the group kills
// them too). stdout and stderr go straight to logPath.
type process struct {
	name    string
	logPath string
	path    string
	args    []string
	env     []string

	cmd      *exec.Cmd
	watchdog *exec.Cmd
	done     chan struct{}
	waitErr  error
}

var registry struct {
	sync.Mutex
	procs map[*process]struct{}
}

// startProcess starts path with args, logging to logPath (appending, so a
// restarted server keeps one log).
func startProcess(name, logPath, path string, args, env []string) (*process, error) {
	p := &process{name: name, logPath: logPath, path: path, args: args, env: env}
	return p, p.start()
}

func (p *process) start() error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child holds its own descriptor
	fmt.Fprintf(logFile, "==== e2e: starting %s at %s: %s %s\n", p.name, time.Now().Format(time.RFC3339Nano), p.path, strings.Join(p.args, " "))

	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// If the test binary dies without cleaning up, the kernel kills
		// the group leader; the watchdog below takes care of the rest of
		// the group (Vault's plugin processes).
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	go func(done chan struct{}) {
		p.waitErr = cmd.Wait()
		close(done)
	}(p.done)
	p.watchdog = startWatchdog(cmd.Process.Pid)

	registry.Lock()
	if registry.procs == nil {
		registry.procs = map[*process]struct{}{}
	}
	registry.procs[p] = struct{}{}
	registry.Unlock()
	return nil
}

// startWatchdog starts a tiny shell that kills process group pgid once the
// test binary is gone. It runs in its own session so that signals aimed at
// the test's terminal do not reach it, and is killed when the group is
// stopped normally. Best effort: without /bin/sh there is no watchdog.
func startWatchdog(pgid int) *exec.Cmd {
	script := `while kill -0 "$1" 2>/dev/null; do sleep 1; done; kill -KILL "-$2" 2>/dev/null; exit 0`
	cmd := exec.Command("/bin/sh", "-c", script, "e2e-watchdog", strconv.Itoa(os.Getpid()), strconv.Itoa(pgid))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil
	}
	go cmd.Wait() //nolint:errcheck // reaped only
	return cmd
}

// exited reports whether the group leader has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to the whole group and waits for the leader: a crash,
// as far as the server can tell.
func (p *process) kill() {
	p.signalGroup(syscall.SIGKILL)
	<-p.done
	p.release()
}

// stop asks the group to terminate (SIGTERM) and kills it after grace.
func (p *process) stop(grace time.Duration) {
	if !p.exited() {
		p.signalGroup(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// Whatever is left of the group (plugin processes) goes too.
	p.signalGroup(syscall.SIGKILL)
	<-p.done
	p.release()
}

// restart starts the same command again after the old group is gone.
func (p *process) restart() error {
	if !p.exited() {
		return fmt.Errorf("%s is still running", p.name)
	}
	return p.start()
}

func (p *process) signalGroup(sig syscall.Signal) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	// Negative pid: the process group led by the server.
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

func (p *process) release() {
	if p.watchdog != nil && p.watchdog.Process != nil {
		_ = syscall.Kill(-p.watchdog.Process.Pid, syscall.SIGKILL)
		p.watchdog = nil
	}
	registry.Lock()
	delete(registry.procs, p)
	registry.Unlock()
}

// exitStatus describes how the leader ended, for error messages.
func (p *process) exitStatus() string {
	if !p.exited() {
		return "running"
	}
	if p.waitErr == nil {
		return "exited with status 0"
	}
	return p.waitErr.Error()
}

// logContents returns the process log.
func (p *process) logContents() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// tail returns the last n lines of the log.
func (p *process) tail(n int) string {
	return tailLines(p.logContents(), n)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// waitForLog polls the log until re matches, the process exits or the
// deadline passes. It returns the submatches of the last match.
func (p *process) waitForLog(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if m := re.FindAllStringSubmatch(p.logContents(), -1); len(m) > 0 {
			return m[len(m)-1], nil
		}
		if p.exited() {
			return nil, fmt.Errorf("%s %s before logging %q; log tail:\n%s", p.name, p.exitStatus(), re, redactSecrets(p.tail(40)))
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s did not log %q within %s; log tail:\n%s", p.name, re, timeout, redactSecrets(p.tail(40)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// manage ties the process to t: it is stopped when the test ends, and its
// log tail is printed if the test failed.
func (p *process) manage(t testing.TB) {
	t.Helper()
	t.Cleanup(func() {
		p.stop(5 * time.Second)
		if t.Failed() {
			t.Logf("---- %s log (%s), last lines:\n%s", p.name, p.logPath, redactSecrets(p.tail(60)))
		}
	})
}

// killAllProcesses kills every process group still registered.
func killAllProcesses() {
	registry.Lock()
	procs := make([]*process, 0, len(registry.procs))
	for p := range registry.procs {
		procs = append(procs, p)
	}
	registry.Unlock()
	for _, p := range procs {
		p.kill()
	}
}

// guardProcesses kills every server when the test binary is interrupted, and
// a little before `go test -timeout` would panic (a timeout panic skips all
// cleanups). It returns a function that stops the guards.
func guardProcesses(timeout time.Duration) func() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	stop := make(chan struct{})
	var timer <-chan time.Time
	if timeout > 0 {
		margin := min(timeout/10, 30*time.Second)
		timer = time.After(timeout - margin)
	}
	go func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "e2e: got %s, stopping all servers\n", sig)
			killAllProcesses()
			os.Exit(2)
		case <-timer:
			fmt.Fprintf(os.Stderr, "e2e: close to -timeout; stopping all servers so none outlives the test binary\n")
			killAllProcesses()
		case <-stop:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(stop)
	}
}

// ports hands out loopback ports that were free a moment ago, never the same
// one twice in this test binary.
var ports struct {
	sync.Mutex
	given map[int]bool
}

// freePorts returns n consecutive free loopback ports (Vault's dev mode puts
// its cluster listener on the API port + 1).
func freePorts(t testing.TB, n int) int {
	t.Helper()
	ports.Lock()
	defer ports.Unlock()
	if ports.given == nil {
		ports.given = map[int]bool{}
	}
	for attempt := 0; attempt < 100; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listening on a loopback port: %v", err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		listeners := []net.Listener{l}
		ok := !ports.given[base]
		for i := 1; ok && i < n; i++ {
			li, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil || ports.given[base+i] {
				ok = false
				if li != nil {
					li.Close()
				}
				break
			}
			listeners = append(listeners, li)
		}
		for _, li := range listeners {
			li.Close()
		}
		if ok {
			for i := 0; i < n; i++ {
				ports.given[base+i] = true
			}
			return base
		}
	}
	t.Fatalf("found no %d consecutive free loopback ports", n)
	return 0
}

// logDir is where a test's process logs go: E2E_LOG_DIR/<test name> when set
// (kept after the run), else the test's temporary directory.
func logDir(t testing.TB) string {
	t.Helper()
	base := os.Getenv("E2E_LOG_DIR")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// cleanEnv is the test binary's environment without anything that would
// change how vault or the emulator behave (VAULT_*, proxies), plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "VAULT_"),
			strings.EqualFold(k, "HTTP_PROXY"), strings.EqualFold(k, "HTTPS_PROXY"),
			strings.EqualFold(k, "NO_PROXY"), strings.EqualFold(k, "ALL_PROXY"):
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// must fails the test on err.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond every interval until it returns nil or timeout
// passes, then fails the test with the last error.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
