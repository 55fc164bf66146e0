package backend

import (
	"context"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

func pathRoles(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "roles/" + framework.GenericNameRegex("name"),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefixQuay,
				OperationSuffix: "role",
			},
			Fields: roleFields(),
			// The handler warns about unknown fields itself: the
			// framework does so only when there is a response.
			TakesArbitraryInput: true,
			ExistenceCheck:      b.roleExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback:  b.pathRoleRead,
					Summary:   "Read a role.",
					Responses: okWith(roleResponseFields()),
				},
				logical.CreateOperation: &framework.PathOperation{
					Callback:                    b.pathRoleWrite,
					Summary:                     "Create a role.",
					Responses:                   doneOrWarnings,
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
				logical.UpdateOperation: &framework.PathOperation{
					Callback:                    b.pathRoleWrite,
					Summary:                     "Update a role; fields not given keep their value.",
					Responses:                   doneOrWarnings,
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
				logical.DeleteOperation: &framework.PathOperation{
					Callback:                    b.pathRoleDelete,
					Summary:                     "Delete a role. Credentials already issued keep their leases and are still deleted in Quay when those end.",
					Responses:                   doneOrWarnings,
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
			},
			HelpSynopsis:    "Manage the roles that define the credentials the engine issues.",
			HelpDescription: pathRolesHelp,
		},
		{
			Pattern: "roles/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefixQuay,
				OperationSuffix: "roles",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{
					Callback:  b.pathRoleList,
					Summary:   "List roles.",
					Responses: okWith(listKeys("The roles' names.")),
				},
			},
			HelpSynopsis: "List roles.",
		},
	}
}

func roleFields() map[string]*framework.FieldSchema {
	fields := map[string]*framework.FieldSchema{
		"name": {
			// Lower-cased, as redhat-cop/vault-plugin-secrets-quay did, so
			// role names are valid in Quay object names.
			Type:        framework.TypeLowerCaseString,
			Description: "Name of the role.",
			Required:    true,
		},
		"credential_type": {
			Type:          framework.TypeString,
			Description:   `What the role issues: "robot" (a robot account, default), "oauth_token" (an OAuth access token of an organization application, Quay 3.18+) or "federated" (Quay's one-hour token for the role's own robot, through robot identity federation with this mount as the issuer; needs config/federation).`,
			AllowedValues: []any{credentialTypeRobot, credentialTypeOAuthToken, credentialTypeFederated},
			Default:       credentialTypeRobot,
		},
		"namespace_type": {
			Type:          framework.TypeString,
			Description:   `Where robots live: "organization" (default) or "user" (the root credential's own user namespace). OAuth token roles need an organization.`,
			AllowedValues: []any{string(quay.NamespaceOrganization), string(quay.NamespaceUser)},
			Default:       string(quay.NamespaceOrganization),
		},
		"namespace_name": {
			Type:        framework.TypeString,
			Description: "The Quay organization (or user) the credentials belong to.",
			Required:    true,
		},
		"client_id": {
			Type:        framework.TypeString,
			Description: "oauth_token: client ID of the organization's OAuth application whose tokens are issued. When empty the engine creates (or reuses) one application per mount in the organization.",
		},
		"scopes": {
			Type:        framework.TypeCommaStringSlice,
			Description: "oauth_token: scopes of the issued tokens, a list or a comma/space separated string of repo:read, repo:write, repo:admin, repo:create, user:read, user:admin, org:admin, super:user.",
		},
		"robot_name": {
			Type:        framework.TypeString,
			Description: "federated: short name of the role's robot (without '<namespace>+'), adopted if it exists, created if not. Defaults to the role's name; fixed once the role exists.",
		},
		"ttl": {
			Type:        framework.TypeDurationSecond,
			Description: "Default lease TTL of issued credentials; 0 means the mount's default.",
		},
		"max_ttl": {
			Type:        framework.TypeDurationSecond,
			Description: "Maximum lease TTL of issued credentials, renewals included; 0 means the mount's maximum. OAuth tokens are created in Quay with this expiration, so Quay itself ends them if Vault never does.",
		},
	}
	for k, v := range robotGrantFields() {
		fields[k] = v
	}
	return fields
}

func (b *backend) roleExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	role, err := getRole(ctx, req.Storage, d.Get("name").(string))
	return role != nil, err
}

func (b *backend) pathRoleList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, roleStoragePrefix)
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(names), nil
}

func (b *backend) pathRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	role, err := getRole(ctx, req.Storage, d.Get("name").(string))
	if err != nil || role == nil {
		return nil, err
	}
	return &logical.Response{Data: roleResponseData(role)}, nil
}

