package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// secretTypeOAuthToken is the lease type of OAuth tokens.
const secretTypeOAuthToken = "quay_oauth_token"

func secretOAuthToken(b *backend) *framework.Secret {
	return &framework.Secret{
		Type:   secretTypeOAuthToken,
		Fields: secretOAuthTokenFields(),
		Renew:  b.renewOAuthToken,
		Revoke: b.revokeOAuthToken,
	}
}

// secretOAuthTokenFields describe an issued OAuth token.
func secretOAuthTokenFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"token":          {Type: framework.TypeString, Description: "The OAuth access token (a secret); send it as 'Authorization: Bearer <token>'."},
		"token_id":       {Type: framework.TypeString, Description: "Quay's UUID of the token."},
		"token_name":     {Type: framework.TypeString, Description: "The token's name in Quay."},
		"scopes":         {Type: framework.TypeCommaStringSlice, Description: "The token's scopes."},
		"expires_at":     {Type: framework.TypeTime, Description: "When Quay itself expires the token (the lease's max TTL)."},
		"namespace_name": {Type: framework.TypeString, Description: "The organization of the application."},
		"client_id":      {Type: framework.TypeString, Description: "The application's client ID."},
	}
}

// oauthTokenLease is the lease's InternalData. It holds identifiers only,
// never the token, and is enough to revoke without the role.
type oauthTokenLease struct {
	Role         string
	Organization string
	ClientID     string
	TokenID      string
	// QuayURL is the Quay that issued the token (empty in leases issued
	// before it was recorded: the configured one).
	QuayURL     string
	TTL, MaxTTL time.Duration
}

func (l oauthTokenLease) internalData() map[string]any {
	return map[string]any{
		"role":           l.Role,
		"namespace_name": l.Organization,
		"client_id":      l.ClientID,
		"token_id":       l.TokenID,
		"quay_url":       l.QuayURL,
		"ttl":            int64(l.TTL.Seconds()),
		"max_ttl":        int64(l.MaxTTL.Seconds()),
	}
}

func oauthTokenLeaseFrom(internal map[string]any) (oauthTokenLease, error) {
	l := oauthTokenLease{
		Role:         internalString(internal, "role"),
		Organization: internalString(internal, "namespace_name"),
		ClientID:     internalString(internal, "client_id"),
		TokenID:      internalString(internal, "token_id"),
		QuayURL:      internalString(internal, "quay_url"),
		TTL:          internalSeconds(internal, "ttl"),
		MaxTTL:       internalSeconds(internal, "max_ttl"),
	}
	if l.Organization == "" || l.ClientID == "" || l.TokenID == "" {
		return l, fmt.Errorf("lease data lacks namespace_name, client_id or token_id")
	}
	return l, nil
}

// oauthTokenWAL records a token being minted, so a crash between Quay's
// answer and the lease leaves nothing behind: the rollback deletes the token
// by its (unique) name.
type oauthTokenWAL struct {
	// QuayURL is the Quay the token is minted in.
	QuayURL      string `json:"quay_url" mapstructure:"quay_url"`
	Organization string `json:"organization" mapstructure:"organization"`
	ClientID     string `json:"client_id" mapstructure:"client_id"`
	TokenName    string `json:"token_name" mapstructure:"token_name"`
	InstanceID   string `json:"instance_id" mapstructure:"instance_id"`
}

