package emulator

import (
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// SSO JWTs as Bearer tokens on /api/v1 (auth/oauth.py
// validate_sso_oauth_token, oauth/loginmanager.py, oauth/oidc.py,
// oauth/login_utils.py, all as of Quay v3.18.0). Every refusal is a 401
// {"error": <reason>} at once, with Quay's reason; a few failures escape
// Quay's handler and are 500s.

// publicKeyCacheTTL is oauth/oidc.py PUBLIC_KEY_CACHE_TTL.
const publicKeyCacheTTL = time.Hour

// oidcCache holds, per login service, the discovery document (Quay's
// lru_cache keeps a successful one for the process' life) and the key set
// (cached an hour).
type oidcCache struct {
	mu        sync.Mutex
	discovery map[string]*discoveryDoc
	keys      map[string]*cachedJWKS
}

type cachedJWKS struct {
	set     jose.JSONWebKeySet
	fetched time.Time
}

func newOIDCCache() *oidcCache {
	return &oidcCache{discovery: map[string]*discoveryDoc{}, keys: map[string]*cachedJWKS{}}
}

// ssoService is one OIDCLoginService.
type ssoService struct {
	key string // the *_LOGIN_CONFIG prefix
	cfg OIDCLoginConfig
}

// id is service_id(): the key up to its first underscore, lower-cased.
func (s ssoService) id() string {
	name := s.key + "_LOGIN_CONFIG"
	return strings.ToLower(name[:strings.Index(name, "_")])
}

// ssoServices lists the login services in Quay's order (the config's).
func (e *Emulator) ssoServices() []ssoService {
	var out []ssoService
	seen := map[string]bool{}
	for _, k := range e.cfg.LoginConfigOrder {
		if lc, ok := e.cfg.LoginConfigs[k]; ok && !seen[k] {
			seen[k] = true
			out = append(out, ssoService{k, lc})
		}
	}
	var rest []string
	for k := range e.cfg.LoginConfigs {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		out = append(out, ssoService{k, e.cfg.LoginConfigs[k]})
	}
	return out
}

// ssoFailure is a refused SSO token: the status (401, or 500 where Quay's
// handler lets an exception escape) and the {"error"} reason.
type ssoFailure struct {
	status int
	msg    string
}

func refuse(msg string) *ssoFailure { return &ssoFailure{http.StatusUnauthorized, msg} }

// errDiscovery is DiscoveryFailureException, which validate_sso_oauth_token
// does not catch: a 500.
type errDiscovery struct{ msg string }

func (e *errDiscovery) Error() string { return e.msg }

// discovery is _oidc_config: OIDC_SERVER's discovery document, https unless
// the block sets DEBUGGING; a success is kept for good.
func (e *Emulator) discovery(s ssoService) (*discoveryDoc, error) {
	if s.cfg.OIDCServer == "" {
		return &discoveryDoc{}, nil
	}
	e.oidc.mu.Lock()
	doc := e.oidc.discovery[s.key]
	e.oidc.mu.Unlock()
	if doc != nil {
		return doc, nil
	}
	server := s.cfg.OIDCServer
	if !strings.HasPrefix(server, "https://") && !s.cfg.Debugging {
		return nil, &errDiscovery{"OIDC server must be accessed over SSL"}
	}
	// posixpath.join(OIDC_SERVER, ".well-known/openid-configuration")
	u := server
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	u += ".well-known/openid-configuration"
	resp, err := e.oidcClient(s).Get(u)
	if err != nil {
		// requests' ConnectionError escapes too (unverified: the page).
		return nil, &errDiscovery{err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, &errDiscovery{"Could not load OIDC discovery information"}
	}
	var raw map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		return nil, &errDiscovery{"Could not parse OIDC discovery information"}
	}
	doc = &discoveryDoc{raw: raw}
	doc.Issuer, _ = raw["issuer"].(string)
	doc.JWKSURI, _ = raw["jwks_uri"].(string)
	e.oidc.mu.Lock()
	e.oidc.discovery[s.key] = doc
	e.oidc.mu.Unlock()
	return doc, nil
}

type discoveryDoc struct {
	raw     map[string]any
	Issuer  string
	JWKSURI string
}

// oidcClient is the client for a provider: with DEBUGGING, Quay's requests
// run with verify=False.
func (e *Emulator) oidcClient(s ssoService) *http.Client {
	if !s.cfg.Debugging || e.customHTTPClient {
		return e.httpClient
	}
	return &http.Client{Timeout: e.httpClient.Timeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // Quay's verify=False under DEBUGGING
	}}
}

