package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// Federated roles (credential_type=federated on roles/<name>): one
// long-lived robot per role, owned like a static role's, that trusts this
// mount's issuer for its own username. Writing the role creates or adopts
// the robot, grants it the role's permissions (withdrawing dropped ones)
// and sets its federation entry; creds/<name> mints and exchanges
// (federated_robot.go). No robot secret is stored.

// robotKindFederated names federated roles in the descriptions of the
// robots the engine creates for them.
const robotKindFederated = "federated role"

// federatedState is what a federated role records about its robot.
type federatedState struct {
	// RobotName is the robot's short name; fixed once the role exists.
	RobotName string `json:"robot_name,omitempty"`
	// CreatedByVault says the engine created the robot; only then does
	// deleting the role delete it.
	CreatedByVault bool `json:"created_by_vault,omitempty"`
	// FederationIssuer is the issuer of the robot's entry the engine set:
	// the periodic function replaces it when federation_issuer changes.
	FederationIssuer string `json:"federation_issuer,omitempty"`
}

// roleLock serialises writes, deletes and federation upkeep of one role;
// creds reads never take it.
func (b *backend) roleLock(name string) *locksutil.LockEntry {
	return locksutil.LockForKey(b.roleLocks, name)
}

// federatedRobot is the issuing half of a federated role.
func (r *roleEntry) federatedRobot() federatedRobot {
	return federatedRobot{Role: r.Name, NamespaceType: r.NamespaceType, NamespaceName: r.NamespaceName,
		RobotName: r.RobotName, TTL: r.TTL, MaxTTL: r.MaxTTL}
}

// federatedWrite says whether a roles/<name> write concerns a federated
// role: the stored role is one, or the request makes one.
func federatedWrite(stored *roleEntry, d *framework.FieldData) bool {
	if stored != nil && stored.CredentialType == credentialTypeFederated {
		return true
	}
	v, ok := d.GetOk("credential_type")
	return ok && strings.TrimSpace(v.(string)) == credentialTypeFederated
}

