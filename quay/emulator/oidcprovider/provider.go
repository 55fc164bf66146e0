// Package oidcprovider is an in-process OpenID Connect provider for tests,
// shaped like Microsoft Entra ID: a discovery document, a key set, and an
// OAuth2 client-credentials token endpoint issuing RS256 access tokens
// (header typ "JWT", with a kid) with Entra's v1.0
// (https://sts.windows.net/<tenant>/) or v2.0
// (https://login.microsoftonline.com/<tenant>/v2.0) issuer, an
// on-behalf-of style audience such as api://quay-api, and azp (v2.0) or
// appid (v1.0).
//
// As with Entra, the issuer in the tokens is not the provider's own URL:
// Quay fetches discovery from its OIDC_SERVER (this provider's URL) but
// matches the tokens' iss against OIDC_ISSUERS. The discovery document's
// issuer and the tokens' iss are set apart from the URL, and from each
// other (Config.DiscoveryIssuer), so tests can exercise Quay's fallbacks.
//
// Routes (any path prefix is accepted before the well-known suffix, so
// OIDC_SERVER may carry a tenant path):
//
//	GET  .../.well-known/openid-configuration   discovery
//	GET  /discovery/v2.0/keys                    the key set (JWKS)
//	POST /oauth2/v2.0/token                      client credentials, scope=<resource>/.default
//	POST /oauth2/token                           client credentials, resource=<resource> (v1.0 style)
//
// The key set and both token endpoints are also served under the tenant,
// as Entra serves them (https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token):
// /<tenant>/discovery/v2.0/keys, /<tenant>/oauth2/v2.0/token and
// /<tenant>/oauth2/token. Another tenant gets Entra's 400 AADSTS90002.
// Discovery fetched under /<tenant>/ names the tenant's endpoints.
//
// Clients authenticate with client_id/client_secret form fields or HTTP
// Basic (form-urlencoded id and secret, RFC 6749 §2.3.1, as
// golang.org/x/oauth2 sends them).
//
// Use it with net/http/httptest (NewServer does that), or serve it on a
// listener after setting BaseURL; cmd/quay-emulator serves it with
// -oidc-listen.
package oidcprovider

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// IssuerV1 is Entra's v1.0 issuer for a tenant.
func IssuerV1(tenant string) string { return "https://sts.windows.net/" + tenant + "/" }

// IssuerV2 is Entra's v2.0 issuer for a tenant.
func IssuerV2(tenant string) string { return "https://login.microsoftonline.com/" + tenant + "/v2.0" }

// Client is a registered confidential client (a service principal).
type Client struct {
	ID, Secret string
	// Subject is the token's sub and oid (Quay binds the user to the
	// login service and sub, and derives the username from sub when no
	// username claim is present).
	Subject string
	// PreferredUsername, when set, is the token's preferred_username
	// (Quay's first choice of username; cut at '@').
	PreferredUsername string
	// Version overrides Config.Version for this client's tokens (1 or 2).
	Version int
	// Claims are added to (or replace) this client's token claims.
	Claims map[string]any
}

