//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
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

// The mount's OpenAPI document, as a real Vault generates it for clients
// (sys/internal/specs/openapi): every operation of the mount has its own ID
// and declared answers, no schema is empty, nothing is "<no description>".
func TestOpenAPIThroughVault(t *testing.T) {
	s := newStack(t, withoutConfig())
	raw, err := s.Vault.Client.Logical().ReadRaw("sys/internal/specs/openapi")
	must(t, err)
	defer raw.Body.Close()
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	body, err := io.ReadAll(raw.Body)
	must(t, err)
	must(t, json.Unmarshal(body, &doc))

	ids := map[string]string{}
	operations := 0
	for path, item := range doc.Paths {
		if !strings.HasPrefix(path, "/"+mount+"/") {
			continue
		}
		if strings.Contains(string(mustJSON(t, item)), "<no description>") {
			t.Errorf("%s has an undescribed field", path)
		}
		for method, opRaw := range item {
			if method != "get" && method != "post" && method != "delete" {
				continue
			}
			var op struct {
				OperationID string                     `json:"operationId"`
				Responses   map[string]json.RawMessage `json:"responses"`
			}
			must(t, json.Unmarshal(opRaw, &op))
			operations++
			if other, dup := ids[op.OperationID]; dup || op.OperationID == "" {
				t.Errorf("%s %s: operation ID %q (also %s)", method, path, op.OperationID, other)
			}
			ids[op.OperationID] = method + " " + path
			if len(op.Responses) == 0 {
				t.Errorf("%s %s declares no response", method, path)
			}
		}
	}
	if operations < 20 {
		t.Fatalf("only %d operations of %s/ in Vault's OpenAPI document", operations, mount)
	}
	quaySchemas := 0
	for name, schema := range doc.Components.Schemas {
		if strings.HasPrefix(name, "Quay") {
			quaySchemas++
		}
		if strings.HasPrefix(name, "Quay") && len(schema.Properties) == 0 {
			t.Errorf("schema %s is empty", name)
		}
	}
	if quaySchemas < 15 {
		t.Errorf("only %d request and response schemas of the mount", quaySchemas)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	return b
}
