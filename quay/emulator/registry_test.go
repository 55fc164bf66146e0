package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// registryEnv is an emulator with an org "acme", two repositories and a
// robot granted write on "app" only.
type registryEnv struct {
	emu   *Emulator
	srv   *httptest.Server
	host  string
	robot string
	token string
}

func newRegistryEnv(t *testing.T) *registryEnv {
	t.Helper()
	emu, err := New(Config{SuperUsers: []string{"admin"}})
	require.NoError(t, err)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	require.NoError(t, emu.CreateUser("admin", "password1", "a@example.com"))
	require.NoError(t, emu.CreateOrganization("acme", "admin"))
	require.NoError(t, emu.CreateRepository("acme", "app", false))
	require.NoError(t, emu.CreateRepository("acme", "other", false))
	admin, err := emu.IssueToken("admin", "org:admin repo:admin", time.Hour)
	require.NoError(t, err)

	env := &registryEnv{emu: emu, srv: srv, host: strings.TrimPrefix(srv.URL, "http://")}
	var robot struct {
		Name, Token string
	}
	status, body := call(t, srv, http.MethodPut, "/api/v1/organization/acme/robots/ci", admin, `{}`)
	require.Equal(t, http.StatusCreated, status, body)
	require.NoError(t, json.Unmarshal([]byte(body), &robot))
	env.robot, env.token = robot.Name, robot.Token
	status, body = call(t, srv, http.MethodPut, "/api/v1/repository/acme/app/permissions/user/acme+ci", admin, `{"role":"write"}`)
	require.Equal(t, http.StatusOK, status, body)
	return env
}

func call(t *testing.T, srv *httptest.Server, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (env *registryEnv) ref(t *testing.T, repo string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(env.host+"/acme/"+repo+":latest", name.Insecure)
	require.NoError(t, err)
	return ref
}

func TestRegistry_RobotPushesAndPullsWhereGranted(t *testing.T) {
	env := newRegistryEnv(t)
	auth := remote.WithAuth(&authn.Basic{Username: env.robot, Password: env.token})
	img, err := random.Image(1024, 2)
	require.NoError(t, err)

	require.NoError(t, remote.Write(env.ref(t, "app"), img, auth))
	pulled, err := remote.Image(env.ref(t, "app"), auth)
	require.NoError(t, err)
	want, _ := img.Digest()
	got, err := pulled.Digest()
	require.NoError(t, err)
	assert.Equal(t, want, got)

	err = remote.Write(env.ref(t, "other"), img, auth)
	require.Error(t, err, "no permission on acme/other")
	assert.Contains(t, err.Error(), "401")

	_, err = remote.Image(env.ref(t, "app"))
	require.Error(t, err, "anonymous pull of a private repository")
}

func TestRegistry_DeletedOrRegeneratedRobotIsRefused(t *testing.T) {
	env := newRegistryEnv(t)
	admin, err := env.emu.IssueToken("admin", "org:admin", time.Hour)
	require.NoError(t, err)
	img, _ := random.Image(256, 1)

	status, _ := call(t, env.srv, http.MethodPost, "/api/v1/organization/acme/robots/ci/regenerate", admin, "")
	require.Equal(t, http.StatusOK, status)
	err = remote.Write(env.ref(t, "app"), img, remote.WithAuth(&authn.Basic{Username: env.robot, Password: env.token}))
	require.Error(t, err, "the old token stopped working")

	status, _ = call(t, env.srv, http.MethodDelete, "/api/v1/organization/acme/robots/ci", admin, "")
	require.Equal(t, http.StatusNoContent, status)
	req, _ := http.NewRequest(http.MethodGet, env.srv.URL+"/v2/auth?service="+env.host+"&scope=repository:acme/app:pull", nil)
	req.SetBasicAuth(env.robot, env.token)
	resp, err := env.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// /v2/auth answers {"token": …} only, with the claims of
// endpoints/v2/v2auth.py generate_registry_jwt, and
// down-scopes what the caller may not do.
func TestRegistry_AuthTokenShape(t *testing.T) {
	env := newRegistryEnv(t)
	req, _ := http.NewRequest(http.MethodGet, env.srv.URL+"/v2/auth?service="+env.host+
		"&scope=repository:acme/app:push,pull&scope=repository:acme/other:pull", nil)
	req.SetBasicAuth(env.robot, env.token)
	resp, err := env.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Len(t, body, 1, "only the token field")

	claims := jwt.MapClaims{}
	tok, err := jwt.NewParser().ParseWithClaims(body["token"].(string), claims, func(*jwt.Token) (any, error) {
		return &env.emu.registryKey.PublicKey, nil
	})
	require.NoError(t, err)
	assert.Equal(t, "RS256", tok.Header["alg"])
	assert.Equal(t, env.emu.registryKeyID, tok.Header["kid"])
	assert.Equal(t, "quay", claims["iss"])
	assert.Equal(t, env.host, claims["aud"])
	assert.Equal(t, env.robot, claims["sub"])
	assert.InDelta(t, 3600, claims["exp"].(float64)-claims["iat"].(float64), 0)
	access := claims["access"].([]any)
	require.Len(t, access, 2)
	assert.ElementsMatch(t, []any{"push", "pull"}, access[0].(map[string]any)["actions"])
	assert.Empty(t, access[1].(map[string]any)["actions"], "no permission on acme/other: dropped, still 200")
	assert.Equal(t, "robot", claims["context"].(map[string]any)["entity_kind"])
}

func TestRegistry_ChallengeAndKeys(t *testing.T) {
	env := newRegistryEnv(t)
	resp, err := env.srv.Client().Get(env.srv.URL + "/v2/")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, `Bearer realm="http://`+env.host+`/v2/auth",service="`+env.host+`"`, resp.Header.Get("WWW-Authenticate"))
	assert.Equal(t, "registry/2.0", resp.Header.Get("Docker-Distribution-API-Version"))
	assert.Equal(t, "true", string(b), "endpoints/v2/__init__.py: the body is true, even on the 401")
	assert.Equal(t, "false", resp.Header.Get("X-Sparse-Manifest-Support"))

	status, keys := call(t, env.srv, http.MethodGet, "/keys/services/quay/keys", "", "")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, keys, env.emu.registryKeyID)

	req, _ := http.NewRequest(http.MethodGet, env.srv.URL+"/v2/auth?service=x&scope=repository:acme/app:pull", nil)
	req.SetBasicAuth(env.robot, "wrong")
	resp, err = env.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.NotEmpty(t, resp.Header.Get("WWW-Authenticate"))
}

// "$app" logins use a user's app-specific token (auth/credentials.py
// validate_credentials, endpoints/api/appspecifictokens.py).
func TestRegistry_AppSpecificTokenLogin(t *testing.T) {
	env := newRegistryEnv(t)
	admin, err := env.emu.IssueToken("admin", "user:admin", time.Hour)
	require.NoError(t, err)
	status, body := call(t, env.srv, http.MethodPost, "/api/v1/user/apptoken", admin, `{"title":"laptop"}`)
	require.Equal(t, http.StatusOK, status, body)
	var created struct {
		Token struct {
			UUID      string `json:"uuid"`
			TokenCode string `json:"token_code"`
		} `json:"token"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	assert.Regexp(t, `^[A-Z0-9]{120}$`, created.Token.TokenCode)

	img, _ := random.Image(256, 1)
	auth := remote.WithAuth(&authn.Basic{Username: "$app", Password: created.Token.TokenCode})
	require.NoError(t, remote.Write(env.ref(t, "other"), img, auth), "the org admin may push anywhere in acme")

	status, _ = call(t, env.srv, http.MethodDelete, "/api/v1/user/apptoken/"+created.Token.UUID, admin, "")
	require.Equal(t, http.StatusNoContent, status)
	require.Error(t, remote.Write(env.ref(t, "other"), img, auth), "revoked")
}
