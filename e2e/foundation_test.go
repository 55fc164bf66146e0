//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The "Foundation" issue: the plugin enabled in a real Vault issues leased
// Quay OAuth tokens, and the lease's life is the token's life.

// expiryTolerance is how far Quay's expiry of a token may be from the
// lease's issue time + max TTL: the plugin's clock reading and Vault's lease
// registration happen a moment apart.
const expiryTolerance = 5 * time.Second

func TestEnableAndConfigure(t *testing.T) {
	s := newStack(t, withoutConfig())

	var mounts map[string]struct {
		Type                 string `json:"type"`
		RunningPluginVersion string `json:"running_plugin_version"`
	}
	s.Vault.CLIJSON(t, &mounts, []string{"secrets", "list"}, "-detailed")
	m, ok := mounts[mount+"/"]
	if !ok {
		t.Fatalf("vault secrets list has no %s/ mount: %v", mount, mounts)
	}
	if m.Type != pluginName || m.RunningPluginVersion != pluginVersion {
		t.Fatalf("mount %s/: type %q running version %q, want %q %q", mount, m.Type, m.RunningPluginVersion, pluginName, pluginVersion)
	}

	s.configure(t)

	out := s.Vault.MustCLI(t, "read", "-format=json", mount+"/config")
	if strings.Contains(out, s.Quay.BootstrapToken) {
		t.Fatalf("vault read %s/config shows the token:\n%s", mount, strings.ReplaceAll(out, s.Quay.BootstrapToken, "<the bootstrap token>"))
	}
	var cfg cliSecret
	must(t, json.Unmarshal([]byte(out), &cfg))
	if got := cfg.Data["url"]; got != s.Quay.URL {
		t.Errorf("config url = %v, want %s", got, s.Quay.URL)
	}
	if got := cfg.Data["root_token_owner"]; got != s.Quay.BootstrapOwner {
		t.Errorf("config root_token_owner = %v, want %s (Quay's answer to GET /api/v1/user/ with the token)", got, s.Quay.BootstrapOwner)
	}
	if _, ok := cfg.Data["token"]; ok {
		t.Errorf("config read has a token field")
	}
	// The table output, which is what people paste into tickets, too.
	if table := s.Vault.MustCLI(t, "read", mount+"/config"); strings.Contains(table, s.Quay.BootstrapToken) {
		t.Fatalf("vault read %s/config (table) shows the token:\n%s", mount, redactSecrets(table))
	}
}

func TestCredsIssueWorkingToken(t *testing.T) {
	s := newStack(t)
	s.writeOAuthRole(t, "ci", "ttl=1h", "max_ttl=2h")

	before := time.Now()
	sec := s.readCreds(t, "ci")
	after := time.Now()

	token := sec.str(t, "token")
	tokenID := sec.str(t, "token_id")
	clientID := sec.str(t, "client_id")
	if got := sec.str(t, "namespace_name"); got != s.Org {
		t.Errorf("namespace_name = %q, want %q", got, s.Org)
	}
	if got := stringList(sec.Data["scopes"]); !sameSet(got, []string{"repo:read", "user:read"}) {
		t.Errorf("scopes = %v, want repo:read and user:read", sec.Data["scopes"])
	}
	if !sec.Renewable || sec.LeaseDuration != 3600 {
		t.Errorf("lease renewable=%v duration=%ds, want renewable for 3600s", sec.Renewable, sec.LeaseDuration)
	}
	if !strings.HasPrefix(sec.LeaseID, mount+"/creds/ci/") {
		t.Errorf("lease id %q is not under %s/creds/ci/", sec.LeaseID, mount)
	}

	lease := s.Vault.LookupLease(t, sec.LeaseID)
	if lease.IssueTime.Before(before.Add(-time.Second)) || lease.IssueTime.After(after.Add(time.Second)) {
		t.Errorf("lease issue_time %s is not within the read (%s .. %s)", lease.IssueTime, before, after)
	}
	maxExpiry := lease.IssueTime.Add(2 * time.Hour)

	expiresAt, err := time.Parse(time.RFC3339, sec.str(t, "expires_at"))
	must(t, err)
	assertNear(t, "expires_at in the creds response", expiresAt, maxExpiry, expiryTolerance)

	// The token works against Quay, as the root credential's user.
	if code, user := s.Quay.WhoAmI(t, token); code != http.StatusOK || user != s.Quay.BootstrapOwner {
		t.Fatalf("GET /api/v1/user/ with the issued token: %d %q, want 200 %q", code, user, s.Quay.BootstrapOwner)
	}

	// Quay lists it on the application with the role's scopes, expiring
	// at the lease's max TTL.
	listed, ok := s.Quay.findAppToken(t, s.Org, clientID, tokenID)
	if !ok {
		t.Fatalf("token %s is not listed on application %s of %s", tokenID, clientID, s.Org)
	}
	if got := strings.Fields(strings.ReplaceAll(listed.Scope, ",", " ")); !sameSet(got, []string{"repo:read", "user:read"}) {
		t.Errorf("Quay lists scope %q, want repo:read user:read", listed.Scope)
	}
	quayExpiry, err := parseQuayTime(listed.ExpiresAt)
	must(t, err)
	assertNear(t, "the token's expires_at in Quay", quayExpiry, maxExpiry, expiryTolerance)
}

