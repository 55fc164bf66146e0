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
		HelpDescription: `Rotates the robot's token now and re-applies its role's grants (restoring
what was taken from it outside Vault; the warnings say what). The new token is
read at static-creds/<name>.`,
	}}
}

func (b *backend) pathRotateRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	role, warnings, err := b.rotateStaticRole(ctx, req.Storage, name)
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
	data := map[string]any{
		"username":            role.username(),
		"last_vault_rotation": formatTime(role.LastVaultRotation),
	}
	return &logical.Response{Data: data, Warnings: warnings}, nil
}
