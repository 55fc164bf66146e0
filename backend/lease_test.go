package backend

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Vault hands a renewal the lease's stored response data and returns the
// plugin's answer to whoever called sys/leases/renew, which Vault's default
// policy grants every token, and lease IDs are not secret (audit logs, UI,
// CLI output). A renewal therefore answers with the lease's timing only,
// never with the credential (it used to echo req.Data: the robot password,
// docker_config_json or OAuth token).
func TestRenew_AnswersWithTheLeaseOnlyNeverTheCredential(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("api", nil)
	env.writeRobotRole("ci", nil)
	for _, role := range []string{"api", "ci"} {
		t.Run(role, func(t *testing.T) {
			issued := env.issue(role)
			secrets := map[string]string{}
			for _, field := range []string{"token", "password", "auth", "docker_config_json"} {
				if v, ok := issued.Data[field].(string); ok {
					secrets[field] = v
				}
			}
			require.NotEmpty(t, secrets)

			renewed, err := env.renew(issued.Secret, issued.Data)
			require.NoError(t, err)
			require.NotNil(t, renewed)
			// Only key names are printed: a failing test must not show a secret.
			assert.Empty(t, slices.Sorted(maps.Keys(renewed.Data)), "a renewal answers with lease information only")
			require.NotNil(t, renewed.Secret)
			assert.Positive(t, renewed.Secret.TTL)
			encoded, err := json.Marshal(renewed)
			require.NoError(t, err)
			for field, value := range secrets {
				assert.False(t, strings.Contains(string(encoded), value), "the issued %s is in the renew answer", field)
			}

			// Vault then stores the answer's (empty) data with the lease;
			// revoke needs only the lease's internal data.
			_, err = env.revoke(renewed.Secret)
			require.NoError(t, err)
		})
	}
}
