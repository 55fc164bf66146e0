package backend

import (
	"context"
	"fmt"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// Quay's user-robot API (/api/v1/user/robots/...) always addresses the
// caller's own namespace (endpoints/api/robot.py uses get_authenticated_user
// as the parent). A robot in a user namespace can therefore only be managed
// while the root credential acts as that very user; with another user's
// credential the same call would reach a robot of the same name in that
// user's namespace instead.

// userNamespaceError says a robot lives in a user namespace the root
// credential cannot reach.
type userNamespaceError struct{ robot, owner, caller string }

func (e *userNamespaceError) Error() string {
	return fmt.Sprintf("robot %s lives in the namespace of user %q, but the root credential acts as %q; "+
		"Quay's user-robot API reaches only the caller's own namespace: write config with a credential of %q to manage it "+
		"(or delete the robot in Quay and force-revoke its lease)", e.robot, e.owner, e.caller, e.owner)
}

// reachUserRobot checks that client, the root credential described by cfg,
// reaches the robot short in ns. Organization robots always qualify. The
// user the credential acts as is known from config; only when config was
// saved unverified is Quay asked.
func reachUserRobot(ctx context.Context, client *quay.Client, cfg *quayConfig, ns quay.Namespace, short string) error {
	if ns.Kind != quay.NamespaceUser {
		return nil
	}
	caller := cfg.TokenOwner
	if caller == "" {
		user, err := client.GetUser(ctx)
		if err != nil {
			return upstreamError("asking Quay whose credential the engine holds", err)
		}
		caller = user.Username
	}
	if caller != ns.Name {
		return &userNamespaceError{robot: ns.RobotUsername(short), owner: ns.Name, caller: caller}
	}
	return nil
}
