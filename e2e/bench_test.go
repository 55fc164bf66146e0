//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/vault/api"
)

// BenchmarkSideBySide measures, in one run on one dev Vault and one Quay
// emulator, the engine's hot paths next to the floors they cannot beat:
//
//   - kv_builtin:   a read of Vault's builtin kv (version 1; no plugin process)
//   - kv_external_list: a list of HashiCorp's kv engine run as an external
//     plugin (KV_PLUGIN_BINARY, built by `make kv-plugin` from the module
//     proxy): the floor of any external plugin request
//   - kv_external:  a read of the same mount. Vault registers a lease for
//     every read answer of an external kv plugin (it exempts only its
//     builtin "kv" type, vault/request_handling.go), so this is the floor of
//     an external plugin request that leaves a lease
//   - token_create: auth/token/create, the floor of a request that leaves a lease
//   - creds_oauth, creds_robot: quay/creds/<role>, one new credential each
//
// each at 1 and 16 clients (p50, p90, p99, rate); a fresh robot read every
// 200 ms (no queueing at all); revoke -prefix of 10,000 OAuth leases against
// 10,000 bare deletes of the same tokens in Quay; and the plugin's resident
// memory at 0 and at 10,000 live leases. It prints the table with ratios.
//
//	make bench     # or: KV_PLUGIN_BINARY=bin/bench/vault-plugin-secrets-kv \
//	               #     go test -tags e2e -run '^$' -bench SideBySide ./e2e/
//
// BENCH_LEASES changes the 10,000; BENCH_VAULT_LOG_LEVEL Vault's log level
// (default info). BENCH_OTHER_PLUGINS=name=path,... mounts
// other builds of a Quay engine (another version, an experiment, or
// redhat-cop/vault-plugin-secrets-quay) at other-<name>/ beside quay/ and
// adds creds_robot_interleaved: one client reads a fresh robot from each
// mount in turn, idle 50 ms before each read, so every engine meets the
// same machine state and the comparison holds on a busy machine.
// in_turn runs kv_external, token_create, quay_create_token and every
// mount's creds reads again at 1 and 16 clients, target after target in
// 250 ms slices (BENCH_IN_TURN_ROUNDS rounds, default 10), and checks the
// goals on those numbers too: taken minutes apart, the sequential cases'
// ratios move with the machine's other load.
func BenchmarkSideBySide(b *testing.B) {
	kvBin := os.Getenv("KV_PLUGIN_BINARY")
	if kvBin == "" {
		b.Skip("KV_PLUGIN_BINARY is not set: `make kv-plugin` builds HashiCorp's kv engine (make bench sets it)")
	}
	leases := 10000
	if s := os.Getenv("BENCH_LEASES"); s != "" {
		_, err := fmt.Sscan(s, &leases)
		must(b, err)
	}
	others := map[string]string{}
	if raw := os.Getenv("BENCH_OTHER_PLUGINS"); raw != "" {
		for _, item := range strings.Split(raw, ",") {
			name, path, ok := strings.Cut(item, "=")
			if !ok || name == "" || path == "" {
				b.Fatalf("BENCH_OTHER_PLUGINS: %q is not name=path", item)
			}
			others[name] = path
		}
	}
	env := newBenchEnv(b, kvBin, others)
	results := &benchResults{byName: map[string]benchResult{}}

	cases := []struct {
		name    string
		op      func(ctx context.Context, c *api.Client) error
		cleanup func(b *testing.B)
	}{
		{"kv_builtin", func(ctx context.Context, c *api.Client) error {
			return expectKV(c.Logical().ReadWithContext(ctx, "kvb/bench"))
		}, nil},
		{"kv_external_list", func(ctx context.Context, c *api.Client) error {
			sec, err := c.Logical().ListWithContext(ctx, "kvx/")
			if err == nil && (sec == nil || len(stringList(sec.Data["keys"])) == 0) {
				err = fmt.Errorf("kv list returned %v", sec)
			}
			return err
		}, nil},
		{"kv_external", func(ctx context.Context, c *api.Client) error {
			return expectKV(c.Logical().ReadWithContext(ctx, "kvx/bench"))
		}, func(b *testing.B) {
			// Every read left a lease (see above), which the kv plugin
			// cannot revoke ("secret is unsupported by this backend").
			must(b, env.v.Client.Sys().RevokeForce("kvx/"))
		}},
		{"token_create", func(ctx context.Context, c *api.Client) error {
			_, err := c.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{Policies: []string{"default"}, TTL: "1h", NoParent: true})
			return err
		}, nil},
		{"quay_create_token", env.mintOne(b), env.resetBareApp},
		{"creds_oauth", env.creds("oauth"), env.revokeRole("oauth")},
		{"creds_robot", env.creds("robot"), env.revokeRole("robot")},
	}
	for _, c := range cases {
		for _, clients := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/clients=%d", c.name, clients), func(b *testing.B) {
				r := runClients(b, env, clients, 0, c.op)
				results.put(c.name, clients, r)
				if c.cleanup != nil {
					b.StopTimer()
					c.cleanup(b)
				}
			})
		}
	}
	// A fresh robot with Vault idle between reads: the latency of one
	// creds read, without any queueing behind other requests.
	b.Run("creds_robot_paced/clients=1", func(b *testing.B) {
		results.put("creds_robot_paced", 1, runClients(b, env, 1, 200*time.Millisecond, env.creds("robot")))
		b.StopTimer()
		env.revokeRole("robot")(b)
	})
	b.Run("creds_oauth_paced/clients=1", func(b *testing.B) {
		results.put("creds_oauth_paced", 1, runClients(b, env, 1, 200*time.Millisecond, env.creds("oauth")))
		b.StopTimer()
		env.revokeRole("oauth")(b)
	})
	if len(env.others) > 0 {
		b.Run("creds_robot_interleaved/clients=1", func(b *testing.B) {
			results.interleaved = env.interleaved(b, 50*time.Millisecond, "creds/robot")
		})
		// The same for a role read (one storage read in the plugin):
		// what the engines differ by besides creating a credential.
		b.Run("role_read_interleaved/clients=1", func(b *testing.B) {
			results.interleavedRole = env.interleaved(b, 50*time.Millisecond, "roles/robot")
		})
	}

	// The floors and the creds reads again, in turn in short slices, so
	// that the goals' ratios compare numbers taken under the same load.
	inTurn := map[int]map[string]inTurnResult{}
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("in_turn/clients=%d", clients), func(b *testing.B) {
			inTurn[clients] = env.inTurn(b, clients, inTurnRounds(b), 250*time.Millisecond, env.inTurnTargets(b))
			b.StopTimer()
			env.inTurnCleanup(b)
		})
	}

	// Memory with no lease, then with `leases` live ones; revoke -prefix
	// of all of them; the same number of deletes sent to Quay directly.
	b.Run(fmt.Sprintf("revoke_prefix/leases=%d", leases), func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			env.revokeRole("oauth")(b)
			rss0 := env.pluginRSS(b)
			env.issue(b, "oauth", leases)
			rssN := env.pluginRSS(b)
			results.rss(rss0, rssN, leases)
			b.StartTimer()
			start := time.Now()
			must(b, env.v.Client.Sys().RevokePrefix(mount+"/creds/oauth"))
			results.revoke(time.Since(start), leases)
		}
		b.ReportMetric(results.revokePerLease.Seconds()*1000, "ms/lease")
		if ids := env.v.LeaseIDs(b, mount+"/creds/oauth"); len(ids) != 0 {
			b.Fatalf("%d leases left after revoke -prefix", len(ids))
		}
	})
	b.Run(fmt.Sprintf("quay_delete/tokens=%d", leases), func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			ids := env.mintDirect(b, leases)
			b.StartTimer()
			start := time.Now()
			env.deleteDirect(b, ids)
			results.quayDelete(time.Since(start), leases)
			b.StopTimer()
			env.resetBareApp(b)
		}
		b.ReportMetric(results.deletePerToken.Seconds()*1000, "ms/delete")
	})
	results.print(os.Stdout)
	printInTurn(os.Stdout, inTurn)
}

