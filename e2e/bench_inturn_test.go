//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/vault/api"
)

// inTurnTarget is one request kind the in-turn run alternates between.
type inTurnTarget struct {
	name string
	op   func(ctx context.Context, c *api.Client) error
}

// inTurnResult is one target's share of an in-turn run.
type inTurnResult struct {
	p50  time.Duration
	rate float64
}

// inTurnTargets are the floors, quay/'s creds and every other mount's
// creds/robot (BENCH_OTHER_PLUGINS).
func (env *benchEnv) inTurnTargets(b *testing.B) []inTurnTarget {
	targets := []inTurnTarget{
		{"kv_external", func(ctx context.Context, c *api.Client) error {
			return expectKV(c.Logical().ReadWithContext(ctx, "kvx/bench"))
		}},
		{"token_create", func(ctx context.Context, c *api.Client) error {
			_, err := c.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{Policies: []string{"default"}, TTL: "1h", NoParent: true})
			return err
		}},
		{"quay_create_token", env.mintOne(b)},
		{"creds_oauth", env.creds("oauth")},
		{"creds_robot", env.creds("robot")},
	}
	for _, name := range env.others {
		targets = append(targets, inTurnTarget{"creds_robot@" + name, otherCreds("other-" + name + "/creds/robot")})
	}
	for _, name := range env.oauthOthers {
		targets = append(targets, inTurnTarget{"creds_oauth@" + name, otherCreds("other-" + name + "/creds/oauth")})
	}
	return targets
}

func otherCreds(path string) func(ctx context.Context, c *api.Client) error {
	return func(ctx context.Context, c *api.Client) error {
		sec, err := c.Logical().ReadWithContext(ctx, path)
		if err == nil && (sec == nil || sec.LeaseID == "") {
			err = fmt.Errorf("%s returned no lease", path)
		}
		return err
	}
}

// inTurn runs every target with the same number of clients in short slices,
// one target after the other, round after round (each round starting one
// target further on), so that every target meets the same share of a
// machine whose load changes: the sequential cases above compare numbers
// taken minutes apart. It returns each target's p50 and rate over all its
// slices.
func (env *benchEnv) inTurn(b *testing.B, clients, rounds int, slice time.Duration, targets []inTurnTarget) map[string]inTurnResult {
	b.Helper()
	lat := make([][]time.Duration, len(targets))
	busy := make([]time.Duration, len(targets))
	vc := make([]*api.Client, clients)
	for i := range vc {
		vc[i] = env.v.newClient(b)
	}
	for round := range rounds {
		for k := range targets {
			t := (round + k) % len(targets)
			var mu sync.Mutex
			var failed atomic.Value
			var wg sync.WaitGroup
			start := time.Now()
			deadline := start.Add(slice)
			for _, c := range vc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var mine []time.Duration
					for time.Now().Before(deadline) {
						t0 := time.Now()
						if err := targets[t].op(context.Background(), c); err != nil {
							failed.CompareAndSwap(nil, err)
							return
						}
						mine = append(mine, time.Since(t0))
					}
					mu.Lock()
					lat[t] = append(lat[t], mine...)
					mu.Unlock()
				}()
			}
			wg.Wait()
			busy[t] += time.Since(start)
			if err, _ := failed.Load().(error); err != nil {
				b.Fatalf("%s: %v", targets[t].name, err)
			}
		}
	}
	out := map[string]inTurnResult{}
	for t, target := range targets {
		slices.Sort(lat[t])
		out[target.name] = inTurnResult{p50: lat[t][len(lat[t])/2], rate: float64(len(lat[t])) / busy[t].Seconds()}
		b.ReportMetric(float64(out[target.name].p50.Microseconds())/1000, "p50-ms-"+target.name)
		b.ReportMetric(out[target.name].rate, "ops/s-"+target.name)
	}
	return out
}

// inTurnCleanup revokes what the in-turn runs left: kv leases, creds leases
// of every mount, the bare tokens.
// Thousands of leases take longer to revoke than the client's usual
// timeout.
func (env *benchEnv) inTurnCleanup(b *testing.B) {
	c, err := env.v.Client.Clone()
	must(b, err)
	c.SetToken(env.v.Client.Token())
	c.SetClientTimeout(15 * time.Minute)
	must(b, c.Sys().RevokeForce("kvx/"))
	prefixes := []string{mount + "/creds/"}
	for _, name := range env.others {
		prefixes = append(prefixes, "other-"+name+"/creds/")
	}
	for _, prefix := range prefixes {
		must(b, c.Sys().RevokePrefix(prefix))
	}
	env.resetBareApp(b)
}

// inTurnRounds is BENCH_IN_TURN_ROUNDS (default 10) rounds of 250 ms slices.
func inTurnRounds(b *testing.B) int {
	rounds := 10
	if s := os.Getenv("BENCH_IN_TURN_ROUNDS"); s != "" {
		_, err := fmt.Sscan(s, &rounds)
		must(b, err)
	}
	return rounds
}

// printInTurn writes the in-turn table and the goals measured on it.
func printInTurn(out io.Writer, byClients map[int]map[string]inTurnResult) {
	one, sixteen := byClients[1], byClients[16]
	if one == nil || sixteen == nil {
		return
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\ntargets in turn (same slices of machine time)\tp50 ms, 1 client\tops/s, 1 client\tp50 ms, 16 clients\tops/s, 16 clients\t")
	for _, name := range sortedKeys(one) {
		fmt.Fprintf(w, "%s\t%s\t%.0f\t%s\t%.0f\t\n", name, ms(one[name].p50), one[name].rate, ms(sixteen[name].p50), sixteen[name].rate)
	}
	w.Flush()
	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\ngoal (targets in turn)\tmeasured\tverdict")
	kv16, kv1, tok1, quay1 := sixteen["kv_external"], one["kv_external"], one["token_create"], one["quay_create_token"]
	floor := kv1.p50 + tok1.p50 + quay1.p50
	for _, name := range sortedKeys(one) {
		if !strings.HasPrefix(name, "creds_") {
			continue
		}
		ratio := sixteen[name].rate / kv16.rate
		fmt.Fprintf(w, "%s rate at 16 clients >= 90%% of external kv\t%.0f/s vs %.0f/s = %.0f%%\t%s\n", name, sixteen[name].rate, kv16.rate, 100*ratio, verdictOf(ratio >= 0.9))
		fmt.Fprintf(w, "%s p50 at 1 client <= kv p50 + token p50 + Quay RT\t%s ms vs %s+%s+%s = %s ms (%.2fx)\t%s\n", name, ms(one[name].p50),
			ms(kv1.p50), ms(tok1.p50), ms(quay1.p50), ms(floor), float64(one[name].p50)/float64(floor), verdictOf(one[name].p50 <= floor))
	}
	w.Flush()
}

func verdictOf(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}
