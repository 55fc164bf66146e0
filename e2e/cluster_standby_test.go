//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// clusterStack is a three-node Raft cluster with the plugin enabled at quay/
// and configured (with its own root token in vault-root), the Quay emulator,
// and an organization with one repository.
type clusterStack struct {
	C    *Cluster
	Quay *Emulator
	Org  string
	// RootOrg is the organization of the engine's own root token.
	RootOrg string
	// insp inspects Quay without any secret Vault holds.
	insp string
}

func newClusterStack(t testing.TB, opts ClusterOptions, configArgs ...string) *clusterStack {
	t.Helper()
	q := StartQuay(t, QuayOptions{})
	cs := &clusterStack{C: StartCluster(t, opts), Quay: q, Org: q.Name("acme"), RootOrg: q.Name("vault-root")}
	cs.Quay.CreateOrganization(t, cs.Org)
	cs.insp = cs.Quay.inspector(t, cs.Quay.BootstrapOwner)
	leader := cs.on(cs.C.Leader(t))
	leader.seedRepo(t, "app")
	leader.Vault.EnablePlugin(t, mount)
	args := append([]string{"write", mount + "/config", "url=" + cs.Quay.URL, "token=" + cs.Quay.BootstrapToken, "root_organization=" + cs.RootOrg}, configArgs...)
	leader.Vault.MustCLI(t, args...)
	return cs
}

// on is the usual stack, talking to node v.
func (cs *clusterStack) on(v *Vault) *stack {
	return &stack{Vault: v, Quay: cs.Quay, Org: cs.Org}
}

// inventory is what the engine has in Quay now.
func (cs *clusterStack) inventory(t testing.TB) quayInventory {
	t.Helper()
	return cs.Quay.inventory(t, cs.insp, cs.Org, cs.RootOrg)
}

// rootTokenID is the root token the config names, read through node v.
func (cs *clusterStack) rootTokenID(t testing.TB, v *Vault) string {
	t.Helper()
	id, _ := configData(t, v)["root_token_id"].(string)
	if id == "" {
		t.Fatal("config names no root_token_id")
	}
	return id
}

// staticPassword reads static-creds/<name> through v.
func (cs *clusterStack) staticPassword(t testing.TB, v *Vault, name string) (username, password string) {
	t.Helper()
	var sec cliSecret
	v.CLIJSON(t, &sec, []string{"read"}, mount+"/static-creds/"+name)
	return sec.str(t, "username"), sec.str(t, "password")
}

// callsFor runs f and returns the Quay calls it caused, by route.
func (cs *clusterStack) callsFor(t testing.TB, f func()) map[string]int {
	t.Helper()
	cs.Quay.Control.ResetCalls(t)
	f()
	return cs.Quay.Control.Calls(t)
}

