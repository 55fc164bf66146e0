package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// scheduledRetireGrace is how long a root token replaced by a scheduled
// rotation stays valid: requests in flight hold a client with it (Vault
// bounds a request at max_request_duration, 90 s by default, and the engine
// bounds a creds request below the rollback age), and must not fail because
// the engine rotated under them. Config writes and config/rotate-root, which
// an operator asks for, retire the old token at once.
const scheduledRetireGrace = 5 * time.Minute

// retiringRootToken is an engine-minted root token that a newer credential
// replaced and that is not deleted in Quay yet. It is recorded in the config
// itself, in the same storage write that switches to the new credential, so
// a crash between the switch and the delete cannot lose it; it leaves the
// record only once Quay no longer holds it. It keeps its own connection
// settings because the config may now point at another Quay.
type retiringRootToken struct {
	// Kind says how Quay holds the token: an application token the engine
	// minted (root tokens; the default), or a user authorization the
	// engine obtained by logging in (a bootstrap=password or initialize
	// token), deleted through the user's authorizations.
	Kind         string `json:"kind,omitempty"`
	ID           string `json:"id"`
	Organization string `json:"organization"`
	ClientID     string `json:"client_id"`
	// Token deletes itself: it administers its organization, whoever the
	// new credential acts as.
	Token                  string    `json:"token"`
	URL                    string    `json:"url"`
	CACertificate          string    `json:"ca_certificate,omitempty"`
	DisableSSLVerification bool      `json:"disable_ssl_verification,omitempty"`
	DeleteAfter            time.Time `json:"delete_after"`
}

// Kinds of retiring tokens.
const (
	retiringAppToken      = ""
	retiringAuthorization = "authorization"
)

// retire records the credential the engine created and acts with in stored
// (its own root token, or a token it obtained by logging in) as replaced;
// it is deleted in Quay from deleteAfter on.
func (c *quayConfig) retire(stored *quayConfig, deleteAfter time.Time) {
	switch {
	case stored == nil:
	case stored.ownsRootToken():
		c.addRetiring(retiringRootToken{Kind: retiringAppToken, ID: stored.RootTokenID, Organization: stored.RootOrganization,
			ClientID: stored.RootClientID, Token: stored.Token}, stored, deleteAfter)
	case stored.BootstrapTokenID != "":
		c.addRetiring(retiringRootToken{Kind: retiringAuthorization, ID: stored.BootstrapTokenID, Token: stored.Token}, stored, deleteAfter)
	}
}

// retireGrant records a token this write obtained by logging in, which the
// engine no longer acts with (it minted its own).
func (c *quayConfig) retireGrant(id, token string, deleteAfter time.Time) {
	c.addRetiring(retiringRootToken{Kind: retiringAuthorization, ID: id, Token: token}, c, deleteAfter)
}

func (c *quayConfig) addRetiring(r retiringRootToken, at *quayConfig, deleteAfter time.Time) {
	if r.ID == "" || c.isRetiring(r.ID) {
		return
	}
	r.URL, r.CACertificate, r.DisableSSLVerification, r.DeleteAfter = at.URL, at.CACertificate, at.DisableSSLVerification, deleteAfter
	c.RetiringRootTokens = append(c.RetiringRootTokens, r)
}

// isRetiring says the token id is recorded for deletion.
func (c *quayConfig) isRetiring(id string) bool {
	for _, r := range c.RetiringRootTokens {
		if r.ID == id {
			return true
		}
	}
	return false
}

// deleteRetiredRootTokens deletes in Quay the retiring root tokens that are
// due, and drops from cfg those Quay no longer holds: deleted now, already
// gone, or no longer accepted by Quay. It reports whether cfg changed (the
// caller persists it) and a warning per token that must wait for a later try
// (the periodic function retries every minute).
func (b *backend) deleteRetiredRootTokens(ctx context.Context, cfg *quayConfig) (changed bool, warnings []string) {
	now := b.now()
	kept := cfg.RetiringRootTokens[:0:0]
	for _, r := range cfg.RetiringRootTokens {
		if now.Before(r.DeleteAfter) {
			kept = append(kept, r)
			continue
		}
		if err := b.deleteRetiredRootToken(ctx, r); err != nil {
			kept = append(kept, r)
			warnings = append(warnings, fmt.Sprintf("the engine's previous root token %s in %s is not deleted yet (%s); the engine retries every minute", r.ID, r.Organization, reasonOf(err)))
			continue
		}
		changed = true
		b.logger.Info("deleted the engine's previous root token", "root_token_id", r.ID, "organization", r.Organization)
	}
	if changed {
		cfg.RetiringRootTokens = kept
	}
	return changed, warnings
}

func (b *backend) deleteRetiredRootToken(ctx context.Context, r retiringRootToken) error {
	client, err := quay.New(quay.Config{
		BaseURL: r.URL, Credential: quay.StaticToken(r.Token), CACertificate: r.CACertificate,
		InsecureSkipVerify: r.DisableSSLVerification, Logger: b.logger.Named("quay"),
	})
	if err != nil {
		return err
	}
	defer client.Close()
	if r.Kind == retiringAuthorization {
		err = client.DeleteAuthorization(ctx, r.ID)
	} else {
		err = client.DeleteApplicationToken(ctx, r.Organization, r.ClientID, r.ID)
	}
	if err == nil || quay.IsNotFound(err) || quay.IsTokenRejected(err) {
		return nil
	}
	return err
}

// retireDueRootTokens is the periodic retry of deleteRetiredRootTokens.
func (b *backend) retireDueRootTokens(ctx context.Context, s logical.Storage) error {
	b.rootLock.Lock()
	defer b.rootLock.Unlock()
	cfg, err := getConfig(ctx, s)
	if err != nil || cfg == nil || len(cfg.RetiringRootTokens) == 0 {
		return err
	}
	changed, warnings := b.deleteRetiredRootTokens(ctx, cfg)
	for _, w := range warnings {
		b.logger.Warn(w)
	}
	if !changed {
		return nil
	}
	return putConfig(ctx, s, cfg)
}
