package quay

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echo is a Quay gone wrong: it answers every call with an error that
// repeats the request's credentials and body back, in one of Quay's error
// shapes.
func echo(shape string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		said := r.Header.Get("Authorization") + " " + string(body) + " " + r.URL.RawQuery
		quoted := fmt.Sprintf("%q", said)
		switch shape {
		case "message":
			jsonReply(400, `{"message": `+quoted+`}`)(w, r)
		case "ApiException":
			jsonReply(401, `{"detail": `+quoted+`, "error_message": `+quoted+`, "error_type": `+quoted+`, "title": "invalid_token", "status": 401}`)(w, r)
		case "abort":
			jsonReply(403, `{"error": `+quoted+`}`)(w, r)
		case "V2":
			jsonReply(401, `{"errors": [{"code": `+quoted+`, "message": `+quoted+`}]}`)(w, r)
		case "plain text":
			reply(503, "text/plain", said)(w, r)
		case "redirect":
			reply(http.StatusTemporaryRedirect, "", "", "Location", "https://sso.example.com/"+strings.ReplaceAll(said, " ", "/")+"?t="+said+"#"+said)(w, r)
		case "OAuth refusal":
			reply(http.StatusFound, "", "", "Location", "http://quay/oauth/localapp?error="+said+"&error_description="+said)(w, r)
		}
	}
}

// No credential reaches an error message or a log line, whatever Quay sends
// back: not the Bearer token, not a password (in a body or in Basic
// credentials), not a robot token.
func TestSecrets_NeverInErrorsOrLogs(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("svc:" + secretPassword))
	secrets := []string{secretToken, secretPassword, basic, robotToken}
	shapes := []string{"message", "ApiException", "abort", "V2", "plain text", "redirect", "OAuth refusal"}
	for _, shape := range shapes {
		t.Run(shape, func(t *testing.T) {
			var logs bytes.Buffer
			srv := newFakeQuay(t, echo(shape))
			c := newTestClient(t, srv.URL, func(c *Config) {
				c.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &logs})
			})
			var errs []error
			_, err := c.GetUser(bg)
			errs = append(errs, err)
			_, err = c.InitializeUser(bg, InitializeUserRequest{Username: "first", Password: secretPassword, Email: "f@example.com"})
			errs = append(errs, err)
			errs = append(errs, c.ChangePassword(bg, secretPassword))
			_, err = c.AuthorizeApp(bg, DirectOAuthRequest{Username: "svc", Password: secretPassword, ClientID: "CID", RedirectURI: "http://quay/oauth/localapp"})
			errs = append(errs, err)
			_, err = c.ListApplicationTokens(bg, "acme", "CID")
			errs = append(errs, err)

			for i, err := range errs {
				require.Error(t, err, "call %d", i)
				for _, s := range secrets {
					assertNoSecretIn(t, err.Error(), s)
					assert.NotContains(t, fmt.Sprintf("%+v", err), s, "call %d", i)
				}
			}
			assert.NotEmpty(t, logs.String(), "requests are logged")
			for _, s := range secrets {
				assert.NotContains(t, logs.String(), s)
			}
		})
	}
}

