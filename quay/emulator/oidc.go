package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// SSO JWTs as Bearer tokens on /api/v1 (reference §9, Quay 3.18's
// multi-issuer and multi-audience support). Every failure is a 401
// {"error": …} at once. Error wording is close to Quay's but unverified.

const jwksCacheLifetime = time.Hour

type oidcCache struct {
	mu   sync.Mutex
	keys map[string]*cachedJWKS // by OIDC_SERVER
}

type cachedJWKS struct {
	set     jose.JSONWebKeySet
	fetched time.Time
}

func newOIDCCache() *oidcCache { return &oidcCache{keys: map[string]*cachedJWKS{}} }

// issuers of a login service: OIDC_ISSUERS, else OIDC_ISSUER, else the
// discovery issuer, else OIDC_SERVER.
func (e *Emulator) serviceIssuers(lc OIDCLoginConfig) []string {
	switch {
	case len(lc.OIDCIssuers) > 0:
		return lc.OIDCIssuers
	case lc.OIDCIssuer != "":
		return []string{lc.OIDCIssuer}
	}
	if doc, err := e.discovery(lc.OIDCServer); err == nil && doc.Issuer != "" {
		return []string{doc.Issuer}
	}
	return []string{lc.OIDCServer}
}

func sameIssuer(a, b string) bool { return strings.TrimRight(a, "/") == strings.TrimRight(b, "/") }

type discoveryDoc struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

func (e *Emulator) discovery(server string) (*discoveryDoc, error) {
	if !strings.HasPrefix(server, "https://") && !e.cfg.Debugging {
		return nil, fmt.Errorf("OIDC_SERVER must be https unless DEBUGGING is set")
	}
	u := strings.TrimRight(server, "/") + "/.well-known/openid-configuration"
	var doc discoveryDoc
	if err := e.getJSON(u, &doc); err != nil {
		return nil, err
	}
	return &doc, nil
}

func (e *Emulator) getJSON(u string, v any) error {
	resp, err := e.httpClient.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", u, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// jwks returns the provider's keys, cached an hour; refresh forces a fetch.
func (e *Emulator) jwks(server string, refresh bool) (*jose.JSONWebKeySet, error) {
	e.oidc.mu.Lock()
	defer e.oidc.mu.Unlock()
	if c := e.oidc.keys[server]; c != nil && !refresh && time.Since(c.fetched) < jwksCacheLifetime {
		return &c.set, nil
	}
	doc, err := e.discovery(server)
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := e.getJSON(doc.JWKSURI, &set); err != nil {
		return nil, err
	}
	e.oidc.keys[server] = &cachedJWKS{set: set, fetched: time.Now()}
	return &set, nil
}

// validateSSOToken checks a JWT against the configured login services and
// returns the user it logs in (created or bound on first use), or the 401
// reason.
func (e *Emulator) validateSSOToken(_ *http.Request, raw string) (*account, string) {
	unverified := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, unverified); err != nil {
		return nil, "Invalid token: " + err.Error()
	}
	iss, _ := unverified["iss"].(string)
	var service string
	var lc OIDCLoginConfig
	for name, cfg := range e.cfg.LoginConfigs {
		for _, candidate := range e.serviceIssuers(cfg) {
			if sameIssuer(candidate, iss) {
				service, lc = name, cfg
			}
		}
	}
	if service == "" {
		return nil, "Issuer " + iss + " not configured"
	}

	audiences := append([]string{}, lc.OIDCAudiences...)
	if lc.ClientID != "" && !contains(audiences, lc.ClientID) {
		audiences = append(audiences, lc.ClientID)
	}
	claims, err := e.verifyJWT(raw, lc, audiences)
	if err != nil {
		return nil, "Token could not be validated: " + err.Error()
	}
	if azp, ok := claims["azp"].(string); ok && azp != "" && len(lc.OIDCAllowedClients) > 0 && !contains(lc.OIDCAllowedClients, azp) {
		return nil, "Client '" + azp + "' is not in the allowed clients list"
	}
	username := ""
	for _, claim := range []string{lc.PreferredUsernameClaimName, "preferred_username", "unique_name", "upn", "sub"} {
		if claim == "" {
			continue
		}
		if v, ok := claims[claim].(string); ok && v != "" {
			username = v
			break
		}
	}
	if i := strings.IndexByte(username, '@'); i >= 0 {
		username = username[:i]
	}
	username = strings.ToLower(username)
	sub, _ := claims["sub"].(string)
	return e.ssoUser(service, sub, username)
}

func (e *Emulator) verifyJWT(raw string, lc OIDCLoginConfig, audiences []string) (jwt.MapClaims, error) {
	issuers := e.serviceIssuers(lc)
	parse := func(set *jose.JSONWebKeySet) (jwt.MapClaims, error) {
		claims := jwt.MapClaims{}
		_, err := jwt.NewParser(
			jwt.WithValidMethods([]string{"RS256", "RS384"}),
			jwt.WithLeeway(30*time.Second),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithTimeFunc(e.now),
		).ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
			kid, _ := t.Header["kid"].(string)
			if kid == "" {
				return nil, errors.New("missing kid header")
			}
			keys := set.Key(kid)
			if len(keys) == 0 {
				return nil, errKeyNotFound
			}
			return keys[0].Key, nil
		})
		if err != nil {
			return nil, err
		}
		if _, ok := claims["iat"]; !ok {
			return nil, errors.New("token is missing the iat claim")
		}
		iss, _ := claims["iss"].(string)
		found := false
		for _, candidate := range issuers {
			found = found || sameIssuer(candidate, iss)
		}
		if !found {
			return nil, errors.New("invalid issuer")
		}
		aud, _ := claims.GetAudience()
		for _, a := range aud {
			if contains(audiences, a) {
				return claims, nil
			}
		}
		return nil, errors.New("invalid audience")
	}
	set, err := e.jwks(lc.OIDCServer, false)
	if err != nil {
		return nil, err
	}
	claims, err := parse(set)
	if errors.Is(err, errKeyNotFound) {
		// Keys rotate: refresh once and retry.
		if set, err = e.jwks(lc.OIDCServer, true); err != nil {
			return nil, err
		}
		claims, err = parse(set)
	}
	return claims, err
}

var errKeyNotFound = errors.New("signing key not found in the provider's key set")

// ssoUser finds the user bound to (service, sub), or binds or creates one
// (_conduct_oauth_login).
func (e *Emulator) ssoUser(service, sub, username string) (*account, string) {
	for _, a := range e.db.accounts {
		if a.federatedService == service && a.federatedSub == sub {
			return a, ""
		}
	}
	if username == "" || !validName(username) {
		return nil, "Could not derive a valid username from the token"
	}
	a := e.db.accounts[username]
	if a == nil {
		a = e.db.addUser(username, "", "", e.now())
	} else if a.org || a.robot || a.federatedSub != "" {
		return nil, "Username " + username + " is already taken"
	}
	a.federatedService, a.federatedSub = service, sub
	return a, ""
}
