//go:build realquay

package backend

// The engine's federation tokens against the real Quay 3.18 (Python) of
// /work/shared/realquay, which the test starts with REQUESTS_CA_BUNDLE set
// to a CA it generates, and stops:
//
//	go test -tags realquay -run RealQuay -v ./backend/
//
// REALQUAY_DIR overrides where start.sh and stop.sh live. Vault itself is
// stood in for by an HTTPS front serving the mount's unauthenticated paths
// (newVaultFrontWithCert); the e2e suite covers Vault's HTTP layer.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// testCA returns a CA's PEM and a server certificate it signed for 127.0.0.1.
func testCA(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "realquay federation test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &leafKey.PublicKey, caKey)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startRealQuay starts real Quay trusting caFile and returns its URL.
func startRealQuay(t *testing.T, caFile string) string {
	t.Helper()
	dir := os.Getenv("REALQUAY_DIR")
	if dir == "" {
		dir = "/work/shared/realquay"
	}
	if _, err := os.Stat(filepath.Join(dir, "start.sh")); err != nil {
		t.Skipf("no real Quay at %s", dir)
	}
	port := freePort(t)
	work := t.TempDir()
	config := filepath.Join(work, "config.yaml")
	require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(
		"SERVER_HOSTNAME: 127.0.0.1:%d\nSUPER_USERS: [quayadmin]\nFEATURE_USER_INITIALIZE: true\nFEATURE_MAILING: false\n", port)), 0o600))
	start := exec.Command(filepath.Join(dir, "start.sh"), fmt.Sprint(port), config, filepath.Join(work, "quay"))
	start.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+caFile)
	out, err := start.CombinedOutput()
	t.Cleanup(func() { _ = exec.Command(filepath.Join(dir, "stop.sh"), filepath.Join(work, "quay")).Run() })
	require.NoError(t, err, "start.sh: %s", out)
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// realQuay is a real Quay started for one test, trusting a test CA, with
// its first user (quayadmin, a superuser) initialized.
type realQuay struct {
	url        string
	cert       tls.Certificate // signed by the CA Quay trusts
	adminToken string
	admin      *quay.Client
	anon       *quay.Client // no credential
}

func startInitializedRealQuay(t *testing.T) realQuay {
	t.Helper()
	caPEM, cert := testCA(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, caPEM, 0o600))
	quayURL := startRealQuay(t, caFile)
	anon, err := quay.New(quay.Config{BaseURL: quayURL})
	require.NoError(t, err)
	init, err := anon.InitializeUser(context.Background(), quay.InitializeUserRequest{Username: "quayadmin", Password: "password123", Email: "a@example.com", AccessToken: true})
	require.NoError(t, err)
	return realQuay{url: quayURL, cert: cert, adminToken: init.AccessToken, admin: anon.WithCredential(quay.StaticToken(init.AccessToken)), anon: anon}
}