func TestLeaseRenewUpToMaxTTL(t *testing.T) {
	s := newStack(t)
	// A short max TTL so the test can watch the lease reach it.
	s.writeOAuthRole(t, "short", "ttl=4s", "max_ttl=12s")
	sec := s.readCreds(t, "short")
	token, tokenID := sec.str(t, "token"), sec.str(t, "token_id")
	if sec.LeaseDuration != 4 {
		t.Fatalf("lease_duration = %d, want the role's ttl of 4", sec.LeaseDuration)
	}
	issued := s.Vault.LookupLease(t, sec.LeaseID).IssueTime

	// A renewal within the max TTL gets what it asks for.
	var renewed cliSecret
	s.Vault.CLIJSON(t, &renewed, []string{"lease", "renew"}, "-increment=6s", sec.LeaseID)
	if renewed.LeaseDuration != 6 {
		t.Fatalf("renew -increment=6s: lease_duration = %d, want 6", renewed.LeaseDuration)
	}
	// A renewal past it is capped at the max TTL, with a warning.
	s.Vault.CLIJSON(t, &renewed, []string{"lease", "renew"}, "-increment=1h", sec.LeaseID)
	if renewed.LeaseDuration > 12 || renewed.LeaseDuration < 1 {
		t.Fatalf("renew -increment=1h: lease_duration = %d, want at most the 12s max TTL", renewed.LeaseDuration)
	}
	if len(renewed.Warnings) == 0 {
		t.Errorf("a renewal capped at the max TTL came without a warning")
	}
	expire := s.Vault.LookupLease(t, sec.LeaseID).ExpireTime
	assertNear(t, "expire_time after a capped renewal", expire, issued.Add(12*time.Second), 2*time.Second)
	if code, _ := s.Quay.WhoAmI(t, token); code != http.StatusOK {
		t.Fatalf("the token stopped working after renewals: GET /api/v1/user/ = %d", code)
	}

	// At the max TTL the lease ends: renewing fails and the token is gone.
	eventually(t, time.Until(expire)+30*time.Second, "the lease ends at its max TTL", func() error {
		if ids := s.Vault.LeaseIDs(t, mount+"/creds/short"); len(ids) > 0 {
			return fmt.Errorf("leases still listed: %v", ids)
		}
		return nil
	})
	if res := s.Vault.CLI(t, "lease", "renew", sec.LeaseID); res.ExitCode == 0 {
		t.Fatalf("renewing a lease past its max TTL succeeded:\n%s", res)
	}
	if code, _ := s.Quay.WhoAmI(t, token); code != http.StatusUnauthorized {
		t.Fatalf("GET /api/v1/user/ with the token after its lease ended = %d, want 401", code)
	}
	// Deleted by the lease's revocation, not merely expired in Quay.
	if s.Quay.TokenExists(t, s.Org, sec.str(t, "client_id"), tokenID) {
		t.Fatalf("token %s still exists in Quay after its lease ended", tokenID)
	}
}

