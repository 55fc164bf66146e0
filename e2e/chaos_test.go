//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// The chaos soak: a seeded, reproducible mix of OAuth and robot creds,
// renewals, revocations, revoke -prefix, static rotations, root rotations
// and tidy on a three-node Raft cluster, while about a fifth of Quay's API
// calls fail (503, 502, bursts of 429 without Retry-After, dropped
// connections, answers slower than request_timeout), the plugin process is
// killed now and then and the leader a few times. Then every lease is
// revoked, tidy runs, and the soak asserts what the engine promises: no
// credential in Quay that nothing owns, no lease left, exactly one valid
// root token, every static robot's password working, and no secret in any
// Vault, plugin or emulator log (Vault logs at trace level).
//
//	make chaos                              # 1,000 cycles, random seed
//	make chaos CHAOS_CYCLES=200 CHAOS_SEED=42
//
// Environment (the test is skipped without CHAOS_CYCLES):
//
//	CHAOS_CYCLES       cycles to run
//	CHAOS_SEED         seed (default: from the clock; always printed)
//	CHAOS_WORKERS      operations per cycle, run concurrently (default 4;
//	                   1 runs them one after another)
//	CHAOS_FAULT_RATE   share of Quay API calls given a fault (default 0.2)
//	CHAOS_LEADER_KILLS leader kills (default max(2, cycles/200))
//	CHAOS_REPORT       where to write the JSON report (default: none)
//
// A cycle plans everything from the seeded generator before it runs (the
// operations, the node each goes to, which Quay call slots fail and how,
// whether the plugin or the leader is killed), so a seed replays the same
// plan. With several workers the interleaving of calls, and so which
// request meets which fault, varies with timing.

type chaosConfig struct {
	Cycles      int
	Seed        uint64
	Workers     int
	FaultRate   float64
	LeaderKills int
	Report      string
}

func chaosConfigFromEnv(t *testing.T) chaosConfig {
	t.Helper()
	raw := os.Getenv("CHAOS_CYCLES")
	if raw == "" {
		t.Skip("the chaos soak runs with CHAOS_CYCLES set (make chaos)")
	}
	cfg := chaosConfig{Workers: 4, FaultRate: 0.2, Report: os.Getenv("CHAOS_REPORT")}
	var err error
	if cfg.Cycles, err = strconv.Atoi(raw); err != nil || cfg.Cycles < 1 {
		t.Fatalf("CHAOS_CYCLES=%q: want a positive number", raw)
	}
	cfg.Seed = uint64(time.Now().UnixNano())
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		if cfg.Seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("CHAOS_SEED=%q: want an unsigned number", s)
		}
	}
	if s := os.Getenv("CHAOS_WORKERS"); s != "" {
		if cfg.Workers, err = strconv.Atoi(s); err != nil || cfg.Workers < 1 {
			t.Fatalf("CHAOS_WORKERS=%q: want a positive number", s)
		}
	}
	if s := os.Getenv("CHAOS_FAULT_RATE"); s != "" {
		if cfg.FaultRate, err = strconv.ParseFloat(s, 64); err != nil || cfg.FaultRate < 0 || cfg.FaultRate > 1 {
			t.Fatalf("CHAOS_FAULT_RATE=%q: want a number between 0 and 1", s)
		}
	}
	cfg.LeaderKills = max(2, cfg.Cycles/200)
	if s := os.Getenv("CHAOS_LEADER_KILLS"); s != "" {
		if cfg.LeaderKills, err = strconv.Atoi(s); err != nil || cfg.LeaderKills < 0 {
			t.Fatalf("CHAOS_LEADER_KILLS=%q: want a number", s)
		}
	}
	return cfg
}

// Operations of the mix, with their weights and the Quay calls each is
// expected to make (to size a cycle's fault plan).
type chaosOp string

const (
	opCredsOAuth   chaosOp = "creds oauth"
	opCredsRobot   chaosOp = "creds robot"
	opRenew        chaosOp = "renew"
	opRevoke       chaosOp = "revoke"
	opRevokePrefix chaosOp = "revoke -prefix"
	opRotateStatic chaosOp = "rotate-role"
	opRotateRoot   chaosOp = "rotate-root"
	opTidy         chaosOp = "tidy"
	opStaticRead   chaosOp = "static-creds"
)

