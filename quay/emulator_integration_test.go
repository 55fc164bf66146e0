package quay_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// The client against the project's Quay emulator, end to end: the calls the
// engine makes, Quay's error answers, and the faults of a real network.

const directClientID = "DIRECTCLIENTID000000"

// quayEnv is an emulated Quay with a superuser "admin" (password
// "password1"), an organization "acme" it administers, an application
// whitelisted for direct OAuth, and a client holding an admin token with
// every scope.
type quayEnv struct {
	emu    *emulator.Emulator
	srv    *httptest.Server
	token  string
	client *quay.Client
}

func newQuayEnv(t *testing.T) *quayEnv {
	t.Helper()
	cfg, err := emulator.ParseConfig([]byte("SUPER_USERS: [admin]\nDIRECT_OAUTH_CLIENTID_WHITELIST: [" + directClientID + "]\n"))
	require.NoError(t, err)
	emu, err := emulator.New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	require.NoError(t, emu.CreateUser("admin", "password1", "admin@example.com"))
	require.NoError(t, emu.CreateOrganization("acme", "admin"))
	require.NoError(t, emu.CreateApplication("acme", "direct", directClientID, ""))
	token, err := emu.IssueToken("admin", strings.Join(quay.KnownScopes(), " "), 24*time.Hour)
	require.NoError(t, err)
	return &quayEnv{emu: emu, srv: srv, token: token, client: client(t, srv.URL, quay.StaticToken(token))}
}

