//go:build e2e

package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Federated robots in a real Vault: Vault serves TLS from its dev CA, the
// emulator trusts that CA (as REQUESTS_CA_BUNDLE makes real Quay do) and
// reads the mount's .well-known documents through Vault's HTTP layer on
// every exchange.

// newFederatedStack is a TLS dev Vault with the plugin configured as the
// issuer of robot federation, an emulator that trusts Vault's CA, and
// repositories acme/app and acme/other.
func newFederatedStack(t testing.TB) *stack {
	t.Helper()
	v := StartDevVaultTLS(t)
	q := StartQuay(t, QuayOptions{CABundle: v.CACert})
	s := &stack{Vault: v, Quay: q, Org: q.Name("acme")}
	q.CreateOrganization(t, s.Org)
	v.EnablePlugin(t, mount)
	s.configure(t)
	v.MustCLI(t, "write", mount+"/config/federation", "federation_issuer="+s.issuer())
	s.seedRepo(t, "app")
	s.seedRepo(t, "other")
	return s
}

// issuer is the mount's URL as Quay reaches it.
func (s *stack) issuer() string { return s.Vault.Addr + "/v1/" + mount }

func (s *stack) writeFederatedRole(t testing.TB, name string, extra ...string) {
	t.Helper()
	args := append([]string{"write", mount + "/roles/" + name, "credential_type=federated", "namespace_name=" + s.Org}, extra...)
	s.Vault.MustCLI(t, args...)
}

// authFile writes a creds answer's docker_config_json where skopeo reads it.
func authFile(t testing.TB, sec cliSecret) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	must(t, os.WriteFile(p, []byte(sec.str(t, "docker_config_json")), 0o600))
	return p
}

// federationEntries is the robot's federation list as Quay stores it.
func (s *stack) federationEntries(t testing.TB, robot string) []map[string]string {
	t.Helper()
	code, body := s.Quay.Do(t, http.MethodGet, "/api/v1/organization/"+s.Org+"/robots/"+robot+"/federation", s.Quay.BootstrapToken, nil)
	if code != http.StatusOK {
		t.Fatalf("reading the federation of %s: %d %s", robot, code, body)
	}
	var list []map[string]string
	must(t, json.Unmarshal(body, &list))
	return list
}

func (s *stack) setFederation(t testing.TB, robot string, entries []map[string]string) {
	t.Helper()
	code, body := s.Quay.Do(t, http.MethodPost, "/api/v1/organization/"+s.Org+"/robots/"+robot+"/federation", s.Quay.BootstrapToken, entries)
	if code != http.StatusOK {
		t.Fatalf("setting the federation of %s: %d %s", robot, code, body)
	}
}

