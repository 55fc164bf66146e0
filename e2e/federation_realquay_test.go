//go:build e2e

package e2e

// Federated robots through a real Vault against Quay 3.18.0 itself, with the
// latency of a creds read next to a dynamic robot's:
//
//	E2E_QUAY=real go test -tags e2e -run RealQuay -v ./e2e/
//
// The harness starts that Quay for the test alone, trusting Vault's dev CA
// (REQUESTS_CA_BUNDLE), since Quay reads the mount's documents over HTTPS.

import (
	"testing"
	"time"
)

func TestRealQuay_FederatedCredsThroughVault(t *testing.T) {
	if suite.target == targetEmulator {
		t.Skip("measures against Quay 3.18.0 itself: run with E2E_QUAY=real (TestFederatedCredsWithSkopeo tells the same story against the emulator)")
	}
	s := newFederatedStack(t)
	s.writeFederatedRole(t, "ci", `repositories={"app":"write"}`, "ttl=10m")
	if fed := s.federationEntries(t, "ci"); len(fed) != 1 || fed[0]["issuer"] != s.issuer() || fed[0]["subject"] != s.Org+"+ci" {
		t.Fatalf("real Quay stored the federation %v; want %s for %s+ci", fed, s.issuer(), s.Org)
	}

	sec := s.readCreds(t, "ci")
	auth := authFile(t, sec)
	if out, err := s.push(t, auth, ociImage(t), "app"); err != nil {
		t.Fatalf("skopeo push to real Quay with the federated robot's token failed: %v\n%s", err, out)
	}
	if out, err := s.pull(t, auth, "app"); err != nil {
		t.Fatalf("skopeo pull from real Quay with the federated robot's token failed: %v\n%s", err, out)
	}

	// Latency of a creds read through Vault's API against this Quay: the
	// federated read (one exchange, during which Quay reads Vault's two
	// documents over TLS) next to a dynamic robot with the same grant
	// (create, grant; its revoke is one more call, not counted).
	s.Vault.MustCLI(t, "write", mount+"/roles/dynamic", "namespace_name="+s.Org, `repositories={"app":"write"}`, "ttl=10m")
	const rounds = 5
	for _, role := range []string{"ci", "dynamic"} {
		start := time.Now()
		for range rounds {
			if _, err := s.Vault.Client.Logical().Read(mount + "/creds/" + role); err != nil {
				t.Fatalf("creds/%s: %v", role, err)
			}
		}
		t.Logf("real Quay through Vault, mean of %d creds/%s reads: %s", rounds, role, (time.Since(start) / rounds).Round(time.Millisecond))
	}
	must(t, s.Vault.Client.Sys().RevokePrefix(mount+"/creds/dynamic"))

	s.Vault.MustCLI(t, "delete", mount+"/roles/ci")
	if s.Quay.RobotExists(t, s.Org+"+ci") {
		t.Error("deleting the role left the robot the engine created in real Quay")
	}
	if out, err := s.pull(t, auth, "app"); err == nil {
		t.Errorf("the token of a deleted robot still pulls from real Quay:\n%s", out)
	}
}