func client(t *testing.T, url string, cred quay.Credential, opts ...func(*quay.Config)) *quay.Client {
	t.Helper()
	cfg := quay.Config{BaseURL: url, Credential: cred, RetryWaitMin: time.Nanosecond, RetryWaitMax: 2 * time.Nanosecond, MaxRetries: 2}
	for _, opt := range opts {
		opt(&cfg)
	}
	c, err := quay.New(cfg)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

var (
	ctx  = context.Background()
	acme = quay.Namespace{Kind: quay.NamespaceOrganization, Name: "acme"}
)

func TestEmulator_UserAndOrganization(t *testing.T) {
	q := newQuayEnv(t)
	u, err := q.client.GetUser(ctx)
	require.NoError(t, err)
	assert.Equal(t, "admin", u.Username)
	assert.True(t, u.SuperUser)
	assert.Contains(t, u.Organizations, quay.UserOrganization{Name: "acme", IsOrgAdmin: true})

	require.NoError(t, q.client.CreateOrganization(ctx, "widgets", "widgets@example.com"))
	org, err := q.client.GetOrganization(ctx, "widgets")
	require.NoError(t, err)
	assert.Equal(t, "widgets", org.Name)
	assert.True(t, org.IsAdmin)

	err = q.client.CreateOrganization(ctx, "widgets", "")
	assert.Equal(t, 400, quay.StatusOf(err), "an existing name")
	_, err = q.client.GetOrganization(ctx, "nope")
	assert.True(t, quay.IsNotFound(err))
}

func TestEmulator_ApplicationTokens(t *testing.T) {
	q := newQuayEnv(t)
	app, err := q.client.CreateApplication(ctx, "acme", quay.NewApplication{Name: "vault"})
	require.NoError(t, err)
	require.NotEmpty(t, app.ClientID)
	got, err := q.client.GetApplication(ctx, "acme", app.ClientID)
	require.NoError(t, err)
	assert.Equal(t, "vault", got.Name)

	tok, err := q.client.CreateApplicationToken(ctx, "acme", app.ClientID, quay.NewApplicationToken{
		Name: "ci", Scopes: []string{quay.ScopeRepoRead, quay.ScopeUserRead}, Expiration: time.Hour + time.Millisecond,
	})
	require.NoError(t, err)
	assert.Len(t, tok.Token, 40)
	assert.Equal(t, []string{"repo:read", "user:read"}, tok.Scopes())
	assert.Equal(t, time.Hour+time.Second, tok.ExpiresAt.Sub(tok.Created.Time).Round(time.Second), "rounded up to whole seconds")
	assert.Equal(t, "admin", tok.CreatedBy)

	// The minted token acts as its minter, within its scopes.
	minted := client(t, q.srv.URL, quay.StaticToken(tok.Token))
	u, err := minted.GetUser(ctx)
	require.NoError(t, err)
	assert.Equal(t, "admin", u.Username)
	_, err = minted.CreateRobot(ctx, acme, "nope", quay.RobotSpec{})
	assert.True(t, quay.IsForbidden(err), "no org:admin in its scopes: %v", err)

	// No wider than the caller's own scopes.
	_, err = minted.CreateApplicationToken(ctx, "acme", app.ClientID, quay.NewApplicationToken{Name: "wider", Scopes: []string{quay.ScopeRepoWrite}})
	assert.True(t, quay.IsForbidden(err), "%v", err)

	// Over Quay's page size of 50: the list follows next_page.
	for i := range 51 {
		_, err := q.client.CreateApplicationToken(ctx, "acme", app.ClientID, quay.NewApplicationToken{Name: "p", Scopes: []string{quay.ScopeRepoRead}, Expiration: time.Hour})
		require.NoError(t, err, i)
	}
	q.emu.ResetCalls()
	tokens, err := q.client.ListApplicationTokens(ctx, "acme", app.ClientID)
	require.NoError(t, err)
	assert.Len(t, tokens, 52)
	assert.Equal(t, 2, q.emu.Calls("listOrganizationApplicationTokens"))
	for _, listed := range tokens {
		assert.Empty(t, listed.Token, "secrets are never listed")
	}

	require.NoError(t, q.client.DeleteApplicationToken(ctx, "acme", app.ClientID, tok.UUID))
	err = q.client.DeleteApplicationToken(ctx, "acme", app.ClientID, tok.UUID)
	assert.True(t, quay.IsNotFound(err))
	_, err = minted.GetUser(ctx)
	assert.True(t, quay.IsUnauthorized(err), "a revoked token no longer works: %v", err)

	apps, err := q.client.ListApplications(ctx, "acme")
	require.NoError(t, err)
	assert.Len(t, apps, 2)
	require.NoError(t, q.client.DeleteApplication(ctx, "acme", app.ClientID))
	_, err = q.client.GetApplication(ctx, "acme", app.ClientID)
	assert.True(t, quay.IsNotFound(err))
}

func TestEmulator_Robots(t *testing.T) {
	q := newQuayEnv(t)
	robot, err := q.client.CreateRobot(ctx, acme, "ci", quay.RobotSpec{Description: "vault", UnstructuredMetadata: map[string]any{"role": "ci"}})
	require.NoError(t, err)
	assert.Equal(t, "acme+ci", robot.Name)
	assert.Regexp(t, `^[A-Z0-9]{64}$`, robot.Token)
	assert.False(t, robot.Created.IsZero())
	assert.True(t, q.emu.RobotExists("acme+ci"))

	_, err = q.client.CreateRobot(ctx, acme, "ci", quay.RobotSpec{})
	assert.True(t, quay.IsRobotExists(err), "%v", err)

	got, err := q.client.GetRobot(ctx, acme, "ci")
	require.NoError(t, err)
	assert.Equal(t, robot.Token, got.Token)
	assert.Equal(t, "vault", got.Description)

	rotated, err := q.client.RegenerateRobotToken(ctx, acme, "ci")
	require.NoError(t, err)
	assert.NotEqual(t, robot.Token, rotated.Token)

	require.NoError(t, q.client.CreateRepository(ctx, quay.NewRepository{Namespace: "acme", Repository: "app"}))
	require.NoError(t, q.client.SetUserPermission(ctx, "acme", "app", "acme+ci", quay.RoleWrite))
	perms, err := q.client.GetRobotPermissions(ctx, acme, "ci")
	require.NoError(t, err)
	require.Len(t, perms, 1)
	assert.Equal(t, "app", perms[0].Repository.Name)
	assert.Equal(t, quay.RoleWrite, perms[0].Role)
	_, err = q.client.UpdateTeam(ctx, "acme", "builders", quay.TeamRoleMember, "CI robots")
	require.NoError(t, err)
	require.NoError(t, q.client.AddTeamMember(ctx, "acme", "builders", "acme+ci"))
	err = q.client.AddTeamMember(ctx, "acme", "builders", "acme+ci")
	assert.True(t, quay.IsAlreadyTeamMember(err), "%v", err)

	robots, err := q.client.ListRobots(ctx, acme, quay.ListRobotsOptions{Permissions: true})
	require.NoError(t, err)
	require.Len(t, robots, 1)
	assert.Empty(t, robots[0].Token, "not listed unless asked for")
	assert.Equal(t, []quay.RobotTeam{{Name: "builders"}}, robots[0].Teams)
	assert.Contains(t, robots[0].Repositories, "app")

	require.NoError(t, q.client.RemoveTeamMember(ctx, "acme", "builders", "acme+ci"))
	err = q.client.RemoveTeamMember(ctx, "acme", "builders", "acme+ci")
	assert.True(t, quay.IsNotTeamMember(err), "%v", err)
	assert.False(t, quay.IsNoPermission(err))
	require.NoError(t, q.client.DeleteUserPermission(ctx, "acme", "app", "acme+ci"))
	err = q.client.DeleteUserPermission(ctx, "acme", "app", "acme+ci")
	assert.True(t, quay.IsNoPermission(err), "%v", err)
	assert.False(t, quay.IsNotTeamMember(err))
	require.NoError(t, q.client.DeleteRobot(ctx, acme, "ci"))
	_, err = q.client.GetRobot(ctx, acme, "ci")
	assert.True(t, quay.IsRobotNotFound(err), "Quay's 400: %v", err)
	_, err = q.client.GetRobotPermissions(ctx, acme, "ci")
	assert.True(t, quay.IsRobotNotFound(err), "Quay's 400: %v", err)
	err = q.client.DeleteRobot(ctx, acme, "ci")
	assert.True(t, quay.IsRobotNotFound(err))

	// User-namespace robots live in the caller's own namespace.
	user := quay.Namespace{Kind: quay.NamespaceUser, Name: "admin"}
	mine, err := q.client.CreateRobot(ctx, user, "mine", quay.RobotSpec{})
	require.NoError(t, err)
	assert.Equal(t, user.RobotUsername("mine"), mine.Name)
	require.NoError(t, q.client.DeleteRobot(ctx, user, "mine"))
}

func TestEmulator_RepositoriesAndPrototypes(t *testing.T) {
	q := newQuayEnv(t)
	require.NoError(t, q.client.CreateRepository(ctx, quay.NewRepository{Namespace: "acme", Repository: "app"}))
	require.NoError(t, q.client.CreateRepository(ctx, quay.NewRepository{Namespace: "acme", Repository: "web", Visibility: "public"}))
	err := q.client.CreateRepository(ctx, quay.NewRepository{Namespace: "acme", Repository: "app"})
	assert.Equal(t, 400, quay.StatusOf(err), "duplicate: %v", err)

	repo, err := q.client.GetRepository(ctx, "acme", "web")
	require.NoError(t, err)
	assert.True(t, repo.IsPublic)
	repos, err := q.client.ListRepositories(ctx, "acme")
	require.NoError(t, err)
	var names []string
	for _, r := range repos {
		names = append(names, r.FullName())
	}
	assert.ElementsMatch(t, []string{"acme/app", "acme/web"}, names)

	_, err = q.client.UpdateTeam(ctx, "acme", "readers", quay.TeamRoleMember, "")
	require.NoError(t, err)
	require.NoError(t, q.client.SetTeamPermission(ctx, "acme", "app", "readers", quay.RoleRead))

	_, err = q.client.CreateRobot(ctx, acme, "deploy", quay.RobotSpec{})
	require.NoError(t, err)
	proto, err := q.client.CreatePrototype(ctx, "acme", quay.RoleRead, quay.PrototypeUser{Name: "acme+deploy", Kind: "user"})
	require.NoError(t, err)
	assert.Equal(t, "acme+deploy", proto.Delegate.Name)
	protos, err := q.client.ListPrototypes(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, protos, 1)
	assert.Equal(t, proto.ID, protos[0].ID)
	require.NoError(t, q.client.DeletePrototype(ctx, "acme", proto.ID))
	protos, err = q.client.ListPrototypes(ctx, "acme")
	require.NoError(t, err)
	assert.Empty(t, protos)
}

// Quay's answers to credentials it does not accept (endpoints/csrf.py
// csrf_protect, endpoints/exception.py Unauthorized): a GET gets 401
// invalid_token, a mutation the CSRF 403; a known token without the scope
// gets 403 insufficient_scope.
func TestEmulator_CredentialErrors(t *testing.T) {
	q := newQuayEnv(t)
	bogus := client(t, q.srv.URL, quay.StaticToken("BOGUSBOGUSBOGUSBOGUSBOGUSBOGUSBOGUSBOGUS"))
	_, err := bogus.GetUser(ctx)
	assert.True(t, quay.IsUnauthorized(err), "%v", err)
	assert.False(t, quay.IsForbidden(err))
	_, err = bogus.CreateRobot(ctx, acme, "ci", quay.RobotSpec{})
	assert.Equal(t, 403, quay.StatusOf(err))
	assert.True(t, quay.IsUnauthorized(err), "the CSRF 403 means the credential was not accepted: %v", err)
	assert.False(t, quay.IsForbidden(err))

	narrow, err := q.emu.IssueToken("admin", "repo:read", time.Hour)
	require.NoError(t, err)
	_, err = client(t, q.srv.URL, quay.StaticToken(narrow)).CreateRobot(ctx, acme, "ci", quay.RobotSpec{})
	assert.True(t, quay.IsForbidden(err), "%v", err)
	assert.False(t, quay.IsUnauthorized(err))

	// A credential that rotates is honoured on the next call.
	current := "BOGUSBOGUSBOGUSBOGUSBOGUSBOGUSBOGUSBOGUS"
	rotating := client(t, q.srv.URL, credentialFunc(func() string { return current }))
	_, err = rotating.GetUser(ctx)
	require.Error(t, err)
	current = q.token
	_, err = rotating.GetUser(ctx)
	require.NoError(t, err)
}

type credentialFunc func() string

func (f credentialFunc) BearerToken(context.Context) (string, error) { return f(), nil }

func TestEmulator_InitializeUser(t *testing.T) {
	cfg, err := emulator.ParseConfig([]byte("FEATURE_USER_INITIALIZE: true\nSUPER_USERS: [first]\n"))
	require.NoError(t, err)
	emu, err := emulator.New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(emu)
	defer srv.Close()

	anonymous := client(t, srv.URL, nil)
	resp, err := anonymous.InitializeUser(ctx, quay.InitializeUserRequest{Username: "first", Password: "long-enough-password", Email: "first@example.com", AccessToken: true})
	require.NoError(t, err)
	assert.Equal(t, "first", resp.Username)
	assert.Len(t, resp.AccessToken, 40)

	u, err := client(t, srv.URL, quay.StaticToken(resp.AccessToken)).GetUser(ctx)
	require.NoError(t, err)
	assert.Equal(t, "first", u.Username)

	_, err = anonymous.InitializeUser(ctx, quay.InitializeUserRequest{Username: "second", Password: "long-enough-password", Email: "s@example.com"})
	require.Error(t, err)
	assert.Equal(t, 400, quay.StatusOf(err))
	assert.Contains(t, err.Error(), "non-empty database")
	assertNoSecretIn(t, err.Error(), "long-enough-password")
}

func TestEmulator_AuthorizeApp(t *testing.T) {
	q := newQuayEnv(t)
	anonymous := client(t, q.srv.URL, nil)
	req := quay.DirectOAuthRequest{
		Username: "admin", Password: "password1", ClientID: directClientID,
		RedirectURI: q.srv.URL + "/oauth/localapp", Scopes: []string{quay.ScopeOrgAdmin, quay.ScopeUserRead},
	}
	tok, err := anonymous.AuthorizeApp(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, 315576000*time.Second, tok.ExpiresIn)
	u, err := client(t, q.srv.URL, quay.StaticToken(tok.AccessToken)).GetUser(ctx)
	require.NoError(t, err)
	assert.Equal(t, "admin", u.Username)

	notListed := req
	notListed.ClientID = "NOTWHITELISTED000000"
	_, err = anonymous.AuthorizeApp(ctx, notListed)
	assert.True(t, quay.IsUnauthorized(err), "Quay's CSRF check: %v", err)

	require.NoError(t, q.emu.CreateUser("outsider", "password2", "o@example.com"))
	outsider := req
	outsider.Username, outsider.Password = "outsider", "password2"
	_, err = anonymous.AuthorizeApp(ctx, outsider)
	var qe *quay.Error
	require.ErrorAs(t, err, &qe)
	assert.Equal(t, "unauthorized_client", qe.Type, "not an admin of the application's organization")

	// Last: a wrong password starts Quay's login throttle for the user.
	wrong := req
	wrong.Password = "wrong-password"
	_, err = anonymous.AuthorizeApp(ctx, wrong)
	assert.True(t, quay.IsUnauthorized(err), "%v", err)
	assertNoSecretIn(t, err.Error(), "wrong-password")
}

func TestEmulator_Faults(t *testing.T) {
	t.Run("a burst of 429s on a POST is ridden out", func(t *testing.T) {
		q := newQuayEnv(t)
		app, err := q.client.CreateApplication(ctx, "acme", quay.NewApplication{Name: "vault"})
		require.NoError(t, err)
		q.emu.Faults().Burst429("createOrganizationApplicationToken", 2)
		tok, err := q.client.CreateApplicationToken(ctx, "acme", app.ClientID, quay.NewApplicationToken{Name: "ci", Scopes: []string{quay.ScopeRepoRead}})
		require.NoError(t, err)
		assert.NotEmpty(t, tok.Token)
		assert.Equal(t, 3, q.emu.Calls("createOrganizationApplicationToken"))
		tokens, err := q.client.ListApplicationTokens(ctx, "acme", app.ClientID)
		require.NoError(t, err)
		assert.Len(t, tokens, 1, "one token, not three")
	})
	t.Run("a longer burst exhausts the retries", func(t *testing.T) {
		q := newQuayEnv(t)
		q.emu.Faults().Burst429("getLoggedInUser", 5)
		_, err := q.client.GetUser(ctx)
		assert.True(t, quay.IsRateLimited(err))
		assert.Equal(t, 3, q.emu.Calls("getLoggedInUser"))
		assert.NotContains(t, err.Error(), "<", "nginx's page is not quoted")
	})
	t.Run("503s on a GET are retried", func(t *testing.T) {
		q := newQuayEnv(t)
		q.emu.Faults().FailNext("getLoggedInUser", 2, 503)
		_, err := q.client.GetUser(ctx)
		require.NoError(t, err)
		assert.Equal(t, 3, q.emu.Calls("getLoggedInUser"))
	})
	t.Run("a 502 on a robot create is not", func(t *testing.T) {
		q := newQuayEnv(t)
		q.emu.Faults().FailNext("createOrgRobot", 1, 502)
		_, err := q.client.CreateRobot(ctx, acme, "ci", quay.RobotSpec{})
		assert.Equal(t, 502, quay.StatusOf(err))
		assert.True(t, quay.IsTransient(err))
		assert.Equal(t, 1, q.emu.Calls("createOrgRobot"))
		assert.False(t, q.emu.RobotExists("acme+ci"))
	})
	t.Run("a dropped connection", func(t *testing.T) {
		q := newQuayEnv(t)
		q.emu.Faults().DropNext("getOrgRobots", 1)
		_, err := q.client.ListRobots(ctx, acme, quay.ListRobotsOptions{})
		require.NoError(t, err, "a GET tries again")
		assert.Equal(t, 2, q.emu.Calls("getOrgRobots"))

		q.emu.Faults().DropNext("createOrgRobot", 1)
		_, err = q.client.CreateRobot(ctx, acme, "ci", quay.RobotSpec{})
		assert.True(t, quay.IsTransient(err))
		assert.Equal(t, 1, q.emu.Calls("createOrgRobot"), "a robot create does not")
	})
	t.Run("latency beyond the request timeout", func(t *testing.T) {
		q := newQuayEnv(t)
		q.emu.Faults().AddLatency("getLoggedInUser", 500*time.Millisecond)
		impatient := client(t, q.srv.URL, quay.StaticToken(q.token), func(c *quay.Config) {
			c.RequestTimeout = 50 * time.Millisecond
			c.MaxRetries = -1
		})
		_, err := impatient.GetUser(ctx)
		assert.True(t, quay.IsTransient(err))
		assert.Contains(t, err.Error(), "timed out")
		q.emu.Faults().Reset()
		_, err = impatient.GetUser(ctx)
		require.NoError(t, err)
	})
}

// assertNoSecretIn fails when secret appears in text, without printing
// either: a failing test must not put a credential in its output.
func assertNoSecretIn(t testing.TB, text, secret string) {
	t.Helper()
	if secret != "" && strings.Contains(text, secret) {
		t.Errorf("a secret (%d characters) appears in the text (neither shown)", len(secret))
	}
}
