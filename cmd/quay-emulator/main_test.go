package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var readyLine = regexp.MustCompile(`^quay-emulator ready url=(\S+)(?: control=(\S+))?(?: oidc=(\S+))?(?: upstream=(\S+))?\n$`)

// start runs the command in-process and returns the URLs of its ready line,
// and a function that stops it (as SIGINT does) and returns run's result.
func start(t *testing.T, o options) ([]string, func() error) {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := run(ctx, pw, o)
		_ = pw.CloseWithError(io.EOF)
		done <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err, "no ready line")
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	m := readyLine.FindStringSubmatch(line)
	require.NotNil(t, m, "ready line: %q", line)
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("run did not stop")
			return nil
		}
	}
	t.Cleanup(func() { cancel() })
	return m[1:], stop
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestRun_ServesQuayControlAndProvider(t *testing.T) {
	dir := t.TempDir()
	tokenPath := filepath.Join(dir, "token.json")
	config := writeFile(t, "config.yaml", `
SUPER_USERS: [quayadmin]
FEATURE_PROGRAMMATIC_BOOTSTRAP: true
BOOTSTRAP_TOKEN_OWNER: quayadmin
BOOTSTRAP_TOKEN_PATH: `+tokenPath+`
`)
	urls, stop := start(t, options{configPath: config, listen: "127.0.0.1:0", controlListen: "127.0.0.1:0",
		idp: idpFlags{listen: "127.0.0.1:0", issuer: "https://login.microsoftonline.com/t/v2.0", version: 2, ttl: time.Hour}})
	quayURL, controlURL, oidcURL := urls[0], urls[1], urls[2]
	assert.Regexp(t, `^http://127\.0\.0\.1:\d+$`, quayURL)

	// As in Quay: no file until the owner exists and Quay starts again.
	_, err := os.Stat(tokenPath)
	require.ErrorIs(t, err, os.ErrNotExist)
	for _, step := range []struct{ path, body string }{
		{"/users", `{"username":"quayadmin","password":"password1","email":"q@example.com"}`},
		{"/restart", `{}`},
	} {
		resp, err := http.Post(controlURL+step.path, "application/json", strings.NewReader(step.body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNoContent, resp.StatusCode, step.path)
	}
	raw, err := os.ReadFile(tokenPath)
	require.NoError(t, err)
	var file map[string]string
	require.NoError(t, json.Unmarshal(raw, &file))
	req, _ := http.NewRequest(http.MethodGet, quayURL+"/api/v1/user/", nil)
	req.Header.Set("Authorization", "Bearer "+file["access_token"])
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var user map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&user))
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "quayadmin", user["username"])

	resp, err = http.Get(controlURL + "/calls")
	require.NoError(t, err)
	var calls map[string]float64
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&calls))
	resp.Body.Close()
	assert.Equal(t, float64(1), calls["getLoggedInUser"])

	resp, err = http.Get(oidcURL + "/.well-known/openid-configuration")
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	resp.Body.Close()
	assert.Equal(t, "https://login.microsoftonline.com/t/v2.0", doc["issuer"])

	require.NoError(t, stop(), "a clean stop")
	_, err = net.DialTimeout("tcp", strings.TrimPrefix(quayURL, "http://"), time.Second)
	assert.Error(t, err, "the listener is closed")
}

func TestRun_WithoutControlListener(t *testing.T) {
	urls, stop := start(t, options{listen: "127.0.0.1:0"})
	assert.Empty(t, urls[1], "no control= without -control-listen")
	resp, err := http.Get(urls[0] + "/api/v1/user/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode, "an empty Quay")
	require.NoError(t, stop())
}

func TestRun_TLS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certPath := writeFile(t, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyPath := writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))

	urls, stop := start(t, options{listen: "127.0.0.1:0", tlsCert: certPath, tlsKey: keyPath})
	require.True(t, strings.HasPrefix(urls[0], "https://"), urls[0])
	pool := x509.NewCertPool()
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(urls[0] + "/v2/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `realm="http://127.0.0.1`, "PREFERRED_URL_SCHEME decides the realm, as in Quay")
	require.NoError(t, stop())
}

