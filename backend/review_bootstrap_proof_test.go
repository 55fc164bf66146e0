package backend

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// Regression of the fix for issue 8, finding 9: the "proof" that a pasted
// token is Quay's programmatic bootstrap token is any 2xx to POST
// /api/v1/bootstrap/renew. Quay's own proof is 200 {"status": "rotated"}
// (endpoints/api/bootstrap.py). Something in front of Quay that answers
// the POST itself with a 200 (a WAF's blocking page, F5 ASM's default; an
// ingress serving the UI's index.html for unknown paths) is taken as proof,
// and the engine then deletes every __quay_bootstrap_app token of the owner:
// Quay's real bootstrap token, which it was never given, while the pasted
// token stays valid. That is exactly finding 9's damage.
func TestReview_AnyTwoHundredToTheRenewalIsTakenAsProofOfTheBootstrapToken(t *testing.T) {
	env, _ := bootstrapQuay(t)
	pasted, err := env.quay.IssueToken(testAdmin, strings.Join(quay.KnownScopes(), " "), time.Hour)
	require.NoError(t, err)
	env.quay.Faults().Add(emulator.Fault{Route: "renewBootstrapToken", Count: 1, Status: 200,
		Body: `<html><head><title>Request Rejected</title></head><body>The requested URL was rejected.</body></html>`})

	env.writeConfig(map[string]any{"url": env.server.URL, "token": pasted, "root_organization": "vault-root"})

	assert.True(t, env.works(env.admin), "Quay's bootstrap token, never given to the engine, must be untouched")
	env.assertNoSecretLogged(pasted, env.admin)
}