// benchEnv is the dev Vault (with our plugin at quay/ and HashiCorp's kv
// plugin at kvx/) and the emulator the side-by-side benchmark runs on.
type benchEnv struct {
	v   *Vault
	q   *Emulator
	org string
	// bareApp is an application of the benchmark's own for the bare Quay
	// calls; deleting it deletes its tokens, so they never pile up in the
	// emulator (whose token delete scans every token).
	bareApp string
	bareN   int
	// others are the mounts of BENCH_OTHER_PLUGINS, by name;
	// oauthOthers those of them that issue OAuth tokens.
	others, oauthOthers []string
}

func newBenchEnv(b *testing.B, kvBin string, others map[string]string) *benchEnv {
	b.Helper()
	dir, err := filepath.EvalSymlinks(b.TempDir())
	must(b, err)
	pluginDir := filepath.Join(dir, "plugins")
	must(b, os.MkdirAll(pluginDir, 0o755))
	must(b, copyFile(suite.pluginPath, filepath.Join(pluginDir, pluginName), 0o755))
	must(b, copyFile(kvBin, filepath.Join(pluginDir, "vault-plugin-secrets-kv"), 0o755))
	for name, path := range others {
		must(b, copyFile(path, filepath.Join(pluginDir, "other-"+name), 0o755))
	}

	env := &benchEnv{q: StartEmulator(b, EmulatorOptions{}), org: "acme"}
	env.q.CreateOrganization(b, env.org)
	env.q.Control.SeedRepository(b, env.org, "app", false)
	// Prometheus-format telemetry (cumulative counters) to count Vault's
	// storage operations per request.
	telemetry := filepath.Join(dir, "telemetry.hcl")
	must(b, os.WriteFile(telemetry, []byte("telemetry {\n  prometheus_retention_time = \"1h\"\n  disable_hostname = true\n}\n"), 0o600))
	// Vault at info, as in production: at debug the engine logs every
	// Quay call, and each plugin log line is a round trip to Vault too.
	logLevel := "info"
	if l := os.Getenv("BENCH_VAULT_LOG_LEVEL"); l != "" {
		logLevel = l
	}
	env.v = startDevVaultIn(b, pluginDir, false, "-config="+telemetry, "-log-level="+logLevel)
	s := &stack{Vault: env.v, Quay: env.q, Org: env.org}
	env.v.EnablePlugin(b, mount)
	s.configure(b)
	s.writeOAuthRole(b, "oauth", "ttl=1h", "max_ttl=2h")
	env.v.MustCLI(b, "write", mount+"/roles/robot", "namespace_name="+env.org, `repositories={"app":"read"}`, "ttl=1h")
	// kv version 1 on both sides: Vault lets only its builtin "kv" type
	// take the version option.
	env.v.MustCLI(b, "secrets", "enable", "-path=kvb", "kv")
	env.v.MustCLI(b, "secrets", "enable", "-path=kvx", "vault-plugin-secrets-kv")
	for _, path := range []string{"kvb/bench", "kvx/bench"} {
		env.v.MustCLI(b, "write", path, "username=demo", "password=not-a-secret")
	}
	for name := range others {
		// The fields of redhat-cop/vault-plugin-secrets-quay, which
		// this engine keeps.
		path := "other-" + name
		env.v.MustCLI(b, "secrets", "enable", "-path="+path, path)
		env.v.MustCLI(b, "write", path+"/config", "url="+env.q.URL, "token="+env.q.BootstrapToken)
		env.v.MustCLI(b, "write", path+"/roles/robot", "namespace_name="+env.org, `repositories={"app":"read"}`, "ttl=1h")
		// Another build of this engine issues OAuth tokens too (in_turn
		// compares them); redhat-cop's plugin ignores credential_type
		// and stores a robot role.
		env.v.CLI(b, "write", path+"/roles/oauth", "credential_type=oauth_token", "namespace_name="+env.org,
			"scopes=repo:read,user:read", "ttl=1h", "max_ttl=2h")
		if role, err := env.v.Client.Logical().Read(path + "/roles/oauth"); err == nil && role != nil && role.Data["credential_type"] == "oauth_token" {
			env.oauthOthers = append(env.oauthOthers, name)
		}
		env.others = append(env.others, name)
	}
	slices.Sort(env.others)
	slices.Sort(env.oauthOthers)
	env.resetBareApp(b)
	return env
}