var chaosMix = []struct {
	op     chaosOp
	weight int
	calls  int
}{
	{opCredsOAuth, 22, 1},
	{opCredsRobot, 22, 2},
	{opRenew, 16, 0},
	{opRevoke, 16, 1},
	{opRevokePrefix, 2, 3},
	{opRotateStatic, 8, 1},
	{opRotateRoot, 4, 3},
	{opTidy, 4, 2},
	{opStaticRead, 6, 0},
}

// Faults, with their weights among faulted calls.
const (
	faultPass    = "pass"
	fault503     = "503"
	fault502     = "502"
	fault429     = "429 burst (no Retry-After)"
	faultDrop    = "dropped connection"
	faultSlow    = "latency past request_timeout"
	chaosTimeout = 2 * time.Second
	chaosMaxTTL  = 6 * time.Minute
	// chaosSettle bounds the wait for a clean Quay after the final
	// revocation: a robot whose lease was lost is an orphan for tidy only
	// once its max TTL and tidy's 5-minute grace have passed.
	chaosSettleLimit = chaosMaxTTL + 5*time.Minute + 3*time.Minute
	slowFaultWait    = chaosTimeout + time.Second
)

var faultMix = []struct {
	kind   string
	weight int
}{{fault503, 25}, {fault502, 20}, {fault429, 25}, {faultDrop, 15}, {faultSlow, 15}}

type plannedOp struct {
	op   chaosOp
	node int
	// pick chooses a lease (renew, revoke) or a role (static, prefix).
	pick float64
}

type faultSlot struct {
	kind  string
	fault Fault
}

type cyclePlan struct {
	ops        []plannedOp
	slots      []faultSlot
	killPlugin bool
	killLeader bool
	killDelay  time.Duration
}

// chaosPlanner draws every cycle's plan from the seed.
type chaosPlanner struct {
	rng         *rand.Rand
	cfg         chaosConfig
	nodes       int
	leaderKills map[int]bool
	// faultDecision is the chance a slot starts a fault: a 429 burst
	// fills 2-4 slots, so it is below FaultRate.
	faultDecision float64
}

func newChaosPlanner(cfg chaosConfig, nodes int) *chaosPlanner {
	p := &chaosPlanner{rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), cfg: cfg, nodes: nodes, leaderKills: map[int]bool{}}
	// Expected slots per fault: bursts of 429 take three on average.
	total, weighted := 0.0, 0.0
	for _, f := range faultMix {
		slots := 1.0
		if f.kind == fault429 {
			slots = 3
		}
		total += float64(f.weight)
		weighted += float64(f.weight) * slots
	}
	perFault := weighted / total
	// rate = d*perFault / (d*perFault + 1 - d), solved for d.
	p.faultDecision = cfg.FaultRate / (perFault - cfg.FaultRate*(perFault-1))
	// Spread the leader kills over the run, each at a random cycle of
	// its stretch.
	for k := 0; k < cfg.LeaderKills; k++ {
		lo := cfg.Cycles * k / cfg.LeaderKills
		hi := cfg.Cycles * (k + 1) / cfg.LeaderKills
		if hi > lo {
			p.leaderKills[lo+p.rng.IntN(hi-lo)] = true
		}
	}
	return p
}

func (p *chaosPlanner) plan(cycle int) cyclePlan {
	var c cyclePlan
	total := 0
	for _, m := range chaosMix {
		total += m.weight
	}
	calls := 0
	for range p.cfg.Workers {
		n := p.rng.IntN(total)
		for _, m := range chaosMix {
			if n < m.weight {
				c.ops = append(c.ops, plannedOp{op: m.op, node: p.rng.IntN(p.nodes), pick: p.rng.Float64()})
				calls += m.calls
				break
			}
			n -= m.weight
		}
	}
	// Twice the expected calls, so retries and the periodic function
	// meet the same rate; calls beyond the plan pass.
	slots := max(4, 2*calls)
	faultTotal := 0
	for _, f := range faultMix {
		faultTotal += f.weight
	}
	for len(c.slots) < slots {
		if p.rng.Float64() >= p.faultDecision {
			c.slots = append(c.slots, faultSlot{kind: faultPass})
			continue
		}
		n := p.rng.IntN(faultTotal)
		kind := ""
		for _, f := range faultMix {
			if n < f.weight {
				kind = f.kind
				break
			}
			n -= f.weight
		}
		switch kind {
		case fault503:
			c.slots = append(c.slots, faultSlot{kind, Fault{Status: http.StatusServiceUnavailable}})
		case fault502:
			c.slots = append(c.slots, faultSlot{kind, Fault{Status: http.StatusBadGateway}})
		case fault429:
			// A burst: the next 2-4 calls are all refused.
			for range 2 + p.rng.IntN(3) {
				c.slots = append(c.slots, faultSlot{kind, Fault{Status: http.StatusTooManyRequests}})
			}
		case faultDrop:
			c.slots = append(c.slots, faultSlot{kind, Fault{Drop: true}})
		case faultSlow:
			c.slots = append(c.slots, faultSlot{kind, Fault{LatencyMillis: slowFaultWait.Milliseconds()}})
		}
	}
	c.killPlugin = p.rng.Float64() < 0.02
	c.killLeader = p.leaderKills[cycle]
	c.killDelay = time.Duration(p.rng.IntN(300)) * time.Millisecond
	return c
}