// `vault read quay/creds/<federated role>`: one Quay call, a docker config
// skopeo pushes and pulls with, a lease that ends with Quay's token. Revoking
// the lease leaves the token its hour; deleting the role deletes the robot,
// and with it every token it was given.
func TestFederatedCredsWithSkopeo(t *testing.T) {
	s := newFederatedStack(t)
	s.writeFederatedRole(t, "ci", `repositories={"app":"write"}`, "ttl=10m", "max_ttl=2h")
	if got := s.federationEntries(t, "ci"); len(got) != 1 || got[0]["issuer"] != s.issuer() || got[0]["subject"] != s.Org+"+ci" {
		t.Fatalf("the robot's federation is %v, want this mount's issuer for %s+ci", got, s.Org)
	}

	s.Quay.Control.ResetCalls(t)
	start := time.Now()
	sec := s.readCreds(t, "ci")
	t.Logf("vault read %s/creds/ci (CLI process included): %s", mount, time.Since(start).Round(time.Millisecond))
	if calls := s.Quay.Control.Calls(t); calls["authFederatedRobotIdentity"] != 1 || total(calls) != 1 {
		t.Errorf("Quay calls of one federated read: %v, want only authFederatedRobotIdentity once", calls)
	}
	if sec.str(t, "username") != s.Org+"+ci" {
		t.Errorf("username = %s", sec.str(t, "username"))
	}
	if !sec.Renewable || sec.LeaseDuration != 600 {
		t.Errorf("lease: renewable %v, %d s; want renewable, the role's ttl of 600 s", sec.Renewable, sec.LeaseDuration)
	}
	if len(sec.Warnings) == 0 || !strings.Contains(sec.Warnings[0], "revoking the lease does not end it sooner") {
		t.Errorf("warnings %v: want the one saying revocation does not end the token", sec.Warnings)
	}
	expires, err := time.Parse(time.RFC3339, sec.str(t, "expires_at"))
	must(t, err)
	assertNear(t, "expires_at", expires, start.Add(time.Hour), expiryTolerance)

	// Renewing asks for 2h; the lease still ends with Quay's token.
	s.Vault.MustCLI(t, "lease", "renew", "-increment=2h", sec.LeaseID)
	if lease := s.Vault.LookupLease(t, sec.LeaseID); lease.ExpireTime.After(expires.Add(time.Second)) {
		t.Errorf("after renewal the lease expires at %s, past Quay's token (%s)", lease.ExpireTime, expires)
	}

	auth := authFile(t, sec)
	image := ociImage(t)
	if out, err := s.push(t, auth, image, "app"); err != nil {
		t.Fatalf("skopeo push with the federated robot failed: %v\n%s", err, out)
	}
	if out, err := s.pull(t, auth, "app"); err != nil {
		t.Fatalf("skopeo pull with the federated robot failed: %v\n%s", err, out)
	}
	if out, err := s.push(t, auth, image, "other"); err == nil {
		t.Fatalf("skopeo push to a repository the role does not grant succeeded:\n%s", out)
	}

	s.Quay.Control.ResetCalls(t)
	s.Vault.MustCLI(t, "lease", "revoke", "-sync", sec.LeaseID)
	if calls := s.Quay.Control.Calls(t); total(calls) != 0 {
		t.Errorf("revoking a federated lease called Quay: %v", calls)
	}
	if out, err := s.pull(t, auth, "app"); err != nil {
		t.Fatalf("a revoked lease's token should live its hour in Quay, but the pull failed: %v\n%s", err, out)
	}

	s.Vault.MustCLI(t, "delete", mount+"/roles/ci")
	if s.Quay.RobotExists(t, s.Org+"+ci") {
		t.Error("deleting the role left the robot the engine created")
	}
	if out, err := s.pull(t, auth, "app"); err == nil {
		t.Errorf("the token of a deleted robot still pulls:\n%s", out)
	}
}

// A federated robot token ends with its hour in Quay, without Vault doing
// anything: the lease of the read is still there, Quay refuses the token.
func TestFederatedTokenEndsAfterItsHourInQuay(t *testing.T) {
	requireEmulator(t, "advances Quay's clock by an hour")
	s := newFederatedStack(t)
	s.writeFederatedRole(t, "ci", `repositories={"app":"write"}`, "ttl=10m", "max_ttl=2h")
	live := s.readCreds(t, "ci")
	liveAuth := authFile(t, live)
	if out, err := s.push(t, liveAuth, ociImage(t), "app"); err != nil {
		t.Fatalf("skopeo push with the federated robot failed: %v\n%s", err, out)
	}
	s.Quay.Control.AdvanceClock(t, time.Hour+time.Minute)
	if out, err := s.pull(t, liveAuth, "app"); err == nil {
		t.Fatalf("Quay took a robot token past its hour:\n%s", out)
	}
	if ids := s.Vault.LeaseIDs(t, mount+"/creds/ci/"); len(ids) != 1 || ids[0] != live.LeaseID {
		t.Errorf("leases %v, want the read's, untouched by Vault", ids)
	}
}

func total(calls map[string]int) int {
	n := 0
	for _, c := range calls {
		n += c
	}
	return n
}

