package quay

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeBody decodes a JSON request body keeping numbers as written.
func decodeBody(t *testing.T, body string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(body)))
	dec.UseNumber()
	var m map[string]any
	require.NoError(t, dec.Decode(&m), body)
	return m
}

func TestCreateApplicationToken_Body(t *testing.T) {
	srv := newFakeQuay(t, jsonReply(200, `{"uuid": "u1", "name": "ci", "scope": "repo:read user:read", "expires_at": "2036-07-10T11:05:34.123456Z", "created": "2026-07-10T11:05:34Z", "created_by": "quayadmin", "last_accessed": null, "token": "ABCDEFGHIJabcdefghij0123456789ABCDEFGHIJ"}`))
	c := newTestClient(t, srv.URL)
	for _, tc := range []struct {
		name       string
		expiration time.Duration
		want       any // the "expiration" value sent, nil for none
	}{
		{"whole seconds", time.Hour, json.Number("3600")},
		{"rounded up", 90*time.Minute + 500*time.Millisecond, json.Number("5401")},
		{"a nanosecond is a second, Quay's minimum", time.Nanosecond, json.Number("1")},
		{"the maximum", MaxTokenExpiration, json.Number("315576000")},
		{"clamped to ten years", 20 * 365 * 24 * time.Hour, json.Number("315576000")},
		{"zero lets Quay apply its default", 0, nil},
		{"negative is none", -time.Hour, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := c.CreateApplicationToken(bg, "acme", "CLIENTID", NewApplicationToken{Name: "ci", Scopes: []string{ScopeRepoRead, ScopeUserRead}, Expiration: tc.expiration})
			require.NoError(t, err)
			assert.Equal(t, "ABCDEFGHIJabcdefghij0123456789ABCDEFGHIJ", tok.Token)

			got := srv.Last(t)
			assert.Equal(t, "POST", got.Method)
			assert.Equal(t, "/api/v1/organization/acme/applications/CLIENTID/tokens", got.Path)
			assert.Equal(t, "application/json", got.ContentType)
			body := decodeBody(t, got.Body)
			assert.Equal(t, "ci", body["name"])
			assert.Equal(t, "repo:read user:read", body["scope"], "space-joined")
			if tc.want == nil {
				assert.NotContains(t, body, "expiration")
				assert.Len(t, body, 2)
			} else {
				assert.Equal(t, tc.want, body["expiration"], "an integer number of seconds")
				assert.Len(t, body, 3)
			}
		})
	}

	tok, err := c.CreateApplicationToken(bg, "acme", "CLIENTID", NewApplicationToken{Name: "ci", Scopes: []string{ScopeRepoRead}})
	require.NoError(t, err)
	assert.Equal(t, &ApplicationToken{
		UUID: "u1", Name: "ci", Scope: "repo:read user:read",
		ExpiresAt: ISOTime{time.Date(2036, 7, 10, 11, 5, 34, 123456000, time.UTC)},
		Created:   ISOTime{time.Date(2026, 7, 10, 11, 5, 34, 0, time.UTC)},
		CreatedBy: "quayadmin", Token: "ABCDEFGHIJabcdefghij0123456789ABCDEFGHIJ",
	}, tok)
	assert.Equal(t, []string{"repo:read", "user:read"}, tok.Scopes())
	assert.True(t, tok.LastAccessed.IsZero())
}

func TestCreateApplicationToken_NeedsAName(t *testing.T) {
	srv := newFakeQuay(t, jsonReply(200, `{}`))
	_, err := newTestClient(t, srv.URL).CreateApplicationToken(bg, "acme", "CID", NewApplicationToken{Scopes: []string{ScopeRepoRead}})
	require.Error(t, err)
	assert.Zero(t, srv.Calls(), "Quay would answer 400; nothing is sent")
}

func TestListApplicationTokens_FollowsPages(t *testing.T) {
	srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("next_page") {
		case "":
			jsonReply(200, `{"tokens": [{"uuid": "a"}, {"uuid": "b"}], "next_page": "gAAAAA+b/c=="}`)(w, r)
		case "gAAAAA+b/c==":
			jsonReply(200, `{"tokens": [{"uuid": "c"}], "next_page": "page 3&x=y"}`)(w, r)
		case "page 3&x=y":
			jsonReply(200, `{"tokens": [{"uuid": "d", "name": null}]}`)(w, r)
		default:
			jsonReply(400, `{"message": "bad page token"}`)(w, r)
		}
	})
	tokens, err := newTestClient(t, srv.URL).ListApplicationTokens(bg, "acme", "CID")
	require.NoError(t, err)
	var uuids []string
	for _, tok := range tokens {
		uuids = append(uuids, tok.UUID)
	}
	assert.Equal(t, []string{"a", "b", "c", "d"}, uuids)
	reqs := srv.Requests()
	require.Len(t, reqs, 3, "stops at the page without next_page")
	assert.Equal(t, "", reqs[0].Query)
	assert.Equal(t, "next_page=gAAAAA%2Bb%2Fc%3D%3D", reqs[1].Query, "the opaque cursor is escaped, '+' included")
	assert.Equal(t, "next_page=page+3%26x%3Dy", reqs[2].Query)
	for _, r := range reqs {
		assert.Equal(t, "/api/v1/organization/acme/applications/CID/tokens", r.Path)
	}
}

