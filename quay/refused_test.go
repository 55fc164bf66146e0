package quay

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testOrg = Namespace{Kind: NamespaceOrganization, Name: "acme"}

// The engine drops a create's write-ahead entry only when Quay certainly did
// not act. A 2xx answer means Quay acted, whatever its body: one that cannot
// be read, or that lacks the object's identity, must not pass for "nothing
// was created", nor yield a credential without the ID needed to revoke it.
func TestRefused_CreateAnswersThatLackTheObjectAreNoRefusal(t *testing.T) {
	creates := map[string]func(c *Client) error{
		"create robot": func(c *Client) error {
			_, err := c.CreateRobot(bg, testOrg, "ci", RobotSpec{})
			return err
		},
		"regenerate robot token": func(c *Client) error {
			_, err := c.RegenerateRobotToken(bg, testOrg, "ci")
			return err
		},
		"create application token": func(c *Client) error {
			_, err := c.CreateApplicationToken(bg, "acme", "CLIENT", NewApplicationToken{Name: "t", Scopes: []string{ScopeRepoRead}})
			return err
		},
	}
	answers := map[string]http.HandlerFunc{
		"200 {}":              jsonReply(200, `{}`),
		"201 {}":              jsonReply(201, `{}`),
		"204 no body":         reply(204, "", ""),
		"200 not JSON":        reply(200, "text/html", "<html>ok</html>"),
		"200 truncated JSON":  jsonReply(200, `{"uuid": "abc", "tok`),
		"200 name only":       jsonReply(200, `{"name": "acme+ci", "uuid": "abc"}`),
		"200 token, no uuid":  jsonReply(200, `{"token": "SECRET"}`),
		"201 token, no name":  jsonReply(201, `{"token": "SECRET"}`),
		"200 empty secret":    jsonReply(200, `{"uuid": "abc", "name": "acme+ci", "token": ""}`),
		"200 JSON null value": jsonReply(200, `null`),
	}
	for cname, create := range creates {
		for aname, answer := range answers {
			if cname == "regenerate robot token" && strings.Contains(aname, "token,") {
				continue // regenerate answers need only the new token
			}
			t.Run(cname+"/"+aname, func(t *testing.T) {
				srv := newFakeQuay(t, answer)
				err := create(newTestClient(t, srv.URL))
				require.Error(t, err, "an answer without the object is an error")
				assert.False(t, Refused(err), "Quay acted: no refusal (%v)", err)
				assert.False(t, IsNotFound(err))
				assert.Equal(t, 1, srv.Calls(), "a create is not repeated after Quay acted")
				assertNoSecretIn(t, err.Error(), "SECRET")
			})
		}
	}
}

func TestRefused_OnlyWhenQuayCertainlyDidNotAct(t *testing.T) {
	t.Run("4xx answers", func(t *testing.T) {
		for _, status := range []int{400, 401, 403, 404, 409, 429} {
			srv := newFakeQuay(t, jsonReply(status, apiException(status, "x", "refused")))
			_, err := newTestClient(t, srv.URL, noRetries).CreateRobot(bg, testOrg, "ci", RobotSpec{})
			assert.True(t, Refused(err), "%d", status)
		}
	})
	t.Run("5xx answers", func(t *testing.T) {
		for _, status := range []int{500, 502, 503, 504} {
			srv := newFakeQuay(t, jsonReply(status, `{"message": "oops"}`))
			_, err := newTestClient(t, srv.URL, noRetries).CreateRobot(bg, testOrg, "ci", RobotSpec{})
			assert.False(t, Refused(err), "%d may come after Quay acted", status)
		}
	})
	t.Run("cancelled while Quay works", func(t *testing.T) {
		reached := make(chan struct{})
		srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
			close(reached)
			<-r.Context().Done() // Quay acts; the answer never arrives
		})
		ctx, cancel := context.WithCancel(bg)
		go func() { <-reached; cancel() }()
		_, err := newTestClient(t, srv.URL).CreateRobot(ctx, testOrg, "ci", RobotSpec{})
		require.Error(t, err)
		assert.False(t, Refused(err), "a cancelled call may have been acted on: %v", err)
	})
	t.Run("timed out while Quay works", func(t *testing.T) {
		srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		c := newTestClient(t, srv.URL, func(c *Config) { c.RequestTimeout = 50 * time.Millisecond })
		_, err := c.CreateApplicationToken(bg, "acme", "CLIENT", NewApplicationToken{Name: "t", Scopes: []string{ScopeRepoRead}})
		require.Error(t, err)
		assert.False(t, Refused(err), "%v", err)
	})
	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		_, err = newTestClient(t, "http://"+addr, noRetries).CreateRobot(bg, testOrg, "ci", RobotSpec{})
		require.Error(t, err)
		assert.True(t, Refused(err), "no connection, no action: %v", err)
	})
	t.Run("never sent", func(t *testing.T) {
		srv := newFakeQuay(t, jsonReply(201, `{}`))
		_, err := newTestClient(t, srv.URL).CreateRobot(bg, testOrg, "..", RobotSpec{})
		assert.True(t, Refused(err), "%v", err)
		c, err := New(Config{BaseURL: srv.URL})
		require.NoError(t, err)
		_, err = c.CreateRobot(bg, testOrg, "ci", RobotSpec{})
		assert.True(t, Refused(err), "no credential: %v", err)
		assert.Zero(t, srv.Calls())
	})
}

