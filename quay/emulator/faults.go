package emulator

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault is a deterministic misbehaviour for a route, injected before Quay's
// own handling. Quay never does these on purpose; networks and proxies do.
type Fault struct {
	// Route is a Quay operation nickname (e.g. createOrganizationApplicationToken).
	Route string `json:"route,omitempty"`
	// Method and PathPrefix select requests by path instead (both optional).
	Method     string `json:"method,omitempty"`
	PathPrefix string `json:"path_prefix,omitempty"`

	// Count is how many matching calls the fault affects; 0 means all.
	Count int `json:"count,omitempty"`
	// Latency delays the call, which then proceeds normally (unless
	// Status or Drop is set): Quay acts even if the client gave up.
	Latency time.Duration `json:"-"`
	// LatencyMillis is Latency in the control API's JSON.
	LatencyMillis int64 `json:"latency_ms,omitempty"`
	// Status answers with this status instead of handling the call.
	Status int `json:"status,omitempty"`
	// Body replaces the default body of Status.
	Body string `json:"body,omitempty"`
	// RetryAfter sets a Retry-After header with Status.
	RetryAfter string `json:"retry_after,omitempty"`
	// Drop closes the connection without an answer.
	Drop bool `json:"drop,omitempty"`
	// AfterQuay lets the call reach Quay, which acts on it; the fault then
	// hits the answer on its way back: Latency delays it, Drop loses it,
	// Status (and Body) replaces it. A proxy mangling an answer, or a
	// connection lost after Quay committed, looks like this to a client.
	AfterQuay bool `json:"after_quay,omitempty"`
}

// Faults holds the active faults of an emulator.
type Faults struct {
	mu    sync.Mutex
	rules []*faultRule
}

type faultRule struct {
	Fault
	remaining int // <0: unlimited
}

// Add installs a fault.
func (f *Faults) Add(fault Fault) {
	if fault.Latency == 0 && fault.LatencyMillis > 0 {
		fault.Latency = time.Duration(fault.LatencyMillis) * time.Millisecond
	}
	remaining := fault.Count
	if remaining == 0 {
		remaining = -1
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, &faultRule{Fault: fault, remaining: remaining})
}

// AddLatency delays every call to route by d.
func (f *Faults) AddLatency(route string, d time.Duration) { f.Add(Fault{Route: route, Latency: d}) }

// FailNext makes the next n calls to route answer status.
func (f *Faults) FailNext(route string, n, status int) {
	f.Add(Fault{Route: route, Count: n, Status: status})
}

// FailNextWith makes the next n calls to route answer status with body (a
// JSON body gets Content-Type application/json) and, if not empty, a
// Retry-After header.
func (f *Faults) FailNextWith(route string, n, status int, body, retryAfter string) {
	f.Add(Fault{Route: route, Count: n, Status: status, Body: body, RetryAfter: retryAfter})
}

// Burst429 makes the next n calls to route answer nginx's 429, which carries
// no Retry-After (conf/nginx/rate-limiting.conf.jnj limit_req_status 429;
// nothing in conf/nginx adds one).
func (f *Faults) Burst429(route string, n int) {
	f.Add(Fault{Route: route, Count: n, Status: http.StatusTooManyRequests})
}

// DropNext closes the connection of the next n calls to route.
func (f *Faults) DropNext(route string, n int) { f.Add(Fault{Route: route, Count: n, Drop: true}) }

// ActiveFault is an installed fault and how many calls it still affects
// (-1: unlimited; 0: used up).
type ActiveFault struct {
	Fault
	Remaining int `json:"remaining"`
}

// List returns the installed faults in the order they are tried.
func (f *Faults) List() []ActiveFault {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]ActiveFault, 0, len(f.rules))
	for _, r := range f.rules {
		fault := r.Fault
		if fault.LatencyMillis == 0 && fault.Latency > 0 {
			fault.LatencyMillis = fault.Latency.Milliseconds()
		}
		out = append(out, ActiveFault{Fault: fault, Remaining: r.remaining})
	}
	return out
}

// Reset removes every fault.
func (f *Faults) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// apply runs the first matching fault; it reports whether the request was
// answered (or dropped) by it. handle is Quay's own handling of the call,
// for faults that hit the answer rather than the request.
func (f *Faults) apply(w http.ResponseWriter, r *http.Request, nickname string, handle http.HandlerFunc) bool {
	rule := f.take(r, nickname)
	if rule == nil {
		return false
	}
	if rule.AfterQuay {
		answer := httptest.NewRecorder()
		handle(answer, r)
		if !rule.inject(w, r) {
			for k, v := range answer.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(answer.Code)
			_, _ = w.Write(answer.Body.Bytes())
		}
		return true
	}
	return rule.inject(w, r)
}

// inject delays, drops or replaces one answer; it reports whether it
// answered (or dropped) the call.
func (rule *faultRule) inject(w http.ResponseWriter, r *http.Request) bool {
	if rule.Latency > 0 {
		timer := time.NewTimer(rule.Latency)
		select {
		case <-timer.C:
		case <-r.Context().Done():
			// The client gave up; Quay would still finish the work.
			<-timer.C
		}
	}
	switch {
	case rule.Drop:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler)
	case rule.Status != 0:
		writeFaultStatus(w, rule.Fault)
		return true
	}
	return false
}

func (f *Faults) take(r *http.Request, nickname string) *faultRule {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rule := range f.rules {
		if rule.remaining == 0 || !rule.matches(r, nickname) {
			continue
		}
		if rule.remaining > 0 {
			rule.remaining--
		}
		copied := *rule
		return &copied
	}
	return nil
}

func (r *faultRule) matches(req *http.Request, nickname string) bool {
	if r.Route != "" && r.Route != nickname {
		return false
	}
	if r.Method != "" && !strings.EqualFold(r.Method, req.Method) {
		return false
	}
	if r.PathPrefix != "" && !strings.HasPrefix(req.URL.Path, r.PathPrefix) {
		return false
	}
	return r.Route != "" || r.PathPrefix != "" || r.Method != ""
}

// nginxPage is nginx's default error page, what Quay's front proxy sends for
// 429 (limit_req) and upstream failures.
func nginxPage(status int) string {
	title := strconv.Itoa(status) + " " + http.StatusText(status)
	return "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title +
		"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
}

func writeFaultStatus(w http.ResponseWriter, f Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	body := f.Body
	switch {
	case body != "":
		if strings.HasPrefix(strings.TrimSpace(body), "{") {
			w.Header().Set("Content-Type", "application/json")
		}
	case f.Status == http.StatusTooManyRequests || f.Status >= 500:
		w.Header().Set("Content-Type", "text/html")
		body = nginxPage(f.Status)
	default:
		w.Header().Set("Content-Type", "application/json")
		body = `{"error": "` + http.StatusText(f.Status) + `"}`
	}
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(body))
}
