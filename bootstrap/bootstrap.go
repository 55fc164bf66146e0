// Package bootstrap holds the ways the Quay secrets engine obtains the
// credential it starts from, behind one small interface:
//
//   - Token: a token an operator pastes (from Quay's UI, or the contents of
//     Quay's programmatic bootstrap token file);
//   - Initialize: the engine creates Quay's first user on an empty Quay
//     (FEATURE_USER_INITIALIZE) with a password it generates and keeps;
//   - Password: a username and password (a database user, or an LDAP service
//     account matching LDAP_SUPERUSER_FILTER) exchanged through Quay's
//     direct OAuth flow;
//   - OIDC: OAuth2 client credentials at an identity provider (e.g. Microsoft
//     Entra ID), whose access token Quay validates itself: no Quay secret is
//     stored at all.
//
// The first three yield an opaque Quay token, which the engine usually trades
// for a narrower token of its own (see the backend's root token); OIDC yields
// a credential that refreshes itself.
package bootstrap

import (
	"context"
	"time"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// Method names, as written in the engine's config.
const (
	MethodToken      = "token"
	MethodInitialize = "initialize"
	MethodPassword   = "password"
	MethodOIDC       = "oidc"
)

// Methods lists the method names.
func Methods() []string { return []string{MethodToken, MethodInitialize, MethodPassword, MethodOIDC} }

// Method is one way to obtain a credential for Quay.
type Method interface {
	// Name is the method's config name.
	Name() string
	// Obtain gets the credential. q is a client for the Quay instance,
	// without a credential of its own.
	Obtain(ctx context.Context, q *quay.Client) (*Grant, error)
}

// Grant is what a Method obtained.
type Grant struct {
	// Credential authenticates Quay calls: a fixed token, or a source that
	// renews itself (OIDC).
	Credential quay.Credential
	// Token is the opaque Quay token when the grant is one; empty for OIDC,
	// which leaves nothing to store.
	Token string
	// ExpiresAt is when the credential expires, when known.
	ExpiresAt time.Time
	// Scopes are the credential's Quay scopes, when known.
	Scopes []string
	// ClientID is the OAuth application the token was issued for, when
	// known; the engine uses it to revoke the token once it has its own.
	ClientID string
}

// Token is a token an operator pasted.
type Token struct{ Value string }

// Name implements Method.
func (Token) Name() string { return MethodToken }

// Obtain implements Method. A pasted token's expiry and scopes are unknown:
// Quay offers no call that describes the caller's own token.
func (t Token) Obtain(context.Context, *quay.Client) (*Grant, error) {
	return &Grant{Credential: quay.StaticToken(t.Value), Token: t.Value}, nil
}
