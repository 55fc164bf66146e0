package emulator

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// Robot identity federation (files below): a robot trusts an external
// OIDC issuer, and a JWT of that issuer is exchanged for a one-hour robot
// JWT signed by Quay, which Quay then accepts as the robot's password.
//
//   - configuration: endpoints/api/robot.py (OrgRobotFederation,
//     UserRobotFederation, _parse_federation_config) and data/model/user.py
//     (get/create/delete_robot_federation_config): the list lives in the
//     robot's FederatedLogin metadata, so it goes with the robot;
//   - exchange: endpoints/oauth/robot_identity_federation.py behind
//     auth/decorators.py process_federated_auth, which runs
//     util/security/federated_robot_auth.py validate_federated_auth and
//     verify_federated_robot_jwt_token, decoding with oauth/oidc.py
//     OIDCLoginService.decode_user_jwt;
//   - the robot JWT: data/model/user.py generate_temp_robot_jwt_token and,
//     as a password, verify_robot → verify_robot_jwt_token →
//     util/security/registry_jwt.py decode_bearer_token.
//
// Refusals come in three shapes, as in Quay: a missing or malformed header
// or a non-robot username is a 401 {"error"} (the handler's own answer);
// every InvalidRobotCredentialException or InvalidRobotException escapes
// the handler and becomes a data-model error, 400 {"message"}
// (endpoints/decorated.py); everything else that escapes (discovery, key
// loading, a token that is not a JWT) is a 500.

// tmpRobotTokenLifetime is data/model/user.py
// TMP_ROBOT_TOKEN_VALIDITY_LIFETIME_S.
const tmpRobotTokenLifetime = 3600 * time.Second

// federationDiscoveryTimeout is the timeout=5 of
// _load_oidc_config_via_discovery.
const federationDiscoveryTimeout = 5 * time.Second

// federatedTokenRoute names the exchange endpoint (Quay's view function
// auth_federated_robot_identity) for faults and call counters.
const federatedTokenRoute = "authFederatedRobotIdentity"

// federationEntry is one item of a robot's federation_config. The API
// stores issuer and subject only (3.18), so Quay's per-entry "audiences"
// never exists and the exchange never checks aud.
type federationEntry struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
}

func (e *Emulator) federationRoutes() {
	for _, scope := range []struct{ base, prefix string }{
		{"/api/v1/organization/{orgname}/robots/{robot_shortname}/federation", "Org"},
		{"/api/v1/user/robots/{robot_shortname}/federation", "User"},
	} {
		e.handle("GET "+scope.base, "get"+scope.prefix+"RobotFederation", apiRoute, e.getRobotFederation)
		e.handle("POST "+scope.base, "create"+scope.prefix+"RobotFederation", apiRoute, e.createRobotFederation)
		e.handle("DELETE "+scope.base, "delete"+scope.prefix+"RobotFederation", apiRoute, e.deleteRobotFederation)
	}
	// The exchange reaches the issuer over the network: it is served
	// outside the global lock, which it takes only around the store.
	e.declare("GET /oauth2/federation/robot/token", federatedTokenRoute)
	e.mux.HandleFunc("GET /oauth2/federation/robot/token", e.federatedRobotToken)
	// Flask answers OPTIONS itself and refuses other methods.
	e.mux.HandleFunc("/oauth2/federation/robot/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "OPTIONS, GET, HEAD")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		htmlError(w, http.StatusMethodNotAllowed)
	})
}

// federationRobot resolves the robot of a federation route after the
// route's permission check: lookup_robot, whose miss is a data-model error.
func (e *Emulator) federationRobot(w http.ResponseWriter, r *http.Request, ns string) *account {
	name := ns + "+" + pathValue(r, "robot_shortname")
	if !isASCII(name) {
		dataModelError(w, robotNotFoundMessage)
		return nil
	}
	a := e.db.accounts[name]
	if a == nil || !a.robot {
		dataModelError(w, robotNotFoundMessage)
		return nil
	}
	return a
}

// getRobotFederation is getOrgRobotFederation / getUserRobotFederation: the
// stored list, [] when none.
func (e *Emulator) getRobotFederation(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, ok := e.robotAdminNamespace(w, r, c)
	if !ok {
		return
	}
	if a := e.federationRobot(w, r, ns); a != nil {
		writeJSON(w, http.StatusOK, federationList(a.federation))
	}
}

