package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
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

// The Docker Registry v2 side (endpoints/v2/v2auth.py,
// endpoints/v2/__init__.py, auth/registry_jwt_auth.py,
// util/security/registry_jwt.py): the token endpoint /v2/auth issuing RS256
// JWTs, the key set, and a real OCI registry (go-containerregistry's
// in-memory one) behind that token auth, so real clients push and pull.

const (
	registryTokenLifetime = 3600 * time.Second // TOKEN_VALIDITY_LIFETIME_S
	registryIssuer        = "quay"             // INSTANCE_SERVICE_KEY_SERVICE
	registryLeeway        = 30 * time.Second   // JWT_CLOCK_SKEW_SECONDS
	registryMaxFresh      = 3660 * time.Second // REGISTRY_JWT_AUTH_MAX_FRESH_S
	libraryNamespace      = "library"          // LIBRARY_NAMESPACE
	anonymousSub          = "(anonymous)"
	disabledTUFRoot       = "$disabled" // FEATURE_SIGNING is off
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
	e.blobs = newRepoBlobs()
	e.registry = registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithBlobHandler(e.blobs))
	e.handle("GET /v2/auth", "v2Auth", webRoute, e.v2Auth)
	e.handle("GET /keys/services/quay/keys", "listServiceKeys", webRoute, e.serviceKeys)
	e.declareOnly("", "/v2/{rest...}", "v2")
	// Registry traffic is served outside the global lock: the OCI store
	// has its own, and blobs can be large.
	e.mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/auth" {
			// Only GET is routed (HEAD comes with it in Flask).
			w.Header().Set("Allow", "GET, HEAD, OPTIONS")
			htmlError(w, http.StatusMethodNotAllowed)
			return
		}
		e.calls.add("v2")
		if e.faults.apply(w, r, "v2", e.serveRegistry) {
			return
		}
		e.serveRegistry(w, r)
	})
}

// authHeaders is auth/registry_jwt_auth.py get_auth_headers: the Bearer
// challenge, with a scope when a repository is named.
func (e *Emulator) authHeaders(w http.ResponseWriter, r *http.Request, repository string, actions []string) {
	h := fmt.Sprintf(`Bearer realm="%s://%s/v2/auth",service="%s"`, e.cfg.scheme(), e.host(r), e.host(r))
	if repository != "" {
		scope := "repository:" + repository
		if len(actions) > 0 {
			scope += ":" + strings.Join(actions, ",")
		}
		h += fmt.Sprintf(`,scope="%s"`, scope)
	}
	w.Header().Set("WWW-Authenticate", h)
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
}

// v2Error is a V2RegistryException as endpoints/v2 serialises it; every
// 401 carries the challenge.
func (e *Emulator) v2Error(w http.ResponseWriter, r *http.Request, status int, code, message string, repository string, actions []string) {
	if status == http.StatusUnauthorized {
		e.authHeaders(w, r, repository, actions)
	}
	writeJSON(w, status, map[string]any{"errors": []map[string]any{{"code": code, "message": message, "detail": map[string]any{}}}})
}

const unauthorizedMessage = "access to the requested resource is not authorized"

// scopeRegexp is v2auth.py SCOPE_REGEX_TEMPLATE for this host.
func scopeRegexp(host string) *regexp.Regexp {
	return regexp.MustCompile(`^repository:((?:` + regexp.QuoteMeta(host) + `\/)?((?:[\.a-zA-Z0-9_\-]+\/)*[\.a-zA-Z0-9_\-]+)):((?:push|pull|\*)(?:,(?:push|pull|\*))*)$`)
}

// parseNamespaceRepository is util/names.py parse_namespace_repository: a
// name without a slash lives in the library namespace.
func parseNamespaceRepository(name string) (string, string) {
	ns, repo, found := strings.Cut(strings.TrimRight(name, "/"), "/")
	if !found {
		return libraryNamespace, ns
	}
	return ns, repo
}

// registryIdentity is who a /v2/auth request authenticated as.
type registryIdentity struct {
	account *account
	// caller carries the identity's rights: scope-capped for $oauthtoken,
	// full (direct login) otherwise.
	caller *caller
	kind   string // user, robot, oauthtoken, appspecifictoken
	// token is the OAuth token of an $oauthtoken login.
	token *oauthToken
	// appToken is the app-specific token of an $app login.
	appToken *appSpecificToken
	// escaped: validating the credentials raised an exception Quay does
	// not catch (a 500).
	escaped bool
}

