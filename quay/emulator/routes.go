package emulator

import (
	"net/http"
	"strings"
)

// Route is one route of the Quay surface: its method, its path in Go
// ServeMux syntax ({name} is one segment, {name...} the rest), and the
// nickname faults and call counters use.
type Route struct {
	Method   string
	Path     string
	Nickname string
}

// repositoryPath is how Routes shows the nested repository routes, which
// one ServeMux pattern serves (see repositoryRoute).
const repositoryPath = "/api/v1/repository/{namespace}/{repository...}"

// declare records a route served by the ServeMux pattern "METHOD /path".
func (e *Emulator) declare(pattern, nickname string) {
	method, path, _ := strings.Cut(pattern, " ")
	if e.nicknames == nil {
		e.nicknames = map[string]string{}
	}
	e.nicknames[pattern] = nickname
	// "{$}" only anchors a trailing slash.
	e.routeTable = append(e.routeTable, Route{Method: method, Path: strings.TrimSuffix(path, "{$}"), Nickname: nickname})
}

// declareOnly records a route that a catch-all pattern serves (the nested
// repository routes, the registry), for Routes only.
func (e *Emulator) declareOnly(method, path, nickname string) {
	e.routeTable = append(e.routeTable, Route{Method: method, Path: path, Nickname: nickname})
}

// Routes lists every route the emulator serves, in registration order. The
// conformance tests derive their coverage check from it, so a new route
// without a conformance row fails a test.
func (e *Emulator) Routes() []Route {
	return append([]Route(nil), e.routeTable...)
}

// RouteOf names the route a request would reach: a nickname of Routes, or
// "" when no route of the Quay surface serves it (Quay's 404). It does not
// run the route.
func (e *Emulator) RouteOf(r *http.Request) string {
	_, pattern := e.mux.Handler(r)
	if nickname, ok := e.nicknames[pattern]; ok {
		return nickname
	}
	switch {
	case strings.HasSuffix(pattern, " /api/v1/repository/{path...}"):
		clone := r.Clone(r.Context())
		clone.SetPathValue("path", strings.TrimPrefix(r.URL.Path, "/api/v1/repository/"))
		nickname, _ := e.repositoryRoute(clone)
		return nickname
	case pattern == "/v2/" && r.URL.Path != "/v2/auth":
		return "v2"
	}
	return ""
}
