package backend

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// A lease is revoked in the Quay that issued it. After config was pointed at
// another Quay, revoke used to ask the new one, get its "not found", report
// the credential revoked and leave it alive where it was issued (robots for
// ever). Leases now record the issuing Quay's address, and a lease of
// another Quay is refused (retryably) with what to do.
func TestRevoke_InTheQuayThatIssuedTheCredential(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("api", nil)
	env.writeRobotRole("ci", nil)
	token := env.issue("api")
	robot := env.issue("ci")
	short := strings.TrimPrefix(robot.Data["username"].(string), testOrg+"+")

	other := newTestEnv(t, withoutConfig())
	env.writeConfig(map[string]any{"url": other.server.URL, "token": other.admin})

	_, err := env.revoke(robot.Secret)
	require.Error(t, err, "the other Quay's 'not found' says nothing about the robot")
	assert.True(t, env.robotExists(short))
	_, err = env.revoke(token.Secret)
	require.Error(t, err)
	assert.True(t, env.works(token.Data["token"].(string)))

	// The same Quay under another address: refused until the operator says
	// the old address is the same Quay (url_aliases); the credential never
	// goes to an address config does not name.
	sameQuay := strings.Replace(env.server.URL, "127.0.0.1", "localhost", 1)
	env.writeConfig(map[string]any{"url": sameQuay, "token": env.admin})
	_, err = env.revoke(robot.Secret)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "add "+env.server.URL+" to config's url_aliases")
	env.writeConfig(map[string]any{"url_aliases": env.server.URL})
	_, err = env.revoke(robot.Secret)
	require.NoError(t, err)
	assert.False(t, env.robotExists(short))
	_, err = env.revoke(token.Secret)
	require.NoError(t, err)
	assert.False(t, env.works(token.Data["token"].(string)))

	// Leases from before the address was recorded use the configured Quay.
	legacy := env.issue("ci")
	delete(legacy.Secret.InternalData, "quay_url")
	_, err = env.revoke(legacy.Secret)
	require.NoError(t, err)
	_, err = env.adminClient.GetRobot(context.Background(), orgNS, strings.TrimPrefix(legacy.Data["username"].(string), testOrg+"+"))
	assert.True(t, quay.IsRobotNotFound(err))
}
