package backend

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// A robot in Quay has one owner in the engine: a static role, a federated
// role, or the lease of a dynamic role. Giving it a second owner lets either
// one delete it or rotate its token under the other.

// robotLock serialises the decisions about one robot: a role write that
// adopts or creates it and stores the role, against the write-ahead
// rollback and tidy, which delete it unless a stored role owns it. Without
// it, a role stored between their look at the roles and their delete would
// lose its robot. Lock order: a role's lock, then the robot's.
func (b *backend) robotLock(nsType, nsName, short string) *locksutil.LockEntry {
	return locksutil.LockForKey(b.robotLocks, issuedRobotKey(nsType, nsName, short))
}

// roleOwningRobot names the static or federated role that manages the robot
// nsName+short, other than the role being written (kind and name), or ""
// when none does.
func roleOwningRobot(ctx context.Context, s logical.Storage, nsType, nsName, short, kind, name string) (string, error) {
	statics, err := listStaticRoles(ctx, s)
	if err != nil {
		return "", err
	}
	if r := staticRoleOwning(statics, nsType, nsName, short); r != nil && (kind != robotKindStatic || r.Name != name) {
		return fmt.Sprintf("static role %q", r.Name), nil
	}
	federated, err := listFederatedRoles(ctx, s)
	if err != nil {
		return "", err
	}
	if r := federatedRoleOwning(federated, nsType, nsName, short); r != nil && (kind != robotKindFederated || r.Name != name) {
		return fmt.Sprintf("federated role %q", r.Name), nil
	}
	return "", nil
}

// refuseOwnedRobot is the 400 for a new role (kind, name) whose robot
// another role already manages, or nil.
func refuseOwnedRobot(ctx context.Context, s logical.Storage, ns quay.Namespace, short, kind, name string) (*logical.Response, error) {
	owner, err := roleOwningRobot(ctx, s, string(ns.Kind), ns.Name, short, kind, name)
	if err != nil || owner == "" {
		return nil, err
	}
	return badField("robot_name", "robot %s already belongs to %s; a robot has one owner (deleting either role could delete or cut off the robot)", ns.RobotUsername(short), owner), nil
}

// refuseLeasedRobot is the 400 for adopting robot, issued for a lease of a
// dynamic role (by the marker in its description, any mount's): it is
// deleted when its lease ends, so no role may adopt it. nil otherwise.
func refuseLeasedRobot(robot *quay.Robot) *logical.Response {
	kind, role, ok := describedRole(robot.Description)
	if !ok || kind != robotKindDynamic {
		return nil
	}
	return badField("robot_name", "robot %s was issued by role %q and is deleted when its lease ends; name another robot", robot.Name, role)
}