// createRobotFederation is createOrgRobotFederation /
// createUserRobotFederation: the body replaces the list, which is returned
// (200). The organization route validates the body's schema before the
// permission (validate_json_request is the inner decorator there), the
// user route after require_user_admin; the checks of
// _parse_federation_config run before the robot is looked up.
func (e *Emulator) createRobotFederation(w http.ResponseWriter, r *http.Request, c *caller) {
	if pathValue(r, "orgname") == "" {
		if _, ok := e.userRobotNamespace(w, r, c); !ok {
			return
		}
	}
	body, ok := e.validJSONRequest(w, r, validateFederationBody)
	if !ok {
		return
	}
	ns, ok := e.robotAdminNamespace(w, r, c)
	if !ok {
		return
	}
	list, msg := parseFederationConfig(body.([]any))
	if msg != "" {
		e.invalidRequest(w, r, msg)
		return
	}
	a := e.federationRobot(w, r, ns)
	if a == nil {
		return
	}
	a.federation = list
	writeJSON(w, http.StatusOK, federationList(list))
}

// deleteRobotFederation is deleteOrgRobotFederation /
// deleteUserRobotFederation: delete_robot_federation_config stores an
// empty list; 204.
func (e *Emulator) deleteRobotFederation(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, ok := e.robotAdminNamespace(w, r, c)
	if !ok {
		return
	}
	if a := e.federationRobot(w, r, ns); a != nil {
		a.federation = nil
		noContent(w)
	}
}

func federationList(list []federationEntry) []federationEntry {
	if list == nil {
		return []federationEntry{}
	}
	return list
}

// federationItemSchema is an item of CREATE_ROBOT_FEDERATION_SCHEMA.
var federationItemSchema = objectSchema{required: []string{"issuer", "subject"}, props: []prop{
	{name: "issuer", types: []string{"string"}},
	{name: "subject", types: []string{"string"}},
}}

// validateFederationBody is jsonschema against CREATE_ROBOT_FEDERATION_SCHEMA,
// an array of federationItemSchema.
func validateFederationBody(v any) string {
	list, ok := v.([]any)
	if !ok {
		return pyRepr(v) + " is not of type 'array'"
	}
	var errs []schemaError
	for _, item := range list {
		federationItemSchema.collect(item, 1, &errs)
	}
	return bestMatch(errs)
}

// parseFederationConfig is _parse_federation_config on a schema-valid body:
// both fields non-empty, an http(s) issuer, no duplicate pair. It returns
// the list or InvalidRequest's message.
func parseFederationConfig(body []any) ([]federationEntry, string) {
	list := []federationEntry{}
	seen := map[federationEntry]bool{}
	for _, raw := range body {
		item := raw.(map[string]any)
		entry := federationEntry{}
		entry.Issuer, _ = item["issuer"].(string)
		entry.Subject, _ = item["subject"].(string)
		if entry.Issuer == "" || entry.Subject == "" {
			return nil, "Missing one or more required fields (issuer, subject)"
		}
		if !strings.HasPrefix(entry.Issuer, "http://") && !strings.HasPrefix(entry.Issuer, "https://") {
			return nil, "Issuer must be a URL (http:// or https://)"
		}
		if seen[entry] {
			return nil, "Duplicate federation config entry"
		}
		seen[entry] = true
		list = append(list, entry)
	}
	return list, ""
}

// federationFailure is how a refused exchange is answered.
type federationFailure struct {
	status int // 401 (the handler's {"error"}), 400 (a data-model {"message"}) or 500
	msg    string
}

func (f *federationFailure) write(w http.ResponseWriter) {
	switch f.status {
	case http.StatusUnauthorized:
		// The view returns a dict: Flask's jsonify, application/json
		// (not util.http.abort's text/html).
		writeJSON(w, f.status, map[string]string{"error": f.msg})
	case http.StatusBadRequest:
		dataModelError(w, f.msg)
	default:
		internalError(w)
	}
}

