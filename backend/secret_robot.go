package backend

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// secretTypeRobot is the lease type of robot accounts. It is the type
// redhat-cop/vault-plugin-secrets-quay used, so leases it issued are revoked
// by this engine after a binary swap.
const secretTypeRobot = "quay_robot"

func secretRobot(b *backend) *framework.Secret {
	return &framework.Secret{
		Type:   secretTypeRobot,
		Fields: dockerCredentialFields(),
		Renew:  b.renewRobot,
		Revoke: b.revokeRobot,
	}
}

// robotLease is a robot lease's InternalData: identifiers only. "role" and
// "username" are the keys redhat-cop's leases carry too.
type robotLease struct {
	Role          string
	NamespaceType string
	NamespaceName string
	Username      string
	// QuayURL is the Quay that issued the robot (empty in leases issued
	// before it was recorded, and in redhat-cop's: the configured one).
	QuayURL     string
	TTL, MaxTTL time.Duration
}

func (l robotLease) internalData() map[string]any {
	return map[string]any{
		"role":           l.Role,
		"username":       l.Username,
		"namespace_type": l.NamespaceType,
		"namespace_name": l.NamespaceName,
		"quay_url":       l.QuayURL,
		"ttl":            int64(l.TTL.Seconds()),
		"max_ttl":        int64(l.MaxTTL.Seconds()),
	}
}

func robotLeaseFrom(internal map[string]any) (robotLease, error) {
	l := robotLease{
		Role:          internalString(internal, "role"),
		Username:      internalString(internal, "username"),
		NamespaceType: internalString(internal, "namespace_type"),
		NamespaceName: internalString(internal, "namespace_name"),
		QuayURL:       internalString(internal, "quay_url"),
		TTL:           internalSeconds(internal, "ttl"),
		MaxTTL:        internalSeconds(internal, "max_ttl"),
	}
	if !strings.Contains(l.Username, "+") {
		return l, fmt.Errorf("lease data has no robot username")
	}
	return l, nil
}

// robotWAL records a robot being created, so a request that dies before its
// lease exists leaves no robot behind.
type robotWAL struct {
	// QuayURL is the Quay the robot is created in.
	QuayURL       string `json:"quay_url" mapstructure:"quay_url"`
	NamespaceType string `json:"namespace_type" mapstructure:"namespace_type"`
	NamespaceName string `json:"namespace_name" mapstructure:"namespace_name"`
	ShortName     string `json:"short_name" mapstructure:"short_name"`
	InstanceID    string `json:"instance_id" mapstructure:"instance_id"`
}

func (w robotWAL) namespace() quay.Namespace {
	return quay.Namespace{Kind: quay.NamespaceKind(w.NamespaceType), Name: w.NamespaceName}
}