// writeFederatedRole creates or updates a federated role. The caller holds
// the role's lock. Quay calls: the organization and teams (as for robot
// roles), one to look the robot up (and one to create it), one per grant,
// what dropped grants need, and one or two for the federation entry.
func (b *backend) writeFederatedRole(ctx context.Context, req *logical.Request, d *framework.FieldData, stored *roleEntry, asked string) (*logical.Response, error) {
	name, _ := roleNameOf(d)
	if stored != nil && stored.CredentialType != credentialTypeFederated {
		return badField("credential_type", "role %q issues %s credentials and cannot become federated: delete it and create it again", name, stored.CredentialType), nil
	}
	if v, ok := d.GetOk("credential_type"); ok && stored != nil && strings.TrimSpace(v.(string)) != credentialTypeFederated {
		return badField("credential_type", "role %q is federated and owns robot %s; it cannot change type: delete it and create it again", name, stored.federatedRobot().username()), nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.createBudget)
	defer cancel()

	role := &roleEntry{Name: name, CredentialType: credentialTypeFederated, NamespaceType: string(quay.NamespaceOrganization)}
	if stored != nil {
		copied := *stored
		role = &copied
	}
	if resp := applyRoleFields(role, d); resp != nil {
		return resp, nil
	}
	if role.RobotName == "" {
		role.RobotName = role.Name
	}
	if stored != nil {
		for field, changed := range map[string]bool{
			"namespace_type": role.NamespaceType != stored.NamespaceType,
			"namespace_name": role.NamespaceName != stored.NamespaceName,
			"robot_name":     role.RobotName != stored.RobotName,
		} {
			if changed {
				return badField(field, "cannot change on an existing federated role; delete it and create a new one"), nil
			}
		}
	}
	if resp := role.validate(); resp != nil {
		return resp, nil
	}
	if resp := role.validateDescription(b.mountID, robotKindFederated, role.Name); resp != nil {
		return resp, nil
	}

	fed, err := getFederationConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if fed == nil {
		return logical.ErrorResponse("credential_type: federated roles need the engine as an OIDC issuer: " + errFederationNotConfigured.Error()), nil
	}
	client, cfg, err := b.client(ctx, req.Storage)
	if errors.Is(err, errNotConfigured) {
		return logical.ErrorResponse("federated roles set up their robot in Quay when written: " + err.Error()), nil
	}
	if err != nil {
		return nil, err
	}
	ns, username := role.namespace(), role.federatedRobot().username()
	if err := reachUserRobot(ctx, client, cfg, ns, role.RobotName); err != nil {
		var other *userNamespaceError
		if errors.As(err, &other) {
			return badField("namespace_name", "%s", err), nil
		}
		return nil, err
	}
	robotLock := b.robotLock(role.NamespaceType, role.NamespaceName, role.RobotName)
	robotLock.Lock()
	defer robotLock.Unlock()
	if stored == nil {
		if resp, err := refuseOwnedRobot(ctx, req.Storage, ns, role.RobotName, robotKindFederated, role.Name); resp != nil || err != nil {
			return resp, err
		}
	}

	warnings := append(caseWarning("role", asked, name), unknownFieldWarnings(d)...)
	if sysMax := b.System().MaxLeaseTTL(); role.MaxTTL > sysMax || role.TTL > sysMax {
		warnings = append(warnings, "ttl or max_ttl exceeds the mount's maximum lease TTL ("+sysMax.String()+"); leases will be capped to it")
	}
	if role.MaxTTL > quay.FederatedTokenLifetime {
		warnings = append(warnings, fmt.Sprintf("leases end with Quay's token, at most %s after each read, whatever max_ttl says", quay.FederatedTokenLifetime))
	}
	exists, resp, err := b.findFederatedRobot(ctx, req.Storage, client, role, stored == nil)
	if resp != nil || err != nil {
		return resp, err
	}
	more, resp, err := b.prepareRobotGrants(ctx, req, role.NamespaceType, role.NamespaceName, role.robotGrants)
	if resp != nil || err != nil {
		return resp, err
	}
	warnings = append(warnings, more...)

	created, walID := false, ""
	if !exists {
		if walID, resp, err = b.createFederatedRobot(ctx, req.Storage, client, role); resp != nil || err != nil {
			return resp, err
		}
		created = true
		if stored != nil {
			warnings = append(warnings, fmt.Sprintf("robot %s was missing in Quay and was created again", username))
		}
	}
	// From here a failure undoes a robot this write created; an adopted or
	// earlier robot stays, with the stored role unchanged, so writing
	// again finishes the job.
	undo := func(err error) (*logical.Response, error) {
		if created {
			if delErr := deleteRobot(ctx, client, ns, role.RobotName); delErr == nil {
				b.deleteWAL(ctx, req.Storage, walID)
			}
		}
		return nil, err
	}
	granted, err := grantRobot(ctx, client, ns, role.RobotName, role.robotGrants, created)
	if err != nil {
		return undo(err)
	}
	warnings = append(warnings, granted.warnings...)
	if stored != nil && !created {
		if err := withdrawDroppedGrants(ctx, client, ns, role.RobotName, stored.robotGrants, role.robotGrants); err != nil {
			return undo(err)
		}
	}
	if err := ensureFederationEntry(ctx, client, ns, role.RobotName, fed.Issuer, role.FederationIssuer); err != nil {
		return undo(err)
	}
	role.FederationIssuer = fed.Issuer

	if walID != "" {
		if err := b.createBudgetSpent(ctx); err != nil {
			return nil, err
		}
	}
	if err := b.putRole(ctx, req.Storage, role); err != nil {
		return undo(err)
	}
	if walID != "" {
		// The stored role owns the robot now (the rollback checks that).
		b.deleteWAL(ctx, req.Storage, walID)
	}
	if len(warnings) == 0 {
		return nil, nil
	}
	return &logical.Response{Warnings: warnings}, nil
}