// "Already gone" is read from Quay's own answer. A 404 from something in
// front of Quay (a proxy's page, a path prefix that routes nowhere) must not
// make a revoke report success while the credential lives on.
func TestRefused_NotFoundOnlyFromQuaysOwnAnswer(t *testing.T) {
	cases := []struct {
		name      string
		answer    http.HandlerFunc
		notFound  bool
		robotGone bool
	}{
		{"Quay's ApiException 404", jsonReply(404, apiException(404, "not_found", "Not Found")), true, true},
		{"Quay's hidden route (abort 404)", jsonReply(404, `{"error": "Not Found"}`), false, false},
		{"AWS API Gateway", jsonReply(404, `{"message": "Not Found"}`), false, false},
		{"Kong", jsonReply(404, `{"message": "no Route matched with those values"}`), false, false},
		{"Quay's missing robot", jsonReply(400, `{"message": "Could not find robot with specified username"}`), false, true},
		{"nginx 404 page", reply(404, "text/html", nginxPage(404)), false, false},
		{"Flask's unrouted path", reply(404, "text/html; charset=utf-8", "<!doctype html>\n<title>404 Not Found</title>"), false, false},
		{"empty 404", reply(404, "", ""), false, false},
		{"plain-text 404", reply(404, "text/plain", "404 page not found"), false, false},
		{"JSON of someone else", jsonReply(404, `{"status": 404, "path": "/api/v1"}`), false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeQuay(t, tc.answer)
			c := newTestClient(t, srv.URL, noRetries)
			err := c.DeleteApplicationToken(bg, "acme", "CLIENT", "uuid")
			assert.Equal(t, tc.notFound, IsNotFound(err), "token: %v", err)
			err = c.DeleteRobot(bg, testOrg, "ci")
			assert.Equal(t, tc.robotGone, IsRobotNotFound(err), "robot: %v", err)
		})
	}
}

func TestIsTokenRejected_OnlyQuaysAnswersAboutTheToken(t *testing.T) {
	cases := map[string]struct {
		answer http.HandlerFunc
		want   bool
	}{
		"invalid_token":      {jsonReply(401, apiException(401, "invalid_token", "Requires authentication")), true},
		"expired_token":      {jsonReply(401, apiException(401, "expired_token", "OAuth access token has expired")), true},
		"CSRF":               {jsonReply(403, `{"error": "CSRF token was invalid or missing."}`), true},
		"insufficient_scope": {jsonReply(403, apiException(403, "insufficient_scope", "Unauthorized")), false},
		"proxy 401 page":     {reply(401, "text/html", "<html><title>401 Authorization Required</title></html>"), false},
		"proxy 403 page":     {reply(403, "text/html", "<html><title>403 Forbidden</title></html>"), false},
		"404":                {jsonReply(404, apiException(404, "not_found", "Not Found")), false},
	}
	for name, tc := range cases {
		srv := newFakeQuay(t, tc.answer)
		err := newTestClient(t, srv.URL, noRetries).DeleteApplicationToken(bg, "acme", "CLIENT", "uuid")
		assert.Equal(t, tc.want, IsTokenRejected(err), name)
	}
}

// Quay answers every delete with 204 (endpoints/api/*.py). A firewall's
// block page is a 200: it must not pass for a deletion.
func TestDeletes_OnlyQuaysNoContentIsADeletion(t *testing.T) {
	for name, answer := range map[string]http.HandlerFunc{
		"firewall block page": reply(200, "text/html", "<html><body>The requested URL was rejected.</body></html>"),
		"200 JSON":            jsonReply(200, `{}`),
		"202":                 reply(202, "", ""),
	} {
		srv := newFakeQuay(t, answer)
		c := newTestClient(t, srv.URL, noRetries)
		err := c.DeleteRobot(bg, testOrg, "ci")
		require.Error(t, err, name)
		assert.False(t, IsRobotNotFound(err) || Refused(err), name)
		err = c.DeleteApplicationToken(bg, "acme", "CLIENT", "uuid")
		require.Error(t, err, name)
		assert.False(t, IsNotFound(err) || Refused(err), name)
	}
	srv := newFakeQuay(t, reply(204, "", ""))
	require.NoError(t, newTestClient(t, srv.URL).DeleteRobot(bg, testOrg, "ci"))
}
