package backend

import (
	"context"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathCreds(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "creds/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefixQuay,
			OperationVerb:   "generate",
			OperationSuffix: "credentials",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeLowerCaseString, Description: "Name of the role.", Required: true},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:  b.pathCredsRead,
				Summary:   "Issue a credential for a role, as a lease.",
				Responses: okWith(credsResponseFields()),
				// Creating the credential in Quay and its write-ahead
				// entry must happen on the active node.
				ForwardPerformanceStandby: true,
			},
		},
		HelpSynopsis: "Issue a leased Quay credential for a role.",
		HelpDescription: `Reading creds/<role> creates a credential in Quay (an OAuth token or a robot
account, as the role says) and returns it with a lease. Revoking the lease, or
letting it expire, deletes the credential in Quay. A federated role's read
exchanges a token the engine signs for Quay's one-hour robot token instead:
its lease ends with that token, and revoking it deletes nothing.`,
	}}
}

func (b *backend) pathCredsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, asked := roleNameOf(d)
	if asked != name {
		// Vault names the lease after the request path: a lease under
		// creds/MyRole/ escapes `vault lease revoke -prefix quay/creds/myrole`,
		// the prefix of the role as `vault list quay/roles` shows it.
		return badField("name", "role names are lower case: read creds/%s (leases under creds/%s could not be revoked by the role's prefix)", name, asked), nil
	}
	role, err := b.cachedRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if role == nil {
		return logical.ErrorResponse("role %q does not exist", name), nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.createBudget)
	defer cancel()
	var resp *logical.Response
	switch role.CredentialType {
	case credentialTypeOAuthToken:
		resp, err = b.issueOAuthToken(ctx, req, role)
	case credentialTypeFederated:
		resp, err = b.issueFederatedRobot(ctx, req, role.federatedRobot())
	default:
		resp, err = b.issueRobot(ctx, req, role)
	}
	return resp, err
}

// credsResponseFields documents a creds answer: an OAuth token's fields or
// a robot's, as the role's credential type says.
func credsResponseFields() map[string]*framework.FieldSchema {
	fields := withFields(withFields(dockerCredentialFields(), secretOAuthTokenFields()), federatedCredsFields())
	fields["expires_at"] = &framework.FieldSchema{Type: framework.TypeTime, Description: "When Quay itself expires the credential: an OAuth token at the lease's max TTL, a federated role's token one hour after the read (revoking the lease does not change it)."}
	return fields
}