// findFederatedRobot looks the role's robot up. For a new role it decides
// whether the engine owns an existing robot: one this mount created for
// this very role (a write whose answer was lost, then repeated) is the
// engine's to delete with the role; a dynamic robot belongs to its lease,
// whose end deletes it, and is refused; any other is adopted.
func (b *backend) findFederatedRobot(ctx context.Context, s logical.Storage, client *quay.Client, role *roleEntry, isNew bool) (bool, *logical.Response, error) {
	username := role.federatedRobot().username()
	existing, err := client.GetRobot(ctx, role.namespace(), role.RobotName)
	switch {
	case quay.IsRobotNotFound(err):
		return false, nil, nil
	case organizationGone(ctx, client, role.namespace(), err):
		// Quay's permission check answers 403 for a missing organization.
		return false, badField("namespace_name", "Quay has no organization %q: create it first (the engine does not)", role.NamespaceName), nil
	case quay.IsForbidden(err):
		return false, badField("namespace_name", "the root credential may not manage robots of %q (%s)", role.NamespaceName, quayReason(err)), nil
	case err != nil:
		return false, nil, upstreamError("looking up robot "+username, err)
	case !isNew:
		return true, nil, nil
	}
	role.CreatedByVault = false
	cluster, err := b.clusterID(ctx, s)
	if err != nil {
		return false, nil, err
	}
	if resp := refuseLeasedRobot(existing); resp != nil {
		return false, resp, nil
	}
	if b.ownerOf(cluster, existing.Description, true) == ownerThisCluster {
		kind, name, _ := describedRole(existing.Description)
		role.CreatedByVault = kind == robotKindFederated && name == role.Name
	}
	return true, nil, nil
}

// createFederatedRobot creates the role's robot with this mount's marker,
// under a write-ahead entry that the caller drops once the role is stored.
func (b *backend) createFederatedRobot(ctx context.Context, s logical.Storage, client *quay.Client, role *roleEntry) (string, *logical.Response, error) {
	walID, err := framework.PutWAL(ctx, s, walKindRobot, &robotWAL{
		QuayURL: client.BaseURL(), NamespaceType: role.NamespaceType, NamespaceName: role.NamespaceName, ShortName: role.RobotName, InstanceID: b.instanceID,
	})
	if err != nil {
		return "", nil, fmt.Errorf("writing the write-ahead entry: %w", err)
	}
	cluster, err := b.clusterID(ctx, s)
	if err != nil {
		return "", nil, err
	}
	mark := robotMark{mount: b.mountID, cluster: cluster}
	if _, err := client.CreateRobot(ctx, role.namespace(), role.RobotName, quay.RobotSpec{
		Description:          robotDescription(mark, robotKindFederated, role.Name, role.Description),
		UnstructuredMetadata: robotMetadata(mark, "vault_federated_role", role.Name, time.Time{}),
	}); err != nil {
		if quay.Refused(err) {
			b.deleteWAL(ctx, s, walID)
		}
		if quay.StatusOf(err) == 400 {
			return "", badField("robot_name", "Quay refused to create robot %q: %s", role.RobotName, quayReason(err)), nil
		}
		return "", nil, upstreamError("creating robot "+role.federatedRobot().username(), err)
	}
	role.CreatedByVault = true
	return walID, nil, nil
}

// deleteFederatedRole deletes the robot if the engine created it (which
// ends every token Quay exchanged for it at once); otherwise it withdraws
// only this mount's federation entry. A failure keeps the role, so the
// delete can be retried. The caller holds the role's lock.
func (b *backend) deleteFederatedRole(ctx context.Context, req *logical.Request, role *roleEntry) (*logical.Response, error) {
	client, cfg, err := b.client(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	ns, username := role.namespace(), role.federatedRobot().username()
	if err := reachUserRobot(ctx, client, cfg, ns, role.RobotName); err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	var resp *logical.Response
	deleted := false
	if role.CreatedByVault {
		if deleted, err = b.deleteFederatedRobot(ctx, req.Storage, client, role); err != nil {
			return nil, err
		}
	}
	if !deleted {
		if err := removeFederationEntry(ctx, client, ns, role.RobotName, role.FederationIssuer); err != nil {
			return nil, fmt.Errorf("%w (the role is kept; delete it again)", err)
		}
		why := "existed before the role"
		if role.CreatedByVault {
			why = fmt.Sprintf("no longer carries this mount's marker for federated role %q (someone replaced it)", role.Name)
		}
		resp = &logical.Response{Warnings: []string{fmt.Sprintf(
			"robot %s %s and was kept in Quay without this mount's federation entry: no new token can be exchanged, "+
				"but tokens already exchanged stay valid until Quay expires them (at most %s after their read); delete the robot in Quay to end them now",
			username, why, quay.FederatedTokenLifetime)}}
	}
	if err := b.deleteRole(ctx, req.Storage, role.Name); err != nil {
		return nil, err
	}
	return resp, nil
}

// deleteFederatedRobot deletes the robot the engine created for a federated
// role, but only if the robot Quay holds under that name still carries this
// mount's marker for this role (it may have been deleted and another made
// under its name since). It reports whether the robot is gone.
func (b *backend) deleteFederatedRobot(ctx context.Context, s logical.Storage, client *quay.Client, role *roleEntry) (bool, error) {
	username := role.federatedRobot().username()
	robot, err := client.GetRobot(ctx, role.namespace(), role.RobotName)
	if quay.IsRobotNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, upstreamError("looking up robot "+username+" (the role is kept; delete it again)", err)
	}
	cluster, err := b.clusterID(ctx, s)
	if err != nil {
		return false, err
	}
	kind, name, _ := describedRole(robot.Description)
	if b.ownerOf(cluster, robot.Description, true) != ownerThisCluster || kind != robotKindFederated || name != role.Name {
		return false, nil
	}
	if err := deleteRobot(ctx, client, role.namespace(), role.RobotName); err != nil {
		return false, upstreamError("deleting robot "+username+" (the role is kept; delete it again)", err)
	}
	return true, nil
}