// chaosLease is a lease the soak knows of.
type chaosLease struct {
	role    string
	expires time.Time
}

// chaosState is what the soak tracks while it runs.
type chaosState struct {
	mu      sync.Mutex
	leases  map[string]chaosLease
	secrets map[string]bool
	report  *chaosReport
	// login is a registry login with a robot's credentials (GET
	// /v2/auth, which the soak never faults): its HTTP status.
	login func(username, password string) (int, error)
}

func (s *chaosState) count(op chaosOp, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.report.Operations[op]
	if c == nil {
		c = &opCount{}
		s.report.Operations[op] = c
	}
	if err == nil {
		c.OK++
		return
	}
	c.Errors++
	kind := classifyError(err)
	s.report.ClientErrors[string(op)+": "+truncate(kind, 240)]++
	s.report.ClientErrorClasses[errorCause(kind)]++
}

func (s *chaosState) remember(secrets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range secrets {
		if len(v) >= 16 {
			s.secrets[v] = true
		}
	}
}

// pickLease chooses a lease the soak knows of, forgetting expired ones.
func (s *chaosState) pickLease(pick float64) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.leases))
	for id, l := range s.leases {
		if time.Now().After(l.expires) {
			delete(s.leases, id) // Vault revokes it itself
			continue
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return "", false
	}
	sort.Strings(ids)
	return ids[int(pick*float64(len(ids)))], true
}