// Every engine operation sent to a standby is forwarded to the active node
// and behaves as it does there: same answer shape, same Quay calls (no
// request runs twice), same effect in Quay.
func TestClusterStandbyServesLikeLeader(t *testing.T) {
	cs := newClusterStack(t, ClusterOptions{})
	leader, standby := cs.on(cs.C.Leader(t)), cs.on(cs.C.Standby(t))
	standby.writeOAuthRole(t, "oauth")
	standby.Vault.MustCLI(t, "write", mount+"/roles/robot", "namespace_name="+cs.Org, `repositories={"app":"read"}`, "ttl=10m")
	standby.Vault.MustCLI(t, "write", mount+"/static-roles/pull", "namespace_name="+cs.Org, `repositories={"app":"read"}`)

	for _, role := range []string{"oauth", "robot"} {
		var onLeader, onStandby cliSecret
		leaderCalls := cs.callsFor(t, func() { onLeader = leader.readCreds(t, role) })
		standbyCalls := cs.callsFor(t, func() { onStandby = standby.readCreds(t, role) })
		if !sameCalls(leaderCalls, standbyCalls) {
			t.Errorf("creds/%s: Quay calls through the leader %v, through a standby %v", role, leaderCalls, standbyCalls)
		}
		if !sameKeys(onLeader.Data, onStandby.Data) || onLeader.LeaseDuration != onStandby.LeaseDuration || onLeader.Renewable != onStandby.Renewable {
			t.Errorf("creds/%s: answers differ in shape: leader %v (%ds), standby %v (%ds)", role, keys(onLeader.Data), onLeader.LeaseDuration, keys(onStandby.Data), onStandby.LeaseDuration)
		}
		for _, sec := range []cliSecret{onLeader, onStandby} {
			if role == "oauth" {
				if code, _ := cs.Quay.WhoAmI(t, sec.str(t, "token")); code != http.StatusOK {
					t.Errorf("an OAuth token issued through the cluster does not work: %d", code)
				}
			} else if code := cs.Quay.robotLogin(t, sec.str(t, "username"), sec.str(t, "password")); code != http.StatusOK {
				t.Errorf("a robot issued through the cluster cannot log in: %d", code)
			}
		}
		// Renew and revoke the leader's lease through the standby and
		// the standby's through the leader.
		for _, pair := range []struct {
			via *stack
			sec cliSecret
		}{{standby, onLeader}, {leader, onStandby}} {
			var renewed cliSecret
			pair.via.Vault.CLIJSON(t, &renewed, []string{"lease", "renew"}, pair.sec.LeaseID)
			if renewed.LeaseID != pair.sec.LeaseID || renewed.LeaseDuration <= 0 {
				t.Errorf("renewing %s through the other node: lease %q for %ds", pair.sec.LeaseID, renewed.LeaseID, renewed.LeaseDuration)
			}
			calls := cs.callsFor(t, func() { pair.via.Vault.MustCLI(t, "lease", "revoke", "-sync", pair.sec.LeaseID) })
			if role == "oauth" {
				if code, _ := cs.Quay.WhoAmI(t, pair.sec.str(t, "token")); code != http.StatusUnauthorized {
					t.Errorf("a revoked OAuth token still works: %d", code)
				}
				if calls["deleteOrganizationApplicationToken"] != 1 {
					t.Errorf("revoking an OAuth lease: Quay calls %v, want one token delete", calls)
				}
			} else {
				if code := cs.Quay.robotLogin(t, pair.sec.str(t, "username"), pair.sec.str(t, "password")); code != http.StatusUnauthorized {
					t.Errorf("a revoked robot still logs in: %d", code)
				}
				if calls["deleteOrgRobot"] != 1 {
					t.Errorf("revoking a robot lease: Quay calls %v, want one robot delete", calls)
				}
			}
		}
	}

	// rotate-role through either node: the new password is what both
	// serve, it works, the old one does not.
	for _, via := range []*stack{standby, leader} {
		user, before := cs.staticPassword(t, leader.Vault, "pull")
		calls := cs.callsFor(t, func() { via.Vault.MustCLI(t, "write", "-f", mount+"/rotate-role/pull") })
		if calls["regenerateOrgRobotToken"] != 1 {
			t.Errorf("rotate-role: Quay calls %v, want one regenerate", calls)
		}
		_, fromLeader := cs.staticPassword(t, leader.Vault, "pull")
		_, fromStandby := cs.staticPassword(t, standby.Vault, "pull")
		if fromLeader == before || fromLeader != fromStandby {
			t.Fatalf("after rotate-role the nodes serve different or unchanged passwords")
		}
		if code := cs.Quay.robotLogin(t, user, fromLeader); code != http.StatusOK {
			t.Errorf("the rotated static password does not log in: %d", code)
		}
		if code := cs.Quay.robotLogin(t, user, before); code != http.StatusUnauthorized {
			t.Errorf("the static password from before rotate-role still logs in: %d", code)
		}
	}

	// rotate-root through the standby: one root token, the one both
	// nodes' config reads name, and it still issues.
	before := cs.rootTokenID(t, leader.Vault)
	standby.Vault.MustCLI(t, "write", "-f", mount+"/config/rotate-root")
	after := cs.rootTokenID(t, leader.Vault)
	if after == before || cs.rootTokenID(t, standby.Vault) != after {
		t.Fatalf("rotate-root through a standby: root token %s before, %s after (standby reads %s)", before, after, cs.rootTokenID(t, standby.Vault))
	}
	eventually(t, 30*time.Second, "exactly one root token", func() error { return cs.oneRootToken(t, after) })
	sec := standby.readCreds(t, "oauth")
	if code, _ := cs.Quay.WhoAmI(t, sec.str(t, "token")); code != http.StatusOK {
		t.Errorf("creds after rotate-root through a standby do not work: %d", code)
	}

	// tidy through the standby sees the same state the leader does.
	var tidy struct {
		Data map[string]any `json:"data"`
	}
	standby.Vault.CLIJSON(t, &tidy, []string{"write"}, mount+"/tidy", "dry_run=true")
	if found := stringList(tidy.Data["orphans_found"]); len(found) != 0 {
		t.Errorf("tidy through a standby found orphans: %v", found)
	}
}

// oneRootToken checks Quay holds exactly the root token want.
func (cs *clusterStack) oneRootToken(t testing.TB, want string) error {
	t.Helper()
	if ids := cs.Quay.rootTokenIDs(t, cs.insp, cs.RootOrg); len(ids) != 1 || ids[0] != want {
		return fmt.Errorf("root application tokens %v, want exactly [%s]", ids, want)
	}
	return nil
}

func sameCalls(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sameKeys(a, b map[string]any) bool {
	return sameSet(keys(a), keys(b))
}
