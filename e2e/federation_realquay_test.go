//go:build e2e && realquay

package e2e

// Federated robots through a real Vault against the real Quay 3.18 (Python)
// of /work/shared/realquay, which the test starts with REQUESTS_CA_BUNDLE
// set to Vault's dev CA, and stops:
//
//	go test -tags 'e2e realquay' -run RealQuay -v ./e2e/
//
// REALQUAY_DIR overrides where start.sh and stop.sh live.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// realQuay is a running real Quay with a superuser token and an
// organization.
type realQuay struct {
	URL, Host, Token string
	http             *http.Client
}

// startRealQuay starts real Quay trusting caFile for its own HTTPS, creates
// its first user through the API and an organization with a repository.
func startRealQuay(t *testing.T, caFile, org, repo string) *realQuay {
	t.Helper()
	dir := os.Getenv("REALQUAY_DIR")
	if dir == "" {
		dir = "/work/shared/realquay"
	}
	if _, err := os.Stat(filepath.Join(dir, "start.sh")); err != nil {
		t.Skipf("no real Quay at %s", dir)
	}
	port := freePorts(t, 1)
	work := t.TempDir()
	config := filepath.Join(work, "config.yaml")
	must(t, os.WriteFile(config, []byte(fmt.Sprintf(
		"SERVER_HOSTNAME: 127.0.0.1:%d\nSUPER_USERS: [quayadmin]\nFEATURE_USER_INITIALIZE: true\nFEATURE_MAILING: false\n", port)), 0o600))
	start := exec.Command(filepath.Join(dir, "start.sh"), fmt.Sprint(port), config, filepath.Join(work, "quay"))
	start.Env = append(cleanEnv(), "REQUESTS_CA_BUNDLE="+caFile)
	began := time.Now()
	out, err := start.CombinedOutput()
	t.Cleanup(func() { _ = exec.Command(filepath.Join(dir, "stop.sh"), filepath.Join(work, "quay")).Run() })
	if err != nil {
		t.Fatalf("start.sh: %v\n%s", err, out)
	}
	t.Logf("real Quay up in %s", time.Since(began).Round(time.Second))

	q := &realQuay{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Host: fmt.Sprintf("127.0.0.1:%d", port), http: &http.Client{Timeout: time.Minute}}
	var init struct {
		AccessToken string `json:"access_token"`
	}
	q.must(t, http.MethodPost, "/api/v1/user/initialize", "", map[string]any{
		"username": "quayadmin", "password": "password123", "email": "admin@example.com", "access_token": true,
	}, &init)
	q.Token = init.AccessToken
	q.must(t, http.MethodPost, "/api/v1/organization/", q.Token, map[string]string{"name": org, "email": org + "@example.com"}, nil)
	q.must(t, http.MethodPost, "/api/v1/repository", q.Token, map[string]string{
		"namespace": org, "repository": repo, "visibility": "private", "description": "",
	}, nil)
	return q
}

func (q *realQuay) must(t *testing.T, method, path, token string, body, out any) {
	t.Helper()
	code, resp := doJSON(t, q.http, method, q.URL+path, token, body)
	if code/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, code, redactSecrets(string(resp)))
	}
	if out != nil {
		must(t, json.Unmarshal(resp, out))
	}
}

func TestRealQuay_FederatedCredsThroughVault(t *testing.T) {
	v := StartDevVaultTLS(t)
	q := startRealQuay(t, v.CACert, "acme", "app")
	v.EnablePlugin(t, mount)
	v.MustCLI(t, "write", mount+"/config", "url="+q.URL, "token="+q.Token)
	issuer := v.Addr + "/v1/" + mount
	v.MustCLI(t, "write", mount+"/config/federation", "federation_issuer="+issuer)
	v.MustCLI(t, "write", mount+"/roles/ci", "credential_type=federated", "namespace_name=acme", `repositories={"app":"write"}`, "ttl=10m")

	var fed []map[string]string
	q.must(t, http.MethodGet, "/api/v1/organization/acme/robots/ci/federation", q.Token, nil, &fed)
	if len(fed) != 1 || fed[0]["issuer"] != issuer || fed[0]["subject"] != "acme+ci" {
		t.Fatalf("real Quay stored the federation %v; want %s for acme+ci", fed, issuer)
	}

	s := &stack{Vault: v, Org: "acme"}
	sec := s.readCreds(t, "ci")
	auth := authFile(t, sec)
	ref := "docker://" + q.Host + "/acme/app:v1"
	if out, err := skopeo(t, auth, "copy", "--dest-tls-verify=false", ociImage(t), ref); err != nil {
		t.Fatalf("skopeo push to real Quay with the federated robot's token failed: %v\n%s", err, out)
	}
	if out, err := skopeo(t, auth, "copy", "--src-tls-verify=false", ref, "oci:"+filepath.Join(t.TempDir(), "pulled")+":v1"); err != nil {
		t.Fatalf("skopeo pull from real Quay with the federated robot's token failed: %v\n%s", err, out)
	}

	// Latency of a creds read through Vault's API against this Quay: the
	// federated read (one exchange, during which Quay reads Vault's two
	// documents over TLS) next to a dynamic robot with the same grant
	// (create, grant; its revoke is one more call, not counted).
	v.MustCLI(t, "write", mount+"/roles/dynamic", "namespace_name=acme", `repositories={"app":"write"}`, "ttl=10m")
	const rounds = 5
	for _, role := range []string{"ci", "dynamic"} {
		start := time.Now()
		for range rounds {
			if _, err := v.Client.Logical().Read(mount + "/creds/" + role); err != nil {
				t.Fatalf("creds/%s: %v", role, err)
			}
		}
		t.Logf("real Quay through Vault, mean of %d creds/%s reads: %s", rounds, role, (time.Since(start) / rounds).Round(time.Millisecond))
	}
	must(t, v.Client.Sys().RevokePrefix(mount+"/creds/dynamic"))

	v.MustCLI(t, "delete", mount+"/roles/ci")
	code, _ := doJSON(t, q.http, http.MethodGet, q.URL+"/api/v1/organization/acme/robots/ci", q.Token, nil)
	if code == http.StatusOK {
		t.Error("deleting the role left the robot the engine created in real Quay")
	}
	if out, err := skopeo(t, auth, "copy", "--src-tls-verify=false", ref, "oci:"+filepath.Join(t.TempDir(), "again")+":v1"); err == nil {
		t.Errorf("the token of a deleted robot still pulls from real Quay:\n%s", out)
	}
}
