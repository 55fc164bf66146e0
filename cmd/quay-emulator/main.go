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
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

func main() {
	configPath := flag.String("config", "", "Quay config.yaml")
	listen := flag.String("listen", "127.0.0.1:0", "address of the Quay surface")
	controlListen := flag.String("control-listen", "127.0.0.1:0", "address of the control API (empty: none)")
	tlsCert := flag.String("tls-cert", "", "serve the Quay surface over TLS with this certificate (PEM)")
	tlsKey := flag.String("tls-key", "", "private key of -tls-cert (PEM)")
	flag.Parse()
	if err := run(*configPath, *listen, *controlListen, *tlsCert, *tlsKey); err != nil {
		log.Fatalf("quay-emulator: %v", err)
	}
}

func run(configPath, listen, controlListen, tlsCert, tlsKey string) error {
	var cfg emulator.Config
	if configPath != "" {
		var err error
		if cfg, err = emulator.LoadConfig(configPath); err != nil {
			return err
		}
	}
	emu, err := emulator.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	scheme := "http"
	if tlsCert != "" {
		scheme = "https"
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	errs := make(chan error, 2)
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
		ctl = &http.Server{Handler: emu.ControlHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { errs <- ctl.Serve(cln) }()
		ready += fmt.Sprintf(" control=http://%s", cln.Addr())
	}
	fmt.Println(ready)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-stop:
	case err := <-errs:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	if ctl != nil {
		_ = ctl.Shutdown(ctx)
	}
	return nil
}