// unauthenticated is a ValidateResult with missing=True: the handler's 401.
func unauthenticated(msg string) *federationFailure {
	return &federationFailure{http.StatusUnauthorized, msg}
}

// invalidCredential is an InvalidRobot(Credential)Exception: 400.
func invalidCredential(msg string) *federationFailure {
	return &federationFailure{http.StatusBadRequest, msg}
}

// escaped is an exception Quay's handler does not catch: 500. msg is for
// the emulator's tests only; the client sees the error page.
func escaped(msg string) *federationFailure {
	return &federationFailure{http.StatusInternalServerError, msg}
}

// federatedRobotToken is GET /oauth2/federation/robot/token.
func (e *Emulator) federatedRobotToken(w http.ResponseWriter, r *http.Request) {
	e.calls.add(federatedTokenRoute)
	if e.faults.apply(w, r, federatedTokenRoute, e.answerFederatedToken) {
		return
	}
	e.answerFederatedToken(w, r)
}

// answerFederatedToken is Quay's handling of the exchange.
func (e *Emulator) answerFederatedToken(w http.ResponseWriter, r *http.Request) {
	token, failure := e.exchangeFederatedToken(r)
	if failure != nil {
		failure.write(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": token})
}

// exchangeFederatedToken is validate_federated_auth followed by
// generate_temp_robot_jwt_token.
func (e *Emulator) exchangeFederatedToken(r *http.Request) (string, *federationFailure) {
	header := r.Header.Get("Authorization")
	if header == "" {
		return "", unauthenticated("No auth header")
	}
	username, external, failure := parseBasicAuthHeader(header)
	if failure != nil {
		return "", failure
	}
	if !strings.Contains(username, "+") {
		return "", unauthenticated("Invalid robot")
	}

	e.mu.Lock()
	robot, subjects, issuer, failure := e.federationMatch(username, external)
	host := e.host(r)
	e.mu.Unlock()
	if failure != nil {
		return "", failure
	}

	claims, failure := e.decodeFederatedJWT(external, issuer)
	if failure != nil {
		return "", failure
	}
	sub, isString := claims["sub"].(string)
	if !isString || !contains(subjects, sub) {
		return "", invalidCredential("Token does not match robot")
	}

	e.mu.Lock()
	now := e.now()
	e.mu.Unlock()
	signed, err := e.tempRobotToken(robot, host, now)
	if err != nil {
		return "", escaped(err.Error())
	}
	return signed, nil
}

// parseBasicAuthHeader is auth/basic.py _parse_basic_auth_header with the
// answers validate_federated_auth gives to its failures.
func parseBasicAuthHeader(header string) (username, password string, failure *federationFailure) {
	parts := authParts(header)
	if len(parts) == 0 {
		// normalized[0] of an all-blank header: an IndexError.
		return "", "", escaped("IndexError")
	}
	if !strings.EqualFold(parts[0], "basic") || len(parts) != 2 {
		return "", "", unauthenticated("Invalid basic auth header")
	}
	raw, err := pyB64Decode(parts[1])
	if err != nil {
		return "", "", unauthenticated("Could not parse basic auth header")
	}
	user, pw, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", unauthenticated("Unexpected number of credentials found in basic auth header")
	}
	if !utf8.ValidString(user) || !utf8.ValidString(pw) {
		return "", "", unauthenticated("Could not parse basic auth header")
	}
	return user, pw, nil
}

// pyB64Decode is Python's base64.b64decode without validate: characters
// outside the alphabet are dropped before decoding, then the padding must
// be right.
func pyB64Decode(s string) ([]byte, error) {
	var b strings.Builder
	for _, c := range s {
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' {
			b.WriteRune(c)
		}
	}
	return base64.StdEncoding.DecodeString(b.String())
}