func TestChaosSoak(t *testing.T) {
	cfg := chaosConfigFromEnv(t)
	replay := fmt.Sprintf("make chaos CHAOS_SEED=%d CHAOS_CYCLES=%d CHAOS_WORKERS=%d", cfg.Seed, cfg.Cycles, cfg.Workers)
	fmt.Fprintf(os.Stderr, "chaos: seed %d, %d cycles, %d workers, fault rate %.2f, %d leader kills; replay: %s\n",
		cfg.Seed, cfg.Cycles, cfg.Workers, cfg.FaultRate, cfg.LeaderKills, replay)

	cs := newClusterStack(t, ClusterOptions{LogLevel: "trace"},
		"request_timeout="+chaosTimeout.String(), "root_rotation_period=1m", "tidy_interval=10m")
	leader := cs.on(cs.C.Leader(t))
	// max_ttl above the write-ahead rollback age (5 minutes): an OAuth
	// token orphaned by a failure must be deleted by the engine, not
	// merely expire in Quay. It also bounds what nothing can track: a
	// credential whose lease Vault never stored (the plugin or the leader
	// killed between the engine's answer and Vault storing the lease)
	// expires in Quay at max_ttl (OAuth) or is deleted by tidy 5 minutes
	// after it (robots).
	leader.writeOAuthRole(t, "oauth", "ttl=2m", "max_ttl="+chaosMaxTTL.String())
	leader.Vault.MustCLI(t, "write", mount+"/roles/robot", "namespace_name="+cs.Org, `repositories={"app":"read"}`, "ttl=2m", "max_ttl="+chaosMaxTTL.String())
	statics := []string{"s1", "s2"}
	for _, name := range statics {
		leader.Vault.MustCLI(t, "write", mount+"/static-roles/"+name, "namespace_name="+cs.Org, `repositories={"app":"read"}`, "rotation_period=1m")
	}

	st := &chaosState{leases: map[string]chaosLease{}, secrets: map[string]bool{}, report: &chaosReport{
		Seed: cfg.Seed, Cycles: cfg.Cycles, Workers: cfg.Workers, FaultRate: cfg.FaultRate,
		Operations: map[chaosOp]*opCount{}, Faults: map[string]int{}, ClientErrors: map[string]int{}, ClientErrorClasses: map[string]int{},
		OrphansRemoved: map[string]int{}, Replay: replay,
	}}
	rep := st.report
	st.remember(cs.Quay.BootstrapToken, cs.C.Token, cs.C.UnsealKey)
	loginClient := &http.Client{Timeout: 10 * time.Second}
	registryHost := strings.TrimPrefix(cs.Quay.URL, "http://")
	st.login = func(username, password string) (int, error) {
		req, err := http.NewRequest(http.MethodGet, cs.Quay.URL+"/v2/auth?service="+registryHost, nil)
		if err != nil {
			return 0, err
		}
		req.SetBasicAuth(username, password)
		resp, err := loginClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	clients := make([]*api.Client, len(cs.C.Nodes))
	for i, v := range cs.C.Nodes {
		clients[i] = v.newClient(t)
	}

	failed := func() {
		if t.Failed() {
			fmt.Fprintf(os.Stderr, "chaos: FAILED with seed %d; replay: %s\n", cfg.Seed, replay)
		}
	}
	defer failed()

	planner := newChaosPlanner(cfg, len(cs.C.Nodes))
	cs.Quay.Control.ResetCalls(t)
	start := time.Now()
	for cycle := range cfg.Cycles {
		plan := planner.plan(cycle)
		for _, s := range plan.slots {
			f := s.fault
			f.PathPrefix, f.Count = "/api/v1/", 1
			cs.Quay.Control.AddFault(t, f)
		}
		var wg sync.WaitGroup
		for _, op := range plan.ops {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st.run(op, clients[op.node], statics)
			}()
		}
		killed := -1
		if plan.killPlugin || plan.killLeader {
			time.Sleep(plan.killDelay)
		}
		if plan.killPlugin {
			if cs.C.KillPlugin(t) > 0 {
				rep.PluginKills++
			}
		}
		var killedAt time.Time
		if plan.killLeader {
			killed = cs.C.LeaderIndex(t)
			killedAt = time.Now()
			cs.C.KillNode(t, killed)
			rep.LeaderKills++
		}
		wg.Wait()
		st.collectFaults(t, cs.Quay, plan.slots)
		if killed >= 0 {
			cs.C.LeaderIndex(t)
			rep.FailoverSec = append(rep.FailoverSec, time.Since(killedAt).Seconds())
			cs.C.RestartNode(t, killed)
		}
		if (cycle+1)%50 == 0 {
			st.mu.Lock()
			live := len(st.leases)
			st.mu.Unlock()
			fmt.Fprintf(os.Stderr, "chaos: %d/%d cycles after %s, %d leases live\n", cycle+1, cfg.Cycles, time.Since(start).Round(time.Second), live)
		}
	}
	rep.DurationSec = time.Since(start).Seconds()
	calls := cs.Quay.Control.Calls(t)
	cs.Quay.Control.ClearFaults(t)
	for route, n := range calls {
		if !strings.HasPrefix(route, "v2") && route != "listServiceKeys" {
			rep.QuayAPICalls += n
		}
	}
	faulted := 0
	for _, n := range rep.Faults {
		faulted += n
	}
	if rep.QuayAPICalls > 0 {
		rep.FaultedShare = float64(faulted) / float64(rep.QuayAPICalls)
	}

	cs.chaosSettle(t, st, statics)
	cs.chaosScanLogs(t, st)
	if t.Failed() {
		rep.Result = "fail"
	} else {
		rep.Result = "pass"
	}
	rep.print(os.Stdout)
	if cfg.Report != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		must(t, err)
		must(t, os.WriteFile(cfg.Report, append(b, '\n'), 0o644))
		fmt.Fprintf(os.Stderr, "chaos: report written to %s\n", cfg.Report)
	}
}