// A key rotation while a read's token is on its way to Quay: the read
// succeeds, because the replaced key stays published; reads after it use
// the new key.
func TestFederatedKeyRotationDoesNotBreakTokensInFlight(t *testing.T) {
	s := newFederatedStack(t)
	s.writeFederatedRole(t, "ci", `repositories={"app":"write"}`)
	var before struct {
		Data map[string]any `json:"data"`
	}
	s.Vault.CLIJSON(t, &before, []string{"read"}, mount+"/config/federation")
	oldKid := before.Data["current_key_id"].(string)

	// Hold the exchange in Quay for a while: the token is signed with the
	// old key by then.
	s.Quay.Control.ResetCalls(t)
	s.Quay.Control.AddFault(t, Fault{Route: "authFederatedRobotIdentity", LatencyMillis: 3000, Count: 1})
	result := make(chan CLIResult, 1)
	go func() { result <- s.Vault.CLI(t, "read", "-format=json", mount+"/creds/ci") }()
	eventually(t, 30*time.Second, "the read's exchange reaches Quay", func() error {
		if s.Quay.Control.Calls(t)["authFederatedRobotIdentity"] == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	var rotated struct {
		Data map[string]any `json:"data"`
	}
	s.Vault.CLIJSON(t, &rotated, []string{"write", "-f"}, mount+"/config/federation/rotate-key")
	if rotated.Data["current_key_id"] == oldKid || !containsString(stringList(rotated.Data["published_key_ids"]), oldKid) {
		t.Fatalf("after rotate-key: current %v, published %v; want a new key with %s still published", rotated.Data["current_key_id"], rotated.Data["published_key_ids"], oldKid)
	}
	res := <-result
	if res.ExitCode != 0 {
		t.Fatalf("the read in flight during the rotation failed: %s", res)
	}
	var inFlight cliSecret
	must(t, json.Unmarshal([]byte(res.Stdout), &inFlight))
	if out, err := s.push(t, authFile(t, inFlight), ociImage(t), "app"); err != nil {
		t.Fatalf("push with the credential read across the rotation failed: %v\n%s", err, out)
	}
	after := s.readCreds(t, "ci")
	if out, err := s.pull(t, authFile(t, after), "app"); err != nil {
		t.Fatalf("pull with a credential read after the rotation failed: %v\n%s", err, out)
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Quay trusts the robot's configured issuer and subject only: an entry
// naming another issuer or subject makes Quay refuse the engine's token
// (and the read says so); a token with the right claims signed by a key
// Vault did not publish is refused too. Writing the role again restores the
// entry.
func TestFederatedWrongIssuerOrSubjectRefusedByQuay(t *testing.T) {
	s := newFederatedStack(t)
	s.writeFederatedRole(t, "ci", `repositories={"app":"read"}`)
	robot := s.Org + "+ci"

	for _, tc := range []struct {
		entry map[string]string
		says  string
	}{
		{map[string]string{"issuer": s.Vault.Addr + "/v1/other-mount", "subject": robot}, "not configured for this robot"},
		{map[string]string{"issuer": s.issuer(), "subject": s.Org + "+someone-else"}, "Token does not match robot"},
	} {
		s.setFederation(t, "ci", []map[string]string{tc.entry})
		res := s.Vault.CLI(t, "read", mount+"/creds/ci")
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, tc.says) || !strings.Contains(res.Stderr, "write roles/ci again") {
			t.Errorf("with the robot trusting %v the read should fail with Quay's %q and the fix: %s", tc.entry, tc.says, res)
		}
	}

	s.Vault.MustCLI(t, "write", "-f", mount+"/roles/ci")
	entries := s.federationEntries(t, "ci")
	if len(entries) != 2 || entries[1]["issuer"] != s.issuer() || entries[1]["subject"] != robot {
		t.Fatalf("after writing the role again the federation is %v; want the other entry kept and this mount's added", entries)
	}
	s.setFederation(t, "ci", entries[1:])
	s.readCreds(t, "ci")

	// A token that claims this issuer and robot, under the published kid,
	// but signed by another key.
	var fed struct {
		Data map[string]any `json:"data"`
	}
	s.Vault.CLIJSON(t, &fed, []string{"read"}, mount+"/config/federation")
	forged := forgeToken(t, s.issuer(), robot, fed.Data["current_key_id"].(string))
	req, _ := http.NewRequest(http.MethodGet, s.Quay.URL+"/oauth2/federation/robot/token", nil)
	req.SetBasicAuth(robot, forged)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("Quay answered %d to a token signed by a key Vault did not publish; want 400", resp.StatusCode)
	}
}

// forgeToken signs the claims the engine would, with a key of its own.
func forgeToken(t testing.TB, issuer, subject, kid string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	must(t, err)
	now := time.Now()
	token, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: issuer, Subject: subject, IssuedAt: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))}).Serialize()
	must(t, err)
	return token
}