// issuer is OIDCLoginService._issuer: OIDC_ISSUER, else the discovery
// issuer, else OIDC_SERVER (discovery runs first in every case). Quay
// evaluates config["OIDC_SERVER"] as the fallback eagerly, so a block
// without OIDC_SERVER raises KeyError here even when OIDC_ISSUER is set;
// nothing catches it on the API path (a 500).
func (e *Emulator) issuer(s ssoService) (string, error) {
	doc, err := e.discovery(s)
	if err != nil {
		return "", err
	}
	if s.cfg.OIDCServer == "" {
		return "", &errDiscovery{"'OIDC_SERVER'"}
	}
	if s.cfg.OIDCIssuer != "" {
		return s.cfg.OIDCIssuer, nil
	}
	if _, has := doc.raw["issuer"]; has {
		return doc.Issuer, nil
	}
	return s.cfg.OIDCServer, nil
}

// issuers is get_issuers(): OIDC_ISSUERS, else OIDC_ISSUER, else _issuer.
func (e *Emulator) issuers(s ssoService) ([]string, error) {
	switch {
	case len(s.cfg.OIDCIssuers) > 0:
		return s.cfg.OIDCIssuers, nil
	case s.cfg.OIDCIssuer != "":
		return []string{s.cfg.OIDCIssuer}, nil
	}
	iss, err := e.issuer(s)
	if err != nil || iss == "" {
		return nil, err
	}
	return []string{iss}, nil
}

// audiences is _audiences: OIDC_AUDIENCES with CLIENT_ID appended, or
// CLIENT_ID alone.
func (s ssoService) audiences() []string {
	list := s.cfg.OIDCAudiences
	client := s.cfg.ClientID
	if len(list) == 0 {
		if client == "" {
			return []string{}
		}
		return []string{client}
	}
	if client != "" && !contains(list, client) {
		return append(append([]string{}, list...), client)
	}
	return list
}

func sameIssuer(a, b string) bool { return strings.TrimRight(a, "/") == strings.TrimRight(b, "/") }

// serviceByIssuer is OAuthLoginManager.get_service_by_issuer: per service,
// the issuers list (discovery failures there are skipped), then _issuer
// (whose discovery failure escapes).
func (e *Emulator) serviceByIssuer(iss string) (*ssoService, error) {
	for _, s := range e.ssoServices() {
		if list, err := e.issuers(s); err == nil {
			for _, candidate := range list {
				if sameIssuer(candidate, iss) {
					return &s, nil
				}
			}
		}
		single, err := e.issuer(s)
		if err != nil {
			return nil, err
		}
		if single != "" && sameIssuer(single, iss) {
			return &s, nil
		}
	}
	return nil, nil
}