// The redaction leaves the rest of Quay's message readable.
func TestSecrets_RedactionKeepsTheMessage(t *testing.T) {
	srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
		jsonReply(400, `{"message": "token `+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")+` is not allowed here"}`)(w, r)
	})
	_, err := newTestClient(t, srv.URL).GetUser(bg)
	require.Error(t, err)
	var qe *Error
	require.ErrorAs(t, err, &qe)
	assert.Equal(t, "token [redacted] is not allowed here", qe.Message)
}

// Robot tokens arrive in answers; they stay out of the logs, and out of the
// error when an answer cannot be decoded.
func TestSecrets_RobotTokensStayInTheAnswer(t *testing.T) {
	var logs bytes.Buffer
	srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/organization/acme/robots/ci":
			jsonReply(201, `{"name": "acme+ci", "token": "`+robotToken+`", "created": "Wed, 22 Jul 2026 10:00:00 -0000"}`)(w, r)
		case "/api/v1/organization/acme/robots/ci/regenerate":
			jsonReply(200, `{"name": "acme+ci", "token": "`+robotToken+`", "created": "yesterday"}`)(w, r)
		default:
			jsonReply(200, `{"robots": [{"name": "acme+ci", "token": "`+robotToken+`"}], "extra": `)(w, r)
		}
	})
	c := newTestClient(t, srv.URL, func(c *Config) {
		c.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &logs})
	})
	robot, err := c.CreateRobot(bg, acme, "ci", RobotSpec{})
	require.NoError(t, err)
	assert.Equal(t, robotToken, robot.Token)

	_, err = c.RegenerateRobotToken(bg, acme, "ci")
	require.Error(t, err, "an undecodable timestamp")
	assertNoSecretIn(t, err.Error(), robotToken)

	_, err = c.ListRobots(bg, acme, ListRobotsOptions{Token: true})
	require.Error(t, err, "truncated JSON")
	assertNoSecretIn(t, err.Error(), robotToken)

	assert.NotContains(t, logs.String(), robotToken)
	assert.NotContains(t, logs.String(), secretToken)
}

// A secret too short to be a real Quay credential is redacted where it
// stands alone, not inside every word that contains its letters.
func TestSecrets_ShortSecretsDoNotGarbleMessages(t *testing.T) {
	srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
		jsonReply(400, `{"message": "the token in '`+r.Header.Get("Authorization")+`' is not allowed"}`)(w, r)
	})
	_, err := newTestClient(t, srv.URL, func(c *Config) { c.Credential = StaticToken("t") }).GetUser(bg)
	require.Error(t, err)
	var qe *Error
	require.ErrorAs(t, err, &qe)
	assert.Equal(t, "the token in 'Bearer [redacted]' is not allowed", qe.Message)
}

// Transport failures are logged by the retry loop; a broken server or proxy
// that answers with the request's own credentials where the status line or
// a header belongs must not get them into the error or the log.
func TestSecrets_NotInTransportFailures(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("svc:" + secretPassword))
	secrets := []string{secretToken, secretPassword, basic}
	// Each answer puts what the request carried (its credential, or its
	// body when it has none) where net/http quotes it in an error.
	answers := map[string]func(said string) string{
		"as the status line":       func(said string) string { return said + "\r\n\r\n" },
		"as the status code":       func(said string) string { return "HTTP/1.1 " + said + " OK\r\n\r\n" },
		"as a malformed header":    func(said string) string { return "HTTP/1.1 200 OK\r\n" + said + "\r\n\r\n" },
		"as a header continuation": func(said string) string { return "HTTP/1.1 200 OK\r\n " + said + "\r\n\r\n" },
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				said := string(body)
				if auth := strings.Fields(r.Header.Get("Authorization")); len(auth) == 2 {
					said = auth[1]
				}
				hijack(func(b *bufio.ReadWriter) { _, _ = b.WriteString(answer(said)) })(w, r)
			})
			c := newTestClient(t, srv.URL, func(c *Config) {
				c.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &logs})
			})
			var errs []error
			_, err := c.GetUser(bg)
			errs = append(errs, err)
			_, err = c.InitializeUser(bg, InitializeUserRequest{Username: "first", Password: secretPassword})
			errs = append(errs, err)
			errs = append(errs, c.ChangePassword(bg, secretPassword))
			_, err = c.AuthorizeApp(bg, DirectOAuthRequest{Username: "svc", Password: secretPassword, ClientID: "CID"})
			errs = append(errs, err)
			for i, err := range errs {
				require.Error(t, err, "call %d", i)
				for e := err; e != nil; e = errors.Unwrap(e) {
					for _, s := range secrets {
						assert.NotContains(t, e.Error(), s, "call %d, in the chain of %v", i, err)
					}
				}
			}
			assert.Contains(t, logs.String(), "quay call", "transport failures are logged")
			for _, s := range secrets {
				assert.NotContains(t, logs.String(), s)
			}
		})
	}
}

// A password travels JSON-escaped in the request body (Go escapes '"', '\',
// '<', '>' and '&'); a Quay that echoes the body raw must not leak it in
// that form either.
func TestSecrets_JSONEscapedPasswords(t *testing.T) {
	const password = `pa"ss\w<o>&rd-long-enough`
	escaped, err := json.Marshal(password)
	require.NoError(t, err)
	forms := []string{password, strings.Trim(string(escaped), `"`)}
	require.NotEqual(t, forms[0], forms[1])

	for _, shape := range []string{"plain text", "message", "redirect"} {
		t.Run(shape, func(t *testing.T) {
			srv := newFakeQuay(t, echo(shape))
			c := newTestClient(t, srv.URL)
			_, err1 := c.InitializeUser(bg, InitializeUserRequest{Username: "first", Password: password})
			err2 := c.ChangePassword(bg, password)
			for i, err := range []error{err1, err2} {
				require.Error(t, err, "call %d", i)
				for _, f := range forms {
					assertNoSecretIn(t, err.Error(), f)
				}
			}
		})
	}
}
