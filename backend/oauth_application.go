package backend

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// managedApplicationName is the OAuth application the engine creates in an
// organization for roles that name no client_id: one per mount, so tokens of
// different mounts never share an application.
func (b *backend) managedApplicationName() string {
	if b.mountID == "" {
		return "vault-secrets-quay"
	}
	return "vault-secrets-quay-" + shortID(b.mountID)
}

func shortID(id string) string {
	id = strings.ReplaceAll(id, "-", "")
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// prepareOAuthRole makes sure the role's application exists in Quay: it checks
// a given client_id, or finds or creates the mount's managed application. It
// runs when the role is written so that issuing a token is a single Quay call.
func (b *backend) prepareOAuthRole(ctx context.Context, req *logical.Request, role *roleEntry) (*logical.Response, error) {
	client, cfg, err := b.client(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if len(cfg.TokenScopes) > 0 {
		if ok, missing := quay.ScopesCover(cfg.TokenScopes, role.Scopes); !ok {
			return badField("scopes", "the root credential holds %s; Quay only mints tokens with a subset of it (missing %s)",
				strings.Join(cfg.TokenScopes, " "), strings.Join(missing, " ")), nil
		}
	}
	org := role.NamespaceName
	if _, resp, err := lookupOrganization(ctx, client, org); resp != nil || err != nil {
		return resp, err
	}

	if role.ClientID != "" {
		if _, err := client.GetApplication(ctx, org, role.ClientID); err != nil {
			return applicationLookupFailed(err, org, role.ClientID)
		}
		return nil, nil
	}

	clientID, err := b.findOrCreateApplication(ctx, client, org, b.managedApplicationName(),
		"Tokens issued by HashiCorp Vault (vault-plugin-secrets-quay, mount "+req.MountPoint+"). Deleting this application revokes them all.")
	if err != nil {
		return applicationLookupFailed(err, org, "")
	}
	role.ManagedClientID = clientID
	return nil, nil
}

// findOrCreateApplication returns the client ID of org's application name,
// creating it with description when it does not exist yet. The engine's
// applications (one per mount for OAuth roles, one for its root token) are
// found by name: Quay has no other handle on them before they exist.
func (b *backend) findOrCreateApplication(ctx context.Context, client *quay.Client, org, name, description string) (string, error) {
	apps, err := client.ListApplications(ctx, org)
	if err != nil {
		return "", fmt.Errorf("listing applications of %s: %w", org, err)
	}
	for _, app := range apps {
		if app.Name == name {
			return app.ClientID, nil
		}
	}
	app, err := client.CreateApplication(ctx, org, quay.NewApplication{Name: name, Description: description})
	if err != nil {
		return "", fmt.Errorf("creating application %s in %s: %w", name, org, err)
	}
	b.logger.Info("created an OAuth application", "organization", org, "name", name, "client_id", app.ClientID)
	return app.ClientID, nil
}

// applicationLookupFailed explains a failure to find or create the role's
// application, naming the field to fix where the cause is the role's input.
func applicationLookupFailed(err error, org, clientID string) (*logical.Response, error) {
	switch {
	case quay.IsNotFound(err) && clientID != "":
		return badField("client_id", "Quay has no application %q in organization %q (or no such organization)", clientID, org), nil
	case quay.IsNotFound(err):
		return badField("namespace_name", "Quay has no organization %q", org), nil
	case quay.IsForbidden(err):
		return badField("namespace_name", "the root credential may not administer organization %q (%s): it needs the org:admin scope and admin rights there", org, quayReason(err)), nil
	default:
		return nil, upstreamError("looking up the OAuth application of organization "+org, err)
	}
}
