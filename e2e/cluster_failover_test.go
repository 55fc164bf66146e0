//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// heldRequest is a request started in the background; its CLI result
// arrives on done.
type heldRequest struct {
	what  string
	start time.Time
	res   CLIResult
	took  time.Duration
	done  chan struct{}
}

func hold(t testing.TB, what string, v *Vault, args ...string) *heldRequest {
	h := &heldRequest{what: what, start: time.Now(), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		h.res = v.CLI(t, args...)
		h.took = time.Since(h.start)
	}()
	return h
}

// faultsUsedUp waits until every installed fault has been consumed, i.e.
// every held request has reached its held Quay call.
func (cs *clusterStack) faultsUsedUp(t testing.TB, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, "every held request reaches Quay", func() error {
		var out struct {
			Faults []struct {
				Route      string `json:"route"`
				PathPrefix string `json:"path_prefix"`
				Remaining  int    `json:"remaining"`
			} `json:"faults"`
		}
		cs.Quay.Control.must(t, http.MethodGet, "/faults", nil, http.StatusOK, &out)
		for _, f := range out.Faults {
			if f.Remaining != 0 {
				return fmt.Errorf("fault %s%s not reached yet", f.Route, f.PathPrefix)
			}
		}
		return nil
	})
}

// The leader is killed (SIGKILL) while an OAuth creds read, a robot creds
// read, a static rotation and a root rotation are held inside Quay. After a
// standby takes over:
//   - exactly one valid root token remains, the one the config names;
//   - the static robot's password in Vault works in Quay;
//   - no credential is left in Quay that no lease, static role or root owns
//     (the new leader settles it as it starts and at every tick), and the
//     test states how long that took;
//   - leases the old leader issued renew and revoke on the new one.
func TestClusterLeaderKilledMidFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the new leader to settle what the old one left (about two minutes)")
	}
	cs := newClusterStack(t, ClusterOptions{})
	oldLeader := cs.C.LeaderIndex(t)
	leader, standby := cs.on(cs.C.Nodes[oldLeader]), cs.on(cs.C.Standby(t))
	leader.writeOAuthRole(t, "oauth", "ttl=1h", "max_ttl=2h")
	leader.Vault.MustCLI(t, "write", mount+"/roles/robot", "namespace_name="+cs.Org, `repositories={"app":"read"}`, "ttl=1h")
	leader.Vault.MustCLI(t, "write", mount+"/static-roles/pull", "namespace_name="+cs.Org, `repositories={"app":"read"}`)

	// Leases of the old leader.
	own := newOwnership()
	oldOAuth, oldRobot := leader.readCreds(t, "oauth"), leader.readCreds(t, "robot")
	own.OAuthTokens[oldOAuth.str(t, "token_id")] = true
	own.Robots[oldRobot.str(t, "username")] = true
	staticUser, _ := cs.staticPassword(t, leader.Vault, "pull")
	own.Robots[staticUser] = true
	rootBefore := cs.rootTokenID(t, leader.Vault)

	// Hold four requests inside Quay. Quay finishes each held call after
	// the delay whether or not anyone still waits for it, as a real server
	// does with a request it already received.
	const held = 20 * time.Second
	for _, f := range []Fault{
		// The OAuth read's only call: the token appears after the delay.
		{Method: http.MethodPost, PathPrefix: "/api/v1/organization/" + cs.Org + "/applications/", Count: 1, LatencyMillis: held.Milliseconds()},
		// The robot read's grant: the robot already exists.
		{Route: "changeUserPermissions", Count: 1, LatencyMillis: held.Milliseconds()},
		// The static rotation: Quay regenerates after the delay.
		{Route: "regenerateOrgRobotToken", Count: 1, LatencyMillis: held.Milliseconds()},
		// The root rotation's check of the new token: it already exists.
		{Route: "getLoggedInUser", Count: 1, LatencyMillis: held.Milliseconds()},
	} {
		cs.Quay.Control.AddFault(t, f)
	}
	requests := []*heldRequest{
		hold(t, "creds/oauth via a standby", standby.Vault, "read", "-format=json", mount+"/creds/oauth"),
		hold(t, "creds/robot via a standby", standby.Vault, "read", "-format=json", mount+"/creds/robot"),
		hold(t, "rotate-role via a standby", standby.Vault, "write", "-f", mount+"/rotate-role/pull"),
		hold(t, "rotate-root on the leader", leader.Vault, "write", "-f", mount+"/config/rotate-root"),
	}
	cs.faultsUsedUp(t, 30*time.Second)
	// Quay carries out the held calls at this time, leader or no leader.
	quayActs := time.Now().Add(held)

	killed := time.Now()
	_, noLeader := cs.C.KillLeader(t)
	t.Logf("leader %s killed; a standby was active after %s", cs.C.Name(oldLeader), noLeader.Round(time.Millisecond))
	for _, h := range requests {
		select {
		case <-h.done:
		case <-time.After(2 * time.Minute):
			t.Fatalf("%s still has no answer 2 minutes after the leader died", h.what)
		}
		// What the client of a request in flight sees (for the docs).
		t.Logf("%s: exit %d after %s: %s", h.what, h.res.ExitCode, h.took.Round(time.Millisecond), cliOutcome(h.res))
	}
	cs.Quay.Control.ClearFaults(t)
	cs.C.RestartNode(t, oldLeader)
	newLeader := cs.on(cs.C.Leader(t))
	other := cs.on(cs.C.Standby(t))

	// The old leader's leases renew and revoke on the new one, through
	// the leader and through a standby.
	for _, sec := range []cliSecret{oldOAuth, oldRobot} {
		var renewed cliSecret
		other.Vault.CLIJSON(t, &renewed, []string{"lease", "renew"}, sec.LeaseID)
		if renewed.LeaseID != sec.LeaseID || renewed.LeaseDuration <= 0 {
			t.Errorf("renewing the old leader's lease %s on the new one: %+v", sec.LeaseID, renewed)
		}
	}
	if code, _ := cs.Quay.WhoAmI(t, oldOAuth.str(t, "token")); code != http.StatusOK {
		t.Errorf("the old leader's OAuth token stopped working after the failover: %d", code)
	}
	newLeader.Vault.MustCLI(t, "lease", "revoke", "-sync", oldOAuth.LeaseID)
	other.Vault.MustCLI(t, "lease", "revoke", "-sync", oldRobot.LeaseID)
	delete(own.OAuthTokens, oldOAuth.str(t, "token_id"))
	delete(own.Robots, oldRobot.str(t, "username"))
	if code, _ := cs.Quay.WhoAmI(t, oldOAuth.str(t, "token")); code != http.StatusUnauthorized {
		t.Errorf("the old leader's OAuth token works after its lease was revoked on the new leader: %d", code)
	}
	if code := cs.Quay.robotLogin(t, oldRobot.str(t, "username"), oldRobot.str(t, "password")); code != http.StatusUnauthorized {
		t.Errorf("the old leader's robot logs in after its lease was revoked on the new leader: %d", code)
	}
	// And the new leader issues.
	fresh := other.readCreds(t, "robot")
	own.Robots[fresh.str(t, "username")] = true

	// Tidy once now: the held robot read's write-ahead entry belongs to a
	// process that is gone, so its robot is an orphan at once.
	var tidy struct {
		Data map[string]any `json:"data"`
	}
	newLeader.Vault.CLIJSON(t, &tidy, []string{"write"}, "-f", mount+"/tidy")
	t.Logf("tidy on the new leader, %s after the kill: found %v, deleted %v, errors %v", time.Since(killed).Round(time.Second),
		tidy.Data["orphans_found"], tidy.Data["orphans_deleted"], tidy.Data["errors"])

	// Nothing can be clean before Quay has carried out the held calls:
	// the OAuth token and the static robot's new token appear then.
	time.Sleep(time.Until(quayActs) + 2*time.Second)

	// Each promise, and how long after the kill it held.
	type promise struct {
		what  string
		check func() error
		at    time.Duration
	}
	promises := []*promise{
		{what: "exactly one valid root token, the one the config names", check: func() error {
			id := cs.rootTokenID(t, newLeader.Vault)
			if id != rootBefore {
				// Either outcome of the interrupted rotation is fine,
				// as long as exactly one token is left.
				t.Logf("the interrupted rotation rolled forward to %s", id)
			}
			own.RootToken = id
			return cs.oneRootToken(t, id)
		}},
		{what: "the static robot's password in Vault works in Quay", check: func() error {
			user, pw := cs.staticPassword(t, other.Vault, "pull")
			if code := cs.Quay.robotLogin(t, user, pw); code != http.StatusOK {
				return fmt.Errorf("registry login with the stored password: %d", code)
			}
			return nil
		}},
		{what: "no credential in Quay that nothing owns", check: func() error {
			if own.RootToken == "" {
				return fmt.Errorf("root token not settled yet")
			}
			orphans, missing := cs.inventory(t).orphans(own)
			if len(orphans)+len(missing) > 0 {
				return fmt.Errorf("orphans %v, missing %v", orphans, missing)
			}
			return nil
		}},
	}
	// The new leader settles what the dead one left as it starts, and again
	// at every periodic tick (a minute) for credentials Quay created later.
	const settleWithin = 3 * time.Minute
	deadline := killed.Add(settleWithin)
	for {
		pending := 0
		var last []string
		for _, p := range promises {
			if p.at > 0 {
				continue
			}
			if err := p.check(); err != nil {
				pending++
				last = append(last, p.what+": "+err.Error())
				continue
			}
			p.at = time.Since(killed)
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s after the leader was killed:\n  %s", settleWithin, strings.Join(last, "\n  "))
		}
		time.Sleep(5 * time.Second)
	}
	for _, p := range promises {
		t.Logf("%s: held %s after the kill", p.what, p.at.Round(time.Second))
	}
	// Still true once everything settled: the fresh lease revokes.
	newLeader.Vault.MustCLI(t, "lease", "revoke", "-sync", fresh.LeaseID)
	if code := cs.Quay.robotLogin(t, fresh.str(t, "username"), fresh.str(t, "password")); code != http.StatusUnauthorized {
		t.Errorf("a robot issued after the failover survives its revocation: %d", code)
	}
}

// cliOutcome is a CLI run in one line: "ok", or Vault's status code and
// error lines (the CLI spreads them over a dozen lines).
func cliOutcome(res CLIResult) string {
	if res.ExitCode == 0 {
		return "ok"
	}
	var parts []string
	for _, line := range strings.Split(res.Stderr, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "Code:") || strings.HasPrefix(line, "* ") || (len(parts) == 0 && line != "" && !strings.HasPrefix(line, "URL:")) {
			parts = append(parts, line)
		}
	}
	out := redactSecrets(strings.Join(parts, " "))
	if len(out) > 400 {
		out = out[:400] + "…"
	}
	return out
}
