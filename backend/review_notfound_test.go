package backend

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// Review of issue 8, finding 8 ("revoke treats any 404 as already
// revoked"): the fix recognises Quay's answer by the body having any of
// Quay's JSON error fields, "message" and "error" included. But Quay answers
// a missing token (endpoints/api/organization_application_tokens.py,
// _lookup_application_or_raise / delete) and a missing namespace with its
// ApiException NotFound only: error_type "not_found". The API gateways put
// in front of registries answer a route they do not know with exactly those
// generic fields: Kong `{"message":"no Route matched with those values"}`,
// AWS API Gateway `{"message":"Not Found"}`, Spring Cloud Gateway
// `{"timestamp":…,"status":404,"error":"Not Found","path":…}`. Revoke takes
// each for Quay's "already gone", reports success, and the credential lives
// on (a robot for ever).
func TestReview_RevokeTakesAGatewaysJSON404ForAlreadyGone(t *testing.T) {
	gateway404s := map[string]string{
		"kong":                 `{"message":"no Route matched with those values"}`,
		"aws api gateway":      `{"message":"Not Found"}`,
		"spring cloud gateway": `{"timestamp":"2025-01-01T00:00:00.000+00:00","status":404,"error":"Not Found","path":"/api/v1/organization/acme/robots"}`,
	}
	for name, body := range gateway404s {
		t.Run("oauth token, "+name, func(t *testing.T) {
			env := newTestEnv(t)
			env.writeOAuthRole("ci", nil)
			resp := env.issue("ci")
			token := resp.Data["token"].(string)
			env.quay.Faults().Add(emulator.Fault{Route: "deleteOrganizationApplicationToken", Status: 404, Body: body})

			_, err := env.revoke(resp.Secret)
			assert.Error(t, err, "a gateway's 404 is not Quay's 'not found': revoke must fail so Vault retries")
			assert.True(t, env.works(token), "the token is alive in Quay")
			env.assertNoSecretLogged(token)
		})
		t.Run("robot, "+name, func(t *testing.T) {
			env := newTestEnv(t)
			env.writeRobotRole("ci", nil)
			resp := env.issue("ci")
			short := strings.TrimPrefix(resp.Data["username"].(string), testOrg+"+")
			env.quay.Faults().Add(emulator.Fault{Route: "deleteOrgRobot", Status: 404, Body: body})

			_, err := env.revoke(resp.Secret)
			assert.Error(t, err, "a gateway's 404 is not Quay's 'not found': revoke must fail so Vault retries")
			require.True(t, env.robotExists(short), "the robot is alive in Quay")
			_, err = env.adminClient.GetRobot(context.Background(), orgNS, short)
			require.NoError(t, err)
		})
	}
}

// The same lax "not found" retires the engine's own root token: a retiring
// root token whose delete is answered by a gateway's JSON 404 leaves the
// config's retiring list as if Quay no longer held it. After a
// root_organization change (the sweep of stray root tokens only looks at
// the new organization's application) it stays valid in Quay
// (root_token_ttl: 30 days by default, up to ten years) with nothing
// tracking it.
func TestReview_AGatewaysJSON404DropsARetiringRootTokenStillValidInQuay(t *testing.T) {
	env := ownRoot(t, nil)
	old := env.storedConfig()
	require.NoError(t, env.adminClient.CreateOrganization(context.Background(), "vault-root-2", ""))
	env.quay.Faults().Add(emulator.Fault{Route: "deleteOrganizationApplicationToken", Count: 1, Status: 404, Body: `{"message":"Not Found"}`})

	env.writeConfig(map[string]any{"root_organization": "vault-root-2"})
	env.periodic()

	if env.works(old.Token) {
		assert.True(t, env.storedConfig().isRetiring(old.RootTokenID),
			"the replaced root token is still valid in Quay, so it must stay on the retiring list")
	}
}

// The other half of "only Quay's own answer": revoke takes ANY 2xx to a
// DELETE for "deleted". Quay answers both deletes with 204 and an empty body
// (endpoints/api/robot.py, organization_application_tokens.py). A web
// application firewall in front of Quay that blocks the call answers with
// its own page, and F5 BIG-IP ASM's default blocking page comes with status
// 200 ("The requested URL was rejected"). Revoke reports success, Vault
// forgets the lease, and the credential lives on (a robot for ever).
func TestReview_RevokeTakesAFirewallsBlockingPageForADeletion(t *testing.T) {
	const blocked = `<html><head><title>Request Rejected</title></head><body>The requested URL was rejected. Please consult with your administrator.<br><br>Your support ID is: 1234567890</body></html>`
	t.Run("oauth token", func(t *testing.T) {
		env := newTestEnv(t)
		env.writeOAuthRole("ci", nil)
		resp := env.issue("ci")
		token := resp.Data["token"].(string)
		env.quay.Faults().Add(emulator.Fault{Route: "deleteOrganizationApplicationToken", Status: 200, Body: blocked})

		_, err := env.revoke(resp.Secret)
		assert.Error(t, err, "a firewall's page is not Quay's 204: revoke must fail so Vault retries")
		assert.True(t, env.works(token), "the token is alive in Quay")
	})
	t.Run("robot", func(t *testing.T) {
		env := newTestEnv(t)
		env.writeRobotRole("ci", nil)
		resp := env.issue("ci")
		short := strings.TrimPrefix(resp.Data["username"].(string), testOrg+"+")
		env.quay.Faults().Add(emulator.Fault{Route: "deleteOrgRobot", Status: 200, Body: blocked})

		_, err := env.revoke(resp.Secret)
		assert.Error(t, err, "a firewall's page is not Quay's 204: revoke must fail so Vault retries")
		assert.True(t, env.robotExists(short), "the robot is alive in Quay")
	})
}
