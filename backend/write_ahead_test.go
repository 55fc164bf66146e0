package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// walCount is how many write-ahead entries the mount holds.
func (e *testEnv) walCount() int {
	e.t.Helper()
	ids, err := framework.ListWAL(context.Background(), e.storage)
	require.NoError(e.t, err)
	return len(ids)
}

// engineRobots lists the robots of the test organization that the engine
// issued for dynamic roles.
func (e *testEnv) engineRobots() []string {
	e.t.Helper()
	robots, err := e.adminClient.ListRobots(context.Background(), orgNS, quay.ListRobotsOptions{})
	require.NoError(e.t, err)
	var names []string
	for _, r := range robots {
		if strings.HasPrefix(r.ShortName(), robotNamePrefix) {
			names = append(names, r.Name)
		}
	}
	return names
}

// A create that Quay acted on must never be mistaken for a refusal: the
// write-ahead entry stays, no lease is made without the credential's
// identity, and the rollback deletes what Quay created. Before, a 2xx answer
// that could not be read, one without the object's ID, or a request
// cancelled while Quay worked dropped the entry and left the credential in
// Quay with nothing tracking it.
func TestWriteAhead_AnAnswerQuayActedOnIsNeverTakenForARefusal(t *testing.T) {
	cases := []struct {
		name   string
		oauth  bool
		fault  emulator.Fault
		cancel bool
	}{
		{name: "robot: 201 with an empty body", fault: emulator.Fault{Route: "createOrgRobot", AfterQuay: true, Status: 201, Body: `{}`}},
		{name: "robot: 201 that is not JSON", fault: emulator.Fault{Route: "createOrgRobot", AfterQuay: true, Status: 201, Body: `<html>ok</html>`}},
		{name: "robot: 204", fault: emulator.Fault{Route: "createOrgRobot", AfterQuay: true, Status: 204}},
		{name: "robot: answer lost", fault: emulator.Fault{Route: "createOrgRobot", AfterQuay: true, Drop: true}},
		{name: "robot: request cancelled while Quay works", fault: emulator.Fault{Route: "createOrgRobot", Latency: 300 * time.Millisecond}, cancel: true},
		{name: "token: 200 without uuid", oauth: true, fault: emulator.Fault{Route: "createOrganizationApplicationToken", AfterQuay: true, Status: 200, Body: `{"name": "x", "token": "ABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJ"}`}},
		{name: "token: 200 {}", oauth: true, fault: emulator.Fault{Route: "createOrganizationApplicationToken", AfterQuay: true, Status: 200, Body: `{}`}},
		{name: "token: answer lost", oauth: true, fault: emulator.Fault{Route: "createOrganizationApplicationToken", AfterQuay: true, Drop: true}},
		{name: "token: request cancelled while Quay works", oauth: true, fault: emulator.Fault{Route: "createOrganizationApplicationToken", Latency: 300 * time.Millisecond}, cancel: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			var clientID string
			if tc.oauth {
				env.writeOAuthRole("ci", nil)
				clientID = env.mustOK(logical.ReadOperation, "roles/ci", nil).Data["client_id"].(string)
			} else {
				env.writeRobotRole("ci", nil)
			}
			created := func() int {
				if tc.oauth {
					return len(env.appTokens(clientID))
				}
				return len(env.engineRobots())
			}
			tc.fault.Count = 1
			env.quay.Faults().Add(tc.fault)

			ctx := context.Background()
			if tc.cancel {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(100*time.Millisecond, cancel)
			}
			resp, err := env.b.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "creds/ci", Storage: env.storage, MountPoint: "quay/"})
			if err == nil {
				require.True(t, failed(resp), "no lease may be made")
			}
			if resp != nil {
				assert.Nil(t, resp.Secret, "no lease without the credential's identity")
			}
			require.Eventually(t, func() bool { return created() == 1 }, 5*time.Second, 20*time.Millisecond, "Quay created the credential")
			assert.Equal(t, 1, env.walCount(), "the write-ahead entry outlives a failure Quay acted on")

			env.rollback()
			assert.Zero(t, created(), "the rollback deleted what the failed request created")
			assert.Zero(t, env.walCount())
		})
	}
}

