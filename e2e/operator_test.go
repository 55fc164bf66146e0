//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// What an operator reads when something is refused: the status and the
// engine's own message. Vault wraps errors that plugins return in its
// multi-error type, which the CLI showed as "* 1 error occurred: * <message>";
// a tidy already running came back as data, not as an error.
func TestErrorsReadAsWrittenThroughTheCLI(t *testing.T) {
	s := newStack(t)
	s.Vault.MustCLI(t, "write", mount+"/roles/ci", "namespace_name="+s.Org)

	s.Quay.Control.AddFault(t, Fault{Route: "createOrgRobot", Count: 1, Status: 503})
	res := s.Vault.CLI(t, "read", mount+"/creds/ci")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "Code: 502") || !strings.Contains(res.Stderr, `creating a robot for role "ci"`) {
		t.Fatalf("a Quay failure should be a 502 naming what failed:\n%s", res)
	}
	if strings.Contains(res.Stderr, "error occurred") {
		t.Errorf("the answer carries Vault's multi-error wrapper:\n%s", res)
	}

	res = s.Vault.CLI(t, "read", mount+"/static-creds/missing")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, `static role "missing" does not exist`) || strings.Contains(res.Stderr, "error occurred") {
		t.Errorf("a missing static role:\n%s", res)
	}

	res = s.Vault.CLI(t, "write", mount+"/config", "request_timeout=500ms")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "request_timeout: must be whole seconds") {
		t.Errorf("a sub-second request_timeout is refused naming the field:\n%s", res)
	}

	s.Quay.Control.AddFault(t, Fault{Route: "getOrgRobots", Count: 1, LatencyMillis: 3000})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.Vault.CLI(t, "write", "-f", mount+"/tidy")
	}()
	eventually(t, 10*time.Second, "the first tidy reaches Quay", func() error {
		if s.Quay.Control.Calls(t)["getOrgRobots"] == 0 {
			return fmt.Errorf("no call yet")
		}
		return nil
	})
	res = s.Vault.CLI(t, "write", "-f", mount+"/tidy")
	wg.Wait()
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "Code: 409") ||
		!strings.Contains(res.Stderr, "a tidy is already running on this mount") || strings.Contains(res.Stderr, "error occurred") {
		t.Errorf("a second tidy is a 409 error with its message:\n%s", res)
	}
}
