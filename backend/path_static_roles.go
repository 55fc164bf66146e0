package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

func pathStaticRoles(b *backend) []*framework.Path {
	fields := map[string]*framework.FieldSchema{
		"name": {Type: framework.TypeLowerCaseString, Description: "Name of the static role.", Required: true},
		"namespace_type": {
			Type:          framework.TypeString,
			Description:   `Where the robot lives: "organization" (default) or "user" (the root credential's own namespace).`,
			AllowedValues: []any{string(quay.NamespaceOrganization), string(quay.NamespaceUser)},
			Default:       string(quay.NamespaceOrganization),
		},
		"namespace_name": {Type: framework.TypeString, Description: "The Quay organization (or user) of the robot.", Required: true},
		"robot_name": {
			Type:        framework.TypeString,
			Description: "Short name of the robot (without '<namespace>+'). An existing robot is adopted; a missing one is created. Defaults to the role's name.",
		},
		"rotation_period": {
			Type:        framework.TypeDurationSecond,
			Description: "Rotate the robot's token this often (at least 1m). 0 rotates only on rotate-role.",
		},
		"skip_import_rotation": {
			Type:        framework.TypeBool,
			Description: "When adopting an existing robot, keep its current token instead of rotating it at once. Only read when the role is created.",
		},
	}
	for k, v := range robotGrantFields() {
		fields[k] = v
	}
	return []*framework.Path{
		{
			Pattern: "static-roles/" + framework.GenericNameRegex("name"),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefixQuay,
				OperationSuffix: "static-role",
			},
			Fields:              fields,
			TakesArbitraryInput: true, // unknown fields: see pathRoles
			ExistenceCheck:      b.staticRoleExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathStaticRoleRead, Summary: "Read a static role (never its password).",
					Responses: okWith(staticRoleResponseFields(fields))},
				logical.CreateOperation: &framework.PathOperation{
					Callback: b.pathStaticRoleWrite, Summary: "Create a static role: adopt or create its robot.", Responses: doneOrWarnings,
					ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true,
				},
				logical.UpdateOperation: &framework.PathOperation{
					Callback: b.pathStaticRoleWrite, Summary: "Update a static role's grants or rotation period.", Responses: doneOrWarnings,
					ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true,
				},
				logical.DeleteOperation: &framework.PathOperation{
					Callback: b.pathStaticRoleDelete, Summary: "Delete a static role, and its robot if Vault created it.", Responses: doneOrWarnings,
					ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true,
				},
			},
			HelpSynopsis:    "Manage long-lived robots whose tokens Vault holds and rotates.",
			HelpDescription: pathStaticRolesHelp,
		},
		{
			Pattern: "static-roles/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefixQuay,
				OperationSuffix: "static-roles",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.pathStaticRoleList, Summary: "List static roles.",
					Responses: okWith(listKeys("The static roles' names."))},
			},
			HelpSynopsis: "List static roles.",
		},
	}
}

// staticRoleResponseFields documents a static role read: the role's fields
// (without its name and the create-only skip_import_rotation) and what the
// engine knows of its robot.
func staticRoleResponseFields(fields map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
	out := withFields(fields, map[string]*framework.FieldSchema{
		"username":            {Type: framework.TypeString, Description: "The robot's registry username, <namespace>+<robot_name>."},
		"last_vault_rotation": {Type: framework.TypeTime, Description: "When Vault last set the robot's token."},
		"next_vault_rotation": {Type: framework.TypeTime, Description: "When the schedule rotates it next (only with rotation_period)."},
		"created_by_vault":    {Type: framework.TypeBool, Description: "Whether Vault created the robot (then deleting the role deletes it)."},
	})
	delete(out, "name")
	delete(out, "skip_import_rotation")
	return out
}

func (b *backend) staticRoleExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	role, err := getStaticRole(ctx, req.Storage, d.Get("name").(string))
	return role != nil, err
}

func (b *backend) pathStaticRoleList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, staticRoleStoragePrefix)
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(names), nil
}

