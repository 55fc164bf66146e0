//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// Cluster is a Vault HA cluster on integrated storage: n `vault server`
// processes on loopback with storage "raft", retry_join to each other,
// cluster_addr/api_addr, initialised with one Shamir key share and unsealed.
// Every node has its own plugin_directory holding the plugin binary; the
// plugin is registered in the (replicated) catalog with -sha256 and -version.
//
// Vault Community Edition runs mounts on the active node only: standbys
// forward every request to it over the cluster port, so a request sent to a
// standby is answered by the leader's plugin process.
type Cluster struct {
	Nodes []*Vault
	// Token is the root token, UnsealKey the single key share.
	Token     string
	UnsealKey string
	// names[i] is node i's raft node_id and log name.
	names []string
}

// ClusterOptions adjust a cluster.
type ClusterOptions struct {
	// Nodes is the cluster size (default 3).
	Nodes int
	// LogLevel is Vault's log level (default "debug"; the soak uses
	// "trace" to prove no secret reaches a log at any level).
	LogLevel string
	// PluginVersion registers the suite's plugin under this version
	// (default pluginVersion); "" with SkipPlugin leaves the catalog alone.
	SkipPlugin bool
}

// StartCluster starts a Raft cluster, initialises and unseals every node,
// waits until all nodes are raft voters, and registers the suite's plugin.
// Every process is stopped when the test ends; logs are printed on failure.
func StartCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "debug"
	}
	c := &Cluster{}
	// Vault compares plugin directories after resolving symlinks.
	base, err := filepath.EvalSymlinks(t.TempDir())
	must(t, err)
	logs := logDir(t)
	apiPorts := make([]int, opts.Nodes)
	for i := range apiPorts {
		apiPorts[i] = freePorts(t, 2) // API, and cluster on port+1
		c.names = append(c.names, fmt.Sprintf("node%d", i+1))
	}
	for i := range opts.Nodes {
		dir := filepath.Join(base, c.names[i])
		pluginDir := filepath.Join(dir, "plugins")
		must(t, os.MkdirAll(filepath.Join(dir, "raft"), 0o700))
		must(t, os.MkdirAll(pluginDir, 0o755))
		must(t, copyFile(suite.pluginPath, filepath.Join(pluginDir, pluginName), 0o755))
		var joins strings.Builder
		for j, p := range apiPorts {
			if j != i {
				fmt.Fprintf(&joins, "  retry_join {\n    leader_api_addr = \"http://127.0.0.1:%d\"\n  }\n", p)
			}
		}
		port := apiPorts[i]
		cfg := fmt.Sprintf(`
storage "raft" {
  path    = %q
  node_id = %q
  # Elections in about a second, not five: loopback is fast, and tests
  # measure failover.
  performance_multiplier = 1
%s}

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
log_level        = %q
`, filepath.Join(dir, "raft"), c.names[i], joins.String(), port, port+1, port, port+1, pluginDir, opts.LogLevel)
		v := &Vault{dir: dir, Addr: fmt.Sprintf("http://127.0.0.1:%d", port), cfgPath: filepath.Join(dir, "vault.hcl")}
		must(t, os.WriteFile(v.cfgPath, []byte(cfg), 0o600))
		proc, err := startProcess("vault "+c.names[i], filepath.Join(logs, "vault-"+c.names[i]+".log"), suite.vaultBin,
			[]string{"server", "-config=" + v.cfgPath}, v.serverEnv())
		must(t, err)
		v.proc = proc
		proc.manage(t)
		c.Nodes = append(c.Nodes, v)
	}

	first := c.Nodes[0]
	must(t, first.waitListening(60*time.Second))
	first.Client = first.newClient(t)
	init, err := first.Client.Sys().Init(&api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("vault operator init on %s: %v", c.names[0], err)
	}
	c.UnsealKey, c.Token = init.Keys[0], init.RootToken
	for _, v := range c.Nodes {
		v.Token, v.unsealKey = c.Token, c.UnsealKey
		if v.Client == nil {
			must(t, v.waitListening(60*time.Second))
			v.Client = v.newClient(t)
		}
		v.Client.SetToken(c.Token)
	}
	c.unsealNode(t, 0)
	must(t, first.waitHealthy(60*time.Second))
	// Voters after 2s of stability instead of autopilot's 10s default: a
	// test kills the leader soon after start, and two remaining voters of
	// three are a quorum only if the others were promoted.
	_, err = first.Client.Logical().Write("sys/storage/raft/autopilot/configuration", map[string]any{
		"server_stabilization_time": "2s",
	})
	must(t, err)
	for i := 1; i < len(c.Nodes); i++ {
		c.unsealNode(t, i)
	}
	c.WaitVoters(t, len(c.Nodes), 90*time.Second)
	if !opts.SkipPlugin {
		c.Leader(t).RegisterPlugin(t, pluginVersion)
	}
	return c
}

