// Package oidcprovider is an in-process OpenID Connect provider for tests,
// shaped like Microsoft Entra ID: a discovery document, a key set, and an
// OAuth2 client-credentials token endpoint issuing RS256 access tokens with
// Entra's v1.0 (https://sts.windows.net/<tenant>/) or v2.0
// (https://login.microsoftonline.com/<tenant>/v2.0) issuer, an
// on-behalf-of style audience such as api://quay-api, and azp/appid.
//
// As with Entra, the issuer in the tokens is not the provider's own URL; the
// discovery document names whichever issuer the provider is set to.
package oidcprovider

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Entra issuers for a tenant.
func IssuerV1(tenant string) string { return "https://sts.windows.net/" + tenant + "/" }
func IssuerV2(tenant string) string { return "https://login.microsoftonline.com/" + tenant + "/v2.0" }

// Client is a registered confidential client (a service principal).
type Client struct {
	ID, Secret string
	// Subject is the token's sub (and the username Quay derives when no
	// preferred_username is present).
	Subject string
}

// Config configures a Provider.
type Config struct {
	// Issuer is the iss of issued tokens and of the discovery document.
	Issuer string
	// Version is 1 (appid claim) or 2 (azp claim, the default).
	Version int
	// TokenTTL is the access tokens' lifetime (default one hour).
	TokenTTL time.Duration
	Clients  []Client
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Provider is the test identity provider; an http.Handler. Set BaseURL to
// the address it is served at before use.
type Provider struct {
	cfg     Config
	key     *rsa.PrivateKey
	kid     string
	BaseURL string

	mu          sync.Mutex
	tokenIssued int
}

// New returns a provider with a fresh RSA key.
func New(cfg Config) (*Provider, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.Version == 0 {
		cfg.Version = 2
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return &Provider{cfg: cfg, key: key, kid: base64.RawURLEncoding.EncodeToString(b)}, nil
}

// TokensIssued counts successful token-endpoint requests.
func (p *Provider) TokensIssued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokenIssued
}

// TokenURL is the token endpoint.
func (p *Provider) TokenURL() string { return strings.TrimRight(p.BaseURL, "/") + "/oauth2/v2.0/token" }

func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	base := strings.TrimRight(p.BaseURL, "/")
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer": p.cfg.Issuer, "jwks_uri": base + "/discovery/v2.0/keys", "token_endpoint": p.TokenURL(),
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	case r.Method == http.MethodGet && r.URL.Path == "/discovery/v2.0/keys":
		writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{p.jwk()}})
	case r.Method == http.MethodPost && r.URL.Path == "/oauth2/v2.0/token":
		p.token(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (p *Provider) jwk() map[string]any {
	return map[string]any{
		"kty": "RSA", "use": "sig", "kid": p.kid, "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(p.key.PublicKey.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(p.key.PublicKey.E)).Bytes()),
	}
}

// token is the client-credentials grant. The audience is the scope's
// resource: "api://quay-api/.default" gives aud "api://quay-api".
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	var client *Client
	for i := range p.cfg.Clients {
		if p.cfg.Clients[i].ID == id && p.cfg.Clients[i].Secret == secret {
			client = &p.cfg.Clients[i]
		}
	}
	if client == nil {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
		return
	}
	aud := ""
	if scopes := strings.Fields(r.PostForm.Get("scope")); len(scopes) > 0 {
		aud = strings.TrimSuffix(scopes[0], "/.default")
	}
	if aud == "" {
		oauthError(w, http.StatusBadRequest, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid.")
		return
	}
	tok, err := p.Mint(p.Claims(*client, aud), nil)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	p.mu.Lock()
	p.tokenIssued++
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": int(p.cfg.TokenTTL.Seconds()), "access_token": tok})
}

// Claims are the access-token claims the provider issues to client for aud.
func (p *Provider) Claims(client Client, aud string) jwt.MapClaims {
	now := p.cfg.Now()
	c := jwt.MapClaims{
		"iss": p.cfg.Issuer, "aud": aud, "sub": client.Subject, "oid": client.Subject,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(p.cfg.TokenTTL).Unix(),
		"ver": "2.0", "azp": client.ID, "tid": "tenant",
	}
	if p.cfg.Version == 1 {
		delete(c, "azp")
		c["ver"], c["appid"] = "1.0", client.ID
	}
	return c
}

// MintOptions alter a minted token, for refusal cases.
type MintOptions struct {
	// Key signs instead of the provider's key (a bad signature).
	Key *rsa.PrivateKey
	// NoKid leaves the kid header out.
	NoKid bool
	// KeyID replaces the kid header.
	KeyID string
	// Method is the signing method (default RS256).
	Method jwt.SigningMethod
}

// Mint signs arbitrary claims, for tests that need tokens the token endpoint
// would not issue (another issuer, audience or azp, expired, ...).
func (p *Provider) Mint(claims jwt.MapClaims, opts *MintOptions) (string, error) {
	if opts == nil {
		opts = &MintOptions{}
	}
	method := opts.Method
	if method == nil {
		method = jwt.SigningMethodRS256
	}
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["typ"] = "JWT"
	if !opts.NoKid {
		tok.Header["kid"] = p.kid
		if opts.KeyID != "" {
			tok.Header["kid"] = opts.KeyID
		}
	}
	key := p.key
	if opts.Key != nil {
		key = opts.Key
	}
	if _, isHMAC := method.(*jwt.SigningMethodHMAC); isHMAC {
		return tok.SignedString([]byte("not-an-rsa-key"))
	}
	if key == nil {
		return "", errors.New("no key")
	}
	return tok.SignedString(key)
}

// Refusal names a token Quay must refuse (reference §9).
type Refusal string

const (
	// UnknownIssuer: an issuer no *_LOGIN_CONFIG lists.
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

// OtherTenantIssuer is the issuer of UnknownIssuer tokens.
const OtherTenantIssuer = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0"

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
		claims["aud"] = "api://wrong-audience"
	case UnlistedClient:
		claims["azp"] = "unlisted-client"
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
		return "", errors.New("unknown refusal " + string(reason))
	}
	return p.Mint(claims, opts)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}
