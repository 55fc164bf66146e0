package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// overdueRecheck is the ttl reported while a scheduled rotation is due.
const overdueRecheck = 10 * time.Second

func pathStaticCreds(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "static-creds/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefixQuay,
			OperationVerb:   "read",
			OperationSuffix: "static-credentials",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeLowerCaseString, Description: "Name of the static role.", Required: true},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathStaticCredsRead,
				Summary:  "Read a static robot's current credentials.",
				Responses: okWith(withFields(dockerCredentialFields(), map[string]*framework.FieldSchema{
					"last_vault_rotation": {Type: framework.TypeTime, Description: "When Vault last set the token."},
					"rotation_period":     {Type: framework.TypeDurationSecond, Description: "The rotation period in seconds (only with a schedule)."},
					"ttl":                 {Type: framework.TypeDurationSecond, Description: "Seconds until the next scheduled rotation (only with a schedule): Vault Agent re-reads right after it."},
				})),
			},
		},
		HelpSynopsis: "Read a static robot's current credentials.",
		HelpDescription: `Returns the robot's username and current token in docker-ready form, when
Vault last rotated it, the rotation period and ttl: the seconds until the next
scheduled rotation, so Vault Agent re-renders right after it.`,
	}}
}

// pathStaticCredsRead serves the stored token: no Quay call, so pull-secret
// refreshers can read it as often as they like.
func (b *backend) pathStaticCredsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	role, err := getStaticRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if role == nil {
		return logical.ErrorResponse("static role %q does not exist", name), nil
	}
	registry := ""
	if _, cfg, err := b.client(ctx, req.Storage); err == nil {
		registry = cfg.registryHost()
	} else {
		return nil, err
	}
	data := dockerCredentials(registry, role.username(), role.Password)
	data["namespace_type"] = role.NamespaceType
	data["namespace_name"] = role.NamespaceName
	data["last_vault_rotation"] = formatTime(role.LastVaultRotation)
	if next := role.nextRotation(); !next.IsZero() {
		// consul-template (Vault Agent) re-reads a lease-less secret that
		// carries rotation_period and ttl one second after ttl runs out.
		// Without a schedule both are left out: a ttl of 0 would make it
		// re-read every second. A rotation that is due but not done yet
		// (the periodic function runs once a minute) gets a short ttl.
		data["rotation_period"] = int64(role.RotationPeriod.Seconds())
		data["ttl"] = int64(max(overdueRecheck, next.Sub(b.now())).Round(time.Second).Seconds())
	}
	return &logical.Response{Data: data}, nil
}