// issueOAuthToken mints a token for role. One Quay call: the role's
// application was resolved when the role was written.
func (b *backend) issueOAuthToken(ctx context.Context, req *logical.Request, role *roleEntry) (*logical.Response, error) {
	client, cfg, err := b.client(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	clientID := role.applicationClientID()
	if clientID == "" {
		return logical.ErrorResponse("role %q has no OAuth application; write the role again to create one", role.Name), nil
	}
	name := oauthTokenName(role.Name)

	var walID string
	ttl, maxTTL, err := b.leaseTTLsWhile(role.TTL, role.MaxTTL, func() (err error) {
		walID, err = framework.PutWAL(ctx, req.Storage, walKindOAuthToken, &oauthTokenWAL{
			QuayURL: cfg.URL, Organization: role.NamespaceName, ClientID: clientID, TokenName: name, InstanceID: b.instanceID,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("writing the write-ahead entry: %w", err)
	}
	token, err := client.CreateApplicationToken(ctx, role.NamespaceName, clientID, quay.NewApplicationToken{
		Name: name, Scopes: role.Scopes, Expiration: maxTTL,
	})
	if err != nil {
		if quay.Refused(err) {
			// Quay answered and refused: nothing was created.
			b.deleteWAL(ctx, req.Storage, walID)
		}
		return nil, upstreamError(fmt.Sprintf("minting an OAuth token for role %q", role.Name), err)
	}
	// Once the entry is gone the lease owns the token; if it cannot be
	// removed, fail so the rollback deletes the token rather than leaving a
	// credential no lease tracks.
	if err := b.commitWAL(ctx, req.Storage, walID); err != nil {
		return nil, err
	}

	expiresAt := token.ExpiresAt.Time
	if expiresAt.IsZero() {
		expiresAt = b.now().Add(maxTTL)
	}
	scopes := token.Scopes()
	if len(scopes) == 0 {
		scopes = role.Scopes
	}
	lease := oauthTokenLease{Role: role.Name, Organization: role.NamespaceName, ClientID: clientID, TokenID: token.UUID,
		QuayURL: cfg.URL, TTL: ttl, MaxTTL: maxTTL}
	resp := b.Secret(secretTypeOAuthToken).Response(map[string]any{
		"token":          token.Token,
		"token_id":       token.UUID,
		"token_name":     name,
		"scopes":         scopes,
		"expires_at":     expiresAt.UTC().Format(time.RFC3339),
		"namespace_name": role.NamespaceName,
		"client_id":      clientID,
	}, lease.internalData())
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = maxTTL
	// Vault's audit log pairs the request ID with the lease ID.
	b.logger.Info("issued an OAuth token", "role", role.Name, "token_id", token.UUID, "token_name", name,
		"organization", role.NamespaceName, "client_id", clientID, "request_id", req.ID, "expires_at", expiresAt.UTC())
	return resp, nil
}

// renewOAuthToken extends the lease up to its max TTL, which is also the
// token's expiry in Quay, so a renewed lease never outlives its token.
func (b *backend) renewOAuthToken(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	lease, err := oauthTokenLeaseFrom(req.Secret.InternalData)
	if err != nil {
		return nil, err
	}
	return b.renewLease(ctx, req, lease.Role, credentialTypeOAuthToken, lease.TTL, lease.MaxTTL)
}

// revokeOAuthToken deletes the token in Quay. It needs only the lease's
// identifiers, so it works after the role was deleted or the config changed.
// A token already gone (deleted by hand, its application deleted) counts as
// revoked; any other failure is returned so Vault retries.
func (b *backend) revokeOAuthToken(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	lease, err := oauthTokenLeaseFrom(req.Secret.InternalData)
	if err != nil {
		return nil, err
	}
	client, _, err := b.clientFor(ctx, req.Storage, lease.QuayURL)
	if err != nil {
		return nil, err
	}
	if err := deleteOAuthToken(ctx, client, lease.Organization, lease.ClientID, lease.TokenID); err != nil {
		return nil, upstreamError("revoking OAuth token "+lease.TokenID, err)
	}
	b.logger.Info("revoked an OAuth token", "lease_id", req.Secret.LeaseID, "token_id", lease.TokenID, "organization", lease.Organization)
	return nil, nil
}

// deleteOAuthToken is the one idempotent delete behind revoke and rollback.
func deleteOAuthToken(ctx context.Context, client *quay.Client, org, clientID, tokenID string) error {
	err := client.DeleteApplicationToken(ctx, org, clientID, tokenID)
	if err == nil || quay.IsNotFound(err) {
		return nil
	}
	return err
}

// rollbackOAuthToken deletes a token a failed creds request may have minted.
func (b *backend) rollbackOAuthToken(ctx context.Context, req *logical.Request, entry oauthTokenWAL) error {
	client, _, err := b.clientFor(ctx, req.Storage, entry.QuayURL)
	if err != nil {
		return err
	}
	tokens, err := client.ListApplicationTokens(ctx, entry.Organization, entry.ClientID)
	if quay.IsNotFound(err) {
		return nil // the application or organization is gone, and its tokens with it
	}
	if err != nil {
		return err
	}
	for _, t := range tokens {
		if t.Name == entry.TokenName {
			if err := deleteOAuthToken(ctx, client, entry.Organization, entry.ClientID, t.UUID); err != nil {
				return err
			}
			b.logger.Info("rolled back OAuth token of a failed request", "organization", entry.Organization, "token_id", t.UUID)
		}
	}
	return nil
}
