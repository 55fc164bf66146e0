package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/bootstrap"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// How a config write obtains the engine's credential (bootstrap methods),
// how it explains Quay's refusals, and how it revokes the bootstrap
// credential once the engine has a root token of its own.

// bootstrap runs the configured method. It answers 400 naming the field for
// failures the operator can fix.
func (b *backend) bootstrap(ctx context.Context, cfg *quayConfig, anon *quay.Client) (*bootstrap.Grant, *logical.Response) {
	if cfg.method() == bootstrap.MethodInitialize && cfg.Password == "" {
		pw, err := bootstrap.GeneratePassword()
		if err != nil {
			return nil, logical.ErrorResponse("generating a password: %s", err)
		}
		cfg.Password = pw
	}
	method, err := cfg.bootstrapMethod(b.now)
	if err != nil {
		return nil, badField("bootstrap", "%s", err)
	}
	grant, err := method.Obtain(ctx, anon)
	if err == nil {
		return grant, nil
	}
	switch cfg.method() {
	case bootstrap.MethodInitialize:
		switch {
		case quay.StatusOf(err) == http.StatusNotFound:
			// Quay hides the route when FEATURE_USER_INITIALIZE is off
			// (route_show_if: {"error": "Not Found"}).
			return nil, badField("bootstrap", "Quay does not offer user initialization (404): set FEATURE_USER_INITIALIZE: true in its config.yaml")
		case quay.StatusOf(err) == http.StatusBadRequest:
			return nil, badField("bootstrap", "Quay refused to initialize %q: %s (initialize only works on an empty Quay with database authentication)", cfg.Username, quayReason(err))
		}
	case bootstrap.MethodPassword:
		switch {
		case quay.StatusOf(err) == http.StatusForbidden, quay.StatusOf(err) == http.StatusUnauthorized:
			return nil, badField("password", "Quay refused the login or the direct OAuth request (%s): check the username and password, that oauth_client_id is in DIRECT_OAUTH_CLIENTID_WHITELIST, and that the user administers the application's organization", quayReason(err))
		case quay.StatusOf(err) == http.StatusTooManyRequests:
			return nil, badField("password", "Quay is throttling logins for this user after failed attempts (%s)", quayReason(err))
		case quay.StatusOf(err) >= 300 && quay.StatusOf(err) < 500:
			return nil, badField("oauth_client_id", "Quay did not issue a token (%s): check oauth_client_id and oauth_redirect_uri", quayReason(err))
		}
	case bootstrap.MethodOIDC:
		if errors.Is(err, bootstrap.ErrProviderUnreachable) {
			return nil, badField("oidc_token_url", "could not reach the identity provider: %s", err)
		}
		return nil, badField("oidc_client_secret", "could not get an access token from %s: %s", cfg.OIDCTokenURL, err)
	}
	return nil, badField("url", "bootstrapping with %s failed: %s", cfg.method(), reasonOf(err))
}

// rootMintFailed explains a failure to mint the engine's own root token.
// The stored config is unchanged, except after bootstrap=initialize, whose
// result was saved because Quay cannot initialize twice.
func rootMintFailed(cfg *quayConfig, err error) *logical.Response {
	msg := fmt.Sprintf("could not mint the engine's own root token in organization %q: %s", cfg.RootOrganization, reasonOf(err))
	if cfg.method() == bootstrap.MethodInitialize {
		msg += "; Quay's first user exists now, so the engine saved its credential"
		if !cfg.TokenExpiresAt.IsZero() {
			msg += fmt.Sprintf(" (it expires at %s)", formatTime(cfg.TokenExpiresAt))
		}
		msg += ": fix the cause and write config again"
	} else {
		msg += "; the stored config is unchanged"
	}
	switch {
	case quay.IsForbidden(err):
		return badField("root_token_scopes", "%s (the credential must hold every scope in root_token_scopes and administer the organization)", msg)
	case quay.StatusOf(err) == http.StatusBadRequest, quay.IsNotFound(err):
		return badField("root_organization", "%s", msg)
	}
	return logical.ErrorResponse(msg)
}