func TestRun_Errors(t *testing.T) {
	ctx := context.Background()
	assert.ErrorContains(t, run(ctx, io.Discard, options{configPath: filepath.Join(t.TempDir(), "missing.yaml"), listen: "127.0.0.1:0"}), "missing.yaml")
	assert.ErrorContains(t, run(ctx, io.Discard, options{configPath: writeFile(t, "c.yaml", "FEATURE_PROGRAMMATIC_BOOTSTRAP: true\n"), listen: "127.0.0.1:0"}), "BOOTSTRAP_TOKEN_OWNER")
	assert.ErrorContains(t, run(ctx, io.Discard, options{listen: "127.0.0.1:0", tlsCert: "only-a-cert.pem"}), "-tls-key")
	assert.Error(t, run(ctx, io.Discard, options{listen: "256.0.0.1:0"}))
	assert.ErrorContains(t, run(ctx, io.Discard, options{listen: "127.0.0.1:0", caBundle: writeFile(t, "ca.pem", "not a certificate\n")}), "no PEM certificate")
	assert.ErrorContains(t, run(ctx, io.Discard, options{listen: "127.0.0.1:0", caBundle: filepath.Join(t.TempDir(), "absent.pem")}), "absent.pem")
	assert.ErrorContains(t, run(ctx, io.Discard, options{listen: "127.0.0.1:0", upstream: "http://127.0.0.1:1", configPath: "c.yaml"}), "exclude each other")
	assert.ErrorContains(t, run(ctx, io.Discard, options{listen: "127.0.0.1:0", upstream: "ftp://quay"}), "want http(s)://host[:port]")
	assert.ErrorContains(t, run(ctx, io.Discard, options{listen: "127.0.0.1:0", upstreamCA: "ca.pem"}), "-upstream-ca needs -upstream")
}

// -upstream: the same fault and counter API in front of another Quay (here
// an emulator standing in for it): faulted calls never reach it, the others
// do, and the emulator-only controls say so.
func TestRun_Upstream(t *testing.T) {
	upstreamURLs, _ := start(t, options{listen: "127.0.0.1:0", controlListen: "127.0.0.1:0"})
	urls, stop := start(t, options{listen: "127.0.0.1:0", controlListen: "127.0.0.1:0", upstream: upstreamURLs[0]})
	proxyURL, controlURL := urls[0], urls[1]
	assert.Equal(t, upstreamURLs[0], urls[3], "the ready line names the upstream")

	post := func(url, body string) int {
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	calls := func(base string) map[string]float64 {
		resp, err := http.Get(base + "/calls")
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]float64
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return out
	}
	require.Equal(t, http.StatusNoContent, post(controlURL+"/faults", `{"route":"getLoggedInUser","status":503,"count":1}`))
	get := func() (int, string) {
		resp, err := http.Get(proxyURL + "/api/v1/user/")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get()
	assert.Equal(t, 503, code)
	assert.Contains(t, body, "nginx", "the fault answered")
	assert.Zero(t, calls(upstreamURLs[1])["getLoggedInUser"], "a faulted call does not reach the upstream")
	code, body = get()
	assert.Equal(t, 401, code, "forwarded: the upstream's own answer")
	assert.Contains(t, body, "invalid_token")
	assert.Equal(t, float64(1), calls(upstreamURLs[1])["getLoggedInUser"])
	assert.Equal(t, float64(2), calls(controlURL)["getLoggedInUser"], "the proxy counts both")

	// Nested repository routes are named as the emulator names them.
	req, _ := http.NewRequest(http.MethodPut, proxyURL+"/api/v1/repository/acme/a/b/permissions/user/acme+bot", strings.NewReader(`{"role":"read"}`))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, float64(1), calls(controlURL)["changeUserPermissions"])

	resp, err = http.Post(controlURL+"/clock", "application/json", strings.NewReader(`{"advance_seconds":1}`))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotImplemented, resp.StatusCode)
	assert.Contains(t, string(b), "emulator-only")
	require.NoError(t, stop())
}