// Config configures a Provider.
type Config struct {
	// Tenant is the tid claim, and gives the issuer of a version when
	// Issuer does not (IssuerV1 or IssuerV2 of Tenant).
	Tenant string
	// Issuer is the iss of tokens of Version (default: Entra's issuer of
	// Version for Tenant). Tokens of the other version (Client.Version)
	// get Entra's issuer of that version for Tenant.
	Issuer string
	// DiscoveryIssuer is the discovery document's issuer (default: the
	// issuer of Version). Set it to "-" to leave issuer out of the
	// document, as a non-conforming provider would.
	DiscoveryIssuer string
	// Version is 1 (appid claim, ver 1.0) or 2 (azp claim, ver 2.0, the
	// default).
	Version int
	// TokenTTL is the access tokens' lifetime (default one hour).
	TokenTTL time.Duration
	Clients  []Client
	// ExtraClaims are added to (or replace) every token's claims; a
	// client's own Claims win over them.
	ExtraClaims map[string]any
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Provider is the test identity provider; an http.Handler. Set BaseURL to
// the address it is served at before use (NewServer does).
type Provider struct {
	cfg     Config
	BaseURL string

	mu   sync.Mutex
	keys []signingKey // keys[0] signs; all are published
	// counters
	tokenRequests, tokensIssued, keySetFetches, discoveryFetches int
}

type signingKey struct {
	key *rsa.PrivateKey
	kid string
}

// New returns a provider with a fresh RSA key.
func New(cfg Config) (*Provider, error) {
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.Version == 0 {
		cfg.Version = 2
	}
	if cfg.Version != 1 && cfg.Version != 2 {
		return nil, fmt.Errorf("oidcprovider: version must be 1 or 2, got %d", cfg.Version)
	}
	for _, c := range cfg.Clients {
		if c.Version != 0 && c.Version != 1 && c.Version != 2 {
			return nil, fmt.Errorf("oidcprovider: client %q: version must be 1 or 2, got %d", c.ID, c.Version)
		}
	}
	if cfg.Issuer == "" && cfg.Tenant == "" {
		return nil, errors.New("oidcprovider: set Issuer or Tenant")
	}
	if cfg.Tenant == "" {
		cfg.Tenant = tenantOf(cfg.Issuer)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	k, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	return &Provider{cfg: cfg, keys: []signingKey{k}}, nil
}

// NewServer returns a provider served by an httptest.Server, with BaseURL
// set. Close the server when done.
func NewServer(cfg Config) (*Provider, *httptest.Server, error) {
	p, err := New(cfg)
	if err != nil {
		return nil, nil, err
	}
	srv := httptest.NewServer(p)
	p.BaseURL = srv.URL
	return p, srv, nil
}

// tenantOf is the tenant in an Entra issuer, or "".
func tenantOf(issuer string) string {
	for _, prefix := range []string{"https://sts.windows.net/", "https://login.microsoftonline.com/"} {
		if rest, ok := strings.CutPrefix(issuer, prefix); ok {
			tenant, _, _ := strings.Cut(rest, "/")
			return tenant
		}
	}
	return ""
}

func newSigningKey() (signingKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return signingKey{}, err
	}
	return signingKey{key: key, kid: randomID(12)}, nil
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// RotateKey makes a new key the signing key, under a new kid. With
// retireOld the previous keys leave the key set at once (tokens they signed
// no longer verify); otherwise they stay published, as Entra keeps old keys
// for a while.
func (p *Provider) RotateKey(retireOld bool) error {
	k, err := newSigningKey()
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if retireOld {
		p.keys = []signingKey{k}
	} else {
		p.keys = append([]signingKey{k}, p.keys...)
	}
	return nil
}

// ReplaceKey swaps the signing key for a new one under the same kid, as a
// careless provider might: a verifier that caches keys by kid fails until
// it reloads the key set.
func (p *Provider) ReplaceKey() error {
	k, err := newSigningKey()
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k.kid = p.keys[0].kid
	p.keys[0] = k
	return nil
}

// KeyID is the kid of the current signing key.
func (p *Provider) KeyID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[0].kid
}

// TokenRequests counts requests to the token endpoints, refused or not.
func (p *Provider) TokenRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokenRequests
}

// TokensIssued counts successful token-endpoint requests.
func (p *Provider) TokensIssued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokensIssued
}

// KeySetFetches counts key-set (JWKS) requests.
func (p *Provider) KeySetFetches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keySetFetches
}

// DiscoveryFetches counts discovery-document requests.
func (p *Provider) DiscoveryFetches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.discoveryFetches
}

func (p *Provider) base() string { return strings.TrimRight(p.BaseURL, "/") }

// The provider's routes, without a tenant.
const (
	tokenPath   = "/oauth2/v2.0/token"
	tokenPathV1 = "/oauth2/token"
	keysPath    = "/discovery/v2.0/keys"
)

// TokenURL is the (v2.0) token endpoint.
func (p *Provider) TokenURL() string { return p.base() + tokenPath }

// TokenURLV1 is the v1.0-style token endpoint (resource instead of scope).
func (p *Provider) TokenURLV1() string { return p.base() + tokenPathV1 }

// KeysURL is the key set's URL (the discovery's jwks_uri).
func (p *Provider) KeysURL() string { return p.base() + keysPath }

