package bootstrap

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// oidcEarlyRefresh is how long before its expiry a cached access token is
// replaced, so no request goes out with a token about to lapse (Quay allows
// 30 s of clock leeway; this stays well clear of it).
const oidcEarlyRefresh = 2 * time.Minute

// OIDC obtains access tokens from an identity provider with the OAuth2 client
// credentials grant and presents them to Quay as Bearer tokens. Quay 3.18
// validates such JWTs against OIDC_ISSUERS / OIDC_AUDIENCES /
// OIDC_ALLOWED_CLIENTS (oauth/oidc.py); for Microsoft Entra ID v2.0 use the
// scope "api://<quay app>/.default". Nothing issued by Quay is stored.
type OIDC struct {
	TokenURL     string
	ClientID     string
	ClientSecret string
	Scopes       []string
	// HTTPClient reaches the identity provider; nil means a default client
	// with a 30 s timeout.
	HTTPClient *http.Client
	// Now is the clock that decides when a cached token is due for
	// refresh; nil means time.Now.
	Now func() time.Time
}

// Name implements Method.
func (OIDC) Name() string { return MethodOIDC }

// Obtain implements Method: it fetches a first token (so a wrong secret or
// URL fails here, when the operator writes the config) and returns a
// credential that keeps a fresh one cached.
func (m OIDC) Obtain(ctx context.Context, _ *quay.Client) (*Grant, error) {
	cred := m.Credential()
	if _, err := cred.BearerToken(ctx); err != nil {
		return nil, err
	}
	return &Grant{Credential: cred, ExpiresAt: cred.expiry(), Scopes: nil}, nil
}

// Credential returns a quay.Credential that caches the provider's access
// token until shortly before it expires. It is safe for concurrent use.
func (m OIDC) Credential() *OIDCCredential {
	client := m.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	now := m.Now
	if now == nil {
		now = time.Now
	}
	return &OIDCCredential{
		config: clientcredentials.Config{
			ClientID: m.ClientID, ClientSecret: m.ClientSecret, TokenURL: m.TokenURL, Scopes: m.Scopes,
		},
		client: client,
		now:    now,
	}
}

// OIDCCredential is a cached client-credentials access token.
type OIDCCredential struct {
	config clientcredentials.Config
	client *http.Client

	// current is read without a lock on every Quay call; refresh takes
	// the mutex so a burst of requests fetches one token, not many.
	current atomic.Pointer[oauth2.Token]
	refresh sync.Mutex
	now     func() time.Time
}

// fresh says a cached token has more than oidcEarlyRefresh left.
func (c *OIDCCredential) fresh(t *oauth2.Token) bool {
	return t != nil && t.Expiry.Sub(c.now()) > oidcEarlyRefresh
}

// BearerToken implements quay.Credential.
func (c *OIDCCredential) BearerToken(ctx context.Context) (string, error) {
	if t := c.current.Load(); c.fresh(t) {
		return t.AccessToken, nil
	}
	c.refresh.Lock()
	defer c.refresh.Unlock()
	if t := c.current.Load(); c.fresh(t) {
		return t.AccessToken, nil
	}
	tok, err := c.config.Token(context.WithValue(ctx, oauth2.HTTPClient, c.client))
	if err != nil {
		return "", describeTokenError(err, c.config.ClientID, c.config.ClientSecret)
	}
	// Trust the JWT's own exp over the response's expires_in (which some
	// providers omit); the token is not verified here — Quay does that.
	if exp := jwtExpiry(tok.AccessToken); !exp.IsZero() && (tok.Expiry.IsZero() || exp.Before(tok.Expiry)) {
		tok.Expiry = exp
	}
	if tok.Expiry.IsZero() {
		// Neither told us: assume a short life rather than cache forever.
		tok.Expiry = c.now().Add(5 * time.Minute)
	}
	c.current.Store(tok)
	return tok.AccessToken, nil
}

func (c *OIDCCredential) expiry() time.Time {
	if t := c.current.Load(); t != nil {
		return t.Expiry
	}
	return time.Time{}
}

func jwtExpiry(raw string) time.Time {
	claims := jwt.RegisteredClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &claims); err != nil || claims.ExpiresAt == nil {
		return time.Time{}
	}
	return claims.ExpiresAt.Time
}

// ErrProviderUnreachable marks a token request that got no answer from the
// identity provider (a wrong oidc_token_url, DNS, TLS, a firewall), as
// opposed to a refusal of the client credentials.
var ErrProviderUnreachable = errors.New("identity provider unreachable")

// describeTokenError keeps the provider's error code and description and
// drops the rest of the response body, which is not ours to log. The
// description is the provider's free text: a misconfigured endpoint (an echo
// service, a proxy) may repeat the request in it, so the client secret is
// removed in every form the request carried it.
func describeTokenError(err error, clientID, clientSecret string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return fmt.Errorf("identity provider refused the client credentials: %s %s",
				re.ErrorCode, redactClientSecret(re.ErrorDescription, clientID, clientSecret))
		}
		return fmt.Errorf("identity provider answered %d to the token request", re.Response.StatusCode)
	}
	return fmt.Errorf("%w: %s", ErrProviderUnreachable, redactClientSecret(err.Error(), clientID, clientSecret))
}

// redactClientSecret replaces the secret as sent in a form body or URL
// (escaped), in a Basic header (base64 of the escaped "id:secret", as
// golang.org/x/oauth2 sends it) and verbatim.
func redactClientSecret(s, clientID, secret string) string {
	if secret == "" {
		return s
	}
	basic := url.QueryEscape(clientID) + ":" + url.QueryEscape(secret)
	for _, form := range []string{
		base64.StdEncoding.EncodeToString([]byte(basic)),
		url.QueryEscape(secret),
		url.PathEscape(secret),
		secret,
	} {
		s = strings.ReplaceAll(s, form, "[redacted]")
	}
	return s
}
