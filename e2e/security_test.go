//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// A lease ID is not a secret: Vault prints it in audit logs, the UI and the
// CLI, and its default policy lets every token renew any lease. A renewal
// must therefore never answer with the credential itself. Before the fix,
// `vault write sys/leases/renew lease_id=...` by a token that did not create
// the lease, and cannot even read the role, answered with the robot's
// password, its docker config and the OAuth token.
func TestRenewByAnotherTokenRevealsNoCredential(t *testing.T) {
	s := newStack(t)
	s.writeOAuthRole(t, "api")
	s.Vault.MustCLI(t, "write", mount+"/roles/ci", "namespace_name="+s.Org, "ttl=1h", "max_ttl=2h")
	oauth := s.readCreds(t, "api")
	robot := s.readCreds(t, "ci")
	secrets := map[string]string{
		"OAuth token":        oauth.str(t, "token"),
		"robot password":     robot.str(t, "password"),
		"robot auth":         robot.str(t, "auth"),
		"docker_config_json": robot.str(t, "docker_config_json"),
	}

	// A token with nothing but Vault's default policy.
	var created struct {
		Auth struct {
			ClientToken string   `json:"client_token"`
			Policies    []string `json:"policies"`
		} `json:"auth"`
	}
	s.Vault.CLIJSON(t, &created, []string{"token", "create"}, "-policy=default")
	other := created.Auth.ClientToken
	if other == "" || strings.Join(created.Auth.Policies, ",") != "default" {
		t.Fatalf("token create: policies %v", created.Auth.Policies)
	}
	if res := s.Vault.CLIWithToken(t, other, "read", mount+"/roles/ci"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "permission denied") {
		t.Fatalf("the other token can read the role; the test needs one that cannot:\n%s", res)
	}

	for name, lease := range map[string]string{"oauth": oauth.LeaseID, "robot": robot.LeaseID} {
		res := s.Vault.CLIWithToken(t, other, "write", "-format=json", "sys/leases/renew", "lease_id="+lease)
		if res.ExitCode != 0 {
			t.Fatalf("%s: the default policy lets any token renew a lease it knows:\n%s", name, res)
		}
		var answer struct {
			LeaseID       string         `json:"lease_id"`
			LeaseDuration int            `json:"lease_duration"`
			Data          map[string]any `json:"data"`
		}
		if err := json.Unmarshal([]byte(res.Stdout), &answer); err != nil {
			t.Fatalf("%s: decoding the renew answer: %v", name, err)
		}
		if answer.LeaseID != lease || answer.LeaseDuration <= 0 {
			t.Errorf("%s: renew answered lease %q for %ds, want %q renewed", name, answer.LeaseID, answer.LeaseDuration, lease)
		}
		for what, value := range secrets {
			if strings.Contains(res.Stdout+res.Stderr, value) {
				t.Errorf("%s: the renew answer to another token carries the %s", name, what)
			}
		}
		if len(answer.Data) != 0 {
			keys := make([]string, 0, len(answer.Data))
			for k := range answer.Data {
				keys = append(keys, k)
			}
			t.Errorf("%s: the renew answer has data keys %v, want none", name, keys)
		}
	}

	// The renewed leases still revoke: revocation needs no response data.
	s.Vault.MustCLI(t, "lease", "revoke", "-sync", oauth.LeaseID)
	s.Vault.MustCLI(t, "lease", "revoke", "-sync", robot.LeaseID)
	if code, _ := s.Quay.WhoAmI(t, secrets["OAuth token"]); code != 401 {
		t.Errorf("the OAuth token still works after its renewed lease was revoked: %d", code)
	}
	if s.Quay.RobotExists(t, robot.str(t, "username")) {
		t.Errorf("the robot survived the revocation of its renewed lease")
	}
}