// jwks returns the provider's keys, cached an hour; refresh forces a fetch.
// fetched says whether this call loaded them. Failures are
// PublicKeyLoadException messages, or a discovery failure.
func (e *Emulator) jwks(s ssoService, refresh bool) (set *jose.JSONWebKeySet, fetched bool, err error) {
	now := e.now()
	e.oidc.mu.Lock()
	c := e.oidc.keys[s.key]
	e.oidc.mu.Unlock()
	if c != nil && !refresh && now.Sub(c.fetched) < publicKeyCacheTTL {
		return &c.set, false, nil
	}
	doc, err := e.discovery(s)
	if err != nil {
		return nil, false, err
	}
	jwksURI, ok := doc.raw["jwks_uri"].(string)
	if !ok {
		// _oidc_config()["jwks_uri"]: a KeyError, outside the handler's
		// except clauses (unverified: the 500 page).
		return nil, false, &errDiscovery{"'jwks_uri'"}
	}
	resp, err := e.oidcClient(s).Get(jwksURI)
	if err != nil {
		return nil, false, pyErr("%v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, false, pyErr("Error loading JWK set - HTTP GET error: %d", resp.StatusCode)
	}
	var loaded jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&loaded); err != nil {
		return nil, false, pyErr("%v", err)
	}
	e.oidc.mu.Lock()
	e.oidc.keys[s.key] = &cachedJWKS{set: loaded, fetched: now}
	e.oidc.mu.Unlock()
	return &loaded, true, nil
}

// publicKey is _get_public_key(kid): the RSA key of that kid. Quay caches
// keys per kid (a TTLCache of one entry); a kid it has not cached loads the
// key set, once. Here the whole set is cached, and a kid missing from a set
// loaded earlier loads it again, once.
func (e *Emulator) publicKey(s ssoService, kid string, refresh bool) (*rsa.PublicKey, error) {
	set, fetched, err := e.jwks(s, refresh)
	if err != nil {
		return nil, err
	}
	keys := set.Key(kid)
	if len(keys) == 0 && !fetched {
		if set, _, err = e.jwks(s, true); err != nil {
			return nil, err
		}
		keys = set.Key(kid)
	}
	if len(keys) == 0 {
		return nil, pyErr("Public key %s not found", kid)
	}
	pub, ok := keys[0].Key.(*rsa.PublicKey)
	if !ok {
		return nil, pyErr("No RSA form of public key %s not found", kid)
	}
	return pub, nil
}

// validateSSOToken is validate_sso_oauth_token: the user the JWT logs in
// (bound or created on first use), or the failure.
func (e *Emulator) validateSSOToken(_ *http.Request, raw string) (*account, *ssoFailure) {
	unverified, err := unverifiedClaims(raw)
	if err != nil {
		// get_jwt_issuer runs outside the handler's try: a DecodeError
		// escapes (unverified: the 500 page).
		return nil, &ssoFailure{http.StatusInternalServerError, err.Error()}
	}
	iss, _ := unverified["iss"].(string)
	if iss == "" {
		return nil, refuse("Token does not contain issuer")
	}
	service, err := e.serviceByIssuer(iss)
	if err != nil {
		return nil, &ssoFailure{http.StatusInternalServerError, err.Error()}
	}
	if service == nil {
		return nil, refuse("Issuer " + iss + " not configured")
	}
	claims, err := e.decodeUserJWT(*service, raw, iss)
	if err != nil {
		var d *errDiscovery
		if errors.As(err, &d) {
			return nil, &ssoFailure{http.StatusInternalServerError, err.Error()}
		}
		return nil, refuse(err.Error())
	}
	// Only azp is checked: v1.0 tokens carry appid instead and pass.
	if azp := claims["azp"]; pyTruthy(azp) && len(service.cfg.OIDCAllowedClients) > 0 {
		name, isString := azp.(string)
		if !isString || !contains(service.cfg.OIDCAllowedClients, name) {
			if !isString {
				name = pyRepr(azp) // str() of a number or list is its repr
			}
			return nil, refuse("Client '" + name + "' is not in the allowed clients list")
		}
	}
	return e.conductOAuthLogin(*service, claims)
}

