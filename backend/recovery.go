package backend

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/mitchellh/mapstructure"
)

// Recovery after a restart, an unseal or a failover.
//
// Write-ahead entries of another backend instance belong to requests that
// can no longer finish: the process that wrote them was killed or stepped
// down (Vault drains a mount's requests before it reloads the plugin or
// seals, and a node that lost leadership can no longer write storage).
// Vault's rollback manager would settle them only once they are
// WALRollbackMinAge old, leaving for five minutes a half-made credential
// alive or a static robot's stored password one Quay no longer accepts. The
// new instance settles them at once. It keeps the entries: a request the old
// process had already sent may still land in Quay, so the periodic function
// settles them again every minute, and the rollback manager looks again at
// the usual age before it drops them.
//
// This runs in the background: Vault waits for every mount's initialization
// before it finishes an unseal, and must never wait on Quay.

// recovery is the background settling started by initialize and stopped by
// clean.
type recovery struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// startRecovery settles what an earlier instance left, in the background,
// until it is done or clean stops it. It does not take ctx's cancellation:
// an external plugin gets Initialize's gRPC call context, which ends as soon
// as Initialize returns (the storage stays usable: it is the plugin's
// brokered connection).
func (b *backend) startRecovery(ctx context.Context, s logical.Storage) {
	b.stopRecovery()
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	b.recovery.mu.Lock()
	b.recovery.cancel, b.recovery.done = cancel, done
	b.recovery.mu.Unlock()
	go func() {
		defer close(done)
		defer cancel()
		start := time.Now()
		if err := b.recoverRootRotations(ctx, s); err != nil {
			b.logger.Warn("could not settle an interrupted root rotation yet; the rollback manager retries", "error", err)
		}
		settled, err := b.settleEntriesOfOtherInstances(ctx, s, 0)
		if err != nil {
			b.logger.Warn("could not settle every request interrupted by a restart yet; the rollback manager retries", "error", err)
		}
		if settled > 0 {
			b.logger.Info("settled requests interrupted by a restart or failover", "entries", settled, "duration", time.Since(start))
		}
	}()
}

// stopRecovery cancels the background settling and waits for it to end.
func (b *backend) stopRecovery() {
	b.recovery.mu.Lock()
	cancel, done := b.recovery.cancel, b.recovery.done
	b.recovery.cancel, b.recovery.done = nil, nil
	b.recovery.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// waitRecovered waits for the background settling (tests).
func (b *backend) waitRecovered() {
	b.recovery.mu.Lock()
	done := b.recovery.done
	b.recovery.mu.Unlock()
	if done != nil {
		<-done
	}
}

// settleAgain settles other instances' entries once more, every tick until
// they are old enough for the rollback manager: a credential the dead
// process had asked Quay for and Quay created only after the settling at
// start-up then lives a minute, not five. Older entries are the rollback
// manager's alone (one that keeps failing is not retried, and logged, twice
// a minute).
func (b *backend) settleAgain(ctx context.Context, s logical.Storage) error {
	_, err := b.settleEntriesOfOtherInstances(ctx, s, walRollbackMinAge)
	return err
}

// settleEntriesOfOtherInstances runs the rollback of every credential and
// static-rotation entry another instance wrote, keeping the entries. Root
// rotations are recoverRootRotations' (it deletes their entries: the
// config, not Quay, decides those).
// A positive maxAge skips entries older than that.
func (b *backend) settleEntriesOfOtherInstances(ctx context.Context, s logical.Storage, maxAge time.Duration) (int, error) {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return 0, err
	}
	req := &logical.Request{Operation: logical.RollbackOperation, Storage: s}
	var errs []error
	settled := 0
	for _, id := range ids {
		if ctx.Err() != nil {
			return settled, ctx.Err()
		}
		w, err := framework.GetWAL(ctx, s, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if w == nil || maxAge > 0 && time.Since(time.Unix(w.CreatedAt, 0)) > maxAge {
			continue
		}
		var owner struct {
			InstanceID string `mapstructure:"instance_id"`
		}
		switch w.Kind {
		case walKindOAuthToken, walKindRobot, walKindStaticRotation:
		default:
			continue
		}
		// Decoding only the owner: the rollback decodes the rest.
		if err := mapstructure.WeakDecode(w.Data, &owner); err != nil || owner.InstanceID == b.instanceID {
			continue
		}
		if err := b.walRollback(ctx, req, w.Kind, w.Data); err != nil {
			errs = append(errs, err)
			continue
		}
		settled++
	}
	return settled, errors.Join(errs...)
}
