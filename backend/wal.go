package backend

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/mitchellh/mapstructure"
)

// Kinds of write-ahead entries. Each is written before the engine creates
// something in Quay and deleted once a lease (or the stored config) owns it;
// an entry left behind means the request died halfway, and its rollback
// deletes what it may have created.
const (
	walKindOAuthToken = "oauth_token"
	walKindRobot      = "robot"
	// walKindStaticRotation guards a static robot's rotation; its
	// "rollback" rolls forward (see staticRotationWAL).
	walKindStaticRotation = "static_rotation"
	// walKindRootRotation guards minting a root token (root_token.go).
	walKindRootRotation = "root_rotation"
)

// walRollback is Vault's rollback hook. It runs on the active node for
// entries older than WALRollbackMinAge (or at once for "immediate" rollback
// requests). Returning nil deletes the entry; an error keeps it for the next
// attempt.
func (b *backend) walRollback(ctx context.Context, req *logical.Request, kind string, data any) error {
	// Rotations store replicated state (a static role, the config). Their
	// entries are only ever written where that is writable; should one be
	// found elsewhere, it is kept for a node that can settle it.
	if (kind == walKindStaticRotation || kind == walKindRootRotation) && !b.WriteSafeReplicationState() {
		return errReplicatedStateReadOnly
	}
	switch kind {
	case walKindOAuthToken:
		var entry oauthTokenWAL
		if err := mapstructure.Decode(data, &entry); err != nil {
			return fmt.Errorf("decoding %s write-ahead entry: %w", kind, err)
		}
		return b.rollbackOAuthToken(ctx, req, entry)
	case walKindRobot:
		var entry robotWAL
		if err := mapstructure.Decode(data, &entry); err != nil {
			return fmt.Errorf("decoding %s write-ahead entry: %w", kind, err)
		}
		return b.rollbackRobot(ctx, req, entry)
	case walKindStaticRotation:
		var entry staticRotationWAL
		if err := mapstructure.Decode(data, &entry); err != nil {
			return fmt.Errorf("decoding %s write-ahead entry: %w", kind, err)
		}
		return b.rollbackStaticRotation(ctx, req, entry)
	case walKindRootRotation:
		var entry rootRotationWAL
		if err := mapstructure.Decode(data, &entry); err != nil {
			return fmt.Errorf("decoding %s write-ahead entry: %w", kind, err)
		}
		b.rootLock.Lock()
		defer b.rootLock.Unlock()
		err := b.rollbackRootRotation(ctx, req.Storage, entry)
		if err == nil {
			b.clients.reset()
		}
		return err
	default:
		// An unknown kind cannot be undone by this version; dropping it
		// is safer than retrying forever.
		b.logger.Warn("dropping write-ahead entry of unknown kind", "kind", kind)
		return nil
	}
}

// commitWAL hands what an entry guarded over to its new owner (a lease, a
// stored role) by deleting the entry. Once the request's create budget has
// run out it does not: the rollback may be about to delete what the request
// created, which must then not be handed out.
func (b *backend) commitWAL(ctx context.Context, s logical.Storage, id string) error {
	if err := b.createBudgetSpent(ctx); err != nil {
		return err
	}
	if err := framework.DeleteWAL(ctx, s, id); err != nil {
		return fmt.Errorf("committing the write-ahead entry: %w", err)
	}
	return nil
}

// createBudgetSpent reports a request whose create budget (or Vault's own
// deadline) ran out, so that it hands nothing out.
func (b *backend) createBudgetSpent(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("the request ran past the engine's limit of %s for creating credentials; the rollback deletes what it created: %w", b.createBudget, err)
	}
	return nil
}

var errReplicatedStateReadOnly = errors.New("this node cannot write replicated state; the entry is kept for the primary's active node")

// deleteWAL removes an entry whose work did not happen. A failure only means
// the rollback will find nothing to undo later.
func (b *backend) deleteWAL(ctx context.Context, s logical.Storage, id string) {
	if err := framework.DeleteWAL(ctx, s, id); err != nil {
		b.logger.Warn("could not delete write-ahead entry; its rollback will find nothing to undo", "id", id, "error", err)
	}
}