func TestListApplicationTokens_StopsOnARepeatedCursor(t *testing.T) {
	srv := newFakeQuay(t, jsonReply(200, `{"tokens": [{"uuid": "a"}], "next_page": "same"}`))
	tokens, err := newTestClient(t, srv.URL).ListApplicationTokens(bg, "acme", "CID")
	require.NoError(t, err)
	assert.Len(t, tokens, 2)
	assert.Equal(t, 2, srv.Calls(), "a cursor that does not move ends the walk")
}

func TestListApplicationTokens_ErrorOnALaterPage(t *testing.T) {
	srv := newFakeQuay(t, sequence(
		jsonReply(200, `{"tokens": [{"uuid": "a"}], "next_page": "p2"}`),
		jsonReply(404, apiException(404, "not_found", "Not Found"))))
	tokens, err := newTestClient(t, srv.URL).ListApplicationTokens(bg, "acme", "CID")
	require.Error(t, err)
	assert.True(t, IsNotFound(err))
	assert.Nil(t, tokens, "no partial list")
}

func TestListRepositories_FollowsPages(t *testing.T) {
	srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("next_page") == "" {
			jsonReply(200, `{"repositories": [{"namespace": "acme", "name": "app", "is_public": false}], "next_page": "n+2"}`)(w, r)
			return
		}
		jsonReply(200, `{"repositories": [{"namespace": "acme", "name": "web", "is_public": true}]}`)(w, r)
	})
	repos, err := newTestClient(t, srv.URL).ListRepositories(bg, "acme")
	require.NoError(t, err)
	assert.Equal(t, []Repository{{Namespace: "acme", Name: "app"}, {Namespace: "acme", Name: "web", IsPublic: true}}, repos)
	assert.Equal(t, "acme/web", repos[1].FullName())
	reqs := srv.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "/api/v1/repository", reqs[0].Path)
	q, err := url.ParseQuery(reqs[1].Query)
	require.NoError(t, err)
	assert.Equal(t, url.Values{"namespace": {"acme"}, "next_page": {"n+2"}}, q)
}

// completeObject answers every call of TestPaths and TestRequestBodies with
// what the creates must find in Quay's answer (an ID and a secret).
const completeObject = `{"uuid": "u1", "name": "acme+ci", "token": "SECRET"}`