// run performs one planned operation against one node.
func (st *chaosState) run(p plannedOp, c *api.Client, statics []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var err error
	switch p.op {
	case opCredsOAuth, opCredsRobot:
		role := "oauth"
		if p.op == opCredsRobot {
			role = "robot"
		}
		var sec *api.Secret
		sec, err = c.Logical().ReadWithContext(ctx, mount+"/creds/"+role)
		if err == nil && (sec == nil || sec.LeaseID == "") {
			err = errors.New("creds answer without a lease")
		}
		if err == nil {
			for _, k := range []string{"token", "password", "auth", "docker_config_json"} {
				if v, ok := sec.Data[k].(string); ok {
					st.remember(v)
				}
			}
			st.mu.Lock()
			st.leases[sec.LeaseID] = chaosLease{role: role, expires: time.Now().Add(time.Duration(sec.LeaseDuration) * time.Second)}
			st.mu.Unlock()
		}
	case opRenew:
		id, ok := st.pickLease(p.pick)
		if !ok {
			return
		}
		var sec *api.Secret
		sec, err = c.Sys().RenewWithContext(ctx, id, 0)
		st.mu.Lock()
		if err == nil && sec != nil {
			if l, ok := st.leases[id]; ok {
				l.expires = time.Now().Add(time.Duration(sec.LeaseDuration) * time.Second)
				st.leases[id] = l
			}
		} else if err != nil && strings.Contains(err.Error(), "lease not found") {
			delete(st.leases, id)
		}
		st.mu.Unlock()
	case opRevoke:
		id, ok := st.pickLease(p.pick)
		if !ok {
			return
		}
		if err = c.Sys().RevokeWithContext(ctx, id); err == nil {
			st.mu.Lock()
			delete(st.leases, id)
			st.mu.Unlock()
		}
	case opRevokePrefix:
		role := []string{"oauth", "robot"}[int(p.pick*2)]
		if err = c.Sys().RevokePrefixWithContext(ctx, mount+"/creds/"+role); err == nil {
			st.mu.Lock()
			for id, l := range st.leases {
				if l.role == role {
					delete(st.leases, id)
				}
			}
			st.mu.Unlock()
		}
	case opRotateStatic:
		_, err = c.Logical().WriteWithContext(ctx, mount+"/rotate-role/"+statics[int(p.pick*float64(len(statics)))], nil)
	case opRotateRoot:
		_, err = c.Logical().WriteWithContext(ctx, mount+"/config/rotate-root", nil)
	case opTidy:
		_, err = c.Logical().WriteWithContext(ctx, mount+"/tidy", map[string]any{})
	case opStaticRead:
		var sec *api.Secret
		path := mount + "/static-creds/" + statics[int(p.pick*float64(len(statics)))]
		sec, err = c.Logical().ReadWithContext(ctx, path)
		if err == nil && sec != nil {
			for _, k := range []string{"password", "auth", "docker_config_json"} {
				if v, ok := sec.Data[k].(string); ok {
					st.remember(v)
				}
			}
			// What a user of static-creds meets: does the password
			// work in Quay now?
			user, _ := sec.Data["username"].(string)
			pw, _ := sec.Data["password"].(string)
			if code, lerr := st.login(user, pw); lerr == nil {
				rotated := code != http.StatusOK && st.rotatedSince(ctx, c, path, pw)
				st.mu.Lock()
				switch {
				case code == http.StatusOK:
					st.report.StaticLogins.OK++
				case rotated:
					st.report.StaticRotatedMeanwhile++
				default:
					st.report.StaticLogins.Errors++
				}
				st.mu.Unlock()
			}
		}
	}
	st.count(p.op, err)
}

// collectFaults counts the planned faults Quay calls actually met, then
// removes the rest.
func (st *chaosState) collectFaults(t testing.TB, q *Emulator, slots []faultSlot) {
	t.Helper()
	var out struct {
		Faults []struct {
			Remaining int `json:"remaining"`
		} `json:"faults"`
	}
	q.Control.must(t, http.MethodGet, "/faults", nil, http.StatusOK, &out)
	q.Control.ClearFaults(t)
	st.mu.Lock()
	defer st.mu.Unlock()
	for i, f := range out.Faults {
		if i < len(slots) && f.Remaining == 0 && slots[i].kind != faultPass {
			st.report.Faults[slots[i].kind]++
		}
	}
}

