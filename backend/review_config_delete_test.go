package backend

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
)

// Sibling of issue 8, finding 2 ("exactly one valid root token, always";
// "never loses track of what it created"): config writes now record a
// replaced root token as retiring and delete it until Quay no longer holds
// it, but a config DELETE simply drops the stored config: the engine's own
// root token (valid for root_token_ttl, up to ten years) and any root token
// still retiring after a scheduled rotation stay valid in Quay, and nothing
// in Vault references them any more. The periodic retry has nothing to read.
func TestReview_ConfigDeleteStrandsTheEnginesRootTokens(t *testing.T) {
	env := ownRoot(t, map[string]any{"root_rotation_period": "1h"})
	first := env.storedConfig()
	env.advance(61 * time.Minute)
	env.periodic() // scheduled rotation: the first token retires after a grace period
	second := env.storedConfig()
	assertDifferentSecret(t, first.Token, second.Token, "the scheduled rotation minted a new root token")

	env.mustOK(logical.DeleteOperation, "config", nil)
	env.advance(scheduledRetireGrace + time.Minute)
	env.periodic()

	assert.False(t, env.works(second.Token), "after config delete, the engine's current root token must not stay valid in Quay with nothing tracking it")
	assert.False(t, env.works(first.Token), "nor the retiring one whose deletion was pending")
}
