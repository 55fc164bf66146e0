package emulator

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// Proxy is the emulator's fault layer in front of another Quay (a real one):
// a reverse proxy that names each request's route the way the emulator does,
// counts it, applies the installed faults, and forwards what the faults let
// through. The crash, 429 and timeout stories the emulator tells can so be
// told against the real server. Its control handler serves the same fault
// and counter API as the emulator's; seeding and the clock are emulator-only.
type Proxy struct {
	upstream *url.URL
	// routes only names requests; it never serves one.
	routes  *Emulator
	faults  *Faults
	calls   callCounter
	forward *httputil.ReverseProxy
}

// upstreamTimeout bounds one forwarded request. Forwarding does not stop
// when the client gives up (Quay finishes what it started), so it needs a
// bound of its own.
const upstreamTimeout = 5 * time.Minute

// NewProxy returns a proxy to upstream (scheme://host[:port], no path).
// tlsConfig is used for an https upstream (nil: the system's roots).
func NewProxy(upstream string, tlsConfig *tls.Config) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream %q: want http(s)://host[:port]", upstream)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("upstream %q: Quay serves at the root; drop the path %q", upstream, u.Path)
	}
	routes, err := New(Config{})
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	p := &Proxy{upstream: u, routes: routes, faults: &Faults{}}
	p.forward = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// The client's Host stays: Quay builds absolute URLs (its
			// 308 redirects) from it, and they must lead back here.
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: transport,
		// Registry blobs stream; flush as they come.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// What nginx answers when its upstream fails.
			writeFaultStatus(w, Fault{Status: http.StatusBadGateway})
		},
	}
	return p, nil
}

// ServeHTTP counts the request under its route's nickname, applies the
// faults, and forwards it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	nickname := p.routes.RouteOf(r)
	if nickname != "" {
		p.calls.add(nickname)
	}
	if p.faults.apply(w, r, nickname, p.forwardUpstream) {
		return
	}
	p.forwardUpstream(w, r)
}

// forwardUpstream is Quay's own handling of a call: the upstream's answer.
// Quay finishes a request whose client went away; so does the proxy.
func (p *Proxy) forwardUpstream(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), upstreamTimeout)
	defer cancel()
	p.forward.ServeHTTP(w, r.WithContext(ctx))
}

// Faults returns the fault-injection API.
func (p *Proxy) Faults() *Faults { return p.faults }

// Calls returns how many requests reached the route with this nickname.
func (p *Proxy) Calls(nickname string) int { return p.calls.get(nickname) }

// CallCounts returns a copy of all counters.
func (p *Proxy) CallCounts() map[string]int { return p.calls.snapshot() }

// ResetCalls zeroes the counters.
func (p *Proxy) ResetCalls() { p.calls.reset() }

// ControlHandler serves the fault and counter part of the emulator's
// control API (see Emulator.ControlHandler); its seeding, clock and
// inspection routes answer 501, since only an emulator can do them.
func (p *Proxy) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	controlFaultsAndCalls(mux, p.faults, &p.calls)
	emulatorOnly := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotImplemented, map[string]string{
			"error": r.Method + " " + r.URL.Path + " is emulator-only: this control API fronts a real Quay at " + p.upstream.String(),
		})
	}
	for _, pattern := range emulatorOnlyControls {
		mux.HandleFunc(pattern, emulatorOnly)
	}
	return mux
}
