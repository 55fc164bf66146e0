package emulator

import (
	"encoding/json"
	"net/http"
)

// Quay's error bodies: endpoints/exception.py (ApiException), util/http.py
// abort, endpoints/decorated.py (data-model errors).

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiException writes the ApiException family body (endpoints/exception.py).
func (e *Emulator) apiException(w http.ResponseWriter, r *http.Request, status int, errType, detail string, extra map[string]any) {
	body := map[string]any{
		"detail":        detail,
		"error_message": detail,
		"error_type":    errType,
		"title":         errType,
		"type":          e.cfg.scheme() + "://" + e.host(r) + "/api/v1/error/" + errType,
		"status":        status,
	}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, status, body)
}

func (e *Emulator) invalidRequest(w http.ResponseWriter, r *http.Request, msg string) {
	e.apiException(w, r, http.StatusBadRequest, "invalid_request", msg, nil)
}

func (e *Emulator) notFound(w http.ResponseWriter, r *http.Request) {
	e.apiException(w, r, http.StatusNotFound, "not_found", "Not Found", nil)
}

// unauthorized is Quay's Unauthorized: 401 for an anonymous caller, 403
// insufficient_scope for an authenticated one without the rights.
func (e *Emulator) unauthorized(w http.ResponseWriter, r *http.Request, c *caller) {
	if c == nil || c.user == nil {
		e.apiException(w, r, http.StatusUnauthorized, "invalid_token", "Requires authentication", nil)
		return
	}
	e.apiException(w, r, http.StatusForbidden, "insufficient_scope", "Unauthorized", nil)
}

// abort is util.http.abort: json.dumps({"error": msg}) in a response
// Flask gives its default mimetype, text/html (make_response of a string).
func abort(w http.ResponseWriter, status int, msg string) {
	quoted, _ := json.Marshal(msg)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error": ` + string(quoted) + `}`))
}

// webNotFound is endpoints/web.py not_found_error_display: the web UI's
// index page with status 404, which is also what an unknown /api/ path
// gets (the API blueprint has no 404 handler of its own).
func webNotFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte("<!DOCTYPE html>\n<html ng-app=\"quay\" class=\"onprem\">\n<head><title>Quay</title></head>\n<body><div class=\"page-not-found\">404: page not found</div></body>\n</html>\n"))
}

// dataModelError is a DataModelException surfacing as 400 {"message": msg}.
func dataModelError(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"message": msg})
}

func noContent(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }
