package backend

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// bearerTap stands in front of a Quay and records every Authorization
// header it receives.
type bearerTap struct {
	mu   sync.Mutex
	seen []string
}

func (tap *bearerTap) front(t *testing.T, quay http.Handler) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tap.mu.Lock()
		tap.seen = append(tap.seen, r.Header.Get("Authorization"))
		tap.mu.Unlock()
		quay.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (tap *bearerTap) headers() string {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return strings.Join(tap.seen, "\n")
}

// Review of the "leases are revoked in the Quay that issued them" change
// (backend/client.go clientFor): when config has moved to another Quay, the
// engine revokes an old lease by sending the CURRENT root credential (the
// new Quay's) to the address the lease recorded. That address is another
// registry, run by other people, perhaps decommissioned and its name given
// away, perhaps plain http: every revocation of an old lease hands the new
// Quay's root credential to it, while it cannot even work there (the old
// Quay answers 401 and the lease stays stuck). A credential must only ever
// go to the Quay that issued it; a lease of another Quay needs that Quay's
// credential, or an explicit refusal.
func TestReview_RevokeSendsTheNewQuaysRootCredentialToTheOldQuay(t *testing.T) {
	env := newTestEnv(t, withoutConfig())
	oldQuay := &bearerTap{}
	oldFront := oldQuay.front(t, env.quay)
	env.writeConfig(map[string]any{"url": oldFront.URL, "token": env.admin})
	env.writeOAuthRole("api", nil)
	env.writeRobotRole("ci", nil)
	token := env.issue("api")
	robot := env.issue("ci")

	// The operator moves the engine to a new Quay, with that Quay's token.
	newQuay := newTestEnv(t, withoutConfig())
	env.writeConfig(map[string]any{"url": newQuay.server.URL, "token": newQuay.admin})
	assertNoSecretIn(t, oldQuay.headers(), "headers the old Quay received before any revoke", newQuay.admin)

	// Vault revokes the old leases as they expire.
	_, _ = env.revoke(token.Secret)
	_, _ = env.revoke(robot.Secret)

	assertNoSecretIn(t, oldQuay.headers(), "headers the old Quay received", newQuay.admin)
	require.NotEmpty(t, oldQuay.headers())
}

// Sibling of the same change: leases record their Quay, write-ahead entries
// do not. A creds request that failed halfway in Quay A leaves its entry for
// the rollback; if config moves to Quay B before the rollback runs (a
// migration where B has the same organizations), the rollback asks B, gets
// B's "Could not find robot" (or "not found" for the token's application),
// takes it for "nothing to undo" and drops the entry. The robot created in A
// is then tracked by nothing, and tidy, which lists the configured Quay, never
// sees it: it lives for ever.
func TestReview_RollbackAfterAQuayMoveDropsTheEntryOfARobotLeftInTheOldQuay(t *testing.T) {
	env := newTestEnv(t)
	env.writeRobotRole("ci", nil)
	env.quay.Faults().Add(emulator.Fault{Route: "createOrgRobot", Count: 1, AfterQuay: true, Drop: true})
	_, err := env.requestErr(logical.ReadOperation, "creds/ci", nil)
	require.Error(t, err, "the answer was lost")
	require.Len(t, env.engineRobots(), 1, "Quay A created the robot")
	require.Equal(t, 1, env.walCount())

	newQuay := newTestEnv(t, withoutConfig()) // has organization acme too
	env.writeConfig(map[string]any{"url": newQuay.server.URL, "token": newQuay.admin})
	env.rollback()

	if len(env.engineRobots()) == 1 {
		assert.Equal(t, 1, env.walCount(), "the robot lives in Quay A, so its write-ahead entry must not be dropped")
	}
}

// The same for an OAuth token: it lives in Quay A until its max TTL.
func TestReview_RollbackAfterAQuayMoveDropsTheEntryOfATokenLeftInTheOldQuay(t *testing.T) {
	env := newTestEnv(t)
	env.writeOAuthRole("api", nil)
	clientID := env.mustOK(logical.ReadOperation, "roles/api", nil).Data["client_id"].(string)
	env.quay.Faults().Add(emulator.Fault{Route: "createOrganizationApplicationToken", Count: 1, AfterQuay: true, Drop: true})
	_, err := env.requestErr(logical.ReadOperation, "creds/api", nil)
	require.Error(t, err, "the answer was lost")
	require.Len(t, env.appTokens(clientID), 1, "Quay A minted the token")
	require.Equal(t, 1, env.walCount())

	newQuay := newTestEnv(t, withoutConfig())
	env.writeConfig(map[string]any{"url": newQuay.server.URL, "token": newQuay.admin})
	env.rollback()

	if len(env.appTokens(clientID)) == 1 {
		assert.Equal(t, 1, env.walCount(), "the token lives in Quay A, so its write-ahead entry must not be dropped")
	}
}

// The same for the engine's own root token: a config write that moves the
// engine to Quay B mints B's root token under a write-ahead entry that names
// only organization, application and token name. If the process dies before
// the config is persisted, the next start settles the entry against the
// config it finds (still Quay A): A has no such application, answers
// "not found", and the entry is dropped, while the root token minted in B
// (30 days by default, up to ten years, the root scopes) stays valid with
// nothing tracking it.
func TestReview_RootMintCrashDuringAQuayMoveOrphansTheNewQuaysRootToken(t *testing.T) {
	env := ownRoot(t, nil)
	old := env.storedConfig()
	ctx := context.Background()

	newQuay := newTestEnv(t, withoutConfig())
	require.NoError(t, newQuay.adminClient.CreateOrganization(ctx, "vault-root", ""))
	app, err := newQuay.adminClient.CreateApplication(ctx, "vault-root", quay.NewApplication{Name: env.b.managedRootApplicationName()})
	require.NoError(t, err)
	name := env.b.rootTokenName()
	// What the config write did before the crash: the entry, then the mint in B.
	_, err = framework.PutWAL(ctx, env.storage, walKindRootRotation, &rootRotationWAL{
		QuayURL: newQuay.server.URL, Organization: "vault-root", ClientID: app.ClientID, OldTokenID: old.RootTokenID, NewTokenName: name, InstanceID: "crashed-process",
	})
	require.NoError(t, err)
	minted, err := newQuay.adminClient.CreateApplicationToken(ctx, "vault-root", app.ClientID, quay.NewApplicationToken{Name: name, Scopes: []string{"user:read", "org:admin"}})
	require.NoError(t, err)

	env.restart()

	if newQuay.works(minted.Token) {
		assert.Equal(t, 1, env.walCount(), "the root token minted in Quay B is valid, so its write-ahead entry must not be dropped")
	}
}