// federationMatch is lookup_robot and the configuration half of
// verify_federated_robot_jwt_token: the token's unverified issuer against
// the robot's list. It returns the robot's username, the subjects
// configured for that issuer and the issuer. Call with e.mu held.
func (e *Emulator) federationMatch(username, token string) (robot string, subjects []string, issuer string, failure *federationFailure) {
	a := e.db.accounts[username]
	if !isASCII(username) || a == nil || !a.robot {
		return "", nil, "", invalidCredential(robotNotFoundMessage)
	}
	// get_jwt_issuer runs outside any except clause: a token that is not
	// a JWT escapes as a DecodeError.
	unverified, err := unverifiedClaims(token)
	if err != nil {
		return "", nil, "", escaped(err.Error())
	}
	iss := unverified["iss"]
	if !pyTruthy(iss) {
		return "", nil, "", invalidCredential("Token does not contain issuer")
	}
	if len(a.federation) == 0 {
		return "", nil, "", invalidCredential("Robot does not have federated login configured")
	}
	issuer, _ = iss.(string)
	for _, entry := range a.federation {
		if issuer != "" && entry.Issuer == issuer {
			subjects = append(subjects, entry.Subject)
		}
	}
	if len(subjects) == 0 {
		return "", nil, "", invalidCredential("issuer " + pyStrOf(iss) + " not configured for this robot")
	}
	return a.username, subjects, issuer, nil
}

