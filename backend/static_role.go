package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// staticRoleStoragePrefix holds static roles, passwords included; it is
// seal-wrapped (see backend.go).
const staticRoleStoragePrefix = "static-roles/"

// minRotationPeriod matches the cadence of Vault's rollback manager, which
// runs the engine's periodic function once a minute.
const minRotationPeriod = time.Minute

// staticRole is a long-lived robot whose token Vault holds and rotates.
type staticRole struct {
	Name          string `json:"name"`
	NamespaceType string `json:"namespace_type"`
	NamespaceName string `json:"namespace_name"`
	// RobotName is the robot's short name. redhat-cop's plugin named static
	// robots after the role, which stays the default so its robots are
	// adopted unchanged.
	RobotName string `json:"robot_name"`
	robotGrants
	RotationPeriod time.Duration `json:"rotation_period"`

	// Password is the robot's current token. Empty in a role stored by
	// redhat-cop's plugin, which kept no token (it read the robot's from
	// Quay on every static-creds read); the first check of the robot adopts
	// Quay's (static_heal.go).
	Password string `json:"password"`
	// CreatedByVault says Vault created the robot (rather than adopting an
	// existing one); only then does deleting the role delete the robot.
	CreatedByVault    bool      `json:"created_by_vault"`
	LastVaultRotation time.Time `json:"last_vault_rotation"`
	// RobotCreated is when Quay says the robot was created: it tells an
	// adopted robot (which carries no marker of this mount) whose token was
	// regenerated from another robot made under its name since. Zero when
	// not known (roles stored before it was recorded).
	RobotCreated time.Time `json:"robot_created,omitzero"`
}

// tokenKnown says the engine holds the robot's token: false only for a role
// stored by redhat-cop's plugin that no check has adopted yet.
func (r *staticRole) tokenKnown() bool { return r.Password != "" }

func (r *staticRole) namespace() quay.Namespace {
	return quay.Namespace{Kind: quay.NamespaceKind(r.NamespaceType), Name: r.NamespaceName}
}

func (r *staticRole) username() string { return r.namespace().RobotUsername(r.RobotName) }

// nextRotation is when the schedule rotates the robot next (zero: no schedule).
func (r *staticRole) nextRotation() time.Time {
	if r.RotationPeriod <= 0 {
		return time.Time{}
	}
	return r.LastVaultRotation.Add(r.RotationPeriod)
}

// getStaticRole reads a static role. Roles stored by
// redhat-cop/vault-plugin-secrets-quay have the same key and field names but
// no name, robot name or token: its robots were named after the role, and
// their token was read from Quay (static_heal.go adopts it).
func getStaticRole(ctx context.Context, s logical.Storage, name string) (*staticRole, error) {
	role, err := getJSON[staticRole](ctx, s, staticRoleStoragePrefix+name, fmt.Sprintf("static role %q", name))
	if err != nil || role == nil {
		return nil, err
	}
	if role.Name == "" {
		role.Name = name
	}
	if role.NamespaceType == "" {
		role.NamespaceType = string(quay.NamespaceOrganization)
	}
	if role.RobotName == "" {
		role.RobotName = role.Name
	}
	return role, nil
}

func putStaticRole(ctx context.Context, s logical.Storage, role *staticRole) error {
	return putJSON(ctx, s, staticRoleStoragePrefix+role.Name, fmt.Sprintf("static role %q", role.Name), role)
}

// listStaticRoles reads every static role.
func listStaticRoles(ctx context.Context, s logical.Storage) ([]*staticRole, error) {
	names, err := s.List(ctx, staticRoleStoragePrefix)
	if err != nil {
		return nil, err
	}
	roles := make([]*staticRole, 0, len(names))
	for _, name := range names {
		role, err := getStaticRole(ctx, s, name)
		if err != nil {
			return nil, err
		}
		if role != nil {
			roles = append(roles, role)
		}
	}
	return roles, nil
}

// staticRoleOwning returns the static role that manages a robot, if any.
func staticRoleOwning(roles []*staticRole, nsType, nsName, short string) *staticRole {
	for _, r := range roles {
		if r.NamespaceType == nsType && r.NamespaceName == nsName && r.RobotName == short {
			return r
		}
	}
	return nil
}
