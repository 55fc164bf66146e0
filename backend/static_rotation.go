package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// staticRotationWAL records a rotation in flight. Quay's regenerate answers
// with the new token and invalidates the old one at once; if the engine dies
// before storing it, the rollback rolls forward by reading the robot's
// current token from Quay (admins may read it) instead of rotating again.
type staticRotationWAL struct {
	// QuayURL is the Quay the robot lives in.
	QuayURL    string `json:"quay_url" mapstructure:"quay_url"`
	Role       string `json:"role" mapstructure:"role"`
	InstanceID string `json:"instance_id" mapstructure:"instance_id"`
}

var errStaticRoleNotFound = errors.New("static role not found")

// staticRoleLock serialises writes, rotations and rollbacks of one static
// role; different roles never wait for each other.
func (b *backend) staticRoleLock(name string) *locksutil.LockEntry {
	return locksutil.LockForKey(b.staticLocks, name)
}

// rotateStaticRole gives the role's robot a new token and stores it. The
// robot is checked first, as a read checks it (static_heal.go), and its
// grants re-applied, so a rotation also restores what was taken from it.
// The answer's warnings say what drifted.
func (b *backend) rotateStaticRole(ctx context.Context, s logical.Storage, name string) (*staticRole, []string, error) {
	lock := b.staticRoleLock(name)
	lock.Lock()
	defer lock.Unlock()
	role, err := getStaticRole(ctx, s, name)
	if err != nil {
		return nil, nil, err
	}
	if role == nil {
		return nil, nil, errStaticRoleNotFound
	}
	client, cfg, err := b.client(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	if err := reachUserRobot(ctx, client, cfg, role.namespace(), role.RobotName); err != nil {
		return nil, nil, err
	}
	robot, state, err := b.probeStaticRobot(ctx, s, client, role)
	if err != nil {
		return nil, nil, err
	}
	var warnings []string
	var heal staticHeal
	if state != robotAsStored {
		if heal, err = b.healStaticRobot(ctx, s, client, role, robot, state); err != nil {
			return nil, nil, err
		}
		warnings = append(warnings, heal.drift)
		b.logger.Warn("static robot drifted", "role", role.Name, "robot", role.username(), "found", heal.drift)
	}
	granted, err := grantRobot(ctx, client, role.namespace(), role.RobotName, role.robotGrants, heal.fresh)
	if err != nil {
		return nil, nil, err
	}
	warnings = append(warnings, granted.warnings...)
	if w := restoredWarning(role, granted.restored); w != "" {
		warnings = append(warnings, w)
		b.logger.Warn("static robot had lost grants", "role", role.Name, "robot", role.username(), "restored", strings.Join(granted.restored, ", "))
	}
	if heal.fresh {
		// Created again just now: its token is new already.
		if err := putStaticRole(ctx, s, role); err != nil {
			return nil, nil, err
		}
		b.deleteWAL(ctx, s, heal.walID)
		b.logger.Info("rotated a static robot", "role", role.Name, "robot", role.username())
		return role, warnings, nil
	}
	if err := b.rotateStoredStaticRole(ctx, s, client, role); err != nil {
		return nil, nil, err
	}
	return role, warnings, nil
}

// rotateStoredStaticRole gives a stored role's robot a new token and stores
// it. The caller holds the role's lock.
func (b *backend) rotateStoredStaticRole(ctx context.Context, s logical.Storage, client *quay.Client, role *staticRole) error {
	walID, err := b.regenerateStaticRobot(ctx, s, client, role)
	if err != nil {
		return err
	}
	if err := putStaticRole(ctx, s, role); err != nil {
		// The entry stays: its rollback stores the token Quay now holds.
		return err
	}
	b.deleteWAL(ctx, s, walID)
	b.logger.Info("rotated a static robot", "role", role.Name, "robot", role.username())
	return nil
}

// regenerateStaticRobot rotates the robot's token in Quay and updates role
// (not stored yet). It returns the write-ahead entry guarding the rotation:
// the caller deletes it once role is stored. The caller holds the role's lock.
func (b *backend) regenerateStaticRobot(ctx context.Context, s logical.Storage, client *quay.Client, role *staticRole) (string, error) {
	walID, err := framework.PutWAL(ctx, s, walKindStaticRotation, &staticRotationWAL{QuayURL: client.BaseURL(), Role: role.Name, InstanceID: b.instanceID})
	if err != nil {
		return "", fmt.Errorf("writing the write-ahead entry: %w", err)
	}
	robot, err := client.RegenerateRobotToken(ctx, role.namespace(), role.RobotName)
	if err != nil {
		if quay.Refused(err) {
			b.deleteWAL(ctx, s, walID)
			return "", upstreamError("rotating robot "+role.username(), err)
		}
		// Quay may have rotated the token and lost the answer (a timeout,
		// a dropped connection): the old token is dead then. Read the
		// robot back at once rather than leave the stored password dead
		// until the rollback (five minutes) or the next read.
		current, readErr := client.GetRobot(ctx, role.namespace(), role.RobotName)
		if readErr != nil || current.Token == "" || current.Token == role.Password {
			return "", upstreamError("rotating robot "+role.username(), err)
		}
		b.logger.Info("read back the token of a rotation whose answer was lost", "role", role.Name, "error", reasonOf(err))
		robot = current
	}
	role.Password = robot.Token
	role.LastVaultRotation = b.now().UTC()
	return walID, nil
}

// rollbackStaticRotation re-reads the robot's token after a rotation whose
// result may not have been stored.
func (b *backend) rollbackStaticRotation(ctx context.Context, req *logical.Request, entry staticRotationWAL) error {
	lock := b.staticRoleLock(entry.Role)
	lock.Lock()
	defer lock.Unlock()
	role, err := getStaticRole(ctx, req.Storage, entry.Role)
	if err != nil {
		return err
	}
	if role == nil {
		return nil
	}
	client, cfg, err := b.clientFor(ctx, req.Storage, entry.QuayURL)
	if err != nil {
		return err
	}
	if err := reachUserRobot(ctx, client, cfg, role.namespace(), role.RobotName); err != nil {
		return err
	}
	robot, err := client.GetRobot(ctx, role.namespace(), role.RobotName)
	if quay.IsRobotNotFound(err) {
		b.logger.Warn("robot of static role is gone from Quay", "role", role.Name, "robot", role.username())
		return nil
	}
	if err != nil {
		return err
	}
	// A robot someone made under the role's name since is not the role's:
	// taking its token over would serve a stranger's robot from then on.
	// static-creds and rotations answer 409 for it (static_heal.go).
	if ours, err := b.isRoleRobot(ctx, req.Storage, role, robot); err != nil {
		return err
	} else if !ours {
		b.logger.Warn("not recovering the token of a static role's robot that was replaced in Quay", "role", role.Name, "robot", role.username(), "because", replacedBecause(role))
		return nil
	}
	if robot.Token == "" || robot.Token == role.Password {
		return nil
	}
	role.Password = robot.Token
	role.LastVaultRotation = b.now().UTC()
	b.logger.Info("recovered the token of an interrupted rotation", "role", role.Name)
	return putStaticRole(ctx, req.Storage, role)
}

// rotateDueStaticRoles is the schedule: the periodic function calls it once
// a minute on the active node. One role failing does not stop the others.
func (b *backend) rotateDueStaticRoles(ctx context.Context, s logical.Storage) error {
	roles, err := listStaticRoles(ctx, s)
	if err != nil {
		return err
	}
	var errs []error
	now := b.now()
	for _, role := range roles {
		if !due(role.nextRotation(), now) {
			continue
		}
		if _, _, err := b.rotateStaticRole(ctx, s, role.Name); err != nil {
			errs = append(errs, fmt.Errorf("rotating static role %q: %w", role.Name, err))
			continue
		}
	}
	return errors.Join(errs...)
}
