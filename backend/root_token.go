package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/mitchellh/mapstructure"

	"github.com/quay-vault/vault-plugin-secrets-quay/bootstrap"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// The engine's own root token: after bootstrapping with a short-lived or
// shared credential, the engine mints a token of its own through Quay's
// application-token API, in an organization and application it manages, with
// an explicit expiration and only the scopes it needs, and from then on
// depends on nothing else. Because it minted the token it can rotate it.

const (
	defaultRootTokenTTL = 30 * 24 * time.Hour
	minRootTokenTTL     = time.Hour
	// rootRecoveryAge: a rotation entry written by this very instance is
	// only recovered by tidy-style logic once it is this old (a request
	// cannot run longer than Vault's 90 s limit).
	rootRecoveryAge = 2 * time.Minute
)

// defaultRootTokenScopes is everything the engine's paths need, minus
// super:user: org:admin for applications, robots, teams and default
// permissions; repo:admin for repository permissions; user:read to verify
// itself; user:admin to create its organization and revoke bootstrap tokens;
// repo:create and repo:read/write so roles may mint tokens with them
// (Quay only mints subsets of the minting token's scopes).
func defaultRootTokenScopes() []string {
	return []string{quay.ScopeRepoRead, quay.ScopeRepoWrite, quay.ScopeRepoAdmin, quay.ScopeRepoCreate,
		quay.ScopeUserRead, quay.ScopeUserAdmin, quay.ScopeOrgAdmin}
}

// rootRotationWAL guards minting a root token. It holds IDs and names only,
// never a token: the name of the token about to be minted (known before
// Quay is called, so a crash at any point leaves a findable trace) and the ID
// of the token it replaces.
type rootRotationWAL struct {
	Organization string `json:"organization" mapstructure:"organization"`
	ClientID     string `json:"client_id" mapstructure:"client_id"`
	OldTokenID   string `json:"old_token_id" mapstructure:"old_token_id"`
	NewTokenName string `json:"new_token_name" mapstructure:"new_token_name"`
	InstanceID   string `json:"instance_id" mapstructure:"instance_id"`
}

// managedRootApplicationName is the application holding the root token.
func (b *backend) managedRootApplicationName() string {
	return b.managedApplicationName() + "-root"
}

func (b *backend) rootTokenName() string {
	return "vault-root-" + shortID(b.mountID) + "-" + randomSuffix(10)
}

// ensureRootApplication makes sure the root organization and its managed
// application exist (creating them with the caller's credential, which needs
// user:admin for the organization) and returns the application's client ID.
func (b *backend) ensureRootApplication(ctx context.Context, client *quay.Client, org string) (string, error) {
	if _, err := client.GetOrganization(ctx, org); quay.IsNotFound(err) {
		if err := client.CreateOrganization(ctx, org, ""); err != nil && quay.StatusOf(err) != 400 {
			return "", fmt.Errorf("creating organization %s: %w", org, err)
		}
	} else if err != nil {
		return "", fmt.Errorf("looking up organization %s: %w", org, err)
	}
	apps, err := client.ListApplications(ctx, org)
	if err != nil {
		return "", fmt.Errorf("listing applications of %s: %w", org, err)
	}
	name := b.managedRootApplicationName()
	for _, app := range apps {
		if app.Name == name {
			return app.ClientID, nil
		}
	}
	app, err := client.CreateApplication(ctx, org, quay.NewApplication{
		Name:        name,
		Description: "Root token of HashiCorp Vault's Quay secrets engine (vault-plugin-secrets-quay). Deleting it locks Vault out.",
	})
	if err != nil {
		return "", fmt.Errorf("creating the root application in %s: %w", org, err)
	}
	return app.ClientID, nil
}

