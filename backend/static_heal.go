package backend

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// Static robots heal. Quay is changed by people too: a static robot may be
// deleted by hand, its token regenerated in Quay's UI, its permissions,
// team memberships or default permission taken away. Every static-creds read
// and every rotation first looks the robot up in Quay (probeStaticRobot) and
// brings it back in line (healStaticRobot):
//
//   - a missing robot is created again, with this mount's marker, under a
//     write-ahead entry, and given its role's grants;
//   - the role's robot with a token other than the stored one (regenerated
//     outside Vault) has its current token taken over and its grants
//     re-applied;
//   - a role stored by redhat-cop's plugin (no token kept) adopts its robot's
//     token the same way;
//   - another robot made under the role's name since is neither used nor
//     changed nor deleted: the read fails with a 409 that says so.
//
// The check is one Quay call: GET the robot. Its answer says whether the
// robot exists, its token (the root credential administers the namespace)
// and its marker and creation time (whose robot it is), which is all that
// decides how to heal, so healing needs no second look, and it changes
// nothing in Quay. A registry login (/v2/auth with the stored token) would
// prove the token too, but cannot tell a deleted robot from a regenerated or
// replaced one, updates the robot's last_accessed on every read
// (data/model/user.py), so that an unused robot looks used, and needs Vault
// to reach the registry host. Neither call sees the robot's grants; checking
// them too would cost one call per team and two more, on every read. Grants
// are therefore re-applied, and what was missing reported, whenever the
// check found drift, and on every rotation (scheduled or rotate-role) and
// role write, where their calls are paid rarely.

// staticRobotState is what Quay holds under a static role's robot name,
// compared with the role.
type staticRobotState int

const (
	// robotAsStored: the robot exists with the stored token (or Quay did
	// not show the token, so there is nothing to compare).
	robotAsStored staticRobotState = iota
	// robotMissing: no robot of that name.
	robotMissing
	// robotTokenChanged: the role's robot, with another token.
	robotTokenChanged
	// robotTokenUnknown: the role was stored by redhat-cop's plugin and
	// its robot's token is to be adopted.
	robotTokenUnknown
)

// probeStaticRobot looks the role's robot up in Quay: one call. Another
// robot made under the role's name since is a 409 error.
func (b *backend) probeStaticRobot(ctx context.Context, s logical.Storage, client *quay.Client, role *staticRole) (*quay.Robot, staticRobotState, error) {
	robot, err := client.GetRobot(ctx, role.namespace(), role.RobotName)
	switch {
	case quay.IsRobotNotFound(err):
		return nil, robotMissing, nil
	case err != nil:
		return nil, 0, upstreamError("looking up robot "+role.username(), err)
	case robot.Token == "" && !role.tokenKnown():
		return nil, 0, logical.CodedError(http.StatusBadGateway, fmt.Sprintf("Quay did not show the token of robot %s to the root credential, which must administer %s", role.username(), role.NamespaceName))
	case robot.Token == "" || robot.Token == role.Password:
		return robot, robotAsStored, nil
	case !role.tokenKnown():
		return robot, robotTokenUnknown, nil
	}
	same, err := b.isRoleRobot(ctx, s, role, robot)
	if err != nil {
		return nil, 0, err
	}
	if !same {
		return nil, 0, logical.CodedError(http.StatusConflict, fmt.Sprintf(
			"robot %s is not the robot of static role %q: someone replaced it (%s); the engine neither uses, changes nor deletes it: "+
				"delete it in Quay (the next read creates the role's robot again) or delete the role",
			role.username(), role.Name, replacedBecause(role)))
	}
	return robot, robotTokenChanged, nil
}

// isRoleRobot tells the role's own robot, whose token was regenerated, from
// another robot made under its name. A robot the engine created carries this
// mount's marker for the role; an adopted one carries none, and keeps the
// creation time recorded when it was adopted.
func (b *backend) isRoleRobot(ctx context.Context, s logical.Storage, role *staticRole, robot *quay.Robot) (bool, error) {
	cluster, err := b.clusterID(ctx, s)
	if err != nil {
		return false, err
	}
	kind, name, _ := describedRole(robot.Description)
	marked := b.ownerOf(cluster, robot.Description, true) == ownerThisCluster && kind == robotKindStatic && name == role.Name
	if role.CreatedByVault || marked {
		return marked, nil
	}
	return role.RobotCreated.IsZero() || robot.Created.Equal(role.RobotCreated), nil
}

func replacedBecause(role *staticRole) string {
	if role.CreatedByVault {
		return "it does not carry this mount's marker for the role"
	}
	return "it was created at another time than the robot the role adopted"
}

