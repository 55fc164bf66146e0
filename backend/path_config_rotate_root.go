package backend

import (
	"context"
	"errors"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathConfigRotateRoot(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "config/rotate-root",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefixQuay,
			OperationVerb:   "rotate",
			OperationSuffix: "root-credential",
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback: b.pathRotateRootWrite,
				Summary:  "Replace the engine's own root token now.",
				Responses: okWith(map[string]*framework.FieldSchema{
					"root_token_id":          {Type: framework.TypeString, Description: "Quay's UUID of the new root token."},
					"root_token_fingerprint": {Type: framework.TypeString, Description: "sha256: and the first 16 hex digits of the new token's SHA-256."},
					"root_token_expires_at":  {Type: framework.TypeTime, Description: "When the new token expires in Quay."},
					"last_root_rotation":     {Type: framework.TypeTime, Description: "When the engine minted it."},
					"next_root_rotation":     {Type: framework.TypeTime, Description: "When the schedule rotates it next."},
				}),
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
		},
		HelpSynopsis: "Rotate the engine's own root token.",
		HelpDescription: `Mints a new root token with the current one, verifies it, saves it, and
deletes the old one in Quay. The answer never holds a token. A failure after
the new token is saved comes back as a warning; a crash at any step is
settled when the engine next starts (or by its next periodic run).`,
	}}
}

func (b *backend) pathRotateRootWrite(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	b.rootLock.Lock()
	defer b.rootLock.Unlock()
	// Asked for by an operator (perhaps because the token leaked): the old
	// token is deleted at once, not after the schedule's grace.
	cfg, warnings, err := b.rotateRoot(ctx, req.Storage, 0)
	switch {
	case errors.Is(err, errNotConfigured):
		return nil, err
	case errors.Is(err, errRootNotRotatable):
		return logical.ErrorResponse(err.Error()), nil
	case err != nil:
		return nil, upstreamError("rotating the root token", err)
	}
	return &logical.Response{Data: map[string]any{
		"root_token_id":          cfg.RootTokenID,
		"root_token_fingerprint": fingerprint(cfg.Token),
		"root_token_expires_at":  formatTime(cfg.TokenExpiresAt),
		"last_root_rotation":     formatTime(cfg.LastRootRotation),
		"next_root_rotation":     formatTime(cfg.nextRootRotation()),
	}, Warnings: warnings}, nil
}