// credentialRejected explains why checking the credential against Quay failed,
// naming the field the operator should fix.
func credentialRejected(method string, err error) *logical.Response {
	field := "token"
	switch method {
	case bootstrap.MethodOIDC:
		field = "oidc_client_id"
	case bootstrap.MethodInitialize, bootstrap.MethodPassword:
		field = "username"
	}
	switch {
	case quay.IsUnauthorized(err):
		// Quay answers GET /api/v1/user/ with 401 invalid_token also for a
		// valid token without user:read (endpoints/api/user.py).
		hint := "it may be expired, revoked or mistyped, or lack the user:read scope the engine needs to verify it"
		if method == bootstrap.MethodOIDC {
			hint = "check Quay's OIDC_ISSUERS, OIDC_AUDIENCES and OIDC_ALLOWED_CLIENTS against the token's iss, aud and azp"
		}
		return badField(field, "Quay did not accept the credential (%s); %s", quayReason(err), hint)
	case quay.IsForbidden(err):
		return badField(field, "Quay accepted the credential but refused GET /api/v1/user/ (%s): it needs the user:read scope", quayReason(err))
	default:
		return badField("url", "could not verify the credential: %s", reasonOf(err))
	}
}

// revokeBootstrapToken deletes the credential the engine bootstrapped with,
// once it has its own, where Quay proves which token that is. root acts
// with the engine's new root token (the same user, with user:admin); grant
// is what bootstrapping obtained. Whatever cannot be proven is left alone,
// with a warning asking the operator to revoke it.
func (b *backend) revokeBootstrapToken(ctx context.Context, root *quay.Client, cfg *quayConfig, grant *bootstrap.Grant) []string {
	switch {
	case cfg.method() == bootstrap.MethodInitialize:
		// Quay names the initialization token's application "automation",
		// in the new user's own namespace (endpoints/web.py
		// user_initialize); on the fresh Quay initialize needs, it is
		// that application's only token.
		return b.revokeOnlyTokenOf(ctx, root, "automation", cfg.TokenOwner, cfg.method())
	case grant.ClientID != "":
		app, err := root.GetPublicApplication(ctx, grant.ClientID)
		if err != nil {
			return []string{"could not look up the bootstrap token's application to revoke it: " + reasonOf(err)}
		}
		return b.revokeOnlyTokenOf(ctx, root, app.Name, app.Organization.Name, cfg.method())
	default:
		return b.revokePastedBootstrapToken(ctx, root, root.WithCredential(grant.Credential), cfg.TokenOwner)
	}
}

// revokeOnlyTokenOf revokes the user's token of an application when it is
// the only one: Quay's internal user-authorizations API lists tokens by
// application name and organization, without client ID or any trace of the
// token itself (endpoints/api/user.py authorization_view).
func (b *backend) revokeOnlyTokenOf(ctx context.Context, root *quay.Client, appName, appOrg, method string) []string {
	auths, err := root.ListAuthorizations(ctx)
	if err != nil {
		return []string{"could not list the user's tokens to revoke the bootstrap token (needs user:admin): " + reasonOf(err)}
	}
	var matches []string
	for _, a := range auths {
		if a.Application.Name == appName && a.Application.Organization.Name == appOrg {
			matches = append(matches, a.UUID)
		}
	}
	if len(matches) != 1 {
		return []string{fmt.Sprintf("could not tell the bootstrap token apart from %d tokens of application %q; revoke it in Quay yourself", len(matches), appName)}
	}
	if err := root.DeleteAuthorization(ctx, matches[0]); err != nil && !quay.IsNotFound(err) {
		return []string{"could not revoke the bootstrap token: " + reasonOf(err)}
	}
	b.logger.Info("revoked the bootstrap token", "method", method, "application", appName)
	return nil
}