func (b *backend) pathStaticRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	role, err := getStaticRole(ctx, req.Storage, d.Get("name").(string))
	if err != nil || role == nil {
		return nil, err
	}
	data := map[string]any{
		"namespace_type":      role.NamespaceType,
		"namespace_name":      role.NamespaceName,
		"robot_name":          role.RobotName,
		"username":            role.username(),
		"repositories":        nonNilMap(role.Repositories),
		"teams":               nonNilMap(role.Teams),
		"default_permission":  role.DefaultPermission,
		"create_repositories": role.CreateRepositories,
		"description":         role.Description,
		"rotation_period":     int64(role.RotationPeriod.Seconds()),
		"created_by_vault":    role.CreatedByVault,
	}
	// Unknown for a role of redhat-cop's plugin until Vault rotates it.
	setTime(data, "last_vault_rotation", role.LastVaultRotation)
	if next := role.nextRotation(); !next.IsZero() {
		data["next_vault_rotation"] = formatTime(next)
	}
	return &logical.Response{Data: data}, nil
}

func (b *backend) pathStaticRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, asked := roleNameOf(d)
	lock := b.staticRoleLock(name)
	lock.Lock()
	defer lock.Unlock()
	ctx, cancel := context.WithTimeout(ctx, b.createBudget)
	defer cancel()

	stored, err := getStaticRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	role := &staticRole{Name: name, NamespaceType: string(quay.NamespaceOrganization), RobotName: name}
	if stored != nil {
		copied := *stored
		role = &copied
	}
	if resp := applyStaticRoleFields(role, stored, d); resp != nil {
		return resp, nil
	}
	if resp := validateNamespace(role.NamespaceType, role.NamespaceName); resp != nil {
		return resp, nil
	}
	if !validQuayName(role.RobotName) {
		return badField("robot_name", "%q is not a valid Quay robot name (2 to 255 lowercase letters and digits, single '.', '_' or '-' between them); set robot_name", role.RobotName), nil
	}
	if resp := role.robotGrants.validate(role.NamespaceType); resp != nil {
		return resp, nil
	}
	if resp := role.validateDescription(b.mountID, robotKindStatic, role.Name); resp != nil {
		return resp, nil
	}
	if role.RotationPeriod != 0 && role.RotationPeriod < minRotationPeriod {
		return badField("rotation_period", "must be 0 (manual rotation only) or at least %s, got %s", minRotationPeriod, role.RotationPeriod), nil
	}

	warnings := append(caseWarning("static role", asked, name), unknownFieldWarnings(d)...)
	client, cfg, err := b.client(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if err := reachUserRobot(ctx, client, cfg, role.namespace(), role.RobotName); err != nil {
		var moved *userNamespaceError
		if errors.As(err, &moved) {
			return logical.ErrorResponse(err.Error()), nil
		}
		return nil, err
	}
	robotLock := b.robotLock(role.NamespaceType, role.NamespaceName, role.RobotName)
	robotLock.Lock()
	defer robotLock.Unlock()
	// Every refusal comes before the first change in Quay: the owner, then
	// the robot as Quay has it, then the grants (which may create teams).
	var existing *quay.Robot
	skipRotation := false
	if stored == nil {
		if resp, err := refuseOwnedRobot(ctx, req.Storage, role.namespace(), role.RobotName, robotKindStatic, role.Name); resp != nil || err != nil {
			return resp, err
		}
		if v, ok := d.GetOk("skip_import_rotation"); ok {
			skipRotation = v.(bool)
		}
		var resp *logical.Response
		if existing, resp, err = lookUpStaticRobot(ctx, client, role, skipRotation); resp != nil || err != nil {
			return resp, err
		}
	}
	more, resp, err := b.prepareRobotGrants(ctx, req, role.NamespaceType, role.NamespaceName, role.robotGrants)
	if resp != nil || err != nil {
		return resp, err
	}
	warnings = append(warnings, more...)

	var commitWAL string
	rotateAdopted, fresh := false, false
	if stored != nil {
		// The robot is checked as a read checks it: one deleted by hand
		// is created again, a token changed in Quay (or unknown, in a
		// role of redhat-cop's plugin) is taken over.
		robot, state, err := b.probeStaticRobot(ctx, req.Storage, client, role)
		if err != nil {
			return nil, err
		}
		if state != robotAsStored {
			heal, err := b.healStaticRobot(ctx, req.Storage, client, role, robot, state)
			if err != nil {
				return nil, err
			}
			warnings = append(warnings, heal.drift)
			b.logger.Warn("static robot drifted", "role", role.Name, "robot", role.username(), "found", heal.drift)
			commitWAL, fresh = heal.walID, heal.fresh
		}
	} else {
		walID, resp, err := b.setUpStaticRobot(ctx, req.Storage, client, role, existing)
		if resp != nil || err != nil {
			return resp, err
		}
		commitWAL = walID
		rotateAdopted = !role.CreatedByVault && !skipRotation
		fresh = role.CreatedByVault
	}
	granted, err := grantRobot(ctx, client, role.namespace(), role.RobotName, role.robotGrants, fresh)
	if err != nil {
		return nil, err
	}
	warnings = append(warnings, granted.warnings...)
	if stored != nil && !fresh {
		if err := withdrawDroppedGrants(ctx, client, role.namespace(), role.RobotName, stored.robotGrants, role.robotGrants); err != nil {
			return nil, err
		}
	}
	if commitWAL != "" {
		if err := b.createBudgetSpent(ctx); err != nil {
			return nil, err
		}
	}
	if err := putStaticRole(ctx, req.Storage, role); err != nil {
		return nil, err
	}
	if commitWAL != "" {
		// The stored role owns the robot now (the rollback checks that),
		// so a failed delete only leaves the rollback nothing to do.
		b.deleteWAL(ctx, req.Storage, commitWAL)
	}
	if rotateAdopted {
		// An adopted robot's token is replaced only now that the role is
		// stored, so a failure before this point leaves its users' token
		// alone, and a failure of the rotation itself leaves the role with
		// the token that still works (and a rotation entry that rolls
		// forward).
		if err := b.rotateStoredStaticRole(ctx, req.Storage, client, role); err != nil {
			warnings = append(warnings, fmt.Sprintf("robot %s was adopted with its current token, which was not rotated yet (%s); run rotate-role/%s", role.username(), reasonOf(err), role.Name))
		}
	}
	if len(warnings) == 0 {
		return nil, nil
	}
	return &logical.Response{Warnings: warnings}, nil
}