// refreshFederationEntries points the robots of federated roles whose entry
// names another issuer (federation_issuer changed) at the current one. The
// periodic function and config/federation writes call it; one role failing
// does not stop the others.
func (b *backend) refreshFederationEntries(ctx context.Context, s logical.Storage) error {
	fed, err := getFederationConfig(ctx, s)
	if err != nil || fed == nil {
		return err
	}
	roles, err := listFederatedRoles(ctx, s)
	if err != nil {
		return err
	}
	var errs []error
	for _, role := range roles {
		if role.FederationIssuer == fed.Issuer {
			continue
		}
		if err := b.refreshFederationEntry(ctx, s, role.Name, fed.Issuer); err != nil {
			errs = append(errs, fmt.Errorf("updating the federation entry of role %q: %w", role.Name, err))
			continue
		}
		b.logger.Info("pointed a federated robot at the current issuer", "role", role.Name, "issuer", fed.Issuer)
	}
	return errors.Join(errs...)
}

func (b *backend) refreshFederationEntry(ctx context.Context, s logical.Storage, name, issuer string) error {
	lock := b.roleLock(name)
	lock.Lock()
	defer lock.Unlock()
	role, err := getRole(ctx, s, name)
	if err != nil || role == nil || role.CredentialType != credentialTypeFederated || role.FederationIssuer == issuer {
		return err
	}
	client, cfg, err := b.client(ctx, s)
	if err != nil {
		return err
	}
	if err := reachUserRobot(ctx, client, cfg, role.namespace(), role.RobotName); err != nil {
		return err
	}
	if err := ensureFederationEntry(ctx, client, role.namespace(), role.RobotName, issuer, role.FederationIssuer); err != nil {
		return err
	}
	role.FederationIssuer = issuer
	return b.putRole(ctx, s, role)
}

// listFederatedRoles reads every federated role.
func listFederatedRoles(ctx context.Context, s logical.Storage) ([]*roleEntry, error) {
	names, err := s.List(ctx, roleStoragePrefix)
	if err != nil {
		return nil, err
	}
	var roles []*roleEntry
	for _, name := range names {
		role, err := getRole(ctx, s, name)
		if err != nil {
			return nil, err
		}
		if role != nil && role.CredentialType == credentialTypeFederated {
			roles = append(roles, role)
		}
	}
	return roles, nil
}

// federatedRoleOwning returns the federated role whose robot this is, if any.
func federatedRoleOwning(roles []*roleEntry, nsType, nsName, short string) *roleEntry {
	for _, r := range roles {
		if r.NamespaceType == nsType && r.NamespaceName == nsName && r.RobotName == short {
			return r
		}
	}
	return nil
}

// federatedRoleResponseFields document what a role read adds for a
// federated role.
func federatedRoleResponseFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"username":          {Type: framework.TypeString, Description: "federated: the robot's registry username, <namespace>+<robot_name>."},
		"created_by_vault":  {Type: framework.TypeBool, Description: "federated: the engine created the robot, so deleting the role deletes it (an adopted robot is kept)."},
		"federation_issuer": {Type: framework.TypeString, Description: "federated: the issuer of the robot's federation entry that the engine set."},
	}
}

// federatedRoleData is what a role read shows of a federated role.
func federatedRoleData(role *roleEntry, data map[string]any) {
	robotGrantsData(role.robotGrants, data)
	data["robot_name"] = role.RobotName
	data["username"] = role.federatedRobot().username()
	data["created_by_vault"] = role.CreatedByVault
	data["federation_issuer"] = role.FederationIssuer
}