// TenantTokenURL is the v2.0 token endpoint under the tenant, the URL Entra
// documents: <base>/<tenant>/oauth2/v2.0/token.
func (p *Provider) TenantTokenURL() string { return p.base() + "/" + p.cfg.Tenant + tokenPath }

// TenantTokenURLV1 is the v1.0 token endpoint under the tenant.
func (p *Provider) TenantTokenURLV1() string { return p.base() + "/" + p.cfg.Tenant + tokenPathV1 }

// Tenant is the provider's tenant ("" when its issuer is not Entra's).
func (p *Provider) Tenant() string { return p.cfg.Tenant }

// tenantRoute splits a tenant-scoped path such as
// /<tenant>/oauth2/v2.0/token into the tenant and the route it names.
func tenantRoute(path string) (tenant, route string, ok bool) {
	tenant, rest, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !ok || tenant == "" {
		return "", "", false
	}
	switch route = "/" + rest; route {
	case tokenPath, tokenPathV1, keysPath:
		return tenant, route, true
	}
	return "", "", false
}

// isTenant reports whether name is this provider's tenant (Entra compares
// tenant IDs without regard to case).
func (p *Provider) isTenant(name string) bool {
	return p.cfg.Tenant != "" && strings.EqualFold(name, p.cfg.Tenant)
}

// Issuer is the iss of tokens of the given version (0: the provider's).
func (p *Provider) Issuer(version int) string {
	if version == 0 {
		version = p.cfg.Version
	}
	if version == p.cfg.Version && p.cfg.Issuer != "" {
		return p.cfg.Issuer
	}
	if p.cfg.Tenant == "" {
		return p.cfg.Issuer
	}
	if version == 1 {
		return IssuerV1(p.cfg.Tenant)
	}
	return IssuerV2(p.cfg.Tenant)
}

func (p *Provider) discoveryIssuer() (string, bool) {
	switch p.cfg.DiscoveryIssuer {
	case "":
		return p.Issuer(0), true
	case "-":
		return "", false
	}
	return p.cfg.DiscoveryIssuer, true
}

func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if tenant, route, ok := tenantRoute(path); ok {
		if !p.isTenant(tenant) {
			if route != keysPath {
				p.count(&p.tokenRequests)
			}
			oauthError(w, http.StatusBadRequest, "invalid_request", 90002,
				"AADSTS90002: Tenant '"+tenant+"' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.")
			return
		}
		path = route
	}
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(path, "/.well-known/openid-configuration"):
		p.count(&p.discoveryFetches)
		// Under /<tenant>/ Entra names the tenant's own endpoints.
		base := p.base()
		if tenant, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/"); p.isTenant(tenant) {
			base += "/" + tenant
		}
		doc := map[string]any{
			"jwks_uri": base + keysPath, "token_endpoint": base + tokenPath,
			"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
			"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
			"subject_types_supported":               []string{"pairwise"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
			"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
			"grant_types_supported":                 []string{"client_credentials"},
		}
		if iss, ok := p.discoveryIssuer(); ok {
			doc["issuer"] = iss
		}
		writeJSON(w, http.StatusOK, doc)
	case r.Method == http.MethodGet && path == keysPath:
		p.count(&p.keySetFetches)
		writeJSON(w, http.StatusOK, map[string]any{"keys": p.jwks()})
	case r.Method == http.MethodPost && path == tokenPath:
		p.token(w, r, false)
	case r.Method == http.MethodPost && path == tokenPathV1:
		p.token(w, r, true)
	default:
		http.NotFound(w, r)
	}
}

func (p *Provider) count(n *int) {
	p.mu.Lock()
	*n++
	p.mu.Unlock()
}

func (p *Provider) jwks() []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]map[string]any, 0, len(p.keys))
	for _, k := range p.keys {
		out = append(out, map[string]any{
			"kty": "RSA", "use": "sig", "kid": k.kid, "alg": "RS256",
			"n": base64.RawURLEncoding.EncodeToString(k.key.PublicKey.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.key.PublicKey.E)).Bytes()),
		})
	}
	return out
}

