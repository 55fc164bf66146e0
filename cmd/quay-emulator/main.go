// Command quay-emulator serves the in-memory Quay 3.18 emulator: for the
// plugin's end-to-end tests, `make demo`, and your own experiments.
//
//	quay-emulator -config config.yaml -listen 127.0.0.1:8080 [-control-listen 127.0.0.1:8081] [-tls-cert f -tls-key f]
//
// It prints one line once both listeners are up:
//
//	quay-emulator ready url=http://127.0.0.1:8080 control=http://127.0.0.1:8081
//
// and stops on SIGINT or SIGTERM. The control listener serves fault
// injection, call counters and seeding (see emulator.ControlHandler); never
// expose it beyond loopback.
//
// As in Quay, FEATURE_PROGRAMMATIC_BOOTSTRAP writes BOOTSTRAP_TOKEN_PATH only
// at a start that finds BOOTSTRAP_TOKEN_OWNER in the database, and the
// emulator starts on an empty one: create the owner (POST
// /api/v1/user/initialize, or the control API's POST /users), then ask for
// what a restart of Quay does with the control API's POST /restart.
//
// With -upstream it is a fault-injecting reverse proxy in front of another
// Quay (a real one) instead: the same route names, faults and call counters
// on the control listener, every request that no fault answers forwarded
// (see emulator.Proxy). -config is then not used: the upstream has its own.
//
//	quay-emulator -upstream http://127.0.0.1:8080 -listen 127.0.0.1:0 -control-listen 127.0.0.1:0 [-upstream-ca ca.pem]
//
// The ready line then ends with " upstream=<url>".
//
// With -oidc-listen it also serves a test identity provider shaped like
// Microsoft Entra ID (package oidcprovider) and adds "oidc=<url>" to the ready
// line; point a *_LOGIN_CONFIG's OIDC_SERVER at that URL, with DEBUGGING:
// true inside that block (where Quay reads it), since it is plain HTTP, and
// FEATURE_MAILING: false (client-credentials tokens carry no verified email,
// which Quay wants for a new user when mailing is on):
//
//	-oidc-listen 127.0.0.1:0         address of the provider
//	-oidc-issuer https://login.microsoftonline.com/<tenant>/v2.0
//	-oidc-version 2                  1: appid claim, 2: azp claim
//	-oidc-client id:secret:subject   a client-credentials client (repeatable)
//	-oidc-token-ttl 1h               access-token lifetime
//
// The provider's token endpoint is <oidc>/<tenant>/oauth2/v2.0/token (the
// tenant of -oidc-issuer), as at Entra, or <oidc>/oauth2/v2.0/token; v1.0's
// is <oidc>/<tenant>/oauth2/token. docs/emulator.md lists every URL.
//
// -ca-bundle names a PEM file of the only certificate authorities trusted
// for the HTTPS the emulator makes itself (OIDC discovery and key sets,
// robot federation issuers), as REQUESTS_CA_BUNDLE does for real Quay; it
// defaults to $REQUESTS_CA_BUNDLE, and without either the system's roots
// are trusted.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator/oidcprovider"
)

func main() {
	configPath := flag.String("config", "", "Quay config.yaml")
	listen := flag.String("listen", "127.0.0.1:0", "address of the Quay surface")
	controlListen := flag.String("control-listen", "127.0.0.1:0", "address of the control API (empty: none)")
	tlsCert := flag.String("tls-cert", "", "serve the Quay surface over TLS with this certificate (PEM)")
	tlsKey := flag.String("tls-key", "", "private key of -tls-cert (PEM)")
	caBundle := flag.String("ca-bundle", os.Getenv("REQUESTS_CA_BUNDLE"), "trust only these CAs (PEM) for the emulator's own HTTPS requests (default $REQUESTS_CA_BUNDLE)")
	upstream := flag.String("upstream", "", "proxy to this Quay (http(s)://host:port) instead of emulating one")
	upstreamCA := flag.String("upstream-ca", "", "CA certificates (PEM) to verify an https -upstream with (default: the system's)")
	var idp idpFlags
	flag.StringVar(&idp.listen, "oidc-listen", "", "also serve a test OIDC provider on this address")
	flag.StringVar(&idp.issuer, "oidc-issuer", "", "issuer of the provider's tokens")
	flag.IntVar(&idp.version, "oidc-version", 2, "Entra token version: 1 (appid) or 2 (azp)")
	flag.DurationVar(&idp.ttl, "oidc-token-ttl", time.Hour, "lifetime of the provider's access tokens")
	flag.Func("oidc-client", "id:secret:subject of a client-credentials client (repeatable)", func(v string) error {
		parts := strings.SplitN(v, ":", 3)
		if len(parts) != 3 {
			return fmt.Errorf("want id:secret:subject")
		}
		idp.clients = append(idp.clients, oidcprovider.Client{ID: parts[0], Secret: parts[1], Subject: parts[2]})
		return nil
	})
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, options{*configPath, *listen, *controlListen, *tlsCert, *tlsKey, *caBundle, *upstream, *upstreamCA, idp}); err != nil {
		log.Fatalf("quay-emulator: %v", err)
	}
}

