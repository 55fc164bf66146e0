// Package emulator is an in-memory Project Quay 3.18 for tests, demos and
// users' own experiments: an http.Handler that answers like real Quay for
// every call the Vault plugin makes, quirks included (error bodies, CSRF on
// unauthenticated mutations, 400 for missing robots, ...). The ground truth
// is Quay 3.18.0 itself: comments cite Quay's source files (tag v3.18.0),
// with the function or class where it helps, and when the emulator and a
// real Quay disagree, real Quay is right (docs/emulator.md).
//
// It is configured with Quay's own config.yaml keys. Fault injection, call
// counters and test seeding live apart from the Quay surface: a Go API on
// Emulator and a separate control handler (ControlHandler).
//
// # Route names
//
// Faults and call counters name a route by Quay's operation nickname (the
// @nickname of endpoints/api, the operationId of Quay's discovery):
//
//	getLoggedInUser changeUserDetails listUserAuthorizations getUserAuthorization
//	deleteUserAuthorization createOrganization getOrganization
//	getOrganizationApplications createOrganizationApplication
//	getOrganizationApplication updateOrganizationApplication
//	deleteOrganizationApplication getApplicationInformation
//	listOrganizationApplicationTokens createOrganizationApplicationToken
//	deleteOrganizationApplicationToken renewBootstrapToken
//	listAppTokens createAppToken getAppToken revokeAppToken
//	getOrgRobots createOrgRobot getOrgRobot deleteOrgRobot
//	regenerateOrgRobotToken getOrgRobotPermissions
//	getUserRobots createUserRobot getUserRobot deleteUserRobot
//	regenerateUserRobotToken getUserRobotPermissions
//	getOrgRobotFederation createOrgRobotFederation deleteOrgRobotFederation
//	getUserRobotFederation createUserRobotFederation deleteUserRobotFederation
//	createRepo listRepos getRepo listRepoUserPermissions getUserPermissions
//	changeUserPermissions deleteUserPermissions listRepoTeamPermissions
//	getTeamPermissions changeTeamPermissions deleteTeamPermissions
//	updateOrganizationTeam deleteOrganizationTeam getOrganizationTeamMembers
//	updateOrganizationTeamMember deleteOrganizationTeamMember
//	getOrganizationPrototypePermissions createOrganizationPrototypePermission
//	updateOrganizationPrototypePermission deleteOrganizationPrototypePermission
//
// Quay's plain web routes have no nickname; the emulator names them:
// initializeUser (POST /api/v1/user/initialize, Quay's user_initialize),
// authorizeApplication (POST /oauth/authorizeapp), v2Auth (GET /v2/auth,
// generate_registry_jwt), listServiceKeys (GET /keys/services/quay/keys),
// authFederatedRobotIdentity (GET /oauth2/federation/robot/token, robot
// identity federation's exchange) and v2 (every other /v2/ request, served
// by the OCI registry).
package emulator

