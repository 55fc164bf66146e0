package bootstrap

import (
	"context"
	"time"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// Password exchanges a username and password for an OAuth token through
// Quay's direct OAuth flow (POST /oauth/authorizeapp, endpoints/web.py). Quay
// skips its CSRF check only for a client ID listed in
// DIRECT_OAUTH_CLIENTID_WHITELIST, and the user must administer the
// application's organization. Works for database users and LDAP service
// accounts alike, since Quay checks the password against its configured
// authentication.
type Password struct {
	Username, Password string
	ClientID           string
	// RedirectURI must be the application's redirect URI or Quay's local
	// handler. Empty means the local handler at the address Quay's own
	// GET /config gives (SERVER_HOSTNAME, which Quay insists on even when
	// the engine reaches it by another name), or <quay>/oauth/localapp when
	// that cannot be read.
	RedirectURI string
	Scopes      []string
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Name implements Method.
func (Password) Name() string { return MethodPassword }

// Obtain implements Method.
func (m Password) Obtain(ctx context.Context, q *quay.Client) (*Grant, error) {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	redirect := m.RedirectURI
	if redirect == "" {
		var err error
		if redirect, err = q.LocalOAuthRedirect(ctx); err != nil {
			redirect = q.BaseURL() + "/oauth/localapp"
		}
	}
	issued := now()
	tok, err := q.AuthorizeApp(ctx, quay.DirectOAuthRequest{
		Username: m.Username, Password: m.Password, ClientID: m.ClientID, RedirectURI: redirect, Scopes: m.Scopes,
	})
	if err != nil {
		return nil, err
	}
	g := &Grant{Credential: quay.StaticToken(tok.AccessToken), Token: tok.AccessToken, Scopes: m.Scopes, ClientID: m.ClientID}
	if tok.ExpiresIn > 0 {
		g.ExpiresAt = issued.Add(tok.ExpiresIn)
	}
	return g, nil
}