// Revoke counts a credential as already gone only on Quay's own answer. A
// 404 page from something in front of Quay (a proxy, a wrong path prefix)
// used to make revoke report success while the credential lived on.
func TestRevoke_OnlyQuaysOwnAnswerMeansAlreadyGone(t *testing.T) {
	foreign404s := map[string]string{
		"nginx page":   "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
		"empty":        " ",
		"foreign JSON": `{"status": 404, "path": "/api/v1"}`,
	}
	for name, body := range foreign404s {
		t.Run("oauth token, "+name, func(t *testing.T) {
			env := newTestEnv(t)
			env.writeOAuthRole("ci", nil)
			resp := env.issue("ci")
			token := resp.Data["token"].(string)
			env.quay.Faults().Add(emulator.Fault{Route: "deleteOrganizationApplicationToken", Status: 404, Body: body})

			_, err := env.revoke(resp.Secret)
			require.Error(t, err, "a 404 that is not Quay's proves nothing")
			assert.NotErrorIs(t, err, logical.ErrUnrecoverable, "Vault retries")
			_, err = env.quayClient(token).GetUser(context.Background())
			require.NoError(t, err, "the token still works, so revoke must not have said it was gone")

			env.quay.Faults().Reset()
			_, err = env.revoke(resp.Secret)
			require.NoError(t, err)
			_, err = env.quayClient(token).GetUser(context.Background())
			assert.True(t, quay.IsUnauthorized(err), "revoked: %v", err)
		})
		t.Run("robot, "+name, func(t *testing.T) {
			env := newTestEnv(t)
			env.writeRobotRole("ci", nil)
			resp := env.issue("ci")
			short := strings.TrimPrefix(resp.Data["username"].(string), testOrg+"+")
			env.quay.Faults().Add(emulator.Fault{Route: "deleteOrgRobot", Status: 404, Body: body})

			_, err := env.revoke(resp.Secret)
			require.Error(t, err, "a 404 that is not Quay's proves nothing")
			assert.True(t, env.robotExists(short))

			env.quay.Faults().Reset()
			_, err = env.revoke(resp.Secret)
			require.NoError(t, err)
			assert.False(t, env.robotExists(short))
		})
	}
	t.Run("gone by Quay's own answer", func(t *testing.T) {
		env := newTestEnv(t)
		env.writeOAuthRole("ci", nil)
		env.writeRobotRole("bots", nil)
		token := env.issue("ci")
		robot := env.issue("bots")
		require.NoError(t, env.adminClient.DeleteApplicationToken(context.Background(), testOrg,
			token.Secret.InternalData["client_id"].(string), token.Secret.InternalData["token_id"].(string)))
		require.NoError(t, env.adminClient.DeleteRobot(context.Background(), orgNS,
			strings.TrimPrefix(robot.Data["username"].(string), testOrg+"+")))
		_, err := env.revoke(token.Secret)
		assert.NoError(t, err, "Quay's 404 not_found: already revoked")
		_, err = env.revoke(robot.Secret)
		assert.NoError(t, err, "Quay's 400 Could not find robot: already revoked")
	})
}

// An operator may raise Vault's max_request_duration past the write-ahead
// rollback age (5 minutes). A creds request still running when its entry's
// rollback starts would return a credential the rollback deletes. Requests
// that create in Quay are therefore bounded by the engine itself, below the
// rollback age, whatever deadline Vault gives them, and hand nothing out
// past it.
func TestWriteAhead_CreatesEndBeforeTheirRollbackCanStart(t *testing.T) {
	require.Less(t, createBudget, walRollbackMinAge, "the budget must end before the rollback may start")
	env := newTestEnv(t)
	env.writeRobotRole("ci", nil)
	env.b.createBudget = 300 * time.Millisecond
	env.quay.Faults().Add(emulator.Fault{Route: "createOrgRobot", Count: 1, AfterQuay: true, Latency: time.Second})

	start := time.Now()
	resp, err := env.requestErr(logical.ReadOperation, "creds/ci", nil)
	elapsed := time.Since(start)
	require.Error(t, err, "no deadline from Vault, yet the request ends")
	assert.Nil(t, resp)
	assert.Less(t, elapsed, 900*time.Millisecond, "ended by the engine's own budget")
	require.Eventually(t, func() bool { return len(env.engineRobots()) == 1 }, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, 1, env.walCount())
	env.rollback()
	assert.Empty(t, env.engineRobots())
}