// Every call goes to Quay's path with each segment escaped; robot names keep
// their '+', which Quay reads literally in a path.
func TestPaths(t *testing.T) {
	srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		jsonReply(200, completeObject)(w, r)
	})
	c := newTestClient(t, srv.URL)
	for _, tc := range []struct {
		want string // method and escaped path
		do   func() error
	}{
		{"GET /api/v1/user/", func() error { _, err := c.GetUser(bg); return err }},
		{"PUT /api/v1/user/", func() error { return c.ChangePassword(bg, secretPassword) }},
		{"GET /api/v1/user/authorizations", func() error { _, err := c.ListAuthorizations(bg); return err }},
		{"DELETE /api/v1/user/authorizations/u-1", func() error { return c.DeleteAuthorization(bg, "u-1") }},
		{"GET /api/v1/app/CID", func() error { _, err := c.GetPublicApplication(bg, "CID"); return err }},
		{"POST /api/v1/organization/", func() error { return c.CreateOrganization(bg, "acme", "") }},
		{"GET /api/v1/organization/acme", func() error { _, err := c.GetOrganization(bg, "acme"); return err }},
		{"GET /api/v1/organization/acme/applications", func() error { _, err := c.ListApplications(bg, "acme"); return err }},
		{"POST /api/v1/organization/acme/applications", func() error {
			_, err := c.CreateApplication(bg, "acme", NewApplication{Name: "vault"})
			return err
		}},
		{"GET /api/v1/organization/acme/applications/CID", func() error { _, err := c.GetApplication(bg, "acme", "CID"); return err }},
		{"DELETE /api/v1/organization/acme/applications/CID", func() error { return c.DeleteApplication(bg, "acme", "CID") }},
		{"DELETE /api/v1/organization/acme/applications/CID/tokens/t-1", func() error {
			return c.DeleteApplicationToken(bg, "acme", "CID", "t-1")
		}},
		{"PUT /api/v1/organization/acme/robots/ci", func() error { _, err := c.CreateRobot(bg, acme, "ci", RobotSpec{}); return err }},
		{"GET /api/v1/organization/acme/robots/ci", func() error { _, err := c.GetRobot(bg, acme, "ci"); return err }},
		{"DELETE /api/v1/organization/acme/robots/ci", func() error { return c.DeleteRobot(bg, acme, "ci") }},
		{"POST /api/v1/organization/acme/robots/ci/regenerate", func() error { _, err := c.RegenerateRobotToken(bg, acme, "ci"); return err }},
		{"GET /api/v1/organization/acme/robots/ci/permissions", func() error { _, err := c.GetRobotPermissions(bg, acme, "ci"); return err }},
		{"PUT /api/v1/user/robots/ci", func() error { _, err := c.CreateRobot(bg, userNS, "ci", RobotSpec{}); return err }},
		{"GET /api/v1/user/robots/ci", func() error { _, err := c.GetRobot(bg, userNS, "ci"); return err }},
		{"DELETE /api/v1/user/robots/ci", func() error { return c.DeleteRobot(bg, userNS, "ci") }},
		{"POST /api/v1/user/robots/ci/regenerate", func() error { _, err := c.RegenerateRobotToken(bg, userNS, "ci"); return err }},
		{"GET /api/v1/user/robots/ci/permissions", func() error { _, err := c.GetRobotPermissions(bg, userNS, "ci"); return err }},
		{"POST /api/v1/repository", func() error { return c.CreateRepository(bg, NewRepository{Namespace: "acme", Repository: "app"}) }},
		{"GET /api/v1/repository/acme/app", func() error { _, err := c.GetRepository(bg, "acme", "app"); return err }},
		{"PUT /api/v1/repository/acme/app/permissions/user/acme+ci", func() error {
			return c.SetUserPermission(bg, "acme", "app", "acme+ci", RoleWrite)
		}},
		{"DELETE /api/v1/repository/acme/app/permissions/user/acme+ci", func() error {
			return c.DeleteUserPermission(bg, "acme", "app", "acme+ci")
		}},
		{"PUT /api/v1/repository/acme/app/permissions/team/builders", func() error {
			return c.SetTeamPermission(bg, "acme", "app", "builders", RoleAdmin)
		}},
		{"PUT /api/v1/organization/acme/team/builders", func() error {
			_, err := c.UpdateTeam(bg, "acme", "builders", TeamRoleMember, "")
			return err
		}},
		{"PUT /api/v1/organization/acme/team/builders/members/acme+ci", func() error { return c.AddTeamMember(bg, "acme", "builders", "acme+ci") }},
		{"DELETE /api/v1/organization/acme/team/builders/members/acme+ci", func() error {
			return c.RemoveTeamMember(bg, "acme", "builders", "acme+ci")
		}},
		{"GET /api/v1/organization/acme/prototypes", func() error { _, err := c.ListPrototypes(bg, "acme"); return err }},
		{"POST /api/v1/organization/acme/prototypes", func() error {
			_, err := c.CreatePrototype(bg, "acme", RoleRead, PrototypeUser{Name: "acme+ci", Kind: "user"})
			return err
		}},
		{"DELETE /api/v1/organization/acme/prototypes/p-1", func() error { return c.DeletePrototype(bg, "acme", "p-1") }},
		// Names Quay would refuse still cannot reach another path.
		{"GET /api/v1/organization/a%2Fb%3Fc%20d/robots/x%2F..%2Fy", func() error {
			_, err := c.GetRobot(bg, Namespace{Kind: NamespaceOrganization, Name: "a/b?c d"}, "x/../y")
			return err
		}},
	} {
		require.NoError(t, tc.do(), tc.want)
		got := srv.Last(t)
		assert.Equal(t, tc.want, got.Method+" "+got.EscapedPath)
	}
	last := srv.Last(t)
	assert.Equal(t, "/api/v1/organization/a/b?c d/robots/x/../y", last.Path, "decoded, the name is whole")
}

// A name that is only dots stays a path segment of its own, and a proxy
// that normalises paths (RFC 3986 dot-segment removal: nginx proxy_pass
// with a URI, Envoy's normalize_path; nginx merges "//" by default) would
// send the call to another resource: deleting robot ".." would delete the
// organization. An empty name addresses a route Quay does not have, and its
// 404 would read as "already gone". Such calls are refused before anything
// is sent.
func TestPaths_NamesThatChangeThePathAreRefused(t *testing.T) {
	var mu sync.Mutex
	var reached []string
	quay := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached = append(reached, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}
	normalising := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path, r.URL.RawPath = path.Clean(r.URL.Path), ""
		quay(w, r)
	}))
	defer normalising.Close()
	c := newTestClient(t, normalising.URL)
	dots := Namespace{Kind: NamespaceOrganization, Name: ".."}

	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"DeleteRobot ..", func() error { return c.DeleteRobot(bg, acme, "..") }},
		{"DeleteRobot in namespace ..", func() error { return c.DeleteRobot(bg, dots, "ci") }},
		{"DeleteRobot .", func() error { return c.DeleteRobot(bg, acme, ".") }},
		{"GetRobot ..", func() error { _, err := c.GetRobot(bg, acme, ".."); return err }},
		{"CreateRobot ..", func() error { _, err := c.CreateRobot(bg, acme, "..", RobotSpec{}); return err }},
		{"RegenerateRobotToken ..", func() error { _, err := c.RegenerateRobotToken(bg, acme, ".."); return err }},
		{"DeleteApplication ..", func() error { return c.DeleteApplication(bg, "acme", "..") }},
		{"DeleteApplicationToken ..", func() error { return c.DeleteApplicationToken(bg, "acme", "CID", "..") }},
		{"CreateApplicationToken for application ..", func() error {
			_, err := c.CreateApplicationToken(bg, "acme", "..", newToken)
			return err
		}},
		{"DeleteAuthorization ..", func() error { return c.DeleteAuthorization(bg, "..") }},
		{"RemoveTeamMember ..", func() error { return c.RemoveTeamMember(bg, "acme", "builders", "..") }},
		{"AddTeamMember to team ..", func() error { return c.AddTeamMember(bg, "acme", "..", "acme+ci") }},
		{"DeleteUserPermission ..", func() error { return c.DeleteUserPermission(bg, "acme", "..", "acme+ci") }},
		{"SetTeamPermission .", func() error { return c.SetTeamPermission(bg, "acme", "app", ".", RoleRead) }},
		{"DeletePrototype ..", func() error { return c.DeletePrototype(bg, "acme", "..") }},
		{"GetOrganization ..", func() error { _, err := c.GetOrganization(bg, ".."); return err }},
		{"DeleteApplicationToken with an empty uuid", func() error { return c.DeleteApplicationToken(bg, "acme", "CID", "") }},
		{"DeleteApplicationToken with an empty application", func() error { return c.DeleteApplicationToken(bg, "acme", "", "u") }},
		{"ListApplicationTokens of an empty organization", func() error { _, err := c.ListApplicationTokens(bg, "", "CID"); return err }},
		{"DeleteRobot with an empty name", func() error { return c.DeleteRobot(bg, acme, "") }},
		{"RegenerateRobotToken with an empty name", func() error { _, err := c.RegenerateRobotToken(bg, acme, ""); return err }},
		{"ListRobots of an empty organization", func() error {
			_, err := c.ListRobots(bg, Namespace{Kind: NamespaceOrganization}, ListRobotsOptions{})
			return err
		}},
		{"DeleteAuthorization with an empty uuid", func() error { return c.DeleteAuthorization(bg, "") }},
		{"RemoveTeamMember with an empty member", func() error { return c.RemoveTeamMember(bg, "acme", "builders", "") }},
		{"SetUserPermission on an empty repository", func() error { return c.SetUserPermission(bg, "acme", "", "acme+ci", RoleRead) }},
		{"GetRepository with an empty namespace", func() error { _, err := c.GetRepository(bg, "", "app"); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			require.Error(t, err)
			var qe *Error
			require.ErrorAs(t, err, &qe)
			assert.Zero(t, qe.StatusCode)
			assert.False(t, IsTransient(err))
			assert.False(t, IsNotFound(err) || IsRobotNotFound(err), "not mistaken for a resource that is gone")
			assert.Contains(t, err.Error(), `refusing a name that is empty, "." or ".."`)
		})
	}
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), reached...)
	}
	assert.Empty(t, seen(), "nothing reached Quay")

	// Dots inside a name are just characters; the resources Quay declares
	// with a trailing slash keep it.
	require.NoError(t, c.DeleteRobot(bg, acme, "ci.v2"))
	require.NoError(t, c.DeleteRobot(bg, acme, "..."))
	require.NoError(t, c.CreateOrganization(bg, "acme", ""))
	require.NoError(t, c.ChangePassword(bg, secretPassword))
	assert.Equal(t, []string{
		"DELETE /api/v1/organization/acme/robots/ci.v2", "DELETE /api/v1/organization/acme/robots/...",
		"POST /api/v1/organization", "PUT /api/v1/user", // as cleaned by the proxy
	}, seen())
}