func TestRevokeDeletesToken(t *testing.T) {
	s := newStack(t)
	s.writeOAuthRole(t, "ci")
	sec := s.readCreds(t, "ci")
	token, tokenID, clientID := sec.str(t, "token"), sec.str(t, "token_id"), sec.str(t, "client_id")
	if code, _ := s.Quay.WhoAmI(t, token); code != http.StatusOK {
		t.Fatalf("fresh token refused: %d", code)
	}

	s.Vault.MustCLI(t, "lease", "revoke", "-sync", sec.LeaseID)

	if code, _ := s.Quay.WhoAmI(t, token); code != http.StatusUnauthorized {
		t.Fatalf("GET /api/v1/user/ with a revoked token = %d, want 401", code)
	}
	if _, ok := s.Quay.findAppToken(t, s.Org, clientID, tokenID); ok {
		t.Fatalf("revoked token %s is still listed in Quay", tokenID)
	}
	if s.Quay.TokenExists(t, s.Org, clientID, tokenID) {
		t.Fatalf("revoked token %s still exists in Quay", tokenID)
	}
	if ids := s.Vault.LeaseIDs(t, mount+"/creds/ci"); len(ids) != 0 {
		t.Fatalf("leases left after revoke: %v", ids)
	}
}

func TestRevokeAfterTokenDeletedInQuay(t *testing.T) {
	s := newStack(t)
	s.writeOAuthRole(t, "ci")
	sec := s.readCreds(t, "ci")
	token := sec.str(t, "token")

	// Someone deletes the token in Quay behind Vault's back.
	s.Quay.DeleteAppToken(t, s.Org, sec.str(t, "client_id"), sec.str(t, "token_id"))
	if code, _ := s.Quay.WhoAmI(t, token); code != http.StatusUnauthorized {
		t.Fatalf("token deleted in Quay still works: %d", code)
	}

	s.Vault.MustCLI(t, "lease", "revoke", "-sync", sec.LeaseID)
	if ids := s.Vault.LeaseIDs(t, mount+"/creds/ci"); len(ids) != 0 {
		t.Fatalf("leases left after revoke: %v", ids)
	}
}

func TestRevokeAfterRoleDeleted(t *testing.T) {
	s := newStack(t)
	s.writeOAuthRole(t, "ci")
	sec := s.readCreds(t, "ci")
	token := sec.str(t, "token")

	s.Vault.MustCLI(t, "delete", mount+"/roles/ci")
	if out := s.Vault.CLI(t, "read", mount+"/roles/ci"); out.ExitCode == 0 {
		t.Fatalf("role still readable after delete:\n%s", out)
	}
	if code, _ := s.Quay.WhoAmI(t, token); code != http.StatusOK {
		t.Fatalf("deleting the role broke the issued token: %d", code)
	}

	s.Vault.MustCLI(t, "lease", "revoke", "-sync", sec.LeaseID)
	if code, _ := s.Quay.WhoAmI(t, token); code != http.StatusUnauthorized {
		t.Fatalf("GET /api/v1/user/ after revoking (role deleted) = %d, want 401", code)
	}
	if s.Quay.TokenExists(t, s.Org, sec.str(t, "client_id"), sec.str(t, "token_id")) {
		t.Fatalf("token still exists in Quay after its lease was revoked")
	}
}

