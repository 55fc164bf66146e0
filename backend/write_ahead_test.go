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
				require.True(t, resp.IsError(), "no lease may be made: %+v", resp)
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