func TestRequestBodies(t *testing.T) {
	srv := newFakeQuay(t, jsonReply(200, completeObject))
	c := newTestClient(t, srv.URL)
	for _, tc := range []struct {
		name, want string
		do         func() error
	}{
		{"robot with description and metadata", `{"description": "vault: ci", "unstructured_metadata": {"vault_role": "ci", "ttl": 3600}}`, func() error {
			_, err := c.CreateRobot(bg, acme, "ci", RobotSpec{Description: "vault: ci", UnstructuredMetadata: map[string]any{"vault_role": "ci", "ttl": 3600}})
			return err
		}},
		{"robot without", `{}`, func() error { _, err := c.CreateRobot(bg, acme, "ci", RobotSpec{}); return err }},
		{"organization", `{"name": "acme"}`, func() error { return c.CreateOrganization(bg, "acme", "") }},
		{"organization with email", `{"name": "acme", "email": "ops@example.com"}`, func() error { return c.CreateOrganization(bg, "acme", "ops@example.com") }},
		{"application", `{"name": "vault", "redirect_uri": "https://vault/cb"}`, func() error {
			_, err := c.CreateApplication(bg, "acme", NewApplication{Name: "vault", RedirectURI: "https://vault/cb"})
			return err
		}},
		{"repository defaults to private", `{"namespace": "acme", "repository": "app", "visibility": "private", "description": ""}`, func() error {
			return c.CreateRepository(bg, NewRepository{Namespace: "acme", Repository: "app"})
		}},
		{"public repository", `{"namespace": "acme", "repository": "app", "visibility": "public", "description": "d"}`, func() error {
			return c.CreateRepository(bg, NewRepository{Namespace: "acme", Repository: "app", Visibility: "public", Description: "d"})
		}},
		{"user permission", `{"role": "write"}`, func() error { return c.SetUserPermission(bg, "acme", "app", "acme+ci", RoleWrite) }},
		{"team permission", `{"role": "admin"}`, func() error { return c.SetTeamPermission(bg, "acme", "app", "builders", RoleAdmin) }},
		{"team", `{"role": "creator", "description": "CI"}`, func() error {
			_, err := c.UpdateTeam(bg, "acme", "builders", TeamRoleCreator, "CI")
			return err
		}},
		{"team without description", `{"role": "member"}`, func() error {
			_, err := c.UpdateTeam(bg, "acme", "builders", TeamRoleMember, "")
			return err
		}},
		{"prototype", `{"role": "read", "delegate": {"name": "acme+ci", "kind": "user"}}`, func() error {
			_, err := c.CreatePrototype(bg, "acme", RoleRead, PrototypeUser{Name: "acme+ci", Kind: "user", IsRobot: true})
			return err
		}},
		{"password", `{"password": "` + secretPassword + `"}`, func() error { return c.ChangePassword(bg, secretPassword) }},
		{"initialize without token", `{"username": "first", "password": "` + secretPassword + `", "access_token": false}`, func() error {
			_, err := c.InitializeUser(bg, InitializeUserRequest{Username: "first", Password: secretPassword})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tc.do())
			got := srv.Last(t)
			assert.Equal(t, "application/json", got.ContentType)
			assert.JSONEq(t, tc.want, got.Body)
		})
	}
	require.NoError(t, c.AddTeamMember(bg, "acme", "builders", "acme+ci"))
	assert.Empty(t, srv.Last(t).Body, "no body")
	assert.Empty(t, srv.Last(t).ContentType)
}

func TestRobots_Decode(t *testing.T) {
	srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/organization/acme/robots":
			jsonReply(200, `{"robots": [
				{"name": "acme+ci", "created": "Wed, 22 Jul 2026 10:00:00 -0000", "last_accessed": null, "description": "",
				 "teams": [{"name": "builders", "avatar": {"name": "builders", "hash": "h", "color": "#fff", "kind": "team"}}],
				 "repositories": ["app", "web"]},
				{"name": "acme+deploy", "created": "Thu, 23 Jul 2026 08:30:15 -0000", "last_accessed": "Fri, 24 Jul 2026 00:00:01 -0000", "description": "d", "teams": [], "repositories": []}
			]}`)(w, r)
		default:
			jsonReply(201, `{"name": "acme+ci", "created": "Wed, 22 Jul 2026 10:00:00 -0000", "last_accessed": null, "description": "d", "token": "`+robotToken+`", "unstructured_metadata": {"k": "v"}}`)(w, r)
		}
	})
	c := newTestClient(t, srv.URL)
	robot, err := c.CreateRobot(bg, acme, "ci", RobotSpec{Description: "d"})
	require.NoError(t, err)
	assert.Equal(t, &Robot{
		Name: "acme+ci", Created: RFC2822Time{time.Date(2026, 7, 22, 10, 0, 0, 0, time.UTC)}, Description: "d",
		Token: robotToken, UnstructuredMetadata: map[string]any{"k": "v"},
	}, robot)
	assert.Equal(t, "ci", robot.ShortName())

	robots, err := c.ListRobots(bg, acme, ListRobotsOptions{Permissions: true, Limit: 10})
	require.NoError(t, err)
	require.Len(t, robots, 2)
	assert.Equal(t, []RobotTeam{{Name: "builders"}}, robots[0].Teams)
	assert.Equal(t, []string{"app", "web"}, robots[0].Repositories)
	assert.True(t, robots[0].LastAccessed.IsZero())
	assert.Equal(t, time.Date(2026, 7, 24, 0, 0, 1, 0, time.UTC), robots[1].LastAccessed.Time)
	q, err := url.ParseQuery(srv.Last(t).Query)
	require.NoError(t, err)
	assert.Equal(t, url.Values{"permissions": {"true"}, "token": {"false"}, "limit": {"10"}}, q, "tokens are not listed unless asked for")

	_, err = c.ListRobots(bg, userNS, ListRobotsOptions{Token: true})
	require.NoError(t, err)
	assert.Equal(t, "/api/v1/user/robots", srv.Last(t).Path)
	q, _ = url.ParseQuery(srv.Last(t).Query)
	assert.Equal(t, url.Values{"permissions": {"false"}, "token": {"true"}}, q)
}

func TestNamespace_RobotNames(t *testing.T) {
	assert.Equal(t, "acme+ci", acme.RobotUsername("ci"))
	assert.Equal(t, "quayadmin+ci", userNS.RobotUsername("ci"))
	assert.Equal(t, "ci", Robot{Name: "acme+ci"}.ShortName())
	assert.Equal(t, "plain", Robot{Name: "plain"}.ShortName())
}