// mintRootToken mints a root token with client's credential, verifies it,
// and stores it in cfg (not persisted). It returns the guarding write-ahead
// entry, which the caller deletes after persisting cfg and revoking the old
// token. On failure nothing minted is left in Quay.
func (b *backend) mintRootToken(ctx context.Context, s logical.Storage, client *quay.Client, cfg *quayConfig) (string, error) {
	if cfg.RootClientID == "" {
		id, err := b.ensureRootApplication(ctx, client, cfg.RootOrganization)
		if err != nil {
			return "", err
		}
		cfg.RootClientID = id
	}
	name := b.rootTokenName()
	walID, err := framework.PutWAL(ctx, s, walKindRootRotation, &rootRotationWAL{
		Organization: cfg.RootOrganization, ClientID: cfg.RootClientID, OldTokenID: cfg.RootTokenID,
		NewTokenName: name, InstanceID: b.instanceID,
	})
	if err != nil {
		return "", fmt.Errorf("writing the write-ahead entry: %w", err)
	}
	tok, err := client.CreateApplicationToken(ctx, cfg.RootOrganization, cfg.RootClientID, quay.NewApplicationToken{
		Name: name, Scopes: cfg.rootScopes(), Expiration: cfg.rootTokenTTL(),
	})
	if err != nil {
		if quay.Refused(err) {
			b.deleteWAL(ctx, s, walID)
		}
		return "", fmt.Errorf("minting a root token: %w", err)
	}
	// Verify the new token with its own credential before anything depends on it.
	user, err := client.WithCredential(quay.StaticToken(tok.Token)).GetUser(ctx)
	if err != nil {
		if delErr := deleteOAuthToken(ctx, client, cfg.RootOrganization, cfg.RootClientID, tok.UUID); delErr == nil {
			b.deleteWAL(ctx, s, walID)
		}
		return "", fmt.Errorf("verifying the new root token: %w", err)
	}
	now := b.now().UTC()
	cfg.Token = tok.Token
	cfg.RootTokenID = tok.UUID
	cfg.TokenOwner, cfg.TokenSuperUser, cfg.VerifiedAt = user.Username, user.SuperUser, now
	cfg.TokenScopes = tok.Scopes()
	cfg.TokenExpiresAt = tok.ExpiresAt.Time
	if cfg.TokenExpiresAt.IsZero() {
		cfg.TokenExpiresAt = now.Add(cfg.rootTokenTTL())
	}
	cfg.LastRootRotation = now
	return walID, nil
}

// finishRootSwitch runs after a config holding a new root token was
// persisted: it revokes the token it replaced (with the new one) and clears
// the write-ahead entry. A failed revocation is a warning: the old token
// still expires in Quay, and the entry stays so recovery retries it.
func (b *backend) finishRootSwitch(ctx context.Context, s logical.Storage, cfg *quayConfig, oldTokenID, walID string) []string {
	b.clients.reset()
	if oldTokenID != "" && oldTokenID != cfg.RootTokenID {
		client, _, err := b.client(ctx, s)
		if err == nil {
			err = deleteOAuthToken(ctx, client, cfg.RootOrganization, cfg.RootClientID, oldTokenID)
		}
		if err != nil {
			return []string{fmt.Sprintf("the new root token is in use, but deleting the old one (%s) failed: %s; it will be retried", oldTokenID, reasonOf(err))}
		}
	}
	b.deleteWAL(ctx, s, walID)
	return nil
}

func reasonOf(err error) string {
	var qe *quay.Error
	if errors.As(err, &qe) {
		return quayReason(err)
	}
	return err.Error()
}