type options struct {
	configPath, listen, controlListen, tlsCert, tlsKey, caBundle string
	upstream, upstreamCA                                         string
	idp                                                          idpFlags
}

type idpFlags struct {
	listen, issuer string
	version        int
	ttl            time.Duration
	clients        []oidcprovider.Client
}

// run serves until ctx ends (SIGINT or SIGTERM) or a listener fails. It
// writes the ready line to stdout once every listener is up; nothing it
// prints carries a token.
func run(ctx context.Context, stdout io.Writer, o options) error {
	listen, controlListen, tlsCert, tlsKey, idp := o.listen, o.controlListen, o.tlsCert, o.tlsKey, o.idp
	if (tlsCert == "") != (tlsKey == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	quay, control, err := surface(o)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	scheme := "http"
	if tlsCert != "" {
		scheme = "https"
	}
	srv := &http.Server{Handler: quay, ReadHeaderTimeout: 10 * time.Second}
	errs := make(chan error, 3)
	go func() {
		if tlsCert != "" {
			errs <- srv.ServeTLS(ln, tlsCert, tlsKey)
		} else {
			errs <- srv.Serve(ln)
		}
	}()
	ready := fmt.Sprintf("quay-emulator ready url=%s://%s", scheme, ln.Addr())
	var ctl *http.Server
	if controlListen != "" {
		cln, err := net.Listen("tcp", controlListen)
		if err != nil {
			return err
		}
		defer cln.Close()
		ctl = &http.Server{Handler: control, ReadHeaderTimeout: 10 * time.Second}
		go func() { errs <- ctl.Serve(cln) }()
		ready += fmt.Sprintf(" control=http://%s", cln.Addr())
	}
	var idpServer *http.Server
	if idp.listen != "" {
		provider, err := oidcprovider.New(oidcprovider.Config{Issuer: idp.issuer, Version: idp.version, TokenTTL: idp.ttl, Clients: idp.clients})
		if err != nil {
			return err
		}
		iln, err := net.Listen("tcp", idp.listen)
		if err != nil {
			return err
		}
		defer iln.Close()
		provider.BaseURL = "http://" + iln.Addr().String()
		idpServer = &http.Server{Handler: provider, ReadHeaderTimeout: 10 * time.Second}
		go func() { errs <- idpServer.Serve(iln) }()
		ready += " oidc=" + provider.BaseURL
	}
	if o.upstream != "" {
		ready += " upstream=" + o.upstream
	}
	fmt.Fprintln(stdout, ready)

	select {
	case <-ctx.Done():
	case err := <-errs:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	for _, s := range []*http.Server{ctl, idpServer} {
		if s != nil {
			_ = s.Shutdown(shutdown)
		}
	}
	return nil
}

// surface builds the Quay surface and its control handler: the emulator, or
// the fault-injecting proxy in front of -upstream.
func surface(o options) (quay, control http.Handler, err error) {
	if o.upstream != "" {
		if o.configPath != "" {
			return nil, nil, errors.New("-config and -upstream exclude each other: the upstream Quay has its own config")
		}
		var tlsConfig *tls.Config
		if o.upstreamCA != "" {
			pem, err := os.ReadFile(o.upstreamCA)
			if err != nil {
				return nil, nil, err
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("-upstream-ca %s: no PEM certificate", o.upstreamCA)
			}
			tlsConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		proxy, err := emulator.NewProxy(o.upstream, tlsConfig)
		if err != nil {
			return nil, nil, err
		}
		return proxy, proxy.ControlHandler(), nil
	}
	if o.upstreamCA != "" {
		return nil, nil, errors.New("-upstream-ca needs -upstream")
	}
	var cfg emulator.Config
	if o.configPath != "" {
		if cfg, err = emulator.LoadConfig(o.configPath); err != nil {
			return nil, nil, err
		}
	}
	var emuOpts []emulator.Option
	if o.caBundle != "" {
		pool, err := emulator.LoadCABundle(o.caBundle)
		if err != nil {
			return nil, nil, err
		}
		emuOpts = append(emuOpts, emulator.WithRootCAs(pool))
	}
	emu, err := emulator.New(cfg, emuOpts...)
	if err != nil {
		return nil, nil, err
	}
	return emu, emu.ControlHandler(), nil
}
