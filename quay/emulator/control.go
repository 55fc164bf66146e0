package emulator

import (
	"encoding/json"
	"net/http"
	"time"
)

// ControlHandler serves the emulator's test controls over HTTP, on its own
// listener, apart from the Quay surface:
//
//	POST   /faults         a Fault as JSON (route, method, path_prefix, count,
//	                       latency_ms, status, body, retry_after, drop,
//	                       after_quay) -> 204
//	GET    /faults         {"faults": [Fault + "remaining" (-1: unlimited)]}
//	DELETE /faults         remove every fault
//	GET    /calls          {"<nickname>": count, ...}
//	DELETE /calls          reset the counters
//	POST   /restart        what restarting Quay on the same database does
//	                       (boot.py's programmatic bootstrap runs again)
//	POST   /clock          {"advance_seconds": n}
//	POST   /users          {"username", "password", "email", "superuser"}
//	POST   /organizations  {"name", "admin"}
//	POST   /applications   {"organization", "name", "client_id", "redirect_uri"}
//	POST   /repositories   {"namespace", "name", "public"}
//	POST   /tokens         {"username", "scope", "ttl_seconds"} -> {"token"}
//	GET    /tokens/valid?token=…          {"valid": bool}
//	GET    /tokens/exists?uuid=…          {"exists": bool}
//	GET    /applications/exists?client_id=…   {"exists": bool}
//	GET    /robots/exists?username=…      {"exists": bool}
//
// Errors are 400 {"error": "..."}; successful writes without an answer
// are 204. Never log what /tokens returns. In front of a real Quay
// (Proxy.ControlHandler) only /faults and /calls work.
func (e *Emulator) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, err error) {
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	decode := func(w http.ResponseWriter, r *http.Request, v any) bool {
		if err := json.NewDecoder(r.Body).Decode(v); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON: " + err.Error()})
			return false
		}
		return true
	}
	controlFaultsAndCalls(mux, e.faults, &e.calls)
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) { ok(w, e.Restart()) })
	mux.HandleFunc("POST /clock", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			AdvanceSeconds int64 `json:"advance_seconds"`
		}
		if decode(w, r, &body) {
			e.AdvanceClock(time.Duration(body.AdvanceSeconds) * time.Second)
			w.WriteHeader(http.StatusNoContent)
		}
	})
	mux.HandleFunc("POST /users", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Username, Password, Email string
			SuperUser                 bool `json:"superuser"`
		}
		if decode(w, r, &b) {
			var opts []UserOption
			if b.SuperUser {
				opts = append(opts, SuperUser())
			}
			ok(w, e.CreateUser(b.Username, b.Password, b.Email, opts...))
		}
	})
	mux.HandleFunc("POST /organizations", func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Name, Admin string }
		if decode(w, r, &b) {
			ok(w, e.CreateOrganization(b.Name, b.Admin))
		}
	})
	mux.HandleFunc("POST /applications", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Organization, Name string
			ClientID           string `json:"client_id"`
			RedirectURI        string `json:"redirect_uri"`
		}
		if decode(w, r, &b) {
			ok(w, e.CreateApplication(b.Organization, b.Name, b.ClientID, b.RedirectURI))
		}
	})
	mux.HandleFunc("POST /repositories", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Namespace, Name string
			Public          bool
		}
		if decode(w, r, &b) {
			ok(w, e.CreateRepository(b.Namespace, b.Name, b.Public))
		}
	})
	mux.HandleFunc("POST /tokens", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Username, Scope string
			TTLSeconds      int64 `json:"ttl_seconds"`
		}
		if !decode(w, r, &b) {
			return
		}
		token, err := e.IssueToken(b.Username, b.Scope, time.Duration(b.TTLSeconds)*time.Second)
		if err != nil {
			ok(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"token": token})
	})
	mux.HandleFunc("GET /tokens/valid", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"valid": e.TokenValid(r.URL.Query().Get("token"))})
	})
	mux.HandleFunc("GET /tokens/exists", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"exists": e.TokenExists(r.URL.Query().Get("uuid"))})
	})
	mux.HandleFunc("GET /applications/exists", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"exists": e.ApplicationExists(r.URL.Query().Get("client_id"))})
	})
	mux.HandleFunc("GET /robots/exists", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"exists": e.RobotExists(r.URL.Query().Get("username"))})
	})
	return mux
}

// emulatorOnlyControls are the control routes a Proxy cannot serve.
var emulatorOnlyControls = []string{
	"POST /restart", "POST /clock", "POST /users", "POST /organizations", "POST /applications", "POST /repositories",
	"POST /tokens", "GET /tokens/valid", "GET /tokens/exists", "GET /applications/exists", "GET /robots/exists",
}

// controlFaultsAndCalls serves the fault and counter routes of the control
// API, which the emulator and the proxy share.
func controlFaultsAndCalls(mux *http.ServeMux, faults *Faults, calls *callCounter) {
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON: " + err.Error()})
			return
		}
		faults.Add(f)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"faults": faults.List()})
	})
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, r *http.Request) {
		faults.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /calls", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, calls.snapshot()) })
	mux.HandleFunc("DELETE /calls", func(w http.ResponseWriter, r *http.Request) {
		calls.reset()
		w.WriteHeader(http.StatusNoContent)
	})
}
