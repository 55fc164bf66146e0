package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-containerregistry/pkg/registry"
)

// The Docker Registry v2 side (reference §7): the token endpoint /v2/auth
// issuing RS256 JWTs, the key set, and a real OCI registry (go-containerregistry's
// in-memory one) behind that token auth, so real clients push and pull.

const (
	registryTokenLifetime = 3600 * time.Second
	registryIssuer        = "quay" // INSTANCE_SERVICE_KEY_SERVICE
	registryLeeway        = 30 * time.Second
)

// initRegistryKey creates the instance service key that signs registry tokens.
func (e *Emulator) initRegistryKey() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	e.registryKey = key
	e.registryKeyID = randomString(43, alnum)
	return nil
}

func (e *Emulator) registryRoutes() {
	e.registry = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	e.handle("GET /v2/auth", "v2Auth", webRoute, e.v2Auth)
	e.handle("GET /keys/services/quay/keys", "listServiceKeys", webRoute, e.serviceKeys)
	// Registry traffic is served outside the global lock: the OCI store
	// has its own, and blobs can be large.
	e.mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/auth" {
			http.NotFound(w, r)
			return
		}
		e.calls.add("v2")
		if e.faults.apply(w, r, "v2") {
			return
		}
		e.serveRegistry(w, r)
	})
}

// challenge answers 401 with the Bearer challenge (plus a scope when known).
func (e *Emulator) challenge(w http.ResponseWriter, r *http.Request, scope, code, message string) {
	h := fmt.Sprintf(`Bearer realm="%s://%s/v2/auth",service="%s"`, e.cfg.scheme(), e.host(r), e.host(r))
	if scope != "" {
		h += fmt.Sprintf(`,scope="%s"`, scope)
	}
	w.Header().Set("WWW-Authenticate", h)
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	v2Error(w, http.StatusUnauthorized, code, message)
}

func v2Error(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"errors": []map[string]any{{"code": code, "message": message, "detail": map[string]any{}}}})
}

// repository scope: repository:<[host/]ns/repo>:<pull|push|*>[,…]
func scopeRegexp(host string) *regexp.Regexp {
	return regexp.MustCompile(`^repository:((?:` + regexp.QuoteMeta(host) + `\/)?((?:[\.a-zA-Z0-9_\-]+\/)*[\.a-zA-Z0-9_\-]+)):((?:push|pull|\*)(?:,(?:push|pull|\*))*)$`)
}

// registryIdentity is who a /v2/auth request authenticated as.
type registryIdentity struct {
	account *account
	// caller carries scope capping for $oauthtoken logins; nil otherwise.
	caller *caller
	kind   string // user, robot, oauthtoken, anonymous
}

