package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// Sibling of issue 8, finding 10 (/api/v1/user/robots always means the
// caller's namespace): tidy skips another user's namespace only when it
// knows whose credential it holds. With config saved unverified
// (verify_connection=false, TokenOwner empty) it lists "user/quayadmin"
// through /api/v1/user/robots, gets the CALLER's robots ("other+…"), looks
// them up in the index under user/quayadmin, finds no lease, and deletes
// them through the same API: the caller's live, leased robots.
func TestReview_TidyDeletesLiveUserRobotsWhenTheCredentialsOwnerIsUnknown(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("mine", map[string]any{"namespace_type": "user", "namespace_name": testAdmin})

	require.NoError(t, env.quay.CreateUser("other", testPassword, "other@example.com"))
	otherToken, err := env.quay.IssueToken("other", "user:read user:admin org:admin repo:admin", time.Hour)
	require.NoError(t, err)
	env.writeConfig(map[string]any{"token": otherToken, "verify_connection": false})
	env.writeRobotRole("theirs", map[string]any{"namespace_type": "user", "namespace_name": "other"})
	lease := env.issue("theirs")
	short := strings.TrimPrefix(lease.Data["username"].(string), "other+")
	otherNS := quay.Namespace{Kind: quay.NamespaceUser, Name: "other"}
	_, err = env.quayClient(otherToken).GetRobot(context.Background(), otherNS, short)
	require.NoError(t, err, "the leased robot exists")

	report := env.request(logical.UpdateOperation, "tidy", nil)
	require.False(t, report.IsError(), "%v", report.Error())

	_, err = env.quayClient(otherToken).GetRobot(context.Background(), otherNS, short)
	assert.NoError(t, err, "tidy must not delete a robot whose lease is live (orphans_deleted: %v)", report.Data["orphans_deleted"])
}