// Vault Agent renders ~/.docker/config.json from a federated role and
// renders a fresh credential before the lease (and so the token) ends.
func TestFederatedCredsReRenderedByVaultAgent(t *testing.T) {
	s := newFederatedStack(t)
	s.writeFederatedRole(t, "agent", `repositories={"app":"write"}`, "ttl=15s", "max_ttl=45s")
	a := startAgent(t, s.Vault, `{{ with secret "quay/creds/agent" }}{{ .Data.docker_config_json }}{{ end }}`)
	first := a.snapshot(t)
	firstAuth := dockerAuthUser(t, first, s.registryHost())
	ids := s.Vault.LeaseIDs(t, mount+"/creds/agent/")
	if len(ids) != 1 {
		t.Fatalf("leases after the first render: %v", ids)
	}
	firstLease := s.Vault.LookupLease(t, ids[0])
	deadline := firstLease.IssueTime.Add(45 * time.Second)
	if out, err := s.push(t, first, ociImage(t), "app"); err != nil {
		t.Fatalf("push with the rendered file failed: %v\n%s", err, out)
	}

	var second string
	eventually(t, 2*time.Minute, "the agent renders a new credential", func() error {
		p := a.snapshot(t)
		if dockerAuthUser(t, p, s.registryHost()) == firstAuth {
			return fmt.Errorf("still the first credential")
		}
		second = p
		return nil
	})
	renderedAt := time.Now()
	t.Logf("re-rendered %s after the first lease was issued (its max TTL is 45s)", renderedAt.Sub(firstLease.IssueTime).Round(time.Second))
	if renderedAt.After(deadline) {
		t.Errorf("the agent re-rendered at %s, after the first lease's end (%s)", renderedAt, deadline)
	}
	if out, err := s.pull(t, second, "app"); err != nil {
		t.Fatalf("pull with the re-rendered file failed: %v\n%s", err, out)
	}
}

// BenchmarkCredsFederatedVsDynamicRobot: reads of quay/creds/<role> through
// a real Vault's API, a federated role next to a dynamic robot role with the
// same grant (one repository). quay-calls/op counts the reads' Quay calls;
// the dynamic robots are revoked (one more call each) after the timing.
//
//	go test -tags e2e -run '^$' -bench CredsFederatedVsDynamicRobot ./e2e/
func BenchmarkCredsFederatedVsDynamicRobot(b *testing.B) {
	s := newFederatedStack(b)
	s.writeFederatedRole(b, "federated", `repositories={"app":"write"}`, "ttl=10m")
	s.Vault.MustCLI(b, "write", mount+"/roles/dynamic", "namespace_name="+s.Org, `repositories={"app":"write"}`, "ttl=10m")
	for _, role := range []string{"federated", "dynamic"} {
		b.Run(role, func(b *testing.B) {
			c := s.Vault.Client
			s.Quay.Control.ResetCalls(b)
			b.ReportAllocs()
			for b.Loop() {
				sec, err := c.Logical().Read(mount + "/creds/" + role)
				if err != nil {
					b.Fatal(err)
				}
				if sec == nil || sec.LeaseID == "" {
					b.Fatal("creds read returned no lease")
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(total(s.Quay.Control.Calls(b)))/float64(b.N), "quay-calls/op")
			if err := c.Sys().RevokePrefix(mount + "/creds/" + role); err != nil {
				b.Fatal(err)
			}
		})
	}
}
