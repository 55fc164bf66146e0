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
			"return_password": {
				Type: framework.TypeBool,
				Description: "Also return the new token (password), as redhat-cop/vault-plugin-secrets-quay's rotate-role did. Less safe than reading static-creds: " +
					"whoever may rotate then also reads the token, and it lands wherever the rotation's output goes (CI logs, scripts). Default false.",
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback: b.pathRotateRoleWrite,
				Summary:  "Rotate a static robot's token now.",
				Responses: okWith(map[string]*framework.FieldSchema{
					"username":            {Type: framework.TypeString, Description: "The robot's registry username."},
					"last_vault_rotation": {Type: framework.TypeTime, Description: "When Vault set the new token (read it at static-creds)."},
					"password":            {Type: framework.TypeString, Description: "The new token (a secret); only with return_password=true."},
					"namespace_type":      {Type: framework.TypeString, Description: `Where the robot lives: "organization" or "user" (only with return_password=true).`},
					"namespace_name":      {Type: framework.TypeString, Description: "The organization (or user) of the robot (only with return_password=true)."},
					"namespaces_name":     {Type: framework.TypeString, Description: "namespace_name under the name redhat-cop's plugin gave it (sic; only with return_password=true)."},
				}),
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
		},
		HelpSynopsis: "Rotate a static robot's token now; the old token stops working at once.",
		HelpDescription: `Rotates the robot's token now and re-applies its role's grants (restoring
what was taken from it outside Vault; the warnings say what). The new token is
read at static-creds/<name>; return_password=true also returns it here, as
redhat-cop's plugin did, which is less safe: whoever may rotate then reads the
token, and it ends up wherever the rotation's output goes.`,
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
	if d.Get("return_password").(bool) {
		// Opt-in only: by default the new token is served by
		// static-creds alone, where reading it is a policy of its own.
		data["password"] = role.Password
		data["namespace_type"] = role.NamespaceType
		data["namespace_name"] = role.NamespaceName
		data["namespaces_name"] = role.NamespaceName
	}
	return &logical.Response{Data: data, Warnings: warnings}, nil
}