func copyFile(from, to string, mode os.FileMode) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, to)
}

// unsealNode provides the key share until node i is unsealed. A node that
// joins through retry_join needs the key to answer the leader's challenge,
// so the first attempts may come before it has found a leader.
func (c *Cluster) unsealNode(t testing.TB, i int) {
	t.Helper()
	v := c.Nodes[i]
	deadline := time.Now().Add(90 * time.Second)
	var lastKey time.Time
	for {
		status, err := v.Client.Sys().SealStatus()
		if err == nil && !status.Sealed {
			break
		}
		// A joining node takes the key once and answers the leader's
		// challenge with it in the background; give it the key again
		// only when it asks for it (no progress) and a while has passed.
		if err == nil && status.Progress == 0 && time.Since(lastKey) > 5*time.Second {
			status, err = v.Client.Sys().Unseal(c.UnsealKey)
			lastKey = time.Now()
			if err == nil && !status.Sealed {
				break
			}
		}
		if v.proc.exited() {
			t.Fatalf("vault %s %s while unsealing; log tail:\n%s", c.names[i], v.proc.exitStatus(), redactSecrets(v.proc.tail(40)))
		}
		if time.Now().After(deadline) {
			t.Fatalf("vault %s still sealed after 90s (last: %+v, %v); log tail:\n%s", c.names[i], status, err, redactSecrets(v.proc.tail(40)))
		}
		time.Sleep(250 * time.Millisecond)
	}
	must(t, v.waitUntil(90*time.Second, "unsealed and active or standby", func(code int) bool {
		return code == http.StatusOK || code == http.StatusTooManyRequests
	}))
}

// Name is node i's raft node_id (node1, node2, ...).
func (c *Cluster) Name(i int) string { return c.names[i] }

// Running reports whether node i's process is alive.
func (c *Cluster) Running(i int) bool { return !c.Nodes[i].proc.exited() }