// chaosSettle revokes every lease, runs tidy, and waits until Quay holds
// exactly what Vault owns; it records how long that took.
func (cs *clusterStack) chaosSettle(t *testing.T, st *chaosState, statics []string) {
	t.Helper()
	rep := st.report
	leader := cs.on(cs.C.Leader(t))
	// A scheduled root rotation keeps the token it replaced valid for a
	// grace period; with the schedule running every minute there would
	// always be one. Stop it, as an operator would before counting.
	leader.Vault.MustCLI(t, "write", mount+"/config", "root_rotation_period=0")
	if res := leader.Vault.CLI(t, "lease", "revoke", "-sync", "-prefix", mount+"/creds/"); res.ExitCode != 0 {
		t.Errorf("revoking every lease after the run: %s", res)
		// Once more: a revocation Vault was still retrying may race it.
		leader.Vault.MustCLI(t, "lease", "revoke", "-sync", "-prefix", mount+"/creds/")
	}
	revoked := time.Now()
	for _, role := range []string{"oauth", "robot"} {
		rep.LeasesLeft += len(leader.Vault.LeaseIDs(t, mount+"/creds/"+role))
	}
	if rep.LeasesLeft != 0 {
		t.Errorf("%d leases left after revoke -prefix %s/creds/", rep.LeasesLeft, mount)
	}
	tidy := func() {
		if res := leader.Vault.CLI(t, "write", "-f", mount+"/tidy"); res.ExitCode != 0 {
			t.Logf("tidy: %s", cliOutcome(res))
		}
	}
	tidy()

	own := newOwnership()
	for _, name := range statics {
		user, _ := cs.staticPassword(t, leader.Vault, name)
		own.Robots[user] = true
	}
	own.RootToken = cs.rootTokenID(t, leader.Vault)
	first := true
	firstOAuth := map[string]string{}
	var last string
	deadline := revoked.Add(chaosSettleLimit)
	lastTidy := time.Now()
	for {
		own.RootToken = cs.rootTokenID(t, leader.Vault)
		inv := cs.inventory(t)
		orphans, missing := inv.orphans(own)
		if first {
			rep.OrphansAfterRevoke = orphans
			for _, o := range orphans {
				if id, ok := strings.CutPrefix(o, "oauth token "); ok {
					firstOAuth[id] = inv.OAuthNames[id]
				}
			}
			first = false
		}
		var broken []string
		for _, name := range statics {
			user, pw := cs.staticPassword(t, leader.Vault, name)
			if cs.Quay.robotLogin(t, user, pw) != http.StatusOK {
				broken = append(broken, name)
			}
		}
		if len(orphans)+len(missing)+len(broken) == 0 {
			break
		}
		last = fmt.Sprintf("orphans %v, missing %v, static roles whose password Quay refuses %v", orphans, missing, broken)
		if time.Now().After(deadline) {
			rep.OrphansLeft = len(orphans)
			t.Errorf("%s after every lease was revoked: %s", chaosSettleLimit, last)
			rep.Failures = append(rep.Failures, last)
			break
		}
		// An operator's tidy every minute (the scheduled one is every
		// ten): robots whose write-ahead entries aged past the
		// rollback age go now.
		if time.Since(lastTidy) > time.Minute {
			tidy()
			lastTidy = time.Now()
		}
		time.Sleep(5 * time.Second)
	}
	rep.TimeToCleanSec = time.Since(revoked).Seconds()
	logs := cs.C.Logs()
	for id, name := range firstOAuth {
		if cs.Quay.Control.TokenExists(t, id) {
			// Whether the engine answered with it (its lease was
			// lost after that) or died before answering.
			story := "never handed out"
			if strings.Contains(logs, "token_name="+name) {
				story = "handed out, lease never stored"
			}
			rep.OrphansExpired = append(rep.OrphansExpired, id+" "+name+": "+story)
		}
	}
	sort.Strings(rep.OrphansExpired)
	ids := cs.Quay.rootTokenIDs(t, cs.insp, cs.RootOrg)
	rep.RootTokens = len(ids)
	if len(ids) != 1 || ids[0] != own.RootToken {
		msg := fmt.Sprintf("root application tokens %v, want exactly the config's %s", ids, own.RootToken)
		t.Error(msg)
		rep.Failures = append(rep.Failures, msg)
	}
	if rep.LeasesLeft != 0 {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%d leases left", rep.LeasesLeft))
	}
}

// rotatedSince reads static-creds again after Quay refused the password pw
// it served: true when the read serves another password and heals nothing
// (a rotation came between the first read and the login), false when it
// serves pw again or had to heal drift (the first read served a stale
// password). Quay faults may fail a read: up to three tries.
func (st *chaosState) rotatedSince(ctx context.Context, c *api.Client, path, pw string) bool {
	for range 3 {
		sec, err := c.Logical().ReadWithContext(ctx, path)
		if err != nil || sec == nil {
			continue
		}
		if v, ok := sec.Data["password"].(string); ok {
			st.remember(v)
			for _, w := range sec.Warnings {
				if strings.Contains(w, "outside Vault") {
					return false
				}
			}
			return v != pw
		}
	}
	return false
}
