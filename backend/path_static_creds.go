package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// overdueRecheck is the ttl reported while a scheduled rotation is due.
const overdueRecheck = 10 * time.Second

func pathStaticCreds(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "static-creds/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefixQuay,
			OperationVerb:   "read",
			OperationSuffix: "static-credentials",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeLowerCaseString, Description: "Name of the static role.", Required: true},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathStaticCredsRead,
				Summary:  "Read a static robot's current credentials.",
				Responses: okWith(withFields(dockerCredentialFields(), map[string]*framework.FieldSchema{
					"namespaces_name":     {Type: framework.TypeString, Description: "namespace_name again, under the name redhat-cop/vault-plugin-secrets-quay gave it (sic), so that its readers keep working."},
					"last_vault_rotation": {Type: framework.TypeTime, Description: "When Vault last set the token."},
					"rotation_period":     {Type: framework.TypeDurationSecond, Description: "The rotation period in seconds (only with a schedule)."},
					"ttl":                 {Type: framework.TypeDurationSecond, Description: "Seconds until the next scheduled rotation (only with a schedule): Vault Agent re-reads right after it."},
				})),
			},
		},
		HelpSynopsis: "Read a static robot's current credentials.",
		HelpDescription: `Returns the robot's username and current token in docker-ready form, when
Vault last rotated it, the rotation period and ttl: the seconds until the next
scheduled rotation, so Vault Agent re-renders right after it. Each read looks
the robot up in Quay (one call): a robot deleted by hand is created again and
granted, a token regenerated outside Vault is taken over, and the answer's
warnings say so. If Quay cannot be asked, the stored token is served with a
warning.`,
	}}
}

// pathStaticCredsRead serves the robot's token after checking the robot in
// Quay with one call (static_heal.go). The check runs under the role's read
// lock, so reads of one role run side by side; only a read that found drift
// takes the lock for writing, checks again and heals.
func (b *backend) pathStaticCredsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	lock := b.staticRoleLock(name)
	lock.RLock()
	role, check, err := b.checkStaticCreds(ctx, req.Storage, name)
	lock.RUnlock()
	if role == nil || err != nil || check.state == robotAsStored {
		return b.staticCredsAnswer(check.cfg, name, role, nil, err)
	}

	// Healing writes the role and a write-ahead entry: a node that cannot
	// write replicated state hands the read to one that can.
	if !b.WriteSafeReplicationState() {
		return nil, logical.ErrReadOnly
	}
	lock.Lock()
	defer lock.Unlock()
	role, check, err = b.checkStaticCreds(ctx, req.Storage, name)
	if role == nil || err != nil || check.state == robotAsStored {
		// Another read healed it meanwhile, or Quay is gone again.
		return b.staticCredsAnswer(check.cfg, name, role, nil, err)
	}
	client, cfg := check.client, check.cfg
	heal, err := b.healStaticRobot(ctx, req.Storage, client, role, check.robot, check.state)
	if err != nil {
		return nil, err
	}
	warnings := []string{heal.drift}
	b.logger.Warn("static robot drifted", "role", role.Name, "robot", role.username(), "found", heal.drift)
	granted, err := grantRobot(ctx, client, role.namespace(), role.RobotName, role.robotGrants, heal.fresh)
	if err != nil {
		// The robot works with the token it has now: serve it, store
		// nothing, and let the next read (or rotation) try again.
		b.logger.Warn("could not restore a static robot's grants", "role", role.Name, "robot", role.username(), "error", err)
		warnings = append(warnings, fmt.Sprintf("its grants could not be given (%s); the next read or rotation tries again", reasonOf(err)))
		return b.staticCredsAnswer(cfg, name, role, warnings, nil)
	}
	warnings = append(warnings, granted.warnings...)
	if w := restoredWarning(role, granted.restored); w != "" {
		warnings = append(warnings, w)
	}
	if err := putStaticRole(ctx, req.Storage, role); err != nil {
		return nil, err
	}
	if heal.walID != "" {
		b.deleteWAL(ctx, req.Storage, heal.walID)
	}
	b.logger.Info("healed a static robot", "role", role.Name, "robot", role.username(), "request_id", req.ID)
	return b.staticCredsAnswer(cfg, name, role, warnings, nil)
}

// staticCredsCheck is what checkStaticCreds found.
type staticCredsCheck struct {
	client *quay.Client
	cfg    *quayConfig
	robot  *quay.Robot
	state  staticRobotState
}

// checkStaticCreds reads the role and looks its robot up in Quay. A failure
// to ask Quay is not an error here when the token is known: the read serves
// the stored token and says so (staticCredsAnswer).
func (b *backend) checkStaticCreds(ctx context.Context, s logical.Storage, name string) (*staticRole, staticCredsCheck, error) {
	var check staticCredsCheck
	role, err := getStaticRole(ctx, s, name)
	if err != nil || role == nil {
		return nil, check, err
	}
	if check.client, check.cfg, err = b.client(ctx, s); err != nil {
		// Without config there is nothing to serve from either.
		return nil, check, err
	}
	if err := reachUserRobot(ctx, check.client, check.cfg, role.namespace(), role.RobotName); err != nil {
		return role, check, err
	}
	check.robot, check.state, err = b.probeStaticRobot(ctx, s, check.client, role)
	return role, check, err
}

// staticCredsAnswer is static-creds' answer: the role's token in
// docker-ready form, or the refusal.
func (b *backend) staticCredsAnswer(cfg *quayConfig, name string, role *staticRole, warnings []string, checkErr error) (*logical.Response, error) {
	if role == nil && checkErr == nil {
		return logical.ErrorResponse("static role %q does not exist", name), nil
	}
	if role == nil {
		return nil, checkErr
	}
	if checkErr != nil {
		var moved *userNamespaceError
		var coded logical.HTTPCodedError
		switch {
		case errors.As(checkErr, &moved):
			return logical.ErrorResponse(checkErr.Error()), nil
		case !role.tokenKnown(),
			errors.As(checkErr, &coded) && coded.Code() == http.StatusConflict:
			return nil, checkErr
		}
		// Quay could not be asked: the stored token is the best there
		// is, and an outage of Quay's API must not take pull secrets down.
		b.logger.Warn("could not check a static robot in Quay; serving the stored token", "role", role.Name, "robot", role.username(), "error", checkErr)
		warnings = append(warnings, fmt.Sprintf("robot %s could not be checked in Quay (%s): this is the token Vault holds", role.username(), checkErr))
	}
	data := dockerCredentials(cfg.registryHost(), role.username(), role.Password)
	data["namespace_type"] = role.NamespaceType
	data["namespace_name"] = role.NamespaceName
	data["namespaces_name"] = role.NamespaceName
	setTime(data, "last_vault_rotation", role.LastVaultRotation)
	if next := role.nextRotation(); !next.IsZero() {
		// consul-template (Vault Agent) re-reads a lease-less secret that
		// carries rotation_period and ttl one second after ttl runs out.
		// Without a schedule both are left out: a ttl of 0 would make it
		// re-read every second. A rotation that is due but not done yet
		// (the periodic function runs once a minute) gets a short ttl.
		data["rotation_period"] = int64(role.RotationPeriod.Seconds())
		data["ttl"] = int64(max(overdueRecheck, next.Sub(b.now())).Round(time.Second).Seconds())
	}
	return &logical.Response{Data: data, Warnings: warnings}, nil
}