func TestRealQuay_ExchangesTheEnginesTokens(t *testing.T) {
	rq := startInitializedRealQuay(t)
	quayURL, cert, admin, anon := rq.url, rq.cert, rq.admin, rq.anon
	ctx := context.Background()
	require.NoError(t, admin.CreateOrganization(ctx, "acme", ""))
	require.NoError(t, admin.CreateRepository(ctx, quay.NewRepository{Namespace: "acme", Repository: "app", Visibility: "private"}))
	acme := quay.Namespace{Kind: quay.NamespaceOrganization, Name: "acme"}
	for _, short := range []string{"ci", "other"} {
		_, err := admin.CreateRobot(ctx, acme, short, quay.RobotSpec{})
		require.NoError(t, err)
	}
	require.NoError(t, admin.SetUserPermission(ctx, "acme", "app", "acme+ci", quay.RoleRead))

	logs := &syncBuffer{}
	b, storage := newTestBackend(t, logs, time.Hour, 24*time.Hour)
	env := &testEnv{t: t, b: b, storage: storage, logs: logs, clock: &fakeClock{}}
	vault := newVaultFrontWithCert(t, &cert)
	vault.env.Store(env)
	env.writeFederation(map[string]any{"federation_issuer": vault.issuer()})
	_, err := admin.SetRobotFederation(ctx, acme, "ci", []quay.FederationEntry{{Issuer: vault.issuer(), Subject: "acme+ci"}})
	require.NoError(t, err)
	mint := func(subject string) string {
		t.Helper()
		minted, err := b.mintFederationToken(ctx, storage, subject, quayURL)
		require.NoError(t, err)
		return minted.Token
	}

	inFlight := mint("acme+ci")
	got, err := anon.ExchangeFederatedRobotToken(ctx, "acme+ci", inFlight)
	require.NoError(t, err, "real Quay accepts the engine's token")
	assert.WithinDuration(t, time.Now().Add(quay.FederatedTokenLifetime), got.ExpiresAt, 5*time.Second)

	// The exchanged token is the robot's password at /v2/auth.
	host := strings.TrimPrefix(quayURL, "http://")
	req, _ := http.NewRequest(http.MethodGet, quayURL+"/v2/auth?service="+host+"&scope=repository:acme/app:pull", nil)
	req.SetBasicAuth("acme+ci", got.Token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var registry struct{ Token string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&registry))
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotEmpty(t, registry.Token)

	env.mustOK(logical.UpdateOperation, "config/federation/rotate-key", nil)
	_, err = anon.ExchangeFederatedRobotToken(ctx, "acme+ci", inFlight)
	assert.NoError(t, err, "a token signed before a rotation")
	_, err = anon.ExchangeFederatedRobotToken(ctx, "acme+ci", mint("acme+ci"))
	assert.NoError(t, err, "a token signed after it")

	_, err = anon.ExchangeFederatedRobotToken(ctx, "acme+ci", mint("acme+other"))
	assert.Equal(t, 400, quay.StatusOf(err))
	assert.ErrorContains(t, err, "Token does not match robot")
	_, err = anon.ExchangeFederatedRobotToken(ctx, "acme+other", mint("acme+other"))
	assert.Equal(t, 400, quay.StatusOf(err))
	assert.ErrorContains(t, err, "Robot does not have federated login configured")

	// Another issuer URL for the same mount is another issuer to Quay.
	env.writeFederation(map[string]any{"federation_issuer": strings.Replace(vault.issuer(), "127.0.0.1", "localhost", 1)})
	_, err = anon.ExchangeFederatedRobotToken(ctx, "acme+ci", mint("acme+ci"))
	assert.Equal(t, 400, quay.StatusOf(err))
	assert.ErrorContains(t, err, "not configured for this robot")

	env.assertNoSecretLogged(inFlight, got.Token)

	// Latency per credential against this Quay: a federated read (mint and
	// exchange; Quay reads the issuer's two documents from Vault) next to
	// a dynamic robot's life (create, one grant, delete).
	env.writeFederation(map[string]any{"federation_issuer": vault.issuer()})
	const rounds = 10
	start := time.Now()
	for range rounds {
		_, err := anon.ExchangeFederatedRobotToken(ctx, "acme+ci", mint("acme+ci"))
		require.NoError(t, err)
	}
	federated := time.Since(start) / rounds
	start = time.Now()
	for i := range rounds {
		short := fmt.Sprintf("vault_bench_%d", i)
		_, err := admin.CreateRobot(ctx, acme, short, quay.RobotSpec{})
		require.NoError(t, err)
		require.NoError(t, admin.SetUserPermission(ctx, "acme", "app", "acme+"+short, quay.RoleRead))
		require.NoError(t, admin.DeleteRobot(ctx, acme, short))
	}
	dynamic := time.Since(start) / rounds
	t.Logf("real Quay, mean of %d: federated read %s (1 Quay call); dynamic robot create+grant+delete %s (3 Quay calls)", rounds, federated, dynamic)
}