// issueRobot creates a robot for role, grants its repositories, teams and
// default permission, and returns it as a lease. Quay calls: one to create,
// one per repository, one per team, one for the default permission, and
// with a default permission one per repository of the organization (and one
// per 100 to list them).
func (b *backend) issueRobot(ctx context.Context, req *logical.Request, role *roleEntry) (*logical.Response, error) {
	client, cfg, err := b.client(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	ns := role.namespace()
	short := robotShortName(role.Name)
	if err := reachUserRobot(ctx, client, cfg, ns, short); err != nil {
		if _, ok := err.(*userNamespaceError); ok {
			return logical.ErrorResponse("role %q: %s", role.Name, err), nil
		}
		return nil, err
	}
	cluster, err := b.clusterID(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	mark := robotMark{mount: b.mountID, cluster: cluster}

	entry := robotWAL{QuayURL: cfg.URL, NamespaceType: role.NamespaceType, NamespaceName: role.NamespaceName, ShortName: short, InstanceID: b.instanceID}
	var walID string
	ttl, maxTTL, err := b.leaseTTLsWhile(role.TTL, role.MaxTTL, func() (err error) {
		walID, err = framework.PutWAL(ctx, req.Storage, walKindRobot, &entry)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("writing the write-ahead entry: %w", err)
	}
	robot, err := client.CreateRobot(ctx, ns, short, quay.RobotSpec{
		Description:          robotDescription(mark, robotKindDynamic, role.Name, role.Description),
		UnstructuredMetadata: robotMetadata(mark, "vault_role", role.Name, b.now().Add(maxTTL)),
	})
	if err != nil {
		if quay.Refused(err) {
			b.deleteWAL(ctx, req.Storage, walID)
		}
		return nil, upstreamError(fmt.Sprintf("creating a robot for role %q", role.Name), err)
	}
	username := ns.RobotUsername(short)
	if robot.Name != username {
		// Quay created it somewhere else than the role says (a user
		// namespace of another user): undo, and say so.
		if delErr := deleteRobot(ctx, client, ns, short); delErr == nil {
			b.deleteWAL(ctx, req.Storage, walID)
		}
		return nil, fmt.Errorf("role %q: Quay created robot %s, not %s; the root credential acts as another user than the role's namespace", role.Name, robot.Name, username)
	}

	granted, err := grantRobot(ctx, client, ns, short, role.robotGrants, true)
	if err != nil {
		// Undo now rather than wait for the rollback; if that fails too,
		// the write-ahead entry stays and the rollback retries.
		if delErr := deleteRobot(ctx, client, ns, short); delErr == nil {
			b.deleteWAL(ctx, req.Storage, walID)
		}
		return nil, err
	}

	if err := putIssuedRobot(ctx, req.Storage, issuedRobot{
		Role: role.Name, NamespaceType: role.NamespaceType, NamespaceName: role.NamespaceName,
		ShortName: short, IssuedAt: b.now().UTC(), ExpiresAt: b.now().Add(maxTTL).UTC(),
	}); err != nil {
		return nil, err
	}
	// From here the lease owns the robot. If the entry cannot be removed,
	// fail: the rollback then deletes the robot instead of leaving one no
	// lease will ever revoke.
	if err := b.commitWAL(ctx, req.Storage, walID); err != nil {
		return nil, err
	}

	lease := robotLease{Role: role.Name, NamespaceType: role.NamespaceType, NamespaceName: role.NamespaceName, Username: username,
		QuayURL: cfg.URL, TTL: ttl, MaxTTL: maxTTL}
	data := dockerCredentials(cfg.registryHost(), username, robot.Token)
	data["namespace_type"] = role.NamespaceType
	data["namespace_name"] = role.NamespaceName
	resp := b.Secret(secretTypeRobot).Response(data, lease.internalData())
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = maxTTL
	resp.Warnings = granted.warnings
	// Vault's audit log pairs the request ID with the lease ID.
	b.logger.Info("issued a robot", "role", role.Name, "robot", username, "request_id", req.ID, "max_ttl", maxTTL)
	return resp, nil
}

// renewRobot extends the lease up to its max TTL.
func (b *backend) renewRobot(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	lease, err := robotLeaseFrom(req.Secret.InternalData)
	if err != nil {
		return nil, err
	}
	return b.renewLease(ctx, req, lease.Role, credentialTypeRobot, lease.TTL, lease.MaxTTL)
}

// revokeRobot deletes the robot. It needs only the lease's identifiers: not
// the role, which may be gone. Leases issued by redhat-cop's plugin carry no
// namespace type; the robot's name still says its namespace, and the role,
// when it still exists, its type.
func (b *backend) revokeRobot(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	lease, err := robotLeaseFrom(req.Secret.InternalData)
	if err != nil {
		return nil, err
	}
	client, cfg, err := b.clientFor(ctx, req.Storage, lease.QuayURL)
	if err != nil {
		return nil, err
	}
	nsName, short, _ := strings.Cut(lease.Username, "+")
	if lease.NamespaceName == "" {
		lease.NamespaceName = nsName
	}
	if lease.NamespaceType == "" {
		lease.NamespaceType = string(quay.NamespaceOrganization)
		if role, err := getRole(ctx, req.Storage, lease.Role); err == nil && role != nil {
			lease.NamespaceType = role.NamespaceType
		} else if nsName == cfg.TokenOwner {
			lease.NamespaceType = string(quay.NamespaceUser)
		}
	}
	ns := quay.Namespace{Kind: quay.NamespaceKind(lease.NamespaceType), Name: lease.NamespaceName}
	if err := reachUserRobot(ctx, client, cfg, ns, short); err != nil {
		return nil, err
	}
	if err := deleteRobot(ctx, client, ns, short); err != nil {
		return nil, upstreamError("revoking robot "+lease.Username, err)
	}
	if err := deleteIssuedRobot(ctx, req.Storage, lease.NamespaceType, lease.NamespaceName, short); err != nil {
		// The robot is gone; a stale index entry only costs tidy a look.
		b.logger.Warn("could not remove the index entry of a revoked robot", "robot", lease.Username, "error", err)
	}
	b.logger.Info("revoked a robot", "lease_id", req.Secret.LeaseID, "robot", lease.Username)
	return nil, nil
}

// deleteRobot is the one idempotent delete behind revoke, rollback and tidy:
// Quay's 400 "Could not find robot" and a 404 both mean it is already gone.
func deleteRobot(ctx context.Context, client *quay.Client, ns quay.Namespace, short string) error {
	err := client.DeleteRobot(ctx, ns, short)
	if err == nil || quay.IsRobotNotFound(err) {
		return nil
	}
	return err
}

// rollbackRobot deletes a robot a failed creds request may have created.
func (b *backend) rollbackRobot(ctx context.Context, req *logical.Request, entry robotWAL) error {
	client, cfg, err := b.clientFor(ctx, req.Storage, entry.QuayURL)
	if err != nil {
		return err
	}
	if err := reachUserRobot(ctx, client, cfg, entry.namespace(), entry.ShortName); err != nil {
		return err
	}
	// A static or federated role written right before a crash, or being
	// written again now, may own the robot: its entry then outlived a
	// successful store. The robot's lock keeps such a write from storing
	// its role between this look and the delete.
	lock := b.robotLock(entry.NamespaceType, entry.NamespaceName, entry.ShortName)
	lock.Lock()
	defer lock.Unlock()
	if owner, err := roleOwningRobot(ctx, req.Storage, entry.NamespaceType, entry.NamespaceName, entry.ShortName, "", ""); err != nil || owner != "" {
		return err
	}
	// The entry names a robot; whether the failed request created it, or
	// someone made one of that name since, only the robot's marker says.
	robot, err := client.GetRobot(ctx, entry.namespace(), entry.ShortName)
	if quay.IsRobotNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	cluster, err := b.clusterID(ctx, req.Storage)
	if err != nil {
		return err
	}
	// The entry is this cluster's own (write-ahead entries are local), so
	// a marker from before clusters were recorded is this cluster's too.
	if b.ownerOf(cluster, robot.Description, true) != ownerThisCluster {
		b.logger.Warn("a write-ahead entry names a robot this mount did not create; leaving it alone",
			"robot", entry.namespace().RobotUsername(entry.ShortName))
		return nil
	}
	if err := deleteRobot(ctx, client, entry.namespace(), entry.ShortName); err != nil {
		return err
	}
	b.logger.Info("rolled back robot of a failed request", "robot", entry.namespace().RobotUsername(entry.ShortName))
	return nil
}