// bootstrapApplication is the application Quay's programmatic bootstrap
// token belongs to, in the owner's user namespace (boot.py).
const bootstrapApplication = "__quay_bootstrap_app"

// revokePastedBootstrapToken revokes a token the operator wrote to config,
// but only once Quay proved it is its programmatic bootstrap token: a pasted
// token carries no trace of its application, and revoking the owner's
// bootstrap token because it was the only one would revoke a token the
// engine was never given. Quay's renewal endpoint is the proof: it answers
// 200 only to the current bootstrap token (endpoints/api/bootstrap.py), and
// it replaces that token in Quay's token file, whose new token the engine
// then deletes with every other token of the bootstrap application. A token
// Quay does not recognise is left alone, with a warning.
func (b *backend) revokePastedBootstrapToken(ctx context.Context, root, given *quay.Client, owner string) []string {
	if err := given.RenewBootstrapToken(ctx); err != nil {
		b.logger.Info("the token written to config is not Quay's programmatic bootstrap token; leaving it alone", "reason", reasonOf(err))
		return []string{"the engine now uses its own root token; the token you wrote to config is not Quay's programmatic bootstrap token " +
			"(Quay's POST /api/v1/bootstrap/renew answered " + reasonOf(err) + "), so the engine leaves it alone: revoke it in Quay when you no longer need it"}
	}
	auths, err := root.ListAuthorizations(ctx)
	if err != nil {
		return []string{"Quay renewed its bootstrap token into its token file, but the engine could not list the tokens to delete it (" + reasonOf(err) + "); delete the " + bootstrapApplication + " token of " + owner + " in Quay"}
	}
	var warnings []string
	for _, a := range auths {
		if a.Application.Name != bootstrapApplication || a.Application.Organization.Name != owner {
			continue
		}
		if err := root.DeleteAuthorization(ctx, a.UUID); err != nil && !quay.IsNotFound(err) {
			warnings = append(warnings, "could not delete Quay's renewed bootstrap token: "+reasonOf(err))
		}
	}
	if len(warnings) == 0 {
		b.logger.Info("revoked Quay's programmatic bootstrap token", "owner", owner)
	}
	return warnings
}

// identifyObtainedToken finds, among the user's authorizations, the token a
// login just obtained (bootstrap=password's direct-OAuth token, the
// initialization token), so that the engine can delete it once it is
// replaced: the one token of its application that is not the one the
// engine held before. Quay lists authorizations by application name and
// organization only (endpoints/api/user.py authorization_view); when that
// does not single one out, the token cannot be deleted later, and the
// warning says so.
func (b *backend) identifyObtainedToken(ctx context.Context, client *quay.Client, cfg, stored *quayConfig) (string, string) {
	appName, appOrg := "automation", cfg.Username
	if cfg.method() == bootstrap.MethodPassword {
		app, err := client.GetPublicApplication(ctx, cfg.OAuthClientID)
		if err != nil {
			return "", "could not look up the application of the token the login obtained (" + reasonOf(err) + "); the engine cannot delete that token when it replaces it"
		}
		appName, appOrg = app.Name, app.Organization.Name
	}
	auths, err := client.ListAuthorizations(ctx)
	if err != nil {
		return "", "could not list the user's tokens (" + reasonOf(err) + "); the engine cannot delete the token the login obtained when it replaces it"
	}
	var candidates []string
	for _, a := range auths {
		if a.Application.Name != appName || a.Application.Organization.Name != appOrg {
			continue
		}
		if stored != nil && a.UUID == stored.BootstrapTokenID {
			continue
		}
		candidates = append(candidates, a.UUID)
	}
	if len(candidates) != 1 {
		return "", fmt.Sprintf("%d tokens of application %q belong to the user, so the engine cannot tell which one the login obtained; revoke it in Quay yourself when it is replaced", len(candidates), appName)
	}
	return candidates[0], ""
}