// LeaderIndex waits until exactly one running node is active and every other
// running node is an unsealed standby, and returns the active node's index.
func (c *Cluster) LeaderIndex(t testing.TB) int {
	t.Helper()
	var last string
	deadline := time.Now().Add(90 * time.Second)
	for {
		leader, ok := -1, true
		var states []string
		for i, v := range c.Nodes {
			if !c.Running(i) {
				states = append(states, c.names[i]+"=down")
				continue
			}
			code, err := v.health()
			states = append(states, fmt.Sprintf("%s=%d", c.names[i], code))
			switch {
			case err != nil:
				ok = false
			case code == http.StatusOK:
				if leader >= 0 {
					ok = false
				}
				leader = i
			case code != http.StatusTooManyRequests:
				ok = false
			}
		}
		// A standby answers 429 as soon as it is unsealed, but forwards
		// only once it knows the active node.
		for i, v := range c.Nodes {
			if ok && leader >= 0 && i != leader && c.Running(i) {
				if addr, err := v.leaderAddress(); err != nil || addr != c.Nodes[leader].Addr {
					states = append(states, fmt.Sprintf("%s sees leader %q", c.names[i], addr))
					ok = false
				}
			}
		}
		if ok && leader >= 0 {
			return leader
		}
		last = strings.Join(states, " ")
		if time.Now().After(deadline) {
			t.Fatalf("no single active node with every other node a standby after 90s: %s", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaderAddress is the active node's API address as v knows it (sys/leader).
func (v *Vault) leaderAddress() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, v.Addr+"/v1/sys/leader", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		LeaderAddress string `json:"leader_address"`
	}
	err = json.NewDecoder(resp.Body).Decode(&out)
	return out.LeaderAddress, err
}

// Leader returns the active node.
func (c *Cluster) Leader(t testing.TB) *Vault {
	t.Helper()
	return c.Nodes[c.LeaderIndex(t)]
}

// Standby returns a running standby node (the first one).
func (c *Cluster) Standby(t testing.TB) *Vault {
	t.Helper()
	leader := c.LeaderIndex(t)
	for i, v := range c.Nodes {
		if i != leader && c.Running(i) {
			return v
		}
	}
	t.Fatal("the cluster has no running standby")
	return nil
}

// KillNode kills node i and its plugin processes with SIGKILL: a crash.
func (c *Cluster) KillNode(t testing.TB, i int) {
	t.Helper()
	c.Nodes[i].proc.kill()
}

// KillLeader kills the active node with SIGKILL and waits until another node
// is active; it returns the killed node's index and how long the cluster
// had no active node, as a client polling sys/health sees it.
func (c *Cluster) KillLeader(t testing.TB) (int, time.Duration) {
	t.Helper()
	old := c.LeaderIndex(t)
	start := time.Now()
	c.KillNode(t, old)
	leader := c.LeaderIndex(t)
	if leader == old {
		t.Fatalf("%s is still the leader after being killed", c.names[old])
	}
	return old, time.Since(start)
}

// RestartNode starts a killed node again on the same storage and unseals it;
// it rejoins as a standby.
func (c *Cluster) RestartNode(t testing.TB, i int) {
	t.Helper()
	v := c.Nodes[i]
	must(t, v.proc.restart())
	must(t, v.waitListening(60*time.Second))
	c.unsealNode(t, i)
}

// WaitVoters waits until the raft configuration lists n voters, every one
// of them alive as autopilot sees it.
func (c *Cluster) WaitVoters(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("%d healthy raft voters", n), func() error {
		sec, err := c.Leader(t).Client.Logical().Read("sys/storage/raft/autopilot/state")
		if err != nil {
			return err
		}
		if sec == nil {
			return errors.New("no autopilot state")
		}
		servers, _ := sec.Data["servers"].(map[string]any)
		voters := 0
		var seen []string
		for id, raw := range servers {
			s, _ := raw.(map[string]any)
			seen = append(seen, fmt.Sprintf("%s:%v/%v/%v", id, s["status"], s["healthy"], s["node_status"]))
			if (s["status"] == "voter" || s["status"] == "leader") && s["healthy"] == true {
				voters++
			}
		}
		if voters != n {
			return fmt.Errorf("%d healthy voters: %s", voters, strings.Join(seen, " "))
		}
		return nil
	})
}

// pluginPIDs lists the plugin processes Vault node i runs (children of the
// node's process whose command is the plugin binary).
func (c *Cluster) pluginPIDs(i int) []int {
	return childPIDs(c.Nodes[i].proc.cmd.Process.Pid, pluginName)
}

// KillPlugin kills the plugin processes of the active node with SIGKILL;
// Vault starts the plugin again on the mount's next request. It returns how
// many processes were killed.
func (c *Cluster) KillPlugin(t testing.TB) int {
	t.Helper()
	leader := c.LeaderIndex(t)
	pids := c.pluginPIDs(leader)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(pids)
}

// childPIDs returns the processes whose parent is ppid and whose command
// line's first word ends in name.
func childPIDs(ppid int, name string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after
		// the last ')'.
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 2 || fields[1] != strconv.Itoa(ppid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		first, _, _ := strings.Cut(string(cmdline), "\x00")
		if strings.HasSuffix(first, name) {
			out = append(out, pid)
		}
	}
	return out
}

// rssKiB is a process's resident set size from /proc/<pid>/status.
func rssKiB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// Logs returns every node's log so far, concatenated.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, v := range c.Nodes {
		b.WriteString(v.proc.logContents())
	}
	return b.String()
}
