package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/mitchellh/mapstructure"

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
	// QuayURL is the Quay the token is minted in (a config write may be
	// moving the engine to another one).
	QuayURL      string `json:"quay_url" mapstructure:"quay_url"`
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
	return b.rootTokenNamePrefix() + randomSuffix(10)
}

// rootTokenNamePrefix starts the name of every root token this mount mints.
func (b *backend) rootTokenNamePrefix() string {
	return "vault-root-" + shortID(b.mountID) + "-"
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
	return b.findOrCreateApplication(ctx, client, org, b.managedRootApplicationName(),
		"Root token of HashiCorp Vault's Quay secrets engine (vault-plugin-secrets-quay). Deleting it locks Vault out.")
}

// mintRootToken mints a root token with client's credential, verifies it,
// and stores it in cfg (not persisted); oldTokenID is the root token it will
// replace, if any. It returns the guarding write-ahead entry, which the
// caller deletes once cfg is persisted. On failure nothing minted is left in
// Quay, or the entry stays for the rollback to delete it by name.
func (b *backend) mintRootToken(ctx context.Context, s logical.Storage, client *quay.Client, cfg *quayConfig, oldTokenID string) (string, error) {
	if cfg.RootClientID == "" {
		id, err := b.ensureRootApplication(ctx, client, cfg.RootOrganization)
		if err != nil {
			return "", err
		}
		cfg.RootClientID = id
	}
	name := b.rootTokenName()
	walID, err := framework.PutWAL(ctx, s, walKindRootRotation, &rootRotationWAL{
		QuayURL: cfg.URL, Organization: cfg.RootOrganization, ClientID: cfg.RootClientID, OldTokenID: oldTokenID,
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

func reasonOf(err error) string {
	var qe *quay.Error
	if errors.As(err, &qe) {
		return quayReason(err)
	}
	return err.Error()
}

// rotateRoot replaces the engine's root token. Order: write-ahead entry (IDs
// only), mint, verify, persist the new token together with the old one as
// retiring, clear the entry, delete the old token once grace has passed. A
// crash at any step is settled by rollbackRootRotation and the retiring
// record. The caller holds rootLock.
func (b *backend) rotateRoot(ctx context.Context, s logical.Storage, grace time.Duration) (*quayConfig, []string, error) {
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
	next := *cfg
	walID, err := b.mintRootToken(ctx, s, client, &next, cfg.RootTokenID)
	if err != nil {
		return nil, nil, err
	}
	next.retire(cfg, b.now().Add(grace))
	if err := putConfig(ctx, s, &next); err != nil {
		// The entry stays: the rollback deletes the unpersisted new token.
		return nil, nil, err
	}
	b.deleteWAL(ctx, s, walID)
	b.resetClient(ctx, s)
	warnings := b.finishRootSwitch(ctx, s, &next)
	b.logger.Info("rotated the root token", "root_token_id", next.RootTokenID, "expires_at", next.TokenExpiresAt,
		"previous_root_token_id", cfg.RootTokenID, "previous_deleted_after", grace)
	return &next, warnings, nil
}

// finishRootSwitch runs after a config with a new credential was persisted:
// it deletes the retired root tokens that are due (persisting the shorter
// list) and any root token of this mount's application that nothing owns
// (a mint whose answer was lost before a crash). Failures are warnings:
// the periodic function retries.
func (b *backend) finishRootSwitch(ctx context.Context, s logical.Storage, cfg *quayConfig) []string {
	changed, warnings := b.deleteRetiredRootTokens(ctx, cfg)
	if changed {
		if err := putConfig(ctx, s, cfg); err != nil {
			warnings = append(warnings, "could not record the deleted root tokens: "+err.Error())
		}
	}
	return append(warnings, b.sweepRootApplication(ctx, cfg)...)
}

// sweepRootApplication deletes the tokens of the engine's root application
// that this mount minted (by name) and that are neither the current root
// token nor a retiring one: a mint whose record was lost (a crash before the
// config existed) would otherwise stay valid until it expires.
func (b *backend) sweepRootApplication(ctx context.Context, cfg *quayConfig) []string {
	if !cfg.ownsRootToken() {
		return nil
	}
	client, err := cfg.newClient(b.logger)
	if err != nil {
		return nil
	}
	defer client.Close()
	tokens, err := client.ListApplicationTokens(ctx, cfg.RootOrganization, cfg.RootClientID)
	if err != nil {
		return []string{"could not check the root application for stray tokens: " + reasonOf(err)}
	}
	var warnings []string
	for _, t := range tokens {
		if !strings.HasPrefix(t.Name, b.rootTokenNamePrefix()) || t.UUID == cfg.RootTokenID || cfg.isRetiring(t.UUID) {
			continue
		}
		if err := deleteOAuthToken(ctx, client, cfg.RootOrganization, cfg.RootClientID, t.UUID); err != nil {
			warnings = append(warnings, fmt.Sprintf("could not delete stray root token %s: %s", t.UUID, reasonOf(err)))
			continue
		}
		b.logger.Info("deleted a root token nothing owned", "root_token_id", t.UUID, "organization", cfg.RootOrganization)
	}
	return warnings
}

var errRootNotRotatable = errors.New("the engine rotates only a root token it minted: set root_organization in config (bootstrap=oidc needs no rotation)")

// rollbackRootRotation settles an interrupted mint. The token minted under
// the entry (found by its name) is deleted unless it became the root token;
// the token the mint was to replace is deleted unless it still is the root
// token or is on the retiring list (which deletes it), a case only entries
// written before that list existed leave. Nothing is ever re-created. An
// entry minted in another Quay than config names is kept until config points
// there again (its credential never goes elsewhere).
func (b *backend) rollbackRootRotation(ctx context.Context, s logical.Storage, entry rootRotationWAL) error {
	cfg, err := getConfig(ctx, s)
	if err != nil {
		return err
	}
	if cfg == nil {
		// Nothing to call Quay with; the sweep of the root application
		// deletes the token once a config exists.
		return nil
	}
	if !cfg.isQuay(entry.QuayURL) {
		return &quayMovedError{issuedBy: entry.QuayURL, configured: cfg.URL}
	}
	client, err := cfg.newClient(b.logger)
	if err != nil {
		return err
	}
	defer client.Close()
	tokens, err := client.ListApplicationTokens(ctx, entry.Organization, entry.ClientID)
	switch {
	case quay.IsNotFound(err):
		// The application is gone, and every token of it.
	case err != nil:
		return err
	}
	for _, t := range tokens {
		if t.Name == entry.NewTokenName && t.UUID != cfg.RootTokenID && !cfg.isRetiring(t.UUID) {
			if err := deleteOAuthToken(ctx, client, entry.Organization, entry.ClientID, t.UUID); err != nil {
				return err
			}
			b.logger.Info("rolled back an interrupted root rotation: deleted the token it minted", "root_token_id", t.UUID)
		}
	}
	if entry.OldTokenID != "" && entry.OldTokenID != cfg.RootTokenID && !cfg.isRetiring(entry.OldTokenID) {
		if err := deleteOAuthToken(ctx, client, entry.Organization, entry.ClientID, entry.OldTokenID); err != nil {
			return err
		}
		b.logger.Info("finished an interrupted root rotation: deleted the old root token", "root_token_id", entry.OldTokenID)
	}
	return nil
}

// recoverRootRotations settles rotation entries left by an earlier instance
// of the engine (a crash or restart) at once, rather than after Vault's
// rollback delay, and deletes retired root tokens that are due: the root
// credential is what every other path depends on. Entries of this instance
// are left to the rollback manager.
func (b *backend) recoverRootRotations(ctx context.Context, s logical.Storage) error {
	if err := b.settleRootEntries(ctx, s); err != nil {
		return err
	}
	return b.retireDueRootTokens(ctx, s)
}

func (b *backend) settleRootEntries(ctx context.Context, s logical.Storage) error {
	b.rootLock.Lock()
	defer b.rootLock.Unlock()
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return err
	}
	var errs []error
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
			errs = append(errs, err)
			continue
		}
		if err := framework.DeleteWAL(ctx, s, id); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		b.clients.reset()
	}
	return errors.Join(errs...)
}

// rotateRootIfDue is the root token's schedule, run by the periodic function:
// every root_rotation_period, and in any case rotate_before its expiry. The
// token it replaces stays valid for scheduledRetireGrace, so requests in
// flight never see the rotation.
func (b *backend) rotateRootIfDue(ctx context.Context, s logical.Storage, cfg *quayConfig) error {
	if !due(cfg.nextRootRotation(), b.now()) {
		return nil
	}
	b.rootLock.Lock()
	defer b.rootLock.Unlock()
	// Re-read under the lock: a manual rotation may have just happened.
	fresh, err := getConfig(ctx, s)
	if err != nil || fresh == nil {
		return err
	}
	if !due(fresh.nextRootRotation(), b.now()) {
		return nil
	}
	_, warnings, err := b.rotateRoot(ctx, s, scheduledRetireGrace)
	for _, w := range warnings {
		b.logger.Warn(w)
	}
	return err
}