// roleResponseFields documents a role read: the role's fields, without its
// name.
func roleResponseFields() map[string]*framework.FieldSchema {
	fields := roleFields()
	delete(fields, "name")
	fields["managed_application"] = &framework.FieldSchema{Type: framework.TypeBool, Description: "oauth_token: whether the engine manages the role's application (no client_id was given)."}
	return withFields(fields, federatedRoleResponseFields())
}

func roleResponseData(role *roleEntry) map[string]any {
	data := map[string]any{
		"credential_type": role.CredentialType,
		"namespace_type":  role.NamespaceType,
		"namespace_name":  role.NamespaceName,
		"ttl":             int64(role.TTL.Seconds()),
		"max_ttl":         int64(role.MaxTTL.Seconds()),
	}
	switch role.CredentialType {
	case credentialTypeOAuthToken:
		data["client_id"] = role.applicationClientID()
		data["managed_application"] = role.ClientID == ""
		data["scopes"] = role.Scopes
	case credentialTypeFederated:
		federatedRoleData(role, data)
	default:
		robotGrantsData(role.robotGrants, data)
	}
	return data
}

// robotGrantsData shows a role's robot grants.
func robotGrantsData(g robotGrants, data map[string]any) {
	data["repositories"] = nonNilMap(g.Repositories)
	data["teams"] = nonNilMap(g.Teams)
	data["default_permission"] = g.DefaultPermission
	data["create_repositories"] = g.CreateRepositories
	data["description"] = g.Description
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func (b *backend) pathRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	lock := b.roleLock(name)
	lock.Lock()
	defer lock.Unlock()
	role, err := getRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if role != nil && role.CredentialType == credentialTypeFederated {
		return b.deleteFederatedRole(ctx, req, role)
	}
	return nil, b.deleteRole(ctx, req.Storage, name)
}

func (b *backend) pathRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, asked := roleNameOf(d)
	lock := b.roleLock(name)
	lock.Lock()
	defer lock.Unlock()
	stored, err := getRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if federatedWrite(stored, d) {
		return b.writeFederatedRole(ctx, req, d, stored, asked)
	}
	role := &roleEntry{Name: name, CredentialType: credentialTypeRobot, NamespaceType: string(quay.NamespaceOrganization)}
	if stored != nil {
		role = stored
	}
	if resp := applyRoleFields(role, d); resp != nil {
		return resp, nil
	}
	if resp := role.validate(); resp != nil {
		return resp, nil
	}
	if role.CredentialType == credentialTypeRobot {
		if resp := role.validateDescription(b.mountID, robotKindDynamic, role.Name); resp != nil {
			return resp, nil
		}
	}

	warnings := append(caseWarning("role", asked, name), unknownFieldWarnings(d)...)
	sysMax := b.System().MaxLeaseTTL()
	if role.MaxTTL > sysMax || role.TTL > sysMax {
		warnings = append(warnings, "ttl or max_ttl exceeds the mount's maximum lease TTL ("+sysMax.String()+"); leases will be capped to it")
	}
	if role.MaxTTL == 0 {
		// Vault stores a lease only after the engine answered: a crash in
		// between leaves a credential that only its expiry in Quay (OAuth
		// tokens) or tidy after max TTL + 5 minutes (robots) removes.
		warnings = append(warnings, "max_ttl is not set: a credential whose lease Vault failed to store (a crash right after issuing it) lives until the mount's maximum lease TTL ("+sysMax.String()+"); set max_ttl to bound it")
	}

	switch role.CredentialType {
	case credentialTypeOAuthToken:
		resp, err := b.prepareOAuthRole(ctx, req, role)
		if resp != nil || err != nil {
			return resp, err
		}
	default:
		more, resp, err := b.prepareRobotGrants(ctx, req, role.NamespaceType, role.NamespaceName, role.robotGrants)
		if resp != nil || err != nil {
			return resp, err
		}
		warnings = append(warnings, more...)
	}

	if err := b.putRole(ctx, req.Storage, role); err != nil {
		return nil, err
	}
	if len(warnings) == 0 {
		return nil, nil
	}
	return &logical.Response{Warnings: warnings}, nil
}