// applyStaticRoleFields merges the request into role. The robot's identity
// (namespace and name) is fixed once the role exists: changing it would
// silently hand the role another robot.
func applyStaticRoleFields(role, stored *staticRole, d *framework.FieldData) *logical.Response {
	for _, field := range []string{"namespace_type", "namespace_name", "robot_name"} {
		v, ok := d.GetOk(field)
		if !ok {
			continue
		}
		value := strings.TrimSpace(v.(string))
		switch field {
		case "namespace_type":
			if value == "" {
				value = string(quay.NamespaceOrganization)
			}
			if stored != nil && value != stored.NamespaceType {
				return badField(field, "cannot change on an existing static role; delete it and create a new one")
			}
			role.NamespaceType = value
		case "namespace_name":
			if stored != nil && value != stored.NamespaceName {
				return badField(field, "cannot change on an existing static role; delete it and create a new one")
			}
			role.NamespaceName = value
		case "robot_name":
			if value == "" {
				value = role.Name
			}
			value, resp := robotNameField(value, role.NamespaceName)
			if resp != nil {
				return resp
			}
			if stored != nil && value != stored.RobotName {
				return badField(field, "cannot change on an existing static role; delete it and create a new one")
			}
			role.RobotName = value
		}
	}
	if resp := role.robotGrants.apply(d); resp != nil {
		return resp
	}
	if v, ok, resp := secondsField(d, "rotation_period"); resp != nil {
		return resp
	} else if ok {
		role.RotationPeriod = v
	}
	return nil
}

// lookUpStaticRobot reads the robot a new static role names, and refuses
// one it may not take: a robot issued for a lease, a namespace whose robots
// the root credential may not manage, an import without rotation of a
// robot whose token Quay does not show. nil when the robot does not exist.
func lookUpStaticRobot(ctx context.Context, client *quay.Client, role *staticRole, skipRotation bool) (*quay.Robot, *logical.Response, error) {
	existing, err := client.GetRobot(ctx, role.namespace(), role.RobotName)
	switch {
	case err == nil:
		if resp := refuseLeasedRobot(existing); resp != nil {
			return nil, resp, nil
		}
		if skipRotation && existing.Token == "" {
			return nil, badField("skip_import_rotation", "Quay did not return the robot's token to the root credential; the token must be rotated to be known"), nil
		}
		return existing, nil, nil
	case quay.IsRobotNotFound(err):
		return nil, nil, nil
	case organizationGone(ctx, client, role.namespace(), err):
		// Quay's permission check answers 403 for a missing organization.
		return nil, badField("namespace_name", "Quay has no organization %q: create it first (the engine does not)", role.NamespaceName), nil
	case quay.IsForbidden(err):
		return nil, badField("namespace_name", "the root credential may not manage robots of %q (%s)", role.NamespaceName, quayReason(err)), nil
	default:
		return nil, nil, upstreamError("looking up robot "+role.username(), err)
	}
}