func TestConcurrentCredsReads(t *testing.T) {
	s := newStack(t, withoutConfig())
	var timeout []string
	if s.Quay.Target != targetEmulator {
		// The suite's Quay 3.18.0 runs on SQLite in one process on two
		// shared cores: it serialises the 20 token creations, and the last
		// ones wait longer than the default 30 s per request.
		timeout = append(timeout, "request_timeout=2m")
	}
	s.configure(t, timeout...)
	s.writeOAuthRole(t, "ci")

	const n = 20
	type result struct {
		lease, token, tokenID string
		err                   error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			sec, err := s.Vault.Client.Logical().Read(mount + "/creds/ci")
			if err != nil {
				results[i].err = err
				return
			}
			if sec == nil {
				results[i].err = fmt.Errorf("empty response")
				return
			}
			tok, _ := sec.Data["token"].(string)
			id, _ := sec.Data["token_id"].(string)
			results[i] = result{lease: sec.LeaseID, token: tok, tokenID: id}
		}()
	}
	close(start)
	wg.Wait()

	leases, tokens, ids := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("read %d failed: %v", i, r.err)
		}
		if r.lease == "" || r.token == "" || r.tokenID == "" {
			t.Fatalf("read %d returned lease %q token set=%v token_id %q", i, r.lease, r.token != "", r.tokenID)
		}
		leases[r.lease], tokens[r.token], ids[r.tokenID] = true, true, true
	}
	if len(leases) != n || len(tokens) != n || len(ids) != n {
		t.Fatalf("%d reads gave %d distinct leases, %d tokens, %d token ids", n, len(leases), len(tokens), len(ids))
	}
	for tok := range tokens {
		if code, _ := s.Quay.WhoAmI(t, tok); code != http.StatusOK {
			t.Fatalf("an issued token is refused by Quay: %d", code)
		}
	}
	if got := s.Vault.LeaseIDs(t, mount+"/creds/ci"); len(got) != n {
		t.Fatalf("Vault lists %d leases, want %d", len(got), n)
	}
}

func TestCredsFailFastWhenQuayDown(t *testing.T) {
	s := newStack(t)
	s.writeOAuthRole(t, "ci")
	existing := s.readCreds(t, "ci")

	s.Quay.Stop(t)

	res := s.Vault.CLI(t, "read", mount+"/creds/ci")
	if res.ExitCode == 0 {
		t.Fatalf("creds read succeeded with Quay down:\n%s", res)
	}
	// A bound, not a benchmark: the plugin must not hang on a dead Quay.
	if res.Duration > 10*time.Second {
		t.Errorf("creds read with Quay down took %s; want a fast failure", res.Duration)
	}
	// The error says what failed and why, and where Quay was expected.
	for _, want := range []string{`role "ci"`, "connection refused", strings.TrimPrefix(s.Quay.URL, "http://")} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("error does not mention %q:\n%s", want, res.Stderr)
		}
	}
	// No lease was created: only the one from before Quay went down.
	if got := s.Vault.LeaseIDs(t, mount+"/creds/ci"); !slices.Equal(got, []string{existing.LeaseID}) {
		t.Fatalf("leases under %s/creds/ci = %v, want only %s", mount, got, existing.LeaseID)
	}
}

func TestRoleValidation(t *testing.T) {
	s := newStack(t)
	base := map[string]any{
		"credential_type": "oauth_token",
		"namespace_name":  s.Org,
		"scopes":          "repo:read",
		"ttl":             "1h",
		"max_ttl":         "2h",
	}
	cases := []struct {
		name  string
		set   map[string]any
		unset string
		field string
	}{
		{name: "unknown scope", set: map[string]any{"scopes": "repo:nope"}, field: "scopes"},
		{name: "missing namespace_name", unset: "namespace_name", field: "namespace_name"},
		{name: "ttl above max_ttl", set: map[string]any{"ttl": "3h"}, field: "ttl"},
		{name: "unknown credential_type", set: map[string]any{"credential_type": "password"}, field: "credential_type"},
		{name: "oauth_token without scopes", unset: "scopes", field: "scopes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := map[string]any{}
			for k, v := range base {
				data[k] = v
			}
			for k, v := range tc.set {
				data[k] = v
			}
			delete(data, tc.unset)
			role := "bad-" + strings.ReplaceAll(tc.name, " ", "-")
			code, msg := s.Vault.writeStatus(t, mount+"/roles/"+role, data)
			if code != http.StatusBadRequest {
				t.Fatalf("status %d (%s), want 400", code, msg)
			}
			if !strings.Contains(msg, tc.field) {
				t.Fatalf("error %q does not name the field %q", msg, tc.field)
			}
			if sec, err := s.Vault.Client.Logical().Read(mount + "/roles/" + role); err != nil || sec != nil {
				t.Fatalf("rejected role was stored: %v %v", sec, err)
			}
		})
	}
}

