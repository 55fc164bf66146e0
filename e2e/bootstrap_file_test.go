//go:build e2e

package e2e

import (
	"net/http"
	"testing"
)

// Quay's programmatic bootstrap file across restarts, as boot.py writes it
// (_provision_bootstrap_token): nothing until BOOTSTRAP_TOKEN_OWNER exists,
// then a token at the next start, kept (not rewritten) at later starts, and
// a new one at the first start after the engine revoked it. In between, the
// file's token bootstraps a mount with the token method.
func TestBootstrapTokenFileAcrossRestarts(t *testing.T) {
	q := StartQuay(t, QuayOptions{Empty: true})
	if q.ReadBootstrapFile(t) != "" {
		t.Fatal("Quay wrote a bootstrap token before its owner existed")
	}
	v := StartDevVault(t)
	v.EnablePlugin(t, mount)

	// Zero-touch: Vault creates the owner. Quay writes nothing yet.
	v.MustCLI(t, "write", mount+"/config", "url="+q.URL, "bootstrap=initialize", "username=quayadmin", "root_organization="+q.Name("vault-root"))
	if q.ReadBootstrapFile(t) != "" {
		t.Fatal("Quay wrote a bootstrap token without a restart")
	}

	// The next start finds the owner and writes a token for it.
	q.Restart(t)
	first := q.ReadBootstrapFile(t)
	if first == "" {
		t.Fatal("no bootstrap token after a restart with the owner in the database")
	}
	if code, user := q.WhoAmI(t, first); code != http.StatusOK || user != "quayadmin" {
		t.Fatalf("the bootstrap token: GET /api/v1/user/ = %d %q, want 200 quayadmin", code, user)
	}
	// Later starts keep it.
	q.Restart(t)
	if got := q.ReadBootstrapFile(t); got != first {
		t.Fatal("a restart rewrote the bootstrap token file although its token still exists")
	}

	// The token method from the file, on a second mount: the engine mints
	// its own root token and revokes the bootstrap token (proving it with
	// a renewal first, which makes Quay write a successor it revokes too).
	// The file holds no working token until Quay starts again.
	const second = "quay-file"
	v.EnablePlugin(t, second)
	v.MustCLI(t, "write", second+"/config", "url="+q.URL, "token="+first, "root_organization="+q.Name("vault-root-file"))
	if code, _ := q.WhoAmI(t, first); code != http.StatusUnauthorized {
		t.Fatalf("the bootstrap token still works (%d) after the engine revoked it", code)
	}
	dead := q.ReadBootstrapFile(t)
	if code, _ := q.WhoAmI(t, dead); code != http.StatusUnauthorized {
		t.Fatalf("the token in the bootstrap file works (%d) after the engine revoked the bootstrap token", code)
	}

	// The first start after the revocation writes a new token.
	q.Restart(t)
	renewed := q.ReadBootstrapFile(t)
	if renewed == "" || renewed == first || renewed == dead {
		t.Fatal("no new bootstrap token after a restart that followed the revocation")
	}
	if code, user := q.WhoAmI(t, renewed); code != http.StatusOK || user != "quayadmin" {
		t.Fatalf("the new bootstrap token: GET /api/v1/user/ = %d %q, want 200 quayadmin", code, user)
	}

	// The mount bootstrapped from the file keeps issuing: it depends on
	// its own root token only.
	org := q.Name("acme")
	q.createOrganizationAs(t, renewed, org)
	s := &stack{Vault: v, Quay: q, Org: org}
	v.MustCLI(t, "write", second+"/roles/ci", "credential_type=oauth_token", "namespace_name="+org, "scopes=repo:read,user:read", "ttl=1h")
	var sec cliSecret
	v.CLIJSON(t, &sec, []string{"read"}, second+"/creds/ci")
	if code, _ := s.Quay.WhoAmI(t, sec.str(t, "token")); code != http.StatusOK {
		t.Fatalf("a token issued by the mount bootstrapped from the file does not work: %d", code)
	}
}
