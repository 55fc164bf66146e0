package backend

import (
	"context"
	"errors"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathRotateRole(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "rotate-role/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefixQuay,
			OperationVerb:   "rotate",
			OperationSuffix: "static-role",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeLowerCaseString, Description: "Name of the static role.", Required: true},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback: b.pathRotateRoleWrite,
				Summary:  "Rotate a static robot's token now.",
				Responses: okWith(map[string]*framework.FieldSchema{
					"username":            {Type: framework.TypeString, Description: "The robot's registry username."},
					"last_vault_rotation": {Type: framework.TypeTime, Description: "When Vault set the new token (read it at static-creds)."},
				}),
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
		},
		HelpSynopsis: "Rotate a static robot's token now; the old token stops working at once.",
	}}
}

func (b *backend) pathRotateRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	role, err := b.rotateStaticRole(ctx, req.Storage, name)
	if errors.Is(err, errStaticRoleNotFound) {
		return logical.ErrorResponse("static role %q does not exist", name), nil
	}
	var moved *userNamespaceError
	if errors.As(err, &moved) {
		return logical.ErrorResponse(err.Error()), nil
	}
	if err != nil {
		return nil, err
	}
	// The new token is served by static-creds; rotation answers never carry it.
	return &logical.Response{Data: map[string]any{
		"username":            role.username(),
		"last_vault_rotation": formatTime(role.LastVaultRotation),
	}}, nil
}
