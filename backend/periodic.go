package backend

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// periodic is the engine's own scheduler, so scheduled work runs on Vault
// Community Edition too (Vault's rotation manager is Enterprise-only). Vault's
// rollback manager calls it about once a minute on the active node of each
// cluster. Tidy runs on every cluster (each tidies the robots it issued and
// writes only local storage); the rotations (root token, static robots, the
// federation signing key) write replicated state, so they run only where
// that is writable: the primary's active node.
func (b *backend) periodic(ctx context.Context, req *logical.Request) error {
	if b.System().ReplicationState().HasState(consts.ReplicationPerformanceStandby | consts.ReplicationDRSecondary) {
		return nil
	}
	cfg, err := getConfig(ctx, req.Storage)
	if err != nil || cfg == nil {
		return err
	}
	var errs []error
	if b.WriteSafeReplicationState() {
		errs = append(errs,
			b.recoverRootRotations(ctx, req.Storage),
			b.settleAgain(ctx, req.Storage),
			b.rotateRootIfDue(ctx, req.Storage, cfg),
			b.rotateDueStaticRoles(ctx, req.Storage),
			b.rotateFederationKeyIfDue(ctx, req.Storage),
			b.refreshFederationEntries(ctx, req.Storage))
	}
	errs = append(errs, b.autoTidy(ctx, req.Storage, cfg))
	return errors.Join(errs...)
}

// scheduleSlack is how early scheduled work may run. Vault's rollback
// manager ticks every minute from a fixed phase and the next due time is
// counted from when the work finished, a little after a tick: without the
// slack, a period that is a whole number of minutes would wait one extra
// tick every other time (a one-minute rotation ran every two minutes).
const scheduleSlack = 5 * time.Second

// due reports whether work scheduled at next should run at now. A zero
// next means never.
func due(next, now time.Time) bool {
	return !next.IsZero() && !now.Before(next.Add(-scheduleSlack))
}