func TestOtherResources_Decode(t *testing.T) {
	srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/user/":
			jsonReply(200, `{"anonymous": false, "username": "quayadmin", "email": "q@example.com", "verified": true, "super_user": true, "can_create_repo": true,
				"organizations": [{"name": "acme", "is_org_admin": true, "avatar": {}}], "logins": []}`)(w, r)
		case "/api/v1/organization/acme":
			jsonReply(200, `{"name": "acme", "email": "ops@example.com", "is_admin": true, "is_member": true, "teams": {}}`)(w, r)
		case "/api/v1/organization/acme/applications":
			jsonReply(200, `{"applications": [{"name": "vault", "description": "", "application_uri": "", "client_id": "CID", "client_secret": "SECRET", "redirect_uri": null, "avatar_email": null}]}`)(w, r)
		case "/api/v1/user/authorizations":
			jsonReply(200, `{"authorizations": [{"uuid": "a1", "application": {"name": "vault", "clientId": "CID", "organization": {"name": "acme"}}, "scopes": [{"scope": "repo:read", "description": "..."}]}]}`)(w, r)
		case "/api/v1/organization/acme/prototypes":
			jsonReply(200, `{"prototypes": [{"id": "p1", "role": "read", "activating_user": null, "delegate": {"name": "acme+ci", "kind": "user", "is_robot": true}}]}`)(w, r)
		case "/api/v1/organization/acme/team/builders":
			jsonReply(200, `{"name": "builders", "description": "", "can_view": true, "role": "member", "new_team": true}`)(w, r)
		case "/api/v1/app/CID":
			jsonReply(200, `{"name": "vault", "description": "", "uri": "", "organization": {"name": "acme"}}`)(w, r)
		}
	})
	c := newTestClient(t, srv.URL)

	u, err := c.GetUser(bg)
	require.NoError(t, err)
	assert.Equal(t, &User{Username: "quayadmin", Email: "q@example.com", Verified: true, SuperUser: true, CanCreateRepo: true,
		Organizations: []UserOrganization{{Name: "acme", IsOrgAdmin: true}}}, u)

	org, err := c.GetOrganization(bg, "acme")
	require.NoError(t, err)
	assert.Equal(t, &Organization{Name: "acme", Email: "ops@example.com", IsAdmin: true, IsMember: true, Teams: map[string]Team{}}, org)

	apps, err := c.ListApplications(bg, "acme")
	require.NoError(t, err)
	assert.Equal(t, []Application{{Name: "vault", ClientID: "CID", ClientSecret: "SECRET"}}, apps)

	auths, err := c.ListAuthorizations(bg)
	require.NoError(t, err)
	require.Len(t, auths, 1)
	assert.Equal(t, "a1", auths[0].UUID)
	assert.Equal(t, "vault", auths[0].Application.Name)
	assert.Equal(t, "acme", auths[0].Application.Organization.Name)
	assert.Equal(t, "repo:read", auths[0].Scopes[0].Scope)

	protos, err := c.ListPrototypes(bg, "acme")
	require.NoError(t, err)
	assert.Equal(t, []Prototype{{ID: "p1", Role: "read", Delegate: PrototypeUser{Name: "acme+ci", Kind: "user", IsRobot: true}}}, protos)

	team, err := c.UpdateTeam(bg, "acme", "builders", TeamRoleMember, "")
	require.NoError(t, err)
	assert.Equal(t, &Team{Name: "builders", Role: "member"}, team)

	app, err := c.GetPublicApplication(bg, "CID")
	require.NoError(t, err)
	assert.Equal(t, "vault", app.Name)
	assert.Equal(t, "acme", app.Organization.Name)
}

// Quay answers CreateOrganization with 201 and the JSON string "Created",
// and deletes with 204 and no body.
func TestStatusesWithoutAnObject(t *testing.T) {
	srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		jsonReply(201, `"Created"`)(w, r)
	})
	c := newTestClient(t, srv.URL)
	require.NoError(t, c.CreateOrganization(bg, "acme", ""))
	require.NoError(t, c.CreateRepository(bg, NewRepository{Namespace: "acme", Repository: "app"}))
	require.NoError(t, c.DeleteApplicationToken(bg, "acme", "CID", "u"))
	require.NoError(t, c.DeleteRobot(bg, acme, "ci"))
}