import (
	"crypto/rsa"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Emulator is one in-memory Quay instance. It is safe for concurrent use.
type Emulator struct {
	cfg   Config
	clock func() time.Time
	// offset is added to clock (the control API's clock advance).
	offset time.Duration

	mux *http.ServeMux
	// routeTable lists the routes in registration order; nicknames maps a
	// ServeMux pattern to its route's nickname (see routes.go).
	routeTable []Route
	nicknames  map[string]string

	// mu guards db and offset. Handlers run with it held; injected
	// latency is applied before taking it, so a slow route does not stall
	// the others.
	mu sync.Mutex
	db *store

	faults *Faults
	calls  callCounter

	// registryKey signs registry tokens (/v2/auth); its public half is
	// served at /keys/services/quay/keys.
	registryKey   *rsa.PrivateKey
	registryKeyID string
	// registry stores images (go-containerregistry's in-memory registry).
	registry http.Handler
	// blobs is the registry's blob store, per repository.
	blobs *repoBlobs

	// httpClient fetches OIDC discovery documents and key sets.
	httpClient *http.Client
	// customHTTPClient: set by WithHTTPClient, used as given.
	customHTTPClient bool
	oidc             *oidcCache
}

// Option configures an Emulator.
type Option func(*Emulator)

// WithClock replaces the clock, so tests can expire tokens without waiting.
func WithClock(now func() time.Time) Option { return func(e *Emulator) { e.clock = now } }

// WithHTTPClient sets the client used to reach OIDC providers.
func WithHTTPClient(c *http.Client) Option {
	return func(e *Emulator) { e.httpClient, e.customHTTPClient = c, true }
}

// New returns an emulator for cfg, on an empty database. With
// FEATURE_PROGRAMMATIC_BOOTSTRAP it checks the bootstrap settings; as in
// Quay, the token is only written by a start (Restart) that finds
// BOOTSTRAP_TOKEN_OWNER in the database.
func New(cfg Config, opts ...Option) (*Emulator, error) {
	e := &Emulator{cfg: cfg, clock: time.Now, db: newStore(), faults: &Faults{}, httpClient: &http.Client{Timeout: 10 * time.Second}}
	for _, opt := range opts {
		opt(e)
	}
	e.oidc = newOIDCCache()
	if err := e.initRegistryKey(); err != nil {
		return nil, err
	}
	e.mux = http.NewServeMux()
	e.routes()
	if cfg.FeatureProgrammaticBootstrap {
		if err := e.checkBootstrapConfig(); err != nil {
			return nil, err
		}
		// The emulator starts on an empty database, where boot.py finds
		// no owner and writes nothing; Restart runs it again.
	}
	return e, nil
}

// now is the emulator's current time.
func (e *Emulator) now() time.Time { return e.clock().Add(e.offset) }

// ServeHTTP serves the Quay surface.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.mux.ServeHTTP(w, r) }

func (e *Emulator) host(r *http.Request) string {
	if e.cfg.ServerHostname != "" {
		return e.cfg.ServerHostname
	}
	return r.Host
}

// routeKind says how a route authenticates.
type routeKind int

const (
	// apiRoute: /api/v1 resources: Bearer only, CSRF on mutations.
	apiRoute routeKind = iota
	// webRoute: plain routes that do their own authentication.
	webRoute
)

type handlerFunc func(w http.ResponseWriter, r *http.Request, c *caller)

// handle registers a route under Quay's operation nickname; the nickname is
// what faults and call counters refer to.
func (e *Emulator) handle(pattern, nickname string, kind routeKind, h handlerFunc) {
	e.declare(pattern, nickname)
	e.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		e.serve(w, r, nickname, kind, h)
	})
}

// serve runs one request of a route: counters, faults, then Quay's own
// handling under the global lock.
func (e *Emulator) serve(w http.ResponseWriter, r *http.Request, nickname string, kind routeKind, h handlerFunc) {
	e.calls.add(nickname)
	if e.faults.apply(w, r, nickname, func(w http.ResponseWriter, r *http.Request) { e.handleCall(w, r, nickname, kind, h) }) {
		return
	}
	e.handleCall(w, r, nickname, kind, h)
}

// handleCall is Quay's own handling of a call, under the global lock.
func (e *Emulator) handleCall(w http.ResponseWriter, r *http.Request, nickname string, kind routeKind, h handlerFunc) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if kind == webRoute {
		h(w, r, nil)
		return
	}
	c, ssoErr := e.authenticate(r)
	if ssoErr != nil {
		if ssoErr.status == http.StatusInternalServerError {
			internalError(w)
			return
		}
		abort(w, ssoErr.status, ssoErr.msg)
		return
	}
	if c == nil && r.Method != http.MethodGet && r.Method != http.MethodHead && !e.csrfExempt(r, nickname) {
		abort(w, http.StatusForbidden, "CSRF token was invalid or missing.")
		return
	}
	h(w, r, c)
}

// redirectSlash answers the slash-less form of a resource declared with a
// trailing slash with Werkzeug's 308 (endpoints/decorated.py
// handle_bad_redirect).
func (e *Emulator) redirectSlash(path string) {
	e.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		// Werkzeug's make_redirect_url builds an absolute URL from the
		// request's scheme and host (unverified: the scheme behind a
		// proxy; PREFERRED_URL_SCHEME is used here).
		target := e.cfg.scheme() + "://" + r.Host + path + "/"
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusPermanentRedirect)
	})
}

