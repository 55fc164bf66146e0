//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A creds read that Quay answered too late (it created the token after the
// engine gave up) leaves a token no lease holds. Vault's rollback manager
// deletes it five minutes later; a new plugin instance (a plugin reload, an
// unseal, a new Raft leader) deletes it as soon as it starts.
func TestTokenOfATimedOutReadIsDeletedWhenThePluginRestarts(t *testing.T) {
	s := newStack(t, withoutConfig())
	s.configure(t, "request_timeout=2s")
	s.writeOAuthRole(t, "ci")
	clientID := s.readCreds(t, "ci").str(t, "client_id")
	s.Vault.MustCLI(t, "lease", "revoke", "-prefix", mount+"/creds/ci")
	if n := len(s.Quay.AppTokens(t, s.Org, clientID)); n != 0 {
		t.Fatalf("%d tokens before the timed-out read, want 0", n)
	}

	// Quay takes 4 s, the engine waits 2 s: the read fails, Quay goes on.
	s.Quay.Control.AddFault(t, Fault{Route: "createOrganizationApplicationToken", Count: 1, LatencyMillis: 4000})
	res := s.Vault.CLI(t, "read", mount+"/creds/ci")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "timed out") {
		t.Fatalf("the read should time out: %s", res)
	}
	eventually(t, 20*time.Second, "Quay creates the token anyway", func() error {
		return tokenCount(t, s, clientID, 1)
	})

	s.Vault.MustCLI(t, "plugin", "reload", "-plugin="+pluginName)
	eventually(t, 60*time.Second, "the restarted plugin deletes the token", func() error {
		return tokenCount(t, s, clientID, 0)
	})
	if n := len(s.Vault.LeaseIDs(t, mount+"/creds/ci")); n != 0 {
		t.Errorf("%d leases, want 0", n)
	}
}

func tokenCount(t testing.TB, s *stack, clientID string, want int) error {
	if n := len(s.Quay.AppTokens(t, s.Org, clientID)); n != want {
		return fmt.Errorf("%d tokens in Quay, want %d", n, want)
	}
	return nil
}
