package emulator

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
)

// WithRootCAs makes the emulator trust exactly these certificate
// authorities for the HTTPS requests it makes itself (OIDC discovery and
// key sets of SSO providers and of robot federation issuers), as real
// Quay does with REQUESTS_CA_BUNDLE in its environment. WithHTTPClient,
// when also given, replaces it.
func WithRootCAs(pool *x509.CertPool) Option {
	return func(e *Emulator) {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		e.httpClient = &http.Client{Timeout: e.httpClient.Timeout, Transport: t}
	}
}

// LoadCABundle reads a PEM bundle for WithRootCAs.
func LoadCABundle(path string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, errors.New(path + " holds no PEM certificate")
	}
	return pool, nil
}