func TestAuthorizeApp(t *testing.T) {
	t.Run("token from the fragment; the redirect is not followed", func(t *testing.T) {
		srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/oauth/authorizeapp" {
				w.WriteHeader(http.StatusTeapot) // the redirect target: never reached
				return
			}
			w.Header().Set("Location", "/oauth/localapp?scope=org%3Aadmin#access_token=ABCDEFGHIJabcdefghij0123456789ABCDEFGHIJ&token_type=Bearer&expires_in=315576000")
			w.WriteHeader(http.StatusFound)
		})
		tok, err := newTestClient(t, srv.URL).AuthorizeApp(bg, DirectOAuthRequest{
			Username: "svc", Password: secretPassword, ClientID: "CID", RedirectURI: srv.URL + "/oauth/localapp",
			Scopes: []string{ScopeOrgAdmin, ScopeUserRead},
		})
		require.NoError(t, err)
		assert.Equal(t, &DirectOAuthToken{AccessToken: "ABCDEFGHIJabcdefghij0123456789ABCDEFGHIJ", ExpiresIn: 315576000 * time.Second}, tok)
		assert.Equal(t, 1, srv.Calls())

		got := srv.Last(t)
		assert.Equal(t, "POST /oauth/authorizeapp", got.Method+" "+got.Path)
		assert.Equal(t, "application/x-www-form-urlencoded", got.ContentType)
		form, err := url.ParseQuery(got.Body)
		require.NoError(t, err)
		assert.Equal(t, url.Values{
			"client_id": {"CID"}, "redirect_uri": {srv.URL + "/oauth/localapp"},
			"scope": {"org:admin user:read"}, "response_type": {"token"},
		}, form)
	})
	// The fragment is form-encoded once: '%25', '%26' and '%2B' stand for
	// '%', '&' and '+', not for escapes of their own.
	t.Run("fragment decoded once", func(t *testing.T) {
		srv := newFakeQuay(t, reply(http.StatusFound, "", "", "Location", "http://quay/oauth/localapp#access_token=abc%2Bdef%26g&token_type=Bearer&expires_in=60"))
		tok, err := newTestClient(t, srv.URL).AuthorizeApp(bg, DirectOAuthRequest{ClientID: "CID"})
		require.NoError(t, err)
		assert.Equal(t, &DirectOAuthToken{AccessToken: "abc+def&g", ExpiresIn: time.Minute}, tok)

		srv = newFakeQuay(t, reply(http.StatusFound, "", "", "Location",
			"http://quay/oauth/localapp#error=invalid_scope&error_description=Scope+%22repo%3Aread+%26+more%22+is+100%25+invalid"))
		_, err = newTestClient(t, srv.URL).AuthorizeApp(bg, DirectOAuthRequest{ClientID: "CID"})
		require.Error(t, err)
		var qe *Error
		require.ErrorAs(t, err, &qe)
		assert.Equal(t, "invalid_scope", qe.Type)
		assert.Equal(t, `Scope "repo:read & more" is 100% invalid`, qe.Message)
	})
	t.Run("without expires_in", func(t *testing.T) {
		srv := newFakeQuay(t, reply(http.StatusFound, "", "", "Location", "http://quay/oauth/localapp#access_token=TOKEN"))
		tok, err := newTestClient(t, srv.URL).AuthorizeApp(bg, DirectOAuthRequest{ClientID: "CID"})
		require.NoError(t, err)
		assert.Equal(t, "TOKEN", tok.AccessToken)
		assert.Zero(t, tok.ExpiresIn)
	})

	for _, tc := range []struct {
		name                    string
		handler                 http.HandlerFunc
		status                  int
		errType, message        string
		unauthorized, transient bool
	}{
		{
			name:    "refusal in the redirect's query, as Quay's OAuth provider sends it",
			handler: reply(http.StatusFound, "", "", "Location", "http://quay/oauth/localapp?error=unauthorized_client"),
			status:  302, errType: "unauthorized_client", message: "Quay refused to issue a token",
		},
		{
			name:    "refusal in the fragment",
			handler: reply(http.StatusFound, "", "", "Location", "http://quay/oauth/localapp#error=access_denied&error_description=Nope"),
			status:  302, errType: "access_denied", message: "Nope",
		},
		{
			name:    "redirect without a token",
			handler: reply(http.StatusFound, "", "", "Location", "http://quay/signin?redirect_url=%2Foauth"),
			status:  302, message: "redirect carried no access_token",
		},
		{
			name:    "client not whitelisted: CSRF",
			handler: jsonReply(403, `{"error": "CSRF token was invalid or missing."}`),
			status:  403, errType: "csrf", message: "CSRF token was invalid or missing.", unauthorized: true,
		},
		{
			name:    "wrong password: Flask's HTML 401",
			handler: reply(401, "text/html; charset=utf-8", "<!doctype html>\n<html lang=en>\n<title>401 Unauthorized</title>\n"),
			status:  401, unauthorized: true,
		},
		{
			name:    "bad redirect URI",
			handler: jsonReply(400, `{"error": "invalid_request"}`),
			status:  400, message: "invalid_request",
		},
		{
			name:    "password throttle",
			handler: reply(429, "text/html; charset=utf-8", "Too many login attempts. \nPlease reset your Quay password and try again.", "Retry-After", "600"),
			status:  429, message: "Too many login attempts. \nPlease reset your Quay password and try again.", transient: true,
		},
		{
			name:    "a 200 page instead of the redirect",
			handler: reply(200, "text/html", "<html>Authorize?</html>"),
			status:  200, message: "Quay answered without the redirect that carries the token",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeQuay(t, tc.handler)
			_, err := newTestClient(t, srv.URL).AuthorizeApp(bg, DirectOAuthRequest{Username: "svc", Password: secretPassword, ClientID: "CID", RedirectURI: "http://quay/oauth/localapp"})
			require.Error(t, err)
			var qe *Error
			require.ErrorAs(t, err, &qe)
			assert.Equal(t, tc.status, qe.StatusCode)
			assert.Equal(t, tc.errType, qe.Type)
			if tc.message != "" {
				assert.Equal(t, tc.message, qe.Message)
			}
			assert.Equal(t, tc.unauthorized, IsUnauthorized(err))
			assert.Equal(t, tc.transient, IsTransient(err))
			assert.NotContains(t, err.Error(), "<")
			assert.Equal(t, 1, srv.Calls())
		})
	}
}