func expectKV(sec *api.Secret, err error) error {
	if err != nil {
		return err
	}
	if sec == nil || sec.Data["username"] != "demo" {
		return fmt.Errorf("kv read returned %v", sec)
	}
	return nil
}

func (env *benchEnv) creds(role string) func(ctx context.Context, c *api.Client) error {
	return func(ctx context.Context, c *api.Client) error {
		sec, err := c.Logical().ReadWithContext(ctx, mount+"/creds/"+role)
		if err != nil {
			return err
		}
		if sec == nil || sec.LeaseID == "" {
			return fmt.Errorf("creds/%s returned no lease", role)
		}
		return nil
	}
}

// BenchmarkStaticCredsRead measures a static-creds read through a real
// Vault: a healthy robot (the one Quay call that checks it) and a robot
// deleted by hand before each read (the read that creates it again, grants
// it and stores it). quay-calls/op counts what reached the emulator.
//
//	make bench   # or: go test -tags e2e -run '^$' -bench StaticCredsRead ./e2e/
func BenchmarkStaticCredsRead(b *testing.B) {
	s := newStack(b)
	s.seedRepo(b, "app")
	s.Vault.MustCLI(b, "write", mount+"/static-roles/pull", "namespace_name="+s.Org, `repositories={"app":"read"}`, `teams={"builders":"member"}`)
	for _, heal := range []bool{false, true} {
		name := "healthy"
		if heal {
			name = "deleted_by_hand"
		}
		b.Run(name, func(b *testing.B) {
			c := s.Vault.Client
			calls := 0
			for b.Loop() {
				if heal {
					b.StopTimer()
					s.deleteRobotByHand(b, "pull")
					b.StartTimer()
				}
				b.StopTimer()
				s.Quay.Control.ResetCalls(b)
				b.StartTimer()
				sec, err := c.Logical().Read(mount + "/static-creds/pull")
				if err != nil || sec == nil || sec.Data["password"] == nil {
					b.Fatalf("static-creds: %v", err)
				}
				b.StopTimer()
				for _, n := range s.Quay.Control.Calls(b) {
					calls += n
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(calls)/float64(b.N), "quay-calls/op")
		})
	}
}

func (env *benchEnv) revokeRole(role string) func(b *testing.B) {
	return func(b *testing.B) {
		must(b, env.v.Client.Sys().RevokePrefix(mount+"/creds/"+role))
	}
}

// issue reads n creds of role with 16 clients.
func (env *benchEnv) issue(b *testing.B, role string, n int) {
	b.Helper()
	parallel(b, env.v, 16, n, func(ctx context.Context, c *api.Client, _ int) error {
		return env.creds(role)(ctx, c)
	})
}

// interleaved reads a fresh robot from quay/ and every other mount in turn,
// b.N rounds, idle pause before each read, and returns each mount's p50.
func (env *benchEnv) interleaved(b *testing.B, pause time.Duration, path string) map[string]time.Duration {
	b.Helper()
	mounts := append([]string{mount}, env.others...)
	paths := map[string]string{mount: mount}
	for _, name := range env.others {
		paths[name] = "other-" + name
	}
	lat := map[string][]time.Duration{}
	c := env.v.newClient(b)
	b.ResetTimer()
	for range b.N {
		for _, m := range mounts {
			b.StopTimer()
			time.Sleep(pause)
			b.StartTimer()
			t0 := time.Now()
			sec, err := c.Logical().Read(paths[m] + "/" + path)
			lat[m] = append(lat[m], time.Since(t0))
			if err != nil {
				b.Fatalf("%s/%s: %v", paths[m], path, err)
			}
			if sec == nil || (strings.HasPrefix(path, "creds/") && sec.LeaseID == "") {
				b.Fatalf("%s/%s returned no lease", paths[m], path)
			}
		}
	}
	b.StopTimer()
	out := map[string]time.Duration{}
	for _, m := range mounts {
		slices.Sort(lat[m])
		out[m] = lat[m][len(lat[m])/2]
		b.ReportMetric(float64(out[m].Microseconds())/1000, "p50-ms-"+m)
		if strings.HasPrefix(path, "creds/") {
			must(b, env.v.Client.Sys().RevokePrefix(paths[m]+"/"+path))
		}
	}
	return out
}

// resetBareApp deletes the bare calls' application (and with it its tokens)
// and creates a fresh one.
func (env *benchEnv) resetBareApp(b *testing.B) {
	b.Helper()
	base := "/api/v1/organization/" + env.org + "/applications"
	if env.bareApp != "" {
		if code, body := env.q.Do(b, http.MethodDelete, base+"/"+env.bareApp, env.q.BootstrapToken, nil); code != http.StatusNoContent {
			b.Fatalf("deleting the benchmark's application: %d %s", code, body)
		}
	}
	env.bareN++
	code, body := env.q.Do(b, http.MethodPost, base, env.q.BootstrapToken, map[string]string{"name": fmt.Sprintf("bench-bare-%d", env.bareN)})
	if code != http.StatusOK && code != http.StatusCreated {
		b.Fatalf("creating the benchmark's application: %d %s", code, body)
	}
	var app struct {
		ClientID string `json:"client_id"`
	}
	must(b, json.Unmarshal(body, &app))
	env.bareApp = app.ClientID
}

// mintOne is one bare token creation in Quay (what creds/oauth asks of
// Quay), sent with the bootstrap token from the benchmark process.
func (env *benchEnv) mintOne(b *testing.B) func(ctx context.Context, _ *api.Client) error {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	var n atomic.Int64
	return func(ctx context.Context, _ *api.Client) error {
		path := env.q.URL + "/api/v1/organization/" + env.org + "/applications/" + env.bareApp + "/tokens"
		code, _ := doJSON(b, hc, http.MethodPost, path, env.q.BootstrapToken, map[string]any{
			"name": fmt.Sprintf("bare-%d", n.Add(1)), "scope": "repo:read", "expiration": 3600,
		})
		if code != http.StatusOK {
			return fmt.Errorf("creating a token: %d", code)
		}
		return nil
	}
}

// mintDirect creates n tokens in Quay with the bootstrap token, as the
// engine would, without Vault.
func (env *benchEnv) mintDirect(b *testing.B, n int) []string {
	b.Helper()
	ids := make([]string, n)
	path := "/api/v1/organization/" + env.org + "/applications/" + env.bareApp + "/tokens"
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	parallel(b, env.v, 16, n, func(ctx context.Context, _ *api.Client, i int) error {
		code, body := doJSON(b, hc, http.MethodPost, env.q.URL+path, env.q.BootstrapToken, map[string]any{
			"name": fmt.Sprintf("bench-%d", i), "scope": "repo:read", "expiration": 3600,
		})
		if code != http.StatusOK {
			return fmt.Errorf("creating a token: %d", code)
		}
		var out struct {
			UUID string `json:"uuid"`
		}
		if err := json.Unmarshal(body, &out); err != nil || out.UUID == "" {
			return fmt.Errorf("creating a token: no uuid in the answer (%v)", err)
		}
		ids[i] = out.UUID
		return nil
	})
	return ids
}

// deleteDirect deletes tokens in Quay one after another on one kept-alive
// connection, as Vault's revoke -prefix does through the engine.
func (env *benchEnv) deleteDirect(b *testing.B, ids []string) {
	b.Helper()
	hc := &http.Client{Timeout: 30 * time.Second}
	for _, id := range ids {
		path := "/api/v1/organization/" + env.org + "/applications/" + env.bareApp + "/tokens/" + id
		if code, body := doJSON(b, hc, http.MethodDelete, env.q.URL+path, env.q.BootstrapToken, nil); code != http.StatusNoContent {
			b.Fatalf("DELETE %s: %d %s", path, code, body)
		}
	}
}

// pluginRSS is the resident memory of the plugin process (KiB).
func (env *benchEnv) pluginRSS(b *testing.B) int {
	b.Helper()
	pids := childPIDs(env.v.proc.cmd.Process.Pid, pluginName)
	if len(pids) != 1 {
		b.Fatalf("want one %s process under Vault, found %v", pluginName, pids)
	}
	kib, err := rssKiB(pids[0])
	must(b, err)
	return kib
}

// parallel runs f n times from the given number of clients, each with its
// own connection pool, and fails the benchmark on the first error.
func parallel(b *testing.B, v *Vault, clients, n int, f func(ctx context.Context, c *api.Client, i int) error) {
	b.Helper()
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range clients {
		c := v.newClient(b)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || firstErr.Load() != nil {
					return
				}
				if err := f(context.Background(), c, i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// benchResult is one case at one client count.
type benchResult struct {
	n             int
	p50, p90, p99 time.Duration
	rate          float64
	// cpu is CPU time per operation by process (user + system).
	cpu map[string]time.Duration
	// storage is Vault's storage operations per operation, by kind.
	storage map[string]float64
}

// storageKinds are the barrier (storage) operations Vault counts; a
// plugin's storage calls are among them, each a gRPC round trip from the
// plugin process to Vault.
var storageKinds = []string{"get", "put", "delete", "list"}

// storageCounts reads Vault's cumulative barrier operation counters.
func (env *benchEnv) storageCounts(b *testing.B) map[string]float64 {
	b.Helper()
	resp, err := env.v.Client.Logical().ReadRawWithData("sys/metrics", map[string][]string{"format": {"prometheus"}})
	must(b, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	must(b, err)
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		for _, kind := range storageKinds {
			if rest, ok := strings.CutPrefix(line, "vault_barrier_"+kind+"_count "); ok {
				var n float64
				fmt.Sscan(rest, &n)
				out[kind] = n
			}
		}
	}
	return out
}

// cpuSampler reads the CPU time of the processes a request passes through.
type cpuSampler struct {
	pids map[string][]int
}

func (env *benchEnv) cpuSampler() cpuSampler {
	vault := env.v.proc.cmd.Process.Pid
	return cpuSampler{pids: map[string][]int{
		"vault":        {vault},
		"quay plugin":  childPIDs(vault, pluginName),
		"kv plugin":    childPIDs(vault, "vault-plugin-secrets-kv"),
		"emulator":     {env.q.proc.cmd.Process.Pid},
		"bench client": {os.Getpid()},
	}}
}

// sample returns each process group's CPU time so far.
func (c cpuSampler) sample() map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, pids := range c.pids {
		for _, pid := range pids {
			out[name] += cpuTime(pid)
		}
	}
	return out
}

// cpuTime is a process's user + system time from /proc/<pid>/stat, in
// clock ticks of 10 ms (USER_HZ is 100 on Linux).
func cpuTime(pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	var utime, stime int64
	fmt.Sscan(fields[11], &utime)
	fmt.Sscan(fields[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// runClients runs op b.N times from clients goroutines and reports the
// latency percentiles and rate; pause idles (untimed) between operations.
func runClients(b *testing.B, env *benchEnv, clients int, pause time.Duration, op func(ctx context.Context, c *api.Client) error) benchResult {
	b.Helper()
	v := env.v
	lat := make([]time.Duration, b.N)
	var busy atomic.Int64
	sampler := env.cpuSampler()
	before := sampler.sample()
	storageBefore := env.storageCounts(b)
	b.ResetTimer()
	start := time.Now()
	parallel(b, v, clients, b.N, func(ctx context.Context, c *api.Client, i int) error {
		if pause > 0 {
			b.StopTimer()
			time.Sleep(pause)
			b.StartTimer()
		}
		t0 := time.Now()
		err := op(ctx, c)
		lat[i] = time.Since(t0)
		busy.Add(int64(lat[i]))
		return err
	})
	elapsed := time.Since(start)
	b.StopTimer()
	after := sampler.sample()
	storageAfter := env.storageCounts(b)
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	r := benchResult{n: b.N, p50: pct(0.50), p90: pct(0.90), p99: pct(0.99), cpu: map[string]time.Duration{}, storage: map[string]float64{}}
	for _, kind := range storageKinds {
		r.storage[kind] = (storageAfter[kind] - storageBefore[kind]) / float64(b.N)
	}
	for name := range after {
		r.cpu[name] = (after[name] - before[name]) / time.Duration(b.N)
	}
	if pause > 0 {
		// Idle time is not throughput: the rate of a paced run is
		// what one client achieves back to back.
		r.rate = float64(b.N) / time.Duration(busy.Load()).Seconds()
	} else {
		r.rate = float64(b.N) / elapsed.Seconds()
	}
	b.ReportMetric(float64(r.p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(r.p90.Microseconds())/1000, "p90-ms")
	b.ReportMetric(float64(r.p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(r.rate, "ops/s")
	return r
}

// benchResults keeps the last (longest) run of every case.
type benchResults struct {
	mu             sync.Mutex
	byName         map[string]benchResult
	revokeTotal    time.Duration
	revokePerLease time.Duration
	deleteTotal    time.Duration
	deletePerToken time.Duration
	rss0, rssN     int
	leases         int
	// interleaved is each mount's fresh-robot p50 (BENCH_OTHER_PLUGINS),
	// interleavedRole its role read's.
	interleaved, interleavedRole map[string]time.Duration
}

func (r *benchResults) put(name string, clients int, res benchResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byName[fmt.Sprintf("%s/%d", name, clients)] = res
}

func (r *benchResults) get(name string, clients int) (benchResult, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.byName[fmt.Sprintf("%s/%d", name, clients)]
	return res, ok
}

func (r *benchResults) revoke(d time.Duration, n int) {
	r.revokeTotal, r.revokePerLease, r.leases = d, d/time.Duration(n), n
}

func (r *benchResults) quayDelete(d time.Duration, n int) {
	r.deleteTotal, r.deletePerToken = d, d/time.Duration(n)
}

func (r *benchResults) rss(zero, n, leases int) { r.rss0, r.rssN, r.leases = zero, n, leases }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }

// print writes the side-by-side table and the goals of issue 9 with their
// ratios.
func (r *benchResults) print(out *os.File) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\nside by side (one dev Vault, one emulator, this machine)\t\t\t\t\t\t")
	fmt.Fprintln(w, "case\tclients\tn\tp50 ms\tp90 ms\tp99 ms\tops/s\t")
	names := []string{"kv_builtin", "kv_external_list", "kv_external", "token_create", "quay_create_token", "creds_oauth", "creds_robot", "creds_oauth_paced", "creds_robot_paced"}
	for _, name := range names {
		for _, clients := range []int{1, 16} {
			if res, ok := r.get(name, clients); ok {
				fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\t%.0f\t\n", name, clients, res.n, ms(res.p50), ms(res.p90), ms(res.p99), res.rate)
			}
		}
	}
	w.Flush()

	// Where the CPU goes at 16 clients: on a machine this busy the rate
	// is bounded by the CPU all processes spend per operation.
	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	procs := []string{"vault", "quay plugin", "kv plugin", "emulator", "bench client"}
	fmt.Fprintf(w, "\nCPU ms per operation, 16 clients\t%s\ttotal\t\n", strings.Join(procs, "\t"))
	for _, name := range names {
		res, ok := r.get(name, 16)
		if !ok {
			continue
		}
		var total time.Duration
		row := name
		for _, p := range procs {
			row += "\t" + ms(res.cpu[p])
			total += res.cpu[p]
		}
		fmt.Fprintf(w, "%s\t%s\t\n", row, ms(total))
	}
	w.Flush()

	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "\nVault storage operations per request, 1 client\t%s\t\n", strings.Join(storageKinds, "\t"))
	for _, name := range names {
		res, ok := r.get(name, 1)
		if !ok {
			continue
		}
		row := name
		for _, kind := range storageKinds {
			row += fmt.Sprintf("\t%.1f", res.storage[kind])
		}
		fmt.Fprintf(w, "%s\t\n", row)
	}
	w.Flush()

	if len(r.interleaved) > 0 {
		w = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "\nmounts in turn, one client, idle 50 ms before each read\tcreds/robot p50 ms\tvs quay/\troles/robot p50 ms\tvs quay/\t")
		base, baseRole := r.interleaved[mount], r.interleavedRole[mount]
		for _, m := range sortedKeys(r.interleaved) {
			role := r.interleavedRole[m]
			fmt.Fprintf(w, "%s\t%s\t%.2fx\t%s\t%.2fx\t\n", m, ms(r.interleaved[m]), float64(r.interleaved[m])/float64(base),
				ms(role), float64(role)/float64(max(baseRole, 1)))
		}
		w.Flush()
	}

	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\ngoal\tmeasured\tverdict")
	kv1, okKV1 := r.get("kv_external", 1)
	kv16, okKV16 := r.get("kv_external", 16)
	tok1, okTok := r.get("token_create", 1)
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT MET"
	}
	// One Quay round trip: a bare token creation from outside Vault.
	var quayRT time.Duration
	if q, ok := r.get("quay_create_token", 1); ok {
		quayRT = q.p50
	}
	for _, name := range []string{"creds_oauth", "creds_robot"} {
		if c16, ok := r.get(name, 16); ok && okKV16 {
			ratio := c16.rate / kv16.rate
			fmt.Fprintf(w, "%s rate at 16 clients >= 90%% of external kv\t%.0f/s vs %.0f/s = %.0f%%\t%s\n", name, c16.rate, kv16.rate, 100*ratio, verdict(ratio >= 0.9))
		}
		if c1, ok := r.get(name, 1); ok && okKV1 && okTok && quayRT > 0 {
			floor := kv1.p50 + tok1.p50 + quayRT
			fmt.Fprintf(w, "%s p50 at 1 client <= kv p50 + token p50 + Quay RT\t%s ms vs %s+%s+%s = %s ms (%.2fx)\t%s\n", name, ms(c1.p50),
				ms(kv1.p50), ms(tok1.p50), ms(quayRT), ms(floor), float64(c1.p50)/float64(floor), verdict(c1.p50 <= floor))
		}
	}
	if r.revokePerLease > 0 && okKV1 && r.deletePerToken > 0 {
		floor := kv1.p50 + r.deletePerToken
		ratio := float64(r.revokePerLease) / float64(floor)
		fmt.Fprintf(w, "revoke -prefix per lease <= 1.2 x (kv p50 + Quay delete)\t%s ms vs 1.2 x %s ms (%d leases in %s; bare deletes %s) = %.2fx\t%s\n",
			ms(r.revokePerLease), ms(floor), r.leases, r.revokeTotal.Round(time.Millisecond), r.deleteTotal.Round(time.Millisecond), ratio, verdict(ratio <= 1.2))
	}
	if rc, ok := r.interleaved["redhatcop"]; ok {
		q := r.interleaved[mount]
		fmt.Fprintf(w, "fresh robot p50 below redhat-cop's (mounts in turn)\t%s ms vs %s ms (%.2fx)\t%s\n", ms(q), ms(rc), float64(q)/float64(rc), verdict(q < rc))
	}
	if r.rss0 > 0 {
		growth := float64(r.rssN-r.rss0) / float64(r.rss0)
		fmt.Fprintf(w, "plugin RSS within 10%% from 0 to %d leases\t%d KiB -> %d KiB (%+.1f%%)\t%s\n", r.leases, r.rss0, r.rssN, 100*growth, verdict(growth <= 0.10))
	}
	w.Flush()
	fmt.Fprintln(out, strings.Repeat("-", 40))
}