// applyRoleFields merges the request into role. Only fields present in the
// request change; switching credential_type clears the other type's fields.
func applyRoleFields(role *roleEntry, d *framework.FieldData) *logical.Response {
	if v, ok := d.GetOk("credential_type"); ok {
		ct := strings.TrimSpace(v.(string))
		if ct == "" {
			ct = credentialTypeRobot
		}
		if ct != role.CredentialType {
			role.clearTypeSpecificFields()
		}
		role.CredentialType = ct
	}
	if v, ok := d.GetOk("namespace_type"); ok {
		nt := strings.TrimSpace(v.(string))
		if nt == "" {
			nt = string(quay.NamespaceOrganization)
		}
		role.NamespaceType = nt
	}
	if v, ok := d.GetOk("namespace_name"); ok {
		role.NamespaceName = strings.TrimSpace(v.(string))
	}
	if v, ok := d.GetOk("client_id"); ok {
		role.ClientID = strings.TrimSpace(v.(string))
		if role.ClientID != "" {
			role.ManagedClientID = ""
		}
	}
	if v, ok := d.GetOk("robot_name"); ok {
		value, resp := robotNameField(strings.TrimSpace(v.(string)), role.NamespaceName)
		if resp != nil {
			return resp
		}
		role.RobotName = value
	}
	if v, ok := d.GetOk("scopes"); ok {
		var scopes []string
		for _, s := range v.([]string) {
			scopes = append(scopes, quay.SplitScopes(s)...)
		}
		normalized, err := quay.NormalizeScopes(scopes)
		if err != nil {
			return badField("scopes", "%s", err)
		}
		role.Scopes = normalized
	}
	if resp := role.robotGrants.apply(d); resp != nil {
		return resp
	}
	for field, dst := range map[string]*time.Duration{"ttl": &role.TTL, "max_ttl": &role.MaxTTL} {
		v, ok, resp := secondsField(d, field)
		if resp != nil {
			return resp
		}
		if ok {
			*dst = v
		}
	}
	return nil
}

func (r *roleEntry) clearTypeSpecificFields() {
	r.ClientID, r.ManagedClientID, r.Scopes = "", "", nil
	r.robotGrants = robotGrants{}
	r.federatedState = federatedState{}
}

// validate checks the merged role and answers 400 naming the first bad field.
func (r *roleEntry) validate() *logical.Response {
	switch r.CredentialType {
	case credentialTypeRobot, credentialTypeOAuthToken, credentialTypeFederated:
	default:
		return badField("credential_type", "must be %q, %q or %q, got %q", credentialTypeRobot, credentialTypeOAuthToken, credentialTypeFederated, r.CredentialType)
	}
	if resp := validateNamespace(r.NamespaceType, r.NamespaceName); resp != nil {
		return resp
	}
	if r.MaxTTL > 0 && r.TTL > r.MaxTTL {
		return badField("ttl", "(%s) must not exceed max_ttl (%s)", r.TTL, r.MaxTTL)
	}
	if r.CredentialType == credentialTypeFederated {
		if !validQuayName(r.RobotName) {
			return badField("robot_name", "%q is not a valid Quay robot name (2 to 255 lowercase letters and digits, single '.', '_' or '-' between them); set robot_name", r.RobotName)
		}
	} else if r.RobotName != "" {
		return badField("robot_name", "applies only to credential_type=federated")
	}

	if r.CredentialType == credentialTypeOAuthToken {
		if r.NamespaceType != string(quay.NamespaceOrganization) {
			return badField("namespace_type", "oauth_token roles issue tokens of an organization's application, so it must be \"organization\"")
		}
		if len(r.Scopes) == 0 {
			return badField("scopes", "is required for oauth_token roles, e.g. scopes=repo:read")
		}
		if set := r.robotGrants.set(); len(set) > 0 {
			return badField(set[0], "applies only to credential_type=robot")
		}
		return nil
	}

	if len(r.Scopes) > 0 {
		return badField("scopes", "applies only to credential_type=oauth_token; a robot's rights come from repositories, teams and default_permission")
	}
	if r.ClientID != "" {
		return badField("client_id", "applies only to credential_type=oauth_token")
	}
	return r.robotGrants.validate(r.NamespaceType)
}

const pathRolesHelp = `
A role defines the credentials "creds/<name>" issues.

Robot fields also accepted (not listed above because they take a JSON object
or a string holding one, e.g. '{"app": "write"}'):

  repositories  repository name -> read, write or admin
  teams         team name -> member, creator or admin; the robot joins them

Robot roles (credential_type=robot, the default) create a robot account per
lease in namespace_name, grant it repositories, teams and
default_permission, and return docker-ready credentials. Fields are those of
redhat-cop/vault-plugin-secrets-quay, so existing roles work unchanged.

OAuth token roles (credential_type=oauth_token) mint an OAuth access token of
an organization application with the given scopes, expiring in Quay at the
lease's max TTL.

Federated roles (credential_type=federated, after config/federation) own one
robot, robot_name (default: the role's name), adopted or created when the role
is written, granted the robot fields above and set to trust this mount as its
OIDC issuer. Each creds read exchanges a token the engine signs for Quay's
one-hour robot token; the lease ends with it and revoking it deletes nothing.
Deleting the role deletes the robot if the engine created it, else only this
mount's federation entry.
`