func TestTimestamps(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{`"2036-07-10T11:05:34.123456Z"`, utc(2036, 7, 10, 11, 5, 34, 123456000)},
		{`"2036-07-10T11:05:34Z"`, utc(2036, 7, 10, 11, 5, 34, 0)},
		{`"2036-07-10T11:05:34.5Z"`, utc(2036, 7, 10, 11, 5, 34, 500000000)},
		{`"2036-07-10T11:05:34.123456"`, utc(2036, 7, 10, 11, 5, 34, 123456000)},
		{`"2036-07-10T11:05:34"`, utc(2036, 7, 10, 11, 5, 34, 0)},
		{`"2036-07-10T13:05:34+02:00"`, utc(2036, 7, 10, 11, 5, 34, 0)},
		{`null`, time.Time{}},
		{`""`, time.Time{}},
	} {
		var got ISOTime
		require.NoError(t, json.Unmarshal([]byte(tc.in), &got), tc.in)
		assert.True(t, tc.want.Equal(got.Time), "%s: got %v", tc.in, got.Time)
		assert.Equal(t, time.UTC, got.Location(), tc.in)
	}
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{`"Wed, 22 Jul 2026 10:00:00 -0000"`, utc(2026, 7, 22, 10, 0, 0, 0)},
		{`"Wed, 22 Jul 2026 12:00:00 +0200"`, utc(2026, 7, 22, 10, 0, 0, 0)},
		{`"Wed, 22 Jul 2026 10:00:00 GMT"`, utc(2026, 7, 22, 10, 0, 0, 0)},
		{`"Thu, 2 Jul 2026 10:00:00 -0000"`, utc(2026, 7, 2, 10, 0, 0, 0)},
		{`null`, time.Time{}},
	} {
		var got RFC2822Time
		require.NoError(t, json.Unmarshal([]byte(tc.in), &got), tc.in)
		assert.True(t, tc.want.Equal(got.Time), "%s: got %v", tc.in, got.Time)
	}

	for _, bad := range []string{`"yesterday"`, `"2036-13-45T99:00:00Z"`, `42`, `"Wed, 22 Jul 2026"`} {
		var iso ISOTime
		assert.Error(t, json.Unmarshal([]byte(bad), &iso), bad)
		var rfc RFC2822Time
		assert.Error(t, json.Unmarshal([]byte(bad), &rfc), bad)
	}
}

func TestTimestamps_RoundTrip(t *testing.T) {
	when := time.Date(2036, 7, 10, 11, 5, 34, 123456000, time.UTC)
	type both struct {
		ISO ISOTime     `json:"iso"`
		RFC RFC2822Time `json:"rfc"`
	}
	b, err := json.Marshal(both{ISOTime{when}, RFC2822Time{when}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"iso": "2036-07-10T11:05:34.123456Z", "rfc": "Thu, 10 Jul 2036 11:05:34 +0000"}`, string(b))
	var back both
	require.NoError(t, json.Unmarshal(b, &back))
	assert.True(t, when.Equal(back.ISO.Time))
	assert.True(t, when.Truncate(time.Second).Equal(back.RFC.Time), "RFC 2822 has whole seconds")

	b, err = json.Marshal(both{})
	require.NoError(t, err)
	assert.JSONEq(t, `{"iso": null, "rfc": null}`, string(b), "the zero time is null")
}

func TestRenewBootstrapToken_PostsTheTokenWithoutBody(t *testing.T) {
	srv := newFakeQuay(t, jsonReply(200, `{"status": "rotated"}`))
	require.NoError(t, newTestClient(t, srv.URL).RenewBootstrapToken(bg))
	got := srv.Last(t)
	assert.Equal(t, "POST /api/v1/bootstrap/renew", got.Method+" "+got.Path)
	assert.Equal(t, "Bearer "+secretToken, got.Auth)
	assert.Empty(t, got.Body)
}

func TestRenewBootstrapToken_OnlyQuaysAnswerIsARenewal(t *testing.T) {
	for name, answer := range map[string]http.HandlerFunc{
		"firewall page": reply(200, "text/html", "<html>Request blocked</html>"),
		"other JSON":    jsonReply(200, `{"ok": true}`),
		"204":           reply(204, "", ""),
	} {
		srv := newFakeQuay(t, answer)
		assert.Error(t, newTestClient(t, srv.URL).RenewBootstrapToken(bg), name)
	}
}