func (e *Emulator) routes() {
	e.redirectSlash("/api/v1/user")
	e.redirectSlash("/api/v1/organization")
	e.handle("POST /api/v1/user/initialize", "initializeUser", webRoute, e.initializeUser)
	e.handle("GET /api/v1/user/{$}", "getLoggedInUser", apiRoute, e.getLoggedInUser)
	e.handle("PUT /api/v1/user/{$}", "changeUserDetails", apiRoute, e.changeUserDetails)
	e.handle("GET /api/v1/user/authorizations", "listUserAuthorizations", apiRoute, e.listUserAuthorizations)
	e.handle("GET /api/v1/user/authorizations/{uuid}", "getUserAuthorization", apiRoute, e.getUserAuthorization)
	e.handle("DELETE /api/v1/user/authorizations/{uuid}", "deleteUserAuthorization", apiRoute, e.deleteUserAuthorization)

	e.handle("POST /api/v1/organization/{$}", "createOrganization", apiRoute, e.createOrganization)
	e.handle("GET /api/v1/organization/{orgname}", "getOrganization", apiRoute, e.getOrganization)

	e.handle("GET /api/v1/organization/{orgname}/applications", "getOrganizationApplications", apiRoute, e.listApplications)
	e.handle("POST /api/v1/organization/{orgname}/applications", "createOrganizationApplication", apiRoute, e.createApplication)
	e.handle("GET /api/v1/organization/{orgname}/applications/{client_id}", "getOrganizationApplication", apiRoute, e.getApplication)
	e.handle("PUT /api/v1/organization/{orgname}/applications/{client_id}", "updateOrganizationApplication", apiRoute, e.updateApplication)
	e.handle("DELETE /api/v1/organization/{orgname}/applications/{client_id}", "deleteOrganizationApplication", apiRoute, e.deleteApplication)
	e.handle("GET /api/v1/app/{client_id}", "getApplicationInformation", apiRoute, e.getApplicationInformation)

	e.handle("GET /api/v1/organization/{orgname}/applications/{client_id}/tokens", "listOrganizationApplicationTokens", apiRoute, e.listAppTokens)
	e.handle("POST /api/v1/organization/{orgname}/applications/{client_id}/tokens", "createOrganizationApplicationToken", apiRoute, e.createAppToken)
	e.handle("DELETE /api/v1/organization/{orgname}/applications/{client_id}/tokens/{token_uuid}", "deleteOrganizationApplicationToken", apiRoute, e.deleteAppToken)

	e.appSpecificTokenRoutes()
	e.robotRoutes()
	e.federationRoutes()
	e.repositoryRoutes()
	e.teamRoutes()
	e.prototypeRoutes()
	e.registryRoutes()
	e.oauthRoutes()
	e.bootstrapRoutes()

	// Anything else under /api is unregistered: for GET (and HEAD) Quay's
	// web 404 page; any other method matches only the web UI's GET
	// catch-all, so Werkzeug answers 405.
	e.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			webNotFound(w)
			return
		}
		w.Header().Set("Allow", "HEAD, OPTIONS, GET")
		htmlError(w, http.StatusMethodNotAllowed)
	})
}

// callCounter counts calls per nickname.
type callCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *callCounter) add(nickname string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[nickname]++
}

func (c *callCounter) get(nickname string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[nickname]
}

func (c *callCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

func (c *callCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = map[string]int{}
}

// Calls returns how many requests reached the route with this nickname
// since the last ResetCalls (faulted ones included).
func (e *Emulator) Calls(nickname string) int { return e.calls.get(nickname) }

// TotalCalls returns how many requests reached any route.
func (e *Emulator) TotalCalls() int {
	n := 0
	for _, v := range e.calls.snapshot() {
		n += v
	}
	return n
}

// CallCounts returns a copy of all counters.
func (e *Emulator) CallCounts() map[string]int { return e.calls.snapshot() }

// ResetCalls zeroes the counters.
func (e *Emulator) ResetCalls() { e.calls.reset() }

// Faults returns the fault-injection API.
func (e *Emulator) Faults() *Faults { return e.faults }

// AdvanceClock moves the emulator's clock forward (tokens expire, etc.).
func (e *Emulator) AdvanceClock(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.offset += d
}

func pathValue(r *http.Request, name string) string { return strings.TrimSpace(r.PathValue(name)) }