// decodeUserJWT is OIDCLoginService.decode_user_jwt with the options of
// validate_sso_oauth_token (nbf not verified): a kid, the issuer among the
// configured ones, RS256/RS384, iat and exp required, 30 s leeway, the
// audience; on failure the keys are fetched again and the decode retried.
// When the retry fails too, Quay decodes once more without the signature
// (for a debug log) before re-raising the retry's error; that decode's own
// failure wins instead (see unverifiedRedecode).
func (e *Emulator) decodeUserJWT(s ssoService, raw, tokenIssuer string) (map[string]any, error) {
	header, err := unverifiedHeader(raw)
	if err != nil {
		return nil, err
	}
	kidValue, present := header["kid"]
	if !present || kidValue == nil {
		return nil, pyErr("Missing `kid` header")
	}
	kid, _ := kidValue.(string)
	issuers, err := e.issuers(s)
	if err != nil {
		return nil, err
	}
	if len(issuers) > 0 {
		found := false
		for _, candidate := range issuers {
			found = found || sameIssuer(candidate, tokenIssuer)
		}
		if !found {
			return nil, pyErr("Issuer '%s' not in configured issuers: %s", tokenIssuer, pyRepr(anySlice(issuers)))
		}
	}
	decode := func(key *rsa.PublicKey) (map[string]any, error) {
		return pyjwtDecode(raw, pyjwtOptions{
			algorithms: []string{"RS256", "RS384"}, key: key, require: []string{"iat", "exp"},
			leeway: 30 * time.Second, now: e.now(), issuer: &tokenIssuer, audiences: s.audiences(),
		})
	}
	key, err := e.publicKey(s, kid, false)
	if err != nil {
		return nil, err
	}
	claims, err := decode(key)
	if err == nil {
		return claims, nil
	}
	if key, err = e.publicKey(s, kid, true); err != nil {
		return nil, err
	}
	claims, err = decode(key)
	if err == nil {
		return claims, nil
	}
	if _, err := e.unverifiedRedecode(raw); err != nil {
		return nil, err
	}
	return nil, err
}

// unverifiedRedecode is decode_user_jwt's last decode, with
// verify_signature False: PyJWT then turns off its exp, nbf, iat, iss and
// aud checks but still requires iat and exp, and Quay's _StrictJWT still
// rejects an iat in the future (against the whole-second clock, with the
// leeway) with its own message. So a token issued in the future is refused
// as "Issued At claim (iat) cannot be in the future.", not with PyJWT's
// "The token is not yet valid (iat)" of the two verified decodes.
func (e *Emulator) unverifiedRedecode(raw string) (map[string]any, error) {
	claims, err := pyjwtDecode(raw, pyjwtOptions{require: []string{"iat", "exp"}})
	if err != nil {
		return nil, err
	}
	iat, ok := pyInt(claims["iat"])
	if !ok {
		return nil, pyErr("Issued At claim (iat) must be an integer.")
	}
	if iat > e.now().Unix()+30 {
		return nil, pyErr("Issued At claim (iat) cannot be in the future.")
	}
	return claims, nil
}

func anySlice(list []string) []any {
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = s
	}
	return out
}

