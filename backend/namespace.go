package backend

import (
	"strings"

	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// Namespaces: where robots live, and what the engine checks before it
// touches one.
//
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
	caller, err := credentialOwner(ctx, client, cfg)
	if err != nil {
		return err
	}
	if caller != ns.Name {
		return &userNamespaceError{robot: ns.RobotUsername(short), owner: ns.Name, caller: caller}
	}
	return nil
}

// robotNameField reads robot_name as given: the robot's short name, or the
// full <namespace>+<name> form, whose namespace must then be namespace_name
// (the engine would otherwise act on namespace_name's robot of that name,
// one the operator did not name).
func robotNameField(value, namespace string) (string, *logical.Response) {
	prefix, short, full := strings.Cut(value, "+")
	if !full {
		return value, nil
	}
	if prefix != namespace {
		return "", badField("robot_name", "%q is a robot of namespace %q, but namespace_name is %q; give the short name or the robot of namespace_name", value, prefix, namespace)
	}
	return short, nil
}

// validateNamespace checks namespace_type and namespace_name.
func validateNamespace(nsType, nsName string) *logical.Response {
	switch quay.NamespaceKind(nsType) {
	case quay.NamespaceOrganization, quay.NamespaceUser:
	default:
		return badField("namespace_type", "must be \"organization\" or \"user\", got %q", nsType)
	}
	if nsName == "" {
		return badField("namespace_name", "is required: the Quay organization (or user) the credentials belong to")
	}
	if !validQuayName(nsName) {
		return badField("namespace_name", "%q is not a valid Quay namespace: use 2 to 255 lowercase letters and digits, with single '.', '_' or '-' between them", nsName)
	}
	return nil
}

func validQuayName(s string) bool {
	return len(s) >= 2 && len(s) <= 255 && quayNameRule.MatchString(s)
}

// lookupOrganization returns an organization a role names, or answers with
// a 400 that says Quay does not have it. Without the lookup a typo passes:
// Quay answers the later calls for a missing organization with 403
// insufficient_scope (its permission checks run first), which reads as a
// rights problem.
func lookupOrganization(ctx context.Context, client *quay.Client, org string) (*quay.Organization, *logical.Response, error) {
	o, err := client.GetOrganization(ctx, org)
	switch {
	case err == nil:
		return o, nil, nil
	case quay.IsNotFound(err):
		return nil, badField("namespace_name", "Quay has no organization %q: create it first (the engine does not)", org), nil
	default:
		return nil, nil, upstreamError("looking up organization "+org, err)
	}
}

// credentialOwner is the Quay user the root credential acts as: known from
// config, or asked of Quay when config was saved unverified.
func credentialOwner(ctx context.Context, client *quay.Client, cfg *quayConfig) (string, error) {
	if cfg.TokenOwner != "" {
		return cfg.TokenOwner, nil
	}
	user, err := client.GetUser(ctx)
	if err != nil {
		return "", upstreamError("asking Quay whose credential the engine holds", err)
	}
	return user.Username, nil
}