// setUpStaticRobot adopts existing, the role's robot as lookUpStaticRobot
// found it (the caller rotates its token once the role is stored), or
// creates the robot when there is none. It returns the write-ahead entry to
// delete once the role is stored.
func (b *backend) setUpStaticRobot(ctx context.Context, s logical.Storage, client *quay.Client, role *staticRole, existing *quay.Robot) (string, *logical.Response, error) {
	if existing != nil {
		// A robot this mount created for this very role (a create whose
		// answer was lost, then written again) is the engine's to delete
		// with the role; any other robot of that name is only adopted.
		role.CreatedByVault = false
		if cluster, err := b.clusterID(ctx, s); err == nil && b.ownerOf(cluster, existing.Description, true) == ownerThisCluster {
			kind, name, _ := describedRole(existing.Description)
			role.CreatedByVault = kind == robotKindStatic && name == role.Name
		}
		role.Password = existing.Token
		role.RobotCreated = existing.Created.Time
		role.LastVaultRotation = b.now().UTC()
		return "", nil, nil
	}
	walID, err := b.createStaticRobot(ctx, s, client, role)
	if err != nil {
		if quay.StatusOf(err) == 400 {
			return "", badField("robot_name", "Quay refused to create robot %q: %s", role.RobotName, quayReason(err)), nil
		}
		return "", nil, upstreamError("creating robot "+role.username(), err)
	}
	return walID, nil, nil
}

func (b *backend) pathStaticRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	lock := b.staticRoleLock(name)
	lock.Lock()
	defer lock.Unlock()
	role, err := getStaticRole(ctx, req.Storage, name)
	if err != nil || role == nil {
		return nil, err
	}
	var resp *logical.Response
	if role.CreatedByVault {
		client, cfg, err := b.client(ctx, req.Storage)
		if err != nil {
			return nil, err
		}
		if err := reachUserRobot(ctx, client, cfg, role.namespace(), role.RobotName); err != nil {
			return logical.ErrorResponse(err.Error()), nil
		}
		kept, err := b.deleteStaticRobot(ctx, req.Storage, client, role)
		if err != nil {
			return nil, err
		}
		if kept != "" {
			resp = &logical.Response{Warnings: []string{kept}}
		}
	} else {
		resp = &logical.Response{Warnings: []string{fmt.Sprintf("robot %s existed before the role and was kept in Quay; its token is the one Vault last set", role.username())}}
	}
	if err := req.Storage.Delete(ctx, staticRoleStoragePrefix+name); err != nil {
		return nil, err
	}
	return resp, nil
}

// deleteStaticRobot deletes the robot Vault created for a static role, but
// only if the robot Quay holds under that name still carries this mount's
// marker for this role: the flag stored with the role says what Vault
// created then, not what is there now (the robot may have been deleted and a
// person's robot made under its name since). A robot kept is returned as a
// warning.
func (b *backend) deleteStaticRobot(ctx context.Context, s logical.Storage, client *quay.Client, role *staticRole) (string, error) {
	robot, err := client.GetRobot(ctx, role.namespace(), role.RobotName)
	if quay.IsRobotNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", upstreamError("looking up robot "+role.username(), err)
	}
	cluster, err := b.clusterID(ctx, s)
	if err != nil {
		return "", err
	}
	kind, name, _ := describedRole(robot.Description)
	if b.ownerOf(cluster, robot.Description, true) != ownerThisCluster || kind != robotKindStatic || name != role.Name {
		return fmt.Sprintf("robot %s no longer carries this mount's marker for static role %q (someone replaced it); it was kept in Quay", role.username(), role.Name), nil
	}
	if err := deleteRobot(ctx, client, role.namespace(), role.RobotName); err != nil {
		return "", upstreamError("deleting robot "+role.username(), err)
	}
	return "", nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

const pathStaticRolesHelp = `
A static role manages one long-lived robot, for pull secrets and other
consumers that cannot renew a lease. An existing robot named robot_name
(default: the role's name) is adopted and its token rotated at once (unless
skip_import_rotation); a missing one is created. Vault keeps the token sealed,
serves it at static-creds/<name>, and rotates it every rotation_period (and on
rotate-role/<name>). Fields are redhat-cop/vault-plugin-secrets-quay's, plus
robot_name, rotation_period and skip_import_rotation. repositories and teams
take a JSON object or a string holding one, as on roles/<name>.
`