// rotateRoot replaces the engine's root token. Order: write-ahead entry (IDs
// only), mint, verify, persist, delete the old token, clear the entry; a
// crash at any step is recovered by rollbackRootRotation. The caller holds
// rootLock.
func (b *backend) rotateRoot(ctx context.Context, s logical.Storage) (*quayConfig, []string, error) {
	cfg, err := getConfig(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	if cfg == nil {
		return nil, nil, errNotConfigured
	}
	if !cfg.ownsRootToken() {
		return nil, nil, errRootNotRotatable
	}
	client, err := cfg.newClient(b.logger)
	if err != nil {
		return nil, nil, err
	}
	defer client.Close()
	oldTokenID := cfg.RootTokenID
	next := *cfg
	walID, err := b.mintRootToken(ctx, s, client, &next)
	if err != nil {
		return nil, nil, err
	}
	if err := putConfig(ctx, s, &next); err != nil {
		// The entry stays: recovery deletes the unpersisted new token.
		return nil, nil, err
	}
	warnings := b.finishRootSwitch(ctx, s, &next, oldTokenID, walID)
	b.logger.Info("rotated the root token", "root_token_id", next.RootTokenID, "expires_at", next.TokenExpiresAt)
	return &next, warnings, nil
}

var errRootNotRotatable = errors.New("the engine rotates only a root token it minted: set root_organization in config (bootstrap=oidc needs no rotation)")

// rollbackRootRotation settles an interrupted rotation: if the config still
// names the old token, the new one was never persisted and is deleted (found
// by its name); otherwise the new one is in use and the old one is deleted.
// Never re-creates anything.
func (b *backend) rollbackRootRotation(ctx context.Context, s logical.Storage, entry rootRotationWAL) error {
	cfg, err := getConfig(ctx, s)
	if err != nil {
		return err
	}
	if cfg == nil {
		return nil
	}
	client, err := cfg.newClient(b.logger)
	if err != nil {
		return err
	}
	defer client.Close()
	if cfg.RootTokenID != entry.OldTokenID {
		if entry.OldTokenID == "" {
			return nil
		}
		if err := deleteOAuthToken(ctx, client, entry.Organization, entry.ClientID, entry.OldTokenID); err != nil {
			return err
		}
		b.logger.Info("finished an interrupted root rotation: deleted the old root token", "root_token_id", entry.OldTokenID)
		return nil
	}
	tokens, err := client.ListApplicationTokens(ctx, entry.Organization, entry.ClientID)
	if quay.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, t := range tokens {
		if t.Name == entry.NewTokenName && t.UUID != cfg.RootTokenID {
			if err := deleteOAuthToken(ctx, client, entry.Organization, entry.ClientID, t.UUID); err != nil {
				return err
			}
			b.logger.Info("rolled back an interrupted root rotation: deleted the unpersisted token", "root_token_id", t.UUID)
		}
	}
	return nil
}

// recoverRootRotations settles rotation entries left by an earlier instance
// of the engine (a crash or restart) at once, rather than after Vault's
// rollback delay: the root credential is what every other path depends on.
// Entries of this instance are left to the rollback manager.
func (b *backend) recoverRootRotations(ctx context.Context, s logical.Storage) error {
	b.rootLock.Lock()
	defer b.rootLock.Unlock()
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return err
	}
	var errs *multierror.Error
	for _, id := range ids {
		w, err := framework.GetWAL(ctx, s, id)
		if err != nil || w == nil || w.Kind != walKindRootRotation {
			continue
		}
		var entry rootRotationWAL
		if err := mapstructure.Decode(w.Data, &entry); err != nil {
			continue
		}
		age := b.now().Sub(time.Unix(w.CreatedAt, 0))
		if entry.InstanceID == b.instanceID && age < rootRecoveryAge {
			continue
		}
		if err := b.rollbackRootRotation(ctx, s, entry); err != nil {
			errs = multierror.Append(errs, err)
			continue
		}
		if err := framework.DeleteWAL(ctx, s, id); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	if errs.ErrorOrNil() == nil {
		b.clients.reset()
	}
	return errs.ErrorOrNil()
}

// rotateRootIfDue is the root token's schedule, run by the periodic function:
// every root_rotation_period, and in any case rotate_before its expiry.
func (b *backend) rotateRootIfDue(ctx context.Context, s logical.Storage, cfg *quayConfig) error {
	next := cfg.nextRootRotation()
	if next.IsZero() || b.now().Before(next) {
		return nil
	}
	b.rootLock.Lock()
	defer b.rootLock.Unlock()
	// Re-read under the lock: a manual rotation may have just happened.
	fresh, err := getConfig(ctx, s)
	if err != nil || fresh == nil {
		return err
	}
	if next := fresh.nextRootRotation(); next.IsZero() || b.now().Before(next) {
		return nil
	}
	_, warnings, err := b.rotateRoot(ctx, s)
	for _, w := range warnings {
		b.logger.Warn(w)
	}
	return err
}

// revokeBootstrapToken deletes the credential the engine bootstrapped with,
// once it has its own, where Quay makes that possible: Quay's internal
// user-authorizations API lists the user's tokens by application name and
// organization only, so the token is revoked when exactly one token of its
// application exists. Otherwise a warning asks the operator to do it.
func (b *backend) revokeBootstrapToken(ctx context.Context, client *quay.Client, method string, grant *bootstrap.Grant, owner string) []string {
	appName, appOrg := "", ""
	switch {
	case method == bootstrap.MethodInitialize:
		// Quay names the initialization app "automation", in the new
		// user's own namespace (reference §3).
		appName, appOrg = "automation", owner
	case grant.ClientID != "":
		app, err := client.GetPublicApplication(ctx, grant.ClientID)
		if err != nil {
			return []string{"could not look up the bootstrap token's application to revoke it: " + reasonOf(err)}
		}
		appName, appOrg = app.Name, app.Organization.Name
	default:
		// A pasted token's application is unknown, except for Quay's
		// programmatic bootstrap token, which has a reserved name.
		appName, appOrg = "__quay_bootstrap_app", owner
	}
	auths, err := client.ListAuthorizations(ctx)
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
		if method == bootstrap.MethodToken && len(matches) == 0 {
			return []string{"the engine now uses its own root token; revoke the token you wrote to config in Quay when you no longer need it"}
		}
		return []string{fmt.Sprintf("could not tell the bootstrap token apart from %d tokens of application %q; revoke it in Quay yourself", len(matches), appName)}
	}
	if err := client.DeleteAuthorization(ctx, matches[0]); err != nil && !quay.IsNotFound(err) {
		return []string{"could not revoke the bootstrap token: " + reasonOf(err)}
	}
	b.logger.Info("revoked the bootstrap token", "method", method, "application", appName)
	return nil
}