// token is the client-credentials grant. On the v2.0 endpoint the audience
// is the scope's resource ("api://quay-api/.default" gives aud
// "api://quay-api"; Entra requires the /.default form for this grant); on
// the v1.0 endpoint it is the resource parameter.
func (p *Provider) token(w http.ResponseWriter, r *http.Request, v1Endpoint bool) {
	p.count(&p.tokenRequests)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", 900144, "AADSTS900144: The request body must contain the following parameter: 'grant_type'.")
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "AADSTS70003: The app requested an unsupported grant type; only client_credentials is supported here.")
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: form-urlencoded before Basic encoding.
		if u, err := url.QueryUnescape(id); err == nil {
			id = u
		}
		if u, err := url.QueryUnescape(secret); err == nil {
			secret = u
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	var client *Client
	for i := range p.cfg.Clients {
		if p.cfg.Clients[i].ID == id {
			client = &p.cfg.Clients[i]
		}
	}
	switch {
	case client == nil:
		oauthError(w, http.StatusBadRequest, "unauthorized_client", 700016,
			"AADSTS700016: Application with identifier '"+id+"' was not found in the directory.")
		return
	case client.Secret != secret:
		oauthError(w, http.StatusUnauthorized, "invalid_client", 7000215,
			"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
		return
	}
	var aud string
	if v1Endpoint {
		aud = r.PostForm.Get("resource")
		if aud == "" {
			oauthError(w, http.StatusBadRequest, "invalid_request", 50001, "AADSTS50001: The resource principal was not found (resource is required).")
			return
		}
	} else {
		scopes := strings.Fields(r.PostForm.Get("scope"))
		if len(scopes) != 1 || !strings.HasSuffix(scopes[0], "/.default") || scopes[0] == "/.default" {
			oauthError(w, http.StatusBadRequest, "invalid_scope", 1002012,
				"AADSTS1002012: The provided value for scope "+r.PostForm.Get("scope")+" is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
			return
		}
		aud = strings.TrimSuffix(scopes[0], "/.default")
	}
	tok, err := p.Mint(p.Claims(*client, aud), nil)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", 0, err.Error())
		return
	}
	p.count(&p.tokensIssued)
	ttl := int(p.cfg.TokenTTL.Seconds())
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": tok})
}

// Claims are the access-token claims the provider issues to client for
// aud, shaped like Entra's app-only tokens of the client's version.
func (p *Provider) Claims(client Client, aud string) jwt.MapClaims {
	now := p.cfg.Now()
	version := client.Version
	if version == 0 {
		version = p.cfg.Version
	}
	c := jwt.MapClaims{
		"iss": p.Issuer(version), "aud": aud, "sub": client.Subject, "oid": client.Subject,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(p.cfg.TokenTTL).Unix(),
		"idtyp": "app", "uti": randomID(16),
	}
	if p.cfg.Tenant != "" {
		c["tid"] = p.cfg.Tenant
	}
	if version == 1 {
		c["ver"], c["appid"], c["appidacr"], c["idp"] = "1.0", client.ID, "1", p.Issuer(1)
	} else {
		c["ver"], c["azp"], c["azpacr"] = "2.0", client.ID, "1"
	}
	if client.PreferredUsername != "" {
		c["preferred_username"] = client.PreferredUsername
	}
	for k, v := range p.cfg.ExtraClaims {
		c[k] = v
	}
	for k, v := range client.Claims {
		c[k] = v
	}
	return c
}

// Client returns the registered client with this ID.
func (p *Provider) Client(id string) (Client, bool) {
	for _, c := range p.cfg.Clients {
		if c.ID == id {
			return c, true
		}
	}
	return Client{}, false
}

// MintOptions alter a minted token, for refusal cases.
type MintOptions struct {
	// Key signs instead of the provider's key (a bad signature).
	Key *rsa.PrivateKey
	// NoKid leaves the kid header out.
	NoKid bool
	// KeyID replaces the kid header.
	KeyID string
	// Method is the signing method (default RS256). An HMAC method signs
	// with a fixed secret.
	Method jwt.SigningMethod
	// Type replaces the typ header ("-" leaves it out; Quay then treats
	// the token as an opaque one).
	Type string
}

// Mint signs arbitrary claims with the current key, for tests that need
// tokens the token endpoint would not issue (another issuer, audience or
// azp, expired, ...).
func (p *Provider) Mint(claims jwt.MapClaims, opts *MintOptions) (string, error) {
	if opts == nil {
		opts = &MintOptions{}
	}
	method := opts.Method
	if method == nil {
		method = jwt.SigningMethodRS256
	}
	p.mu.Lock()
	current := p.keys[0]
	p.mu.Unlock()
	tok := jwt.NewWithClaims(method, claims)
	switch opts.Type {
	case "":
		tok.Header["typ"] = "JWT"
	case "-":
		delete(tok.Header, "typ")
	default:
		tok.Header["typ"] = opts.Type
	}
	if !opts.NoKid {
		tok.Header["kid"] = current.kid
		if opts.KeyID != "" {
			tok.Header["kid"] = opts.KeyID
		}
	}
	if _, isHMAC := method.(*jwt.SigningMethodHMAC); isHMAC {
		return tok.SignedString([]byte("not-an-rsa-key"))
	}
	key := current.key
	if opts.Key != nil {
		key = opts.Key
	}
	return tok.SignedString(key)
}

// Refusal names a token Quay must refuse (auth/oauth.py
// validate_sso_oauth_token, oauth/oidc.py OIDCLoginService.decode_user_jwt).
type Refusal string

const (
	// UnknownIssuer: an issuer no *_LOGIN_CONFIG lists (another tenant).
	UnknownIssuer Refusal = "unknown-issuer"
	// WrongAudience: an aud outside OIDC_AUDIENCES and CLIENT_ID.
	WrongAudience Refusal = "wrong-audience"
	// UnlistedClient: an azp outside OIDC_ALLOWED_CLIENTS.
	UnlistedClient Refusal = "unlisted-client"
	// Expired: exp an hour ago, beyond Quay's 30 s leeway.
	Expired Refusal = "expired"
	// BadSignature: signed by a key the provider does not publish.
	BadSignature Refusal = "bad-signature"
	// MissingKeyID: no kid header.
	MissingKeyID Refusal = "missing-kid"
	// UnknownKeyID: a kid the key set does not have.
	UnknownKeyID Refusal = "unknown-kid"
	// DisallowedMethod: HS256 (Quay allows RS256 and RS384 only).
	DisallowedMethod Refusal = "hs256"
)

// Refusals lists every Refusal.
func Refusals() []Refusal {
	return []Refusal{UnknownIssuer, WrongAudience, UnlistedClient, Expired, BadSignature, MissingKeyID, UnknownKeyID, DisallowedMethod}
}

// OtherTenantIssuer is the issuer of UnknownIssuer tokens.
const OtherTenantIssuer = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0"

// WrongAudienceValue is the aud of WrongAudience tokens.
const WrongAudienceValue = "api://wrong-audience"

// UnlistedClientID is the azp of UnlistedClient tokens.
const UnlistedClientID = "unlisted-client"

// MintRefused mints, for client and aud, a token that Quay refuses for the
// given reason; everything else about it is valid.
func (p *Provider) MintRefused(reason Refusal, client Client, aud string) (string, error) {
	claims := p.Claims(client, aud)
	opts := &MintOptions{}
	now := p.cfg.Now()
	switch reason {
	case UnknownIssuer:
		claims["iss"] = OtherTenantIssuer
	case WrongAudience:
		claims["aud"] = WrongAudienceValue
	case UnlistedClient:
		claims["azp"] = UnlistedClientID
	case Expired:
		claims["iat"], claims["nbf"], claims["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
	case BadSignature:
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", err
		}
		opts.Key = key
	case MissingKeyID:
		opts.NoKid = true
	case UnknownKeyID:
		opts.KeyID = "unknown-kid"
	case DisallowedMethod:
		opts.Method = jwt.SigningMethodHS256
	default:
		return "", errors.New("oidcprovider: unknown refusal " + string(reason))
	}
	return p.Mint(claims, opts)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// oauthError is an Entra-style error body (RFC 6749 §5.2 plus error_codes).
func oauthError(w http.ResponseWriter, status int, code string, aadsts int, desc string) {
	body := map[string]any{"error": code, "error_description": desc, "trace_id": randomID(12), "correlation_id": randomID(12),
		"timestamp": time.Now().UTC().Format("2006-01-02 15:04:05Z")}
	if aadsts != 0 {
		body["error_codes"] = []int{aadsts}
	}
	writeJSON(w, status, body)
}
