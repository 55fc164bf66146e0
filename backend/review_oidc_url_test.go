package backend

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
)

// url refuses credentials ("url must not carry credentials", and never
// echoes one), but oidc_token_url takes userinfo as given and quotes it
// back verbatim in the 400 of a refused bootstrap ("could not get an access
// token from <url>: …"), which reaches the CLI, the audit log and CI output.
// (The unreachable case is redacted by net/http; the refusal is not.) The
// engine should refuse such a URL as it refuses one for url, or never echo
// it.
func TestReview_OIDCTokenURLCredentialsAreEchoedInTheError(t *testing.T) {
	env := newTestEnv(t, withoutConfig())
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"unknown client"}`))
	}))
	t.Cleanup(idp.Close)
	const secret = "idp-proxy-password-1234"
	resp := env.request(logical.UpdateOperation, "config", map[string]any{
		"url": env.server.URL, "bootstrap": "oidc",
		"oidc_token_url": strings.Replace(idp.URL, "http://", "http://vault:"+secret+"@", 1) + "/token",
		"oidc_client_id": "vault", "oidc_client_secret": "client-secret-value",
	})
	assert.True(t, resp.IsError())
	assertNoSecretIn(t, errorMessage(resp), "the refusal", secret)
	env.assertNoSecretLogged(secret)
}