// v2Auth is GET /v2/auth.
func (e *Emulator) v2Auth(w http.ResponseWriter, r *http.Request, _ *caller) {
	id, ok := e.registryLogin(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	scopes := q["scope"]
	if id.account == nil && len(scopes) == 0 {
		e.challenge(w, r, "", "UNAUTHORIZED", "access to the requested resource is not authorized")
		return
	}
	re := scopeRegexp(e.host(r))
	var access []map[string]any
	for _, scope := range scopes {
		m := re.FindStringSubmatch(scope)
		if m == nil {
			v2Error(w, http.StatusBadRequest, "INVALID_REQUEST", "Unable to decode repository and actions: "+scope)
			return
		}
		full, path, actions := m[1], m[2], strings.Split(m[3], ",")
		ns, repoName, found := strings.Cut(path, "/")
		if !found {
			v2Error(w, http.StatusBadRequest, "NAME_INVALID", "Invalid repository name: "+path)
			return
		}
		access = append(access, map[string]any{"type": "repository", "name": full, "actions": e.grantActions(id, ns, repoName, actions)})
	}
	if access == nil {
		access = []map[string]any{}
	}
	now := e.now()
	sub := "(anonymous)"
	ref := any(nil)
	if id.account != nil {
		sub, ref = id.account.username, id.account.username
	}
	claims := jwt.MapClaims{
		"iss": registryIssuer, "aud": q.Get("service"), "nbf": now.Unix(), "iat": now.Unix(),
		"exp": now.Add(registryTokenLifetime).Unix(), "sub": sub, "access": access,
		"context": map[string]any{
			"version": 2, "entity_kind": id.kind, "entity_reference": ref, "kind": id.kind, "user": ref,
			"com.apostille.roots": map[string]any{}, "com.apostille.root": "$disabled",
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = e.registryKeyID
	signed, err := tok.SignedString(e.registryKey)
	if err != nil {
		internalError(w)
		return
	}
	w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
	writeJSON(w, http.StatusOK, map[string]string{"token": signed})
}

// registryLogin validates Basic credentials in Quay's order: $token, $app,
// $oauthtoken, robots, users (auth/credentials.py). No credentials is anonymous.
func (e *Emulator) registryLogin(w http.ResponseWriter, r *http.Request) (registryIdentity, bool) {
	username, password, hasBasic := r.BasicAuth()
	if !hasBasic {
		return registryIdentity{kind: "anonymous"}, true
	}
	fail := func() (registryIdentity, bool) {
		e.challenge(w, r, "", "UNAUTHORIZED", "Invalid Username or Password")
		return registryIdentity{}, false
	}
	switch {
	case username == "$token", username == "$app":
		// Legacy repository tokens and app-specific tokens are not emulated.
		return fail()
	case username == "$oauthtoken":
		t := e.db.lookupToken(password, e.now())
		if t == nil {
			return fail()
		}
		u := e.db.accounts[t.user]
		if u == nil || !u.enabled {
			return fail()
		}
		return registryIdentity{account: u, caller: &caller{user: u, token: t, scopes: scopeSet(t.scope)}, kind: "oauthtoken"}, true
	case strings.Contains(username, "+"):
		robot := e.db.robotByToken(username, password)
		if robot == nil {
			return fail()
		}
		robot.lastAccessed = e.now()
		return registryIdentity{account: robot, kind: "robot"}, true
	default:
		u := e.db.accounts[username]
		if u == nil || u.org || u.robot || !u.enabled || !u.checkPassword(password) {
			return fail()
		}
		return registryIdentity{account: u, kind: "user"}, true
	}
}

// grantActions keeps the requested actions the identity may perform,
// silently dropping the rest. A push to a missing repository by someone
// allowed to create repositories there creates it (private).
func (e *Emulator) grantActions(id registryIdentity, ns, name string, requested []string) []string {
	repo := e.db.repos[ns+"/"+name]
	role := ""
	if id.account != nil {
		role = e.db.effectiveRepoRole(id.account.username, ns, name)
		if id.caller != nil {
			role = capRepoRole(id.caller, role)
		}
	}
	if repo == nil {
		// Only an owner or creator gets anything on a missing repository:
		// the right to create it with its first push.
		role = ""
		if id.account != nil && e.registryCanCreate(id, ns) && contains(requested, "push") {
			// The creator gets admin on the new repository, as in Quay.
			e.db.createRepo(ns, name, false, "", id.account.username, e.now())
			role = e.db.effectiveRepoRole(id.account.username, ns, name)
			if id.caller != nil {
				role = capRepoRole(id.caller, role)
			}
		}
	} else if repo.public {
		role = maxRole(repoRoles, role, "read")
	}
	var granted []string
	for _, a := range requested {
		ok := false
		switch a {
		case "pull":
			ok = rank(repoRoles, role) >= rank(repoRoles, "read")
		case "push":
			ok = rank(repoRoles, role) >= rank(repoRoles, "write")
		case "*":
			ok = role == "admin"
		}
		if ok && !contains(granted, a) {
			granted = append(granted, a)
		}
	}
	if granted == nil {
		granted = []string{}
	}
	return granted
}

func (e *Emulator) registryCanCreate(id registryIdentity, ns string) bool {
	if id.caller != nil {
		return e.canCreateRepo(id.caller, ns)
	}
	if id.account.username == ns {
		return true
	}
	role := e.db.orgRole(ns, id.account.username)
	return role == "creator" || role == "admin"
}

// serviceKeys is GET /keys/services/quay/keys: the JWK set that verifies
// registry tokens.
func (e *Emulator) serviceKeys(w http.ResponseWriter, _ *http.Request, _ *caller) {
	pub := e.registryKey.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "kid": e.registryKeyID, "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

// registryPathRule splits /v2/<name>/(blobs|manifests|tags|referrers)/… .
var registryPathRule = regexp.MustCompile(`^/v2/(.+?)/(blobs|manifests|tags|referrers)/`)

// serveRegistry checks the registry JWT against the request, then hands it
// to the OCI registry.
func (e *Emulator) serveRegistry(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	access, ok := e.verifyRegistryToken(r)
	if r.URL.Path == "/v2/" || r.URL.Path == "/v2" {
		if !ok {
			e.challenge(w, r, "", "UNAUTHORIZED", "access to the requested resource is not authorized")
			return
		}
		_, _ = w.Write([]byte("true"))
		return
	}
	m := registryPathRule.FindStringSubmatch(r.URL.Path)
	if m == nil {
		if !ok {
			e.challenge(w, r, "", "UNAUTHORIZED", "access to the requested resource is not authorized")
			return
		}
		v2Error(w, http.StatusNotFound, "NAME_UNKNOWN", "repository not found")
		return
	}
	name := m[1]
	need := "pull"
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		need = "push"
	}
	scope := "repository:" + name + ":" + need
	if need == "push" {
		scope = "repository:" + name + ":push,pull"
	}
	if !ok || !allowed(access, name, e.host(r), need) {
		e.challenge(w, r, scope, "UNAUTHORIZED", "access to the requested resource is not authorized")
		return
	}
	e.registry.ServeHTTP(w, r)
}

type accessEntry struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// verifyRegistryToken validates a Bearer registry JWT: the instance key,
// iss "quay", aud SERVER_HOSTNAME, 30 s leeway, a signed lifetime of at
// most REGISTRY_JWT_AUTH_MAX_FRESH_S (3660 s).
func (e *Emulator) verifyRegistryToken(r *http.Request) ([]accessEntry, bool) {
	header := r.Header.Get("Authorization")
	raw, found := strings.CutPrefix(header, "Bearer ")
	if !found {
		return nil, false
	}
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer(registryIssuer),
		jwt.WithAudience(e.host(r)),
		jwt.WithLeeway(registryLeeway),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(e.now),
	).ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return &e.registryKey.PublicKey, nil })
	if err != nil {
		return nil, false
	}
	exp, _ := claims.GetExpirationTime()
	iat, _ := claims.GetIssuedAt()
	if exp == nil || iat == nil || exp.Sub(iat.Time) > 3660*time.Second {
		return nil, false
	}
	rawAccess, _ := json.Marshal(claims["access"])
	var access []accessEntry
	if json.Unmarshal(rawAccess, &access) != nil {
		return nil, false
	}
	return access, true
}

func allowed(access []accessEntry, name, host, action string) bool {
	for _, a := range access {
		n := strings.TrimPrefix(a.Name, host+"/")
		if a.Type != "repository" || n != name {
			continue
		}
		if contains(a.Actions, action) || contains(a.Actions, "*") {
			return true
		}
	}
	return false
}