// appSpecificTokenByCode finds an app-specific token by its code.
func (e *Emulator) appSpecificTokenByCode(code string) *appSpecificToken {
	for _, t := range e.db.appSpecificTokens {
		if t.code == code {
			return t
		}
	}
	return nil
}

// v2Auth is GET /v2/auth (generate_registry_jwt).
func (e *Emulator) v2Auth(w http.ResponseWriter, r *http.Request, _ *caller) {
	id, failure, throttled := e.registryLogin(r)
	if throttled != nil {
		writeThrottled(w, throttled)
		return
	}
	if id.escaped {
		internalError(w)
		return
	}
	authenticated := id.account != nil
	if r.Header.Get("Authorization") != "" && !authenticated {
		if failure == "" {
			failure = "Specified credentials are invalid"
		}
		e.v2Error(w, r, http.StatusUnauthorized, "UNAUTHORIZED", failure, "", nil)
		return
	}
	q := r.URL.Query()
	scopes := q["scope"]
	if !authenticated && len(scopes) == 0 {
		e.v2Error(w, r, http.StatusUnauthorized, "UNAUTHORIZED", unauthorizedMessage, "", nil)
		return
	}
	re := scopeRegexp(e.host(r))
	access := []map[string]any{}
	tufRoots := map[string]any{}
	for _, scope := range scopes {
		if scope == "" {
			if !authenticated {
				e.v2Error(w, r, http.StatusUnauthorized, "UNAUTHORIZED", unauthorizedMessage, "", nil)
				return
			}
			continue
		}
		m := re.FindStringSubmatch(scope)
		if m == nil {
			e.v2Error(w, r, http.StatusBadRequest, "INVALID_REQUEST", "Unable to decode repository and actions: "+scope, "", nil)
			return
		}
		full, path, requested := m[1], m[2], strings.Split(m[3], ",")
		ns, repoName := parseNamespaceRepository(path)
		if !validRepoName(repoName) {
			e.v2Error(w, r, http.StatusBadRequest, "NAME_INVALID", "Invalid repository name: "+path, "", nil)
			return
		}
		if owner := e.db.accounts[ns]; owner != nil && !owner.enabled {
			e.v2Error(w, r, http.StatusMethodNotAllowed, "DENIED", "Namespace "+ns+" has been disabled. Please contact a system administrator.", "", nil)
			return
		}
		actions, ok := e.grantActions(w, id, ns, repoName, requested)
		if !ok {
			return
		}
		access = append(access, map[string]any{"type": "repository", "name": full, "actions": actions})
		tufRoots[ns+"/"+repoName] = disabledTUFRoot
	}

	// build_context_and_subject: the auth context's signed dict (none for
	// an anonymous caller), plus the TUF roots.
	context := map[string]any{}
	sub := anonymousSub
	if authenticated {
		u := id.account
		sub = u.username
		context["version"] = 2
		context["entity_kind"] = id.kind
		switch id.kind {
		case "user":
			context["entity_reference"] = u.uuid
			context["kind"], context["user"] = "user", u.username
		case "robot":
			context["entity_reference"] = u.username
			context["kind"], context["user"] = "user", u.username
		case "oauthtoken":
			context["entity_reference"] = id.token.uuid
			context["kind"], context["oauth"], context["user"] = "oauth", id.token.uuid, u.username
		case "appspecifictoken":
			context["entity_reference"] = id.appToken.uuid
			context["kind"], context["user"] = "user", u.username
		}
	}
	context["com.apostille.roots"] = tufRoots
	context["com.apostille.root"] = disabledTUFRoot

	now := e.now()
	var aud any
	if q.Has("service") {
		aud = q.Get("service")
	}
	claims := jwt.MapClaims{
		"iss": registryIssuer, "aud": aud, "nbf": now.Unix(), "iat": now.Unix(),
		"exp": now.Add(registryTokenLifetime).Unix(), "sub": sub, "access": access, "context": context,
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

// registryLogin is process_basic_auth (auth/basic.py, auth/credentials.py):
// Basic credentials validated in Quay's order: $token, $app, $oauthtoken,
// robots, users. A missing or non-Basic header is no login; a failed one
// reports Quay's message.
func (e *Emulator) registryLogin(r *http.Request) (registryIdentity, string, *loginThrottled) {
	username, password, hasBasic := basicCredentials(r.Header.Get("Authorization"))
	if !hasBasic {
		return registryIdentity{}, "", nil
	}
	fail := func(msg string) (registryIdentity, string, *loginThrottled) { return registryIdentity{}, msg, nil }
	switch {
	case username == "$token":
		// Legacy repository access tokens are not emulated.
		return fail("Invalid access token")
	case username == "$app" && e.cfg.appSpecificTokens():
		t := e.appSpecificTokenByCode(password)
		u := e.appSpecificTokenUser(password)
		if u == nil {
			if t != nil && (t.expiration.IsZero() || t.expiration.After(e.now())) {
				if owner := e.db.accounts[t.user]; owner != nil && !owner.enabled {
					return fail("This user has been disabled. Please contact your administrator.")
				}
			}
			return fail("Invalid token")
		}
		return registryIdentity{account: u, caller: &caller{user: u, sso: true}, kind: "appspecifictoken", appToken: t}, "", nil
	case username == "$oauthtoken":
		if looksLikeJWT(password) {
			u, failure := e.validateSSOToken(r, password)
			if failure != nil {
				return fail(failure.msg)
			}
			return registryIdentity{account: u, caller: &caller{user: u, sso: true}, kind: "user"}, "", nil
		}
		t, msg := e.validateOAuthToken(password)
		if t == nil {
			return fail(msg)
		}
		u := e.db.accounts[t.user]
		return registryIdentity{account: u, caller: &caller{user: u, token: t, scopes: scopeSet(t.scope)}, kind: "oauthtoken", token: t}, "", nil
	case strings.Contains(username, "+"):
		robot, msg, err := e.verifyRobot(username, password, e.host(r))
		if err != nil {
			return registryIdentity{escaped: true}, "", nil
		}
		if robot == nil {
			return fail(msg)
		}
		return registryIdentity{account: robot, caller: &caller{user: robot, sso: true}, kind: "robot"}, "", nil
	default:
		u, msg, throttled := e.passwordLogin(username, password)
		if throttled != nil {
			return registryIdentity{}, "", throttled
		}
		if u == nil {
			return fail(msg)
		}
		return registryIdentity{account: u, caller: &caller{user: u, sso: true}, kind: "user"}, "", nil
	}
}

// basicCredentials is auth/basic.py _parse_basic_auth_header.
func basicCredentials(header string) (string, string, bool) {
	parts := authParts(header)
	if len(parts) != 2 || !strings.EqualFold(parts[0], "basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(parts[1])
	if err != nil {
		return "", "", false
	}
	user, pw, found := strings.Cut(string(raw), ":")
	return user, pw, found
}

// validateOAuthToken is auth/oauth.py validate_app_oauth_token with its
// messages.
func (e *Emulator) validateOAuthToken(secret string) (*oauthToken, string) {
	t := e.db.matchToken(secret)
	switch {
	case t == nil:
		return nil, "OAuth access token could not be validated"
	case !t.expiresAt.After(e.now()):
		return nil, "OAuth access token has expired"
	}
	if u := e.db.accounts[t.user]; u == nil || !u.enabled {
		return nil, "Granter of the oauth access token is disabled"
	}
	touchAccess(&t.lastAccessed, e.now(), oauthLastAccessedThreshold)
	return t, ""
}

// verifyRobot is data/model/user.py verify_robot with its messages. The
// robot's token is checked as it is now, so a regenerated token or a
// deleted robot stops working at once.
func (e *Emulator) verifyRobot(username, token, host string) (*account, string, error) {
	owner, _, _ := strings.Cut(username, "+")
	robot := e.db.accounts[username]
	if robot == nil || !robot.robot {
		return nil, robotNotFoundMessage, nil
	}
	ownerAccount := e.db.accounts[owner]
	if ownerAccount == nil {
		return nil, "Robot " + username + " owner does not exist", nil
	}
	if !ownerAccount.enabled {
		return nil, "Robot " + username + " owner " + owner + " is disabled", nil
	}
	if looksLikeJWT(token) {
		// A JWT password is a robot token of this instance, such as
		// federation's (federation.go).
		if msg, err := e.verifyRobotJWT(username, token, host); msg != "" || err != nil {
			return nil, msg, err
		}
	} else if robot.robotToken == "" || robot.robotToken != token {
		return nil, "Could not find robot with username: " + username + " and supplied password.", nil
	}
	touchAccess(&robot.lastAccessed, e.now(), lastAccessedThreshold)
	return robot, "", nil
}

// grantActions is _authorize_or_downscope_request: the requested actions
// the identity may perform, in Quay's order (push, pull, *), the rest
// silently dropped. A push to a missing repository by someone allowed to
// create repositories in an existing namespace creates it (private).
func (e *Emulator) grantActions(w http.ResponseWriter, id registryIdentity, ns, name string, requested []string) ([]string, bool) {
	granted := []string{}
	if e.db.accounts[ns] == nil {
		return granted, true // CREATE_NAMESPACE_ON_PUSH is off
	}
	c := id.caller
	repo := e.db.repos[ns+"/"+name]
	if contains(requested, "push") && c != nil {
		if repo != nil {
			if rank(repoRoles, e.repoRole(c, ns, name)) >= rank(repoRoles, "write") {
				granted = append(granted, "push")
			}
		} else if e.canCreateRepo(c, ns) {
			repo = e.db.createRepo(ns, name, !e.cfg.createPrivateRepoOnPush(), "", id.account.username, e.now())
			granted = append(granted, "push")
		}
	}
	if contains(requested, "pull") {
		if rank(repoRoles, e.repoRole(c, ns, name)) >= rank(repoRoles, "read") || (repo != nil && repo.public) {
			granted = append(granted, "pull")
		}
	}
	if contains(requested, "*") && e.repoRole(c, ns, name) == "admin" {
		if repo == nil {
			// Quay asserts on the repository's state here: an
			// AttributeError for a repository that does not exist.
			internalError(w)
			return nil, false
		}
		granted = append(granted, "*")
	}
	return granted, true
}

// serviceKeys is GET /keys/services/quay/keys: the JWK set that verifies
// registry tokens, each key as stored (kty, n, e) plus its kid
// (endpoints/keyserver jwk_with_kid).
func (e *Emulator) serviceKeys(w http.ResponseWriter, _ *http.Request, _ *caller) {
	pub := e.registryKey.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "kid": e.registryKeyID,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

// registryPathRule splits /v2/<name>/(blobs|manifests|tags|referrers)/… .
var registryPathRule = regexp.MustCompile(`^/v2/(.+?)/(blobs|manifests|tags|referrers)/`)

// serveRegistry is process_registry_jwt_auth and the require_repo_*
// decorators in front of the OCI registry: an invalid token is a 401
// {"error"}; without a token the caller is anonymous (public pulls only);
// otherwise the token's grants decide ("*" is admin, "push" write, "pull"
// read; write implies read).
func (e *Emulator) serveRegistry(w http.ResponseWriter, r *http.Request) {
	m := registryPathRule.FindStringSubmatch(r.URL.Path)
	repository, need := "", ""
	var challengeActions []string
	if m != nil {
		ns, name := parseNamespaceRepository(m[1])
		repository = ns + "/" + name
		need, challengeActions = "read", []string{"pull"}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			need, challengeActions = "write", []string{"pull", "push"}
		}
	}
	e.mu.Lock()
	now := e.now()
	e.mu.Unlock()
	grants, authenticated, err := e.verifyRegistryToken(r, now)
	if err != nil {
		e.authHeaders(w, r, repository, challengeActions)
		abort(w, http.StatusUnauthorized, err.Error())
		return
	}
	if r.URL.Path == "/v2/" || r.URL.Path == "/v2" {
		e.authHeaders(w, r, "", nil)
		w.Header().Set("X-Sparse-Manifest-Support", "false")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if !authenticated {
			w.WriteHeader(http.StatusUnauthorized)
		}
		_, _ = w.Write([]byte("true"))
		return
	}
	if m == nil {
		// /v2/_catalog and the like: left to the registry for a caller
		// with a valid token.
		if !authenticated {
			e.v2Error(w, r, http.StatusUnauthorized, "UNAUTHORIZED", unauthorizedMessage, "", nil)
			return
		}
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		e.registry.ServeHTTP(w, r)
		return
	}
	role := grants[repository]
	allowed := rank(repoRoles, role) >= rank(repoRoles, need)
	if !allowed && need == "read" {
		e.mu.Lock()
		repo := e.db.repos[repository]
		allowed = repo != nil && repo.public
		e.mu.Unlock()
	}
	if !allowed {
		e.v2Error(w, r, http.StatusUnauthorized, "UNAUTHORIZED", unauthorizedMessage, repository, challengeActions)
		return
	}
	// A cross-repository mount needs read on the source; without it (or
	// without the blob there) Quay starts an ordinary upload instead.
	if q := r.URL.Query(); r.Method == http.MethodPost && m[2] == "blobs" && q.Has("mount") {
		fromNS, fromName := parseNamespaceRepository(q.Get("from"))
		if rank(repoRoles, grants[fromNS+"/"+fromName]) >= rank(repoRoles, "read") &&
			e.mountBlob(w, r, repository, fromNS+"/"+fromName, q.Get("mount")) {
			return
		}
		q.Del("mount")
		q.Del("from")
		r.URL.RawQuery = q.Encode()
	}
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	e.registry.ServeHTTP(w, withRepository(r, repository))
}

// bearerTokenRule is util/security/jwtutil.py TOKEN_REGEX.
var bearerTokenRule = regexp.MustCompile(`^Bearer (([a-zA-Z0-9+\-_/]+\.)+[a-zA-Z0-9+\-_/]+)$`)

// verifyRegistryToken is decode_bearer_header (see decodeBearerToken). It
// returns the repository roles the grants give, whether a token was
// presented, and the reason a presented token is refused.
func (e *Emulator) verifyRegistryToken(r *http.Request, now time.Time) (map[string]string, bool, error) {
	header := strings.TrimSpace(r.Header.Get("Authorization"))
	if header == "" {
		return nil, false, nil
	}
	m := bearerTokenRule.FindStringSubmatch(header)
	if m == nil {
		return nil, false, errors.New("Invalid bearer token format")
	}
	claims, err := e.decodeBearerToken(m[1], e.host(r), now)
	if err != nil {
		return nil, false, err
	}
	raw, _ := json.Marshal(claims["access"])
	var access []struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	if claims["access"] != nil && json.Unmarshal(raw, &access) != nil {
		return nil, false, errors.New("Token contained invalid or malformed access grants")
	}
	grants := map[string]string{}
	for _, a := range access {
		ns, name := parseNamespaceRepository(a.Name)
		role := ""
		switch {
		case contains(a.Actions, "*"):
			role = "admin"
		case contains(a.Actions, "push"):
			role = "write"
		case contains(a.Actions, "pull"):
			role = "read"
		}
		key := ns + "/" + name
		grants[key] = maxRole(repoRoles, grants[key], role)
	}
	return grants, true, nil
}

// decodeBearerToken is registry_jwt.py decode_bearer_token: the instance
// key (by kid), RS256, iss "quay", aud SERVER_HOSTNAME, nbf/iat/exp
// required, 30 s leeway, iat not in the future, a signed lifetime of at
// most 3660 s, a sub. Refusals are InvalidBearerTokenException's message,
// in PyJWT's words (pyjwt.go).
func (e *Emulator) decodeBearerToken(raw, audience string, now time.Time) (map[string]any, error) {
	jose, err := unverifiedHeader(raw)
	if err != nil {
		return nil, err
	}
	if kid, _ := jose["kid"].(string); jose["kid"] == nil {
		return nil, errors.New("Missing kid header")
	} else if kid != e.registryKeyID {
		return nil, errors.New("Unknown service key")
	}
	issuer := registryIssuer
	// _StrictJWT's defaults: nbf, iat and exp required, nbf verified.
	claims, err := pyjwtDecode(raw, pyjwtOptions{
		algorithms: []string{"RS256"}, key: &e.registryKey.PublicKey,
		require: []string{"nbf", "iat", "exp"}, verifyNbf: true,
		leeway: registryLeeway, now: now, issuer: &issuer, audiences: []string{audience},
		expMaxSeconds: int(registryMaxFresh.Seconds()),
	})
	if err != nil {
		return nil, err
	}
	if _, ok := claims["sub"]; !ok {
		return nil, errors.New("Missing sub field in JWT")
	}
	return claims, nil
}