func TestPluginRegisterVersion(t *testing.T) {
	v := StartFileVault(t)

	// The version must be the one stamped into the binary.
	res := v.CLI(t, "plugin", "register", "-sha256="+suite.pluginSHA, "-version=v9.9.9", "secret", pluginName)
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "did not match") {
		t.Fatalf("registering with a version the binary does not report should fail with a mismatch:\n%s", res)
	}

	v.RegisterPlugin(t, pluginVersion)
	var info struct {
		Version string `json:"version"`
		SHA256  string `json:"sha256"`
	}
	v.CLIJSON(t, &info, []string{"plugin", "info"}, "-version="+pluginVersion, "secret", pluginName)
	if info.Version != pluginVersion || info.SHA256 != suite.pluginSHA {
		t.Fatalf("vault plugin info: version %q sha256 %q, want %q %q", info.Version, info.SHA256, pluginVersion, suite.pluginSHA)
	}

	v.EnablePlugin(t, mount)
	var mounts map[string]struct {
		RunningPluginVersion string `json:"running_plugin_version"`
	}
	v.CLIJSON(t, &mounts, []string{"secrets", "list"}, "-detailed")
	if got := mounts[mount+"/"].RunningPluginVersion; got != pluginVersion {
		t.Fatalf("running_plugin_version = %q, want %q", got, pluginVersion)
	}
}

// TestFileVaultRestartKeepsState checks the harness's persistent Vault: after
// kill -9 and restart, config, roles and leases are still there and the
// lease still revokes the token in Quay.
func TestFileVaultRestartKeepsState(t *testing.T) {
	q := StartQuay(t, QuayOptions{})
	org := q.Name("acme")
	q.CreateOrganization(t, org)
	v := StartFileVault(t)
	v.RegisterPlugin(t, pluginVersion)
	v.EnablePlugin(t, mount)
	s := &stack{Vault: v, Quay: q, Org: org}
	s.configure(t)
	s.writeOAuthRole(t, "ci")
	sec := s.readCreds(t, "ci")
	token := sec.str(t, "token")

	v.Restart(t)

	if ids := v.LeaseIDs(t, mount+"/creds/ci"); !slices.Equal(ids, []string{sec.LeaseID}) {
		t.Fatalf("leases after restart = %v, want [%s]", ids, sec.LeaseID)
	}
	var role cliSecret
	v.CLIJSON(t, &role, []string{"read"}, mount+"/roles/ci")
	if role.Data["namespace_name"] != org {
		t.Fatalf("role after restart: %v", role.Data)
	}
	v.MustCLI(t, "lease", "revoke", "-sync", sec.LeaseID)
	if code, _ := q.WhoAmI(t, token); code != http.StatusUnauthorized {
		t.Fatalf("token after revoking its lease on a restarted Vault: %d, want 401", code)
	}
}

// helpers

func assertNear(t testing.TB, what string, got, want time.Time, tolerance time.Duration) {
	t.Helper()
	if d := got.Sub(want); d > tolerance || d < -tolerance {
		t.Errorf("%s = %s, want %s ± %s (off by %s)", what, got.UTC().Format(time.RFC3339Nano), want.UTC().Format(time.RFC3339Nano), tolerance, d)
	}
}

func stringList(v any) []string {
	switch v := v.(type) {
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, _ := e.(string)
			out = append(out, s)
		}
		return out
	case string:
		return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
	}
	return nil
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b)) && len(a) == len(b)
}
