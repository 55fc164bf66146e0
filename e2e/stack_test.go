//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// mount is where the suite enables the plugin, as the docs tell users to.
const mount = "quay"

// stack is the setup most tests need: a Quay (see StartQuay), a dev Vault
// with the plugin enabled at quay/ and configured with the bootstrap token,
// and an organization for roles.
type stack struct {
	Vault *Vault
	Quay  *Quay
	Org   string
}

type stackOptions struct {
	// noConfig leaves quay/config unwritten.
	noConfig bool
	quay     QuayOptions
}

type stackOption func(*stackOptions)

func withoutConfig() stackOption { return func(o *stackOptions) { o.noConfig = true } }

// withBootstrapFile: the stack's bootstrap token is the one Quay's
// programmatic bootstrap wrote, which the test lets the engine revoke.
func withBootstrapFile() stackOption {
	return func(o *stackOptions) { o.quay.BootstrapFile = true }
}

func newStack(t testing.TB, opts ...stackOption) *stack {
	t.Helper()
	var o stackOptions
	for _, opt := range opts {
		opt(&o)
	}
	s := &stack{Quay: StartQuay(t, o.quay)}
	s.Org = s.Quay.Name("acme")
	s.Quay.CreateOrganization(t, s.Org)
	s.Vault = StartDevVault(t)
	s.Vault.EnablePlugin(t, mount)
	if !o.noConfig {
		s.configure(t)
	}
	return s
}

// configure writes quay/config with Quay's URL and the bootstrap token (and
// extra key=value fields), with the CLI as an operator would.
func (s *stack) configure(t testing.TB, extra ...string) {
	t.Helper()
	s.Vault.MustCLI(t, append([]string{"write", mount + "/config", "url=" + s.Quay.URL, "token=" + s.Quay.BootstrapToken}, extra...)...)
}

// writeOAuthRole writes an oauth_token role for the stack's organization;
// extra are further key=value arguments (overriding the defaults).
func (s *stack) writeOAuthRole(t testing.TB, name string, extra ...string) {
	t.Helper()
	// The vault CLI turns a repeated key into a list, so extras replace
	// the defaults rather than follow them.
	fields := map[string]string{
		"credential_type": "oauth_token",
		"namespace_name":  s.Org,
		"scopes":          "repo:read,user:read",
		"ttl":             "1h",
		"max_ttl":         "2h",
	}
	order := []string{"credential_type", "namespace_name", "scopes", "ttl", "max_ttl"}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		if _, known := fields[k]; !known {
			order = append(order, k)
		}
		fields[k] = v
	}
	args := []string{"write", mount + "/roles/" + name}
	for _, k := range order {
		args = append(args, k+"="+fields[k])
	}
	s.Vault.MustCLI(t, args...)
}

// readCreds is `vault read -format=json quay/creds/<role>`.
func (s *stack) readCreds(t testing.TB, role string) cliSecret {
	t.Helper()
	var sec cliSecret
	s.Vault.CLIJSON(t, &sec, []string{"read"}, mount+"/creds/"+role)
	if sec.LeaseID == "" {
		t.Fatalf("vault read %s/creds/%s returned no lease: %+v", mount, role, sec)
	}
	return sec
}