// conductOAuthLogin is get_sub_username_email_from_token followed by
// _conduct_oauth_login: the user bound to (service, sub), or a new user
// named after the username claims. With FEATURE_MAILING (the default) a new
// user needs a verified email, which client-credentials tokens do not
// carry: Quay then refuses with its "already associated" message.
func (e *Emulator) conductOAuthLogin(s ssoService, claims map[string]any) (*account, *ssoFailure) {
	if pyTruthy(claims["impersonated"]) {
		return nil, refuse("Requests from impersonated principals are not supported")
	}
	subValue, ok := claims["sub"]
	if !ok {
		// user_info["sub"]: a KeyError (unverified: the 500 page).
		return nil, &ssoFailure{http.StatusInternalServerError, "'sub'"}
	}
	sub, _ := subValue.(string)
	var email any
	if name := s.cfg.VerifiedEmailClaimName; name != "" {
		email = claims[name]
	} else if pyTruthy(claims["email_verified"]) {
		email = claims["email"]
	}
	username, ok := usernameFromClaims(claims, s.cfg.PreferredUsernameClaimName)
	if !ok {
		return nil, &ssoFailure{http.StatusInternalServerError, "username claim is not a string"}
	}
	if sub == "" {
		// get_user_id's OAuthUserIdException escapes the handler.
		return nil, &ssoFailure{http.StatusInternalServerError, "Token missing 'sub' field"}
	}

	for _, a := range e.db.accounts {
		if a.federatedService == s.id() && a.federatedSub == sub {
			return a, nil
		}
	}
	emailStr, _ := email.(string)
	if !e.cfg.userCreation() {
		return nil, refuse("User creation is disabled. Please contact your administrator")
	}
	newName := ""
	for _, candidate := range validUsernames(username) {
		if e.db.accounts[candidate] == nil {
			newName = candidate
			break
		}
	}
	// create_user_noverify: the email (with FEATURE_MAILING), the
	// username, then the email's uniqueness among users. Both email
	// failures are InvalidEmailAddressException, which the login answers
	// with one message.
	emailRefusal := func() *ssoFailure {
		shown := "None"
		if email != nil {
			shown = fmt.Sprint(email)
		}
		return refuse("The e-mail address " + shown + " is already associated with an existing " + e.cfg.registryTitleShort() +
			" account. \nPlease log in with your username and password and associate your " + s.serviceName() + " account to use it in the future.")
	}
	if e.cfg.mailing() && !validEmail(emailStr) {
		return nil, emailRefusal()
	}
	if issue := usernameIssue(newName); issue != "" {
		return nil, refuse("Invalid namespace " + newName + ": " + issue)
	}
	if e.cfg.mailing() {
		for _, a := range e.db.accounts {
			if !a.org && a.email == emailStr {
				return nil, emailRefusal()
			}
		}
	}
	a := e.db.addUser(newName, emailStr, "", e.now())
	a.federatedService, a.federatedSub = s.id(), sub
	return a, nil
}

// serviceName is service_name(): SERVICE_NAME, else the service id.
func (s ssoService) serviceName() string {
	if s.cfg.ServiceName != "" {
		return s.cfg.ServiceName
	}
	return s.id()
}

// usernameFromClaims is get_username_from_userinfo: the configured claim,
// else preferred_username, else unique_name or upn, else sub; cut at "@".
func usernameFromClaims(claims map[string]any, preferred string) (string, bool) {
	var v any
	if preferred != "" {
		v = claims[preferred]
	} else {
		v = claims["preferred_username"]
		if v == nil {
			v = claims["unique_name"]
			if _, has := claims["unique_name"]; !has {
				v = claims["upn"]
			}
		}
	}
	if v == nil {
		v = claims["sub"]
	}
	s, ok := v.(string)
	if !ok {
		return "", false
	}
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	return s, true
}

// validUsernames is util/validation.py generate_valid_usernames, limited
// to its first candidates: the name lower-cased with invalid characters
// as "_" (runs collapsed, trimmed), padded to two characters, then with
// one and two extra characters from [0-9a-z]. (Quay's unidecode
// transliteration of non-ASCII letters is not reproduced: they become "_".)
func validUsernames(input string) []string {
	lower := strings.ToLower(strings.TrimSpace(input))
	var b strings.Builder
	for _, r := range lower {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	prefix := b.String()
	if len(prefix) > 255 {
		prefix = prefix[:255]
	}
	for strings.Contains(prefix, "__") {
		prefix = strings.ReplaceAll(prefix, "__", "_")
	}
	prefix = strings.TrimSuffix(prefix, "_")
	prefix = strings.TrimLeft(prefix, "_")
	const chars = "0123456789abcdefghijklmnopqrstuvwxyz"
	var out []string
	filler := 2 - len(prefix)
	if filler < 0 {
		filler = 0
	}
	var gen func(n int) []string
	gen = func(n int) []string {
		if n == 0 {
			return []string{""}
		}
		var res []string
		for _, c := range chars {
			for _, rest := range gen(n - 1) {
				res = append(res, string(c)+rest)
			}
		}
		return res
	}
	for n := filler; n <= filler+2 && n+len(prefix) <= 255; n++ {
		for _, suffix := range gen(n) {
			out = append(out, prefix+suffix)
		}
	}
	return out
}