// staticHeal is what healStaticRobot did to a role's robot.
type staticHeal struct {
	// drift says what was found, for the answer's warnings and the log.
	drift string
	// fresh: the robot was created again and holds no grants yet.
	fresh bool
	// walID is the write-ahead entry of a robot created again; the caller
	// deletes it once the role is stored.
	walID string
}

// healStaticRobot brings role (in memory) in line with what
// probeStaticRobot found: it creates a missing robot again or takes over the
// robot's current token. The caller holds the role's lock for writing, then
// grants the role's grants (fresh as returned), stores the role and deletes
// the write-ahead entry. Nothing is stored here, so a failure before the
// caller stores leaves the role as it was; a robot created again stays (the
// stored role owns its name, so the rollback keeps it), and the next check
// takes it over by its marker.
func (b *backend) healStaticRobot(ctx context.Context, s logical.Storage, client *quay.Client, role *staticRole, robot *quay.Robot, state staticRobotState) (staticHeal, error) {
	switch state {
	case robotMissing:
		walID, err := b.createStaticRobot(ctx, s, client, role)
		if err != nil {
			return staticHeal{}, upstreamError("creating robot "+role.username()+" again", err)
		}
		return staticHeal{walID: walID, fresh: true,
			drift: fmt.Sprintf("robot %s was missing in Quay (deleted outside Vault): created again with a new token, and granted what its role grants", role.username())}, nil
	case robotTokenUnknown:
		kind, name, _ := describedRole(robot.Description)
		if cluster, err := b.clusterID(ctx, s); err == nil && b.ownerOf(cluster, robot.Description, true) == ownerThisCluster {
			role.CreatedByVault = kind == robotKindStatic && name == role.Name
		}
		role.Password = robot.Token
		role.RobotCreated = robot.Created.Time
		return staticHeal{drift: fmt.Sprintf("static role %q was stored by redhat-cop's plugin: its robot %s is adopted with its current token (not rotated), and granted what its role grants", role.Name, role.username())}, nil
	case robotTokenChanged:
		role.Password = robot.Token
		role.LastVaultRotation = b.now().UTC()
		return staticHeal{drift: fmt.Sprintf("the token of robot %s was changed outside Vault (regenerated in Quay): its current token is served from now on, and its grants re-applied", role.username())}, nil
	}
	return staticHeal{}, nil
}

// createStaticRobot creates the role's robot with this mount's marker, under
// a write-ahead entry that the caller deletes once the role is stored, and
// sets role's token. The error is Quay's own (or the engine's, for a robot
// Quay put in another namespace).
func (b *backend) createStaticRobot(ctx context.Context, s logical.Storage, client *quay.Client, role *staticRole) (string, error) {
	ns := role.namespace()
	walID, err := framework.PutWAL(ctx, s, walKindRobot, &robotWAL{
		QuayURL: client.BaseURL(), NamespaceType: role.NamespaceType, NamespaceName: role.NamespaceName, ShortName: role.RobotName, InstanceID: b.instanceID,
	})
	if err != nil {
		return "", fmt.Errorf("writing the write-ahead entry: %w", err)
	}
	cluster, err := b.clusterID(ctx, s)
	if err != nil {
		return "", err
	}
	mark := robotMark{mount: b.mountID, cluster: cluster}
	robot, err := client.CreateRobot(ctx, ns, role.RobotName, quay.RobotSpec{
		Description:          robotDescription(mark, robotKindStatic, role.Name, role.Description),
		UnstructuredMetadata: robotMetadata(mark, "vault_static_role", role.Name, time.Time{}),
	})
	if err != nil {
		if quay.Refused(err) {
			b.deleteWAL(ctx, s, walID)
		}
		return "", err
	}
	if robot.Name != role.username() {
		// Quay created it in another namespace than the role names.
		if delErr := deleteRobot(ctx, client, ns, role.RobotName); delErr == nil {
			b.deleteWAL(ctx, s, walID)
		}
		return "", fmt.Errorf("the robot Quay created is %s, not %s; the root credential acts as another user than the role's namespace", robot.Name, role.username())
	}
	role.CreatedByVault = true
	role.Password = robot.Token
	role.RobotCreated = robot.Created.Time
	role.LastVaultRotation = b.now().UTC()
	return walID, nil
}

// restoredWarning reports grants a long-lived robot had lost and was given
// again ("" when none).
func restoredWarning(role *staticRole, restored []string) string {
	if len(restored) == 0 {
		return ""
	}
	return fmt.Sprintf("robot %s had lost grants of its role (changed outside Vault), given again: %s", role.username(), strings.Join(restored, ", "))
}
