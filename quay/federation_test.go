package quay

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// externalJWT stands for an issuer's token handed to the exchange: a secret.
const externalJWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJzdWIiOiJjaSJ9.U0lHTkFUVVJFU0lHTkFUVVJF"

func TestRobotFederation_PathsAndBodies(t *testing.T) {
	srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		case http.MethodPost:
			jsonReply(200, `[{"issuer": "https://vault.example/v1/quay", "subject": "acme+ci"}]`)(w, r)
		default:
			jsonReply(200, `[]`)(w, r)
		}
	})
	c := newTestClient(t, srv.URL)
	entries := []FederationEntry{{Issuer: "https://vault.example/v1/quay", Subject: "acme+ci"}}

	stored, err := c.SetRobotFederation(bg, acme, "ci", entries)
	require.NoError(t, err)
	assert.Equal(t, entries, stored)
	got := srv.Last(t)
	assert.Equal(t, "POST /api/v1/organization/acme/robots/ci/federation", got.Method+" "+got.EscapedPath)
	assert.JSONEq(t, `[{"issuer": "https://vault.example/v1/quay", "subject": "acme+ci"}]`, got.Body)
	assert.True(t, got.Auth == "Bearer "+secretToken, "the client's own credential (not shown)")

	_, err = c.SetRobotFederation(bg, userNS, "ci", nil)
	require.NoError(t, err)
	got = srv.Last(t)
	assert.Equal(t, "POST /api/v1/user/robots/ci/federation", got.Method+" "+got.EscapedPath)
	assert.Equal(t, "[]", got.Body, "clearing sends an empty list, not null (Quay: Missing JSON body)")

	list, err := c.GetRobotFederation(bg, acme, "ci")
	require.NoError(t, err)
	assert.Empty(t, list)
	assert.Equal(t, "GET /api/v1/organization/acme/robots/ci/federation", srv.Last(t).Method+" "+srv.Last(t).EscapedPath)

	require.NoError(t, c.DeleteRobotFederation(bg, userNS, "ci"))
	assert.Equal(t, "DELETE /api/v1/user/robots/ci/federation", srv.Last(t).Method+" "+srv.Last(t).EscapedPath)

	assert.Error(t, c.DeleteRobotFederation(bg, acme, ".."), "a name that would address another resource")
	assert.Equal(t, 4, srv.Calls())
}

func TestRobotFederation_MissingRobot(t *testing.T) {
	srv := newFakeQuay(t, jsonReply(400, `{"message":"Could not find robot with specified username"}`))
	_, err := newTestClient(t, srv.URL).GetRobotFederation(bg, acme, "ghost")
	assert.True(t, IsRobotNotFound(err), err)
	assert.Equal(t, 1, srv.Calls(), "a refusal is not retried")
}

// The exchange sends the robot and the JWT as Basic credentials, never the
// client's own token, and returns Quay's token with its expiry.
func TestExchangeFederatedRobotToken(t *testing.T) {
	exp := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	payload := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":"acme+ci","exp":%d}`, exp.Unix())))
	robotJWT := "eyJhbGciOiJSUzI1NiJ9." + payload + ".c2ln"
	srv := newFakeQuay(t, jsonReply(200, `{"token": "`+robotJWT+`"}`))
	got, err := newTestClient(t, srv.URL).ExchangeFederatedRobotToken(bg, "acme+ci", externalJWT)
	require.NoError(t, err)
	assert.True(t, got.Token == robotJWT, "Quay's token is returned as sent (values not shown)")
	assert.True(t, exp.Equal(got.ExpiresAt), got.ExpiresAt)
	req := srv.Last(t)
	assert.Equal(t, "GET /oauth2/federation/robot/token", req.Method+" "+req.EscapedPath)
	assert.True(t, req.Auth == "Basic "+base64.StdEncoding.EncodeToString([]byte("acme+ci:"+externalJWT)), "Basic robot:JWT, not the client's token (not shown)")
	assert.Empty(t, req.Body)

	srv = newFakeQuay(t, jsonReply(200, `{"token": "opaque"}`))
	got, err = newTestClient(t, srv.URL).ExchangeFederatedRobotToken(bg, "acme+ci", externalJWT)
	require.NoError(t, err)
	assert.True(t, got.ExpiresAt.IsZero(), "a token without a readable exp")

	srv = newFakeQuay(t, jsonReply(200, `{}`))
	_, err = newTestClient(t, srv.URL).ExchangeFederatedRobotToken(bg, "acme+ci", externalJWT)
	assert.ErrorContains(t, err, "no token")
}

// Quay's refusals keep their status and message, and none is retried: a
// 500 here is Quay failing to reach or read the issuer, which a retry a
// few milliseconds later would only repeat.
func TestExchangeFederatedRobotToken_Refusals(t *testing.T) {
	for _, tc := range []struct {
		status  int
		body    string
		message string
		calls   int
	}{
		{400, `{"message":"Token does not match robot"}`, "Token does not match robot", 1},
		{401, `{"error":"Invalid robot"}`, "Invalid robot", 1},
		{500, "<html><title>Internal Server Error</title></html>", "", 1},
	} {
		srv := newFakeQuay(t, reply(tc.status, "text/html", tc.body))
		if tc.status != 500 {
			srv = newFakeQuay(t, jsonReply(tc.status, tc.body))
		}
		_, err := newTestClient(t, srv.URL).ExchangeFederatedRobotToken(bg, "acme+ci", externalJWT)
		require.Error(t, err)
		assert.Equal(t, tc.status, StatusOf(err))
		assert.Contains(t, err.Error(), tc.message)
		assert.Equal(t, tc.calls, srv.Calls(), tc.status)
	}
}

// The external JWT and the robot token never reach an error or a log line,
// whatever Quay echoes.
func TestExchangeFederatedRobotToken_SecretsStayOut(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("acme+ci:" + externalJWT))
	for _, shape := range []string{"message", "ApiException", "abort", "V2", "plain text", "redirect"} {
		t.Run(shape, func(t *testing.T) {
			var logs bytes.Buffer
			srv := newFakeQuay(t, echo(shape))
			c := newTestClient(t, srv.URL, func(c *Config) {
				c.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &logs})
			})
			_, err := c.ExchangeFederatedRobotToken(bg, "acme+ci", externalJWT)
			require.Error(t, err)
			for _, s := range []string{externalJWT, basic, secretToken} {
				assertNoSecretIn(t, err.Error(), s)
				assertNoSecretIn(t, fmt.Sprintf("%+v", err), s)
				assertNoSecretIn(t, logs.String(), s)
			}
		})
	}

	var logs bytes.Buffer
	srv := newFakeQuay(t, jsonReply(200, `{"token": "`+robotToken+`", "extra": `))
	c := newTestClient(t, srv.URL, func(c *Config) {
		c.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &logs})
	})
	_, err := c.ExchangeFederatedRobotToken(bg, "acme+ci", externalJWT)
	require.Error(t, err, "truncated JSON")
	assertNoSecretIn(t, err.Error(), robotToken)
	assertNoSecretIn(t, logs.String(), robotToken)
}