// pyStrOf is Python's str() of a decoded JSON value.
func pyStrOf(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return pyRepr(v)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// decodeFederatedJWT is OIDCLoginService.decode_user_jwt for the one-off
// service verify_federated_robot_jwt_token builds ({"OIDC_SERVER": iss},
// nothing else): discovery over HTTPS only and with TLS verification
// (DEBUGGING is read from that block, which never has it), the token's
// issuer against the discovery document's, the kid's RSA key from
// jwks_uri, RS256 or RS384, iat and exp required, nbf and aud not checked,
// 30 s leeway; a failed decode loads the keys again and retries. The
// service is new on every exchange, so nothing is cached across requests.
// The network calls run without the global lock.
func (e *Emulator) decodeFederatedJWT(token, issuer string) (map[string]any, *federationFailure) {
	header, err := unverifiedHeader(token)
	if err != nil {
		return nil, escaped(err.Error())
	}
	kidValue, present := header["kid"]
	if !present || kidValue == nil {
		return nil, invalidCredential("Invalid token: Missing `kid` header")
	}
	kid, isString := kidValue.(string)
	if !isString {
		return nil, invalidCredential("Invalid token: Key ID header parameter must be a string")
	}
	doc, failure := e.federationDiscovery(issuer)
	if failure != nil {
		return nil, failure
	}
	// _issuers: the discovery document's issuer (else OIDC_SERVER), when
	// truthy; the token's must equal it, trailing slashes aside.
	configured, present := doc["issuer"]
	if !present {
		configured = issuer
	}
	if pyTruthy(configured) {
		name, ok := configured.(string)
		if !ok {
			return nil, escaped("AttributeError: rstrip")
		}
		if !sameIssuer(name, issuer) {
			return nil, invalidCredential(fmt.Sprintf("Invalid token: Issuer '%s' not in configured issuers: %s", issuer, pyRepr([]any{name})))
		}
	}
	jwksURI, present := doc["jwks_uri"]
	if !present {
		return nil, escaped("KeyError: 'jwks_uri'")
	}
	// decode loads the key set and decodes; a load failure escapes, a
	// decode failure is PyJWT's (decodeErr).
	decode := func() (claims map[string]any, failure *federationFailure, decodeErr error) {
		key, failure := e.federationKey(jwksURI, kid)
		if failure != nil {
			return nil, failure, nil
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		claims, decodeErr = pyjwtDecode(token, pyjwtOptions{
			algorithms: []string{"RS256", "RS384"}, key: key, require: []string{"iat", "exp"},
			leeway: 30 * time.Second, now: e.now(), issuer: &issuer, skipAudience: true,
		})
		return claims, nil, decodeErr
	}
	claims, failure, err := decode()
	if failure != nil {
		return nil, failure
	}
	if err == nil {
		return claims, nil
	}
	// The retry after _get_public_key(kid, force_refresh=True).
	claims, failure, err = decode()
	if failure != nil {
		return nil, failure
	}
	if err == nil {
		return claims, nil
	}
	e.mu.Lock()
	_, redecodeErr := e.unverifiedRedecode(token)
	e.mu.Unlock()
	if redecodeErr != nil {
		err = redecodeErr
	}
	return nil, invalidCredential("Invalid token: " + err.Error())
}

// federationDiscovery is _load_oidc_config_via_discovery with DEBUGGING
// off: an https:// issuer, its document within five seconds, a 2xx, JSON.
// Each failure is a DiscoveryFailureException (or requests' own error)
// that nothing catches.
func (e *Emulator) federationDiscovery(issuer string) (map[string]any, *federationFailure) {
	if !strings.HasPrefix(issuer, "https://") {
		return nil, escaped("OIDC server must be accessed over SSL")
	}
	u := issuer
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	ctx, cancel := context.WithTimeout(context.Background(), federationDiscoveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+".well-known/openid-configuration", nil)
	if err != nil {
		return nil, escaped(err.Error())
	}
	resp, err := e.httpClient.Do(req)
	if err != nil {
		return nil, escaped(err.Error())
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, escaped("Could not load OIDC discovery information")
	}
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		// Not JSON, or JSON that is not an object (whose .get fails).
		return nil, escaped("Could not parse OIDC discovery information")
	}
	return doc, nil
}

// federationKey is _PublicKeyCache.__missing__: the key set from jwks_uri
// (any scheme; requests follows redirects), the kid's key, which must be
// RSA. Every failure is a PublicKeyLoadException, which escapes.
func (e *Emulator) federationKey(jwksURI any, kid string) (*rsa.PublicKey, *federationFailure) {
	u, ok := jwksURI.(string)
	if !ok {
		return nil, escaped("Invalid URL")
	}
	resp, err := e.httpClient.Get(u)
	if err != nil {
		return nil, escaped(err.Error())
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, escaped(fmt.Sprintf("Error loading JWK set - HTTP GET error: %d", resp.StatusCode))
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, escaped(err.Error())
	}
	keys := set.Key(kid)
	if len(keys) == 0 {
		return nil, escaped("Public key " + kid + " not found")
	}
	pub, ok := keys[0].Key.(*rsa.PublicKey)
	if !ok {
		return nil, escaped("No RSA form of public key " + kid + " not found")
	}
	return pub, nil
}

// tempRobotToken is generate_temp_robot_jwt_token: a registry-style JWT of
// the instance service key (registry_jwt.py _generate_jwt_object) for the
// robot, aud SERVER_HOSTNAME, no access, the robot's signed auth context,
// valid TMP_ROBOT_TOKEN_VALIDITY_LIFETIME_S.
func (e *Emulator) tempRobotToken(robot, host string, now time.Time) (string, error) {
	claims := jwt.MapClaims{
		"iss": registryIssuer, "aud": host, "nbf": now.Unix(), "iat": now.Unix(),
		"exp": now.Add(tmpRobotTokenLifetime).Unix(), "sub": robot, "access": map[string]any{},
		"context": map[string]any{
			"version": 2, "entity_kind": "robot", "entity_reference": robot, "kind": "user", "user": robot,
			// build_context_and_subject without TUF roots.
			"com.apostille.roots": nil, "com.apostille.root": disabledTUFRoot,
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = e.registryKeyID
	return tok.SignedString(e.registryKey)
}

// errEscapedRobotJWT marks a robot JWT password whose decoding raised
// InvalidBearerTokenException: auth/credentials.py validate_credentials
// catches neither it nor its cause, so /v2/auth answers 500 (checked
// against real Quay 3.18: an expired one, a foreign kid, a missing nbf).
var errEscapedRobotJWT = errors.New("InvalidBearerTokenException")

// verifyRobotJWT is verify_robot_jwt_token: the JWT must decode as a
// registry token of this instance (decode_bearer_token), name the robot as
// sub, and carry SERVER_HOSTNAME as a plain-string aud. It returns Quay's
// refusal message, or errEscapedRobotJWT. Call with e.mu held.
func (e *Emulator) verifyRobotJWT(username, token, host string) (string, error) {
	claims, err := e.decodeBearerToken(token, host, e.now())
	if err != nil {
		return "", errEscapedRobotJWT
	}
	if sub, _ := claims["sub"].(string); sub != username {
		return "Token does not match robot", nil
	}
	if aud, _ := claims["aud"].(string); aud != host {
		return "Invalid audience for robot token", nil
	}
	return "", nil
}
