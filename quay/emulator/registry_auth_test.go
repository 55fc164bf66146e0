package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// regEnv is quayEnv (superuser "admin", org "acme", clock) plus two
// private repositories acme/app and acme/other, a public acme/pub, and
// robots acme+writer (write on app) and acme+reader (read on app).
type regEnv struct {
	*quayEnv
	host                string
	writer, writerToken string
	reader, readerToken string
}

func newRegEnv(t *testing.T, config string) *regEnv {
	t.Helper()
	q := newQuayEnv(t, config)
	env := &regEnv{quayEnv: q, host: strings.TrimPrefix(q.srv.URL, "http://")}
	for _, repo := range []string{"app", "other"} {
		require.NoError(t, q.emu.CreateRepository("acme", repo, false))
	}
	require.NoError(t, q.emu.CreateRepository("acme", "pub", true))
	env.writer, env.writerToken = env.robot(t, "writer", "write")
	env.reader, env.readerToken = env.robot(t, "reader", "read")
	return env
}

func (env *regEnv) robot(t *testing.T, short, role string) (string, string) {
	t.Helper()
	code, body, raw := env.do(t, "PUT", "/api/v1/organization/acme/robots/"+short, env.admin, "")
	require.Equal(t, 201, code, raw)
	code, _, raw = env.do(t, "PUT", "/api/v1/repository/acme/app/permissions/user/acme+"+short, env.admin, `{"role":"`+role+`"}`)
	require.Equal(t, 200, code, raw)
	return body["name"].(string), body["token"].(string)
}

// v2auth calls GET /v2/auth with an Authorization header value (empty for
// none) and the given scopes.
func (env *regEnv) v2auth(t *testing.T, authorization string, scopes ...string) (*http.Response, map[string]any) {
	t.Helper()
	q := url.Values{"service": {env.host}}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	req, err := http.NewRequest(http.MethodGet, env.srv.URL+"/v2/auth?"+q.Encode(), nil)
	require.NoError(t, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := env.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	return resp, body
}

func basic(user, password string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth(user, password)
	return req.Header.Get("Authorization")
}

// claimsOf verifies a /v2/auth answer's JWT with the published key set and
// returns its header and claims.
func (env *regEnv) claimsOf(t *testing.T, body map[string]any) (map[string]any, jwt.MapClaims) {
	t.Helper()
	require.Len(t, body, 1, "only the token field: %v", body)
	raw, ok := body["token"].(string)
	require.True(t, ok)
	code, _, keysRaw := env.do(t, "GET", "/keys/services/quay/keys", "", "")
	require.Equal(t, 200, code)
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal([]byte(keysRaw), &set))
	claims := jwt.MapClaims{}
	tok, err := jwt.NewParser(jwt.WithTimeFunc(env.clock.Now)).ParseWithClaims(raw, claims, func(tok *jwt.Token) (any, error) {
		keys := set.Key(tok.Header["kid"].(string))
		require.Len(t, keys, 1)
		return keys[0].Key, nil
	})
	require.NoError(t, err)
	return tok.Header, claims
}

func v2ErrorOf(t *testing.T, body map[string]any) (string, string) {
	t.Helper()
	errs, ok := body["errors"].([]any)
	require.True(t, ok, "a V2 error body: %v", body)
	require.Len(t, errs, 1)
	e := errs[0].(map[string]any)
	assert.Equal(t, map[string]any{}, e["detail"])
	return e["code"].(string), e["message"].(string)
}

func actionsOf(claims jwt.MapClaims) [][]any {
	var out [][]any
	for _, a := range claims["access"].([]any) {
		out = append(out, a.(map[string]any)["actions"].([]any))
	}
	return out
}

func TestV2Auth_TokenHasQuaysClaims(t *testing.T) {
	env := newRegEnv(t, "")
	resp, body := env.v2auth(t, basic(env.writer, env.writerToken), "repository:acme/app:pull,push")
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "no-cache, no-store, must-revalidate", resp.Header.Get("Cache-Control"))
	header, claims := env.claimsOf(t, body)
	assert.Equal(t, "RS256", header["alg"])
	assert.Equal(t, "JWT", header["typ"])
	assert.Equal(t, env.emu.registryKeyID, header["kid"])

	now := float64(env.clock.Now().Unix())
	assert.Equal(t, "quay", claims["iss"])
	assert.Equal(t, env.host, claims["aud"])
	assert.Equal(t, now, claims["nbf"])
	assert.Equal(t, now, claims["iat"])
	assert.Equal(t, now+3600, claims["exp"])
	assert.Equal(t, "acme+writer", claims["sub"])
	assert.Equal(t, []any{map[string]any{"type": "repository", "name": "acme/app", "actions": []any{"push", "pull"}}}, claims["access"],
		"Quay lists push before pull whatever the request's order")
	assert.Equal(t, map[string]any{
		"version": float64(2), "entity_kind": "robot", "entity_reference": "acme+writer", "kind": "user", "user": "acme+writer",
		"com.apostille.roots": map[string]any{"acme/app": "$disabled"}, "com.apostille.root": "$disabled",
	}, claims["context"])
	assert.Len(t, claims, 8, "iss aud nbf iat exp sub access context, nothing else")
}

func TestV2Auth_ContextPerCredentialKind(t *testing.T) {
	env := newRegEnv(t, "")
	// A user's entity_reference is its uuid, not its name.
	_, body := env.v2auth(t, basic("admin", "password1"))
	_, claims := env.claimsOf(t, body)
	ctx := claims["context"].(map[string]any)
	assert.Equal(t, "user", ctx["entity_kind"])
	assert.Equal(t, "admin", ctx["user"])
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, ctx["entity_reference"])
	assert.Equal(t, []any{}, claims["access"], "a login without scopes")
	assert.Equal(t, map[string]any{}, ctx["com.apostille.roots"])

	// $oauthtoken: the token's uuid, legacy kind "oauth".
	_, body = env.v2auth(t, basic("$oauthtoken", env.admin), "repository:acme/app:pull")
	_, claims = env.claimsOf(t, body)
	ctx = claims["context"].(map[string]any)
	assert.Equal(t, "oauthtoken", ctx["entity_kind"])
	assert.Equal(t, "oauth", ctx["kind"])
	assert.Equal(t, ctx["oauth"], ctx["entity_reference"])
	assert.Equal(t, "admin", ctx["user"])
	assert.Equal(t, "admin", claims["sub"])

	// Anonymous: no auth context at all, only the TUF roots.
	_, body = env.v2auth(t, "", "repository:acme/pub:pull")
	_, claims = env.claimsOf(t, body)
	assert.Equal(t, "(anonymous)", claims["sub"])
	assert.Equal(t, map[string]any{"com.apostille.roots": map[string]any{"acme/pub": "$disabled"}, "com.apostille.root": "$disabled"}, claims["context"])
	assert.Equal(t, [][]any{{"pull"}}, actionsOf(claims))

	// Without ?service, aud is null.
	req, _ := http.NewRequest(http.MethodGet, env.srv.URL+"/v2/auth", nil)
	req.Header.Set("Authorization", basic("admin", "password1"))
	resp, err := env.srv.Client().Do(req)
	require.NoError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, json.Unmarshal(raw, &body))
	_, claims = env.claimsOf(t, body)
	assert.Contains(t, claims, "aud")
	assert.Nil(t, claims["aud"])
}

func TestV2Auth_CredentialFailures(t *testing.T) {
	env := newRegEnv(t, "")
	expired, err := env.emu.IssueToken("admin", "repo:read", time.Minute)
	require.NoError(t, err)
	env.clock.Advance(2 * time.Minute)
	for _, tc := range []struct{ name, auth, message string }{
		{"wrong password", basic("admin", "wrong"), "Invalid Username or Password"},
		{"unknown user", basic("nobody", "password1"), "Invalid Username or Password"},
		{"organization", basic("acme", "x"), "Invalid Username or Password"},
		{"robot with a wrong token", basic(env.writer, "WRONG"), "Could not find robot with username: acme+writer and supplied password."},
		{"missing robot", basic("acme+ghost", "x"), "Could not find robot with specified username"},
		{"robot of a missing owner", basic("ghost+x", "x"), "Could not find robot with specified username"},
		{"bad oauth token", basic("$oauthtoken", strings.Repeat("A", 40)), "OAuth access token could not be validated"},
		{"expired oauth token", basic("$oauthtoken", expired), "OAuth access token has expired"},
		{"legacy $token", basic("$token", "abc"), "Invalid access token"},
		{"app-specific token", basic("$app", strings.Repeat("A", 120)), "Invalid token"},
		{"a Bearer header", "Bearer " + env.admin, "Specified credentials are invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env.clock.Advance(time.Hour) // out of any login back-off
			resp, body := env.v2auth(t, tc.auth, "repository:acme/app:pull")
			assert.Equal(t, 401, resp.StatusCode)
			code, msg := v2ErrorOf(t, body)
			assert.Equal(t, "UNAUTHORIZED", code)
			assert.Equal(t, tc.message, msg)
			assert.Equal(t, `Bearer realm="http://`+env.host+`/v2/auth",service="`+env.host+`"`, resp.Header.Get("WWW-Authenticate"))
		})
	}

	// No credentials and no scope: the auth flow, not an anonymous pull.
	resp, body := env.v2auth(t, "")
	assert.Equal(t, 401, resp.StatusCode)
	_, msg := v2ErrorOf(t, body)
	assert.Equal(t, "access to the requested resource is not authorized", msg)
	assert.NotEmpty(t, resp.Header.Get("WWW-Authenticate"))
}

func TestV2Auth_PasswordLoginsBackOff(t *testing.T) {
	env := newRegEnv(t, "")
	resp, _ := env.v2auth(t, basic("admin", "wrong"))
	require.Equal(t, 401, resp.StatusCode)
	// One failure: locked for 0.5 s, even for the right password.
	resp, _ = env.v2auth(t, basic("admin", "password1"))
	assert.Equal(t, 429, resp.StatusCode)
	assert.Equal(t, "0", resp.Header.Get("Retry-After"))
	env.clock.Advance(time.Second)
	resp, _ = env.v2auth(t, basic("admin", "password1"))
	assert.Equal(t, 200, resp.StatusCode, "the success clears the counter")

	for range 3 {
		env.clock.Advance(time.Minute)
		resp, _ = env.v2auth(t, basic("admin", "wrong"))
		require.Equal(t, 401, resp.StatusCode)
	}
	// Three failures: 0.5·(2³−1) = 3.5 s.
	env.clock.Advance(3 * time.Second)
	resp, _ = env.v2auth(t, basic("admin", "password1"))
	assert.Equal(t, 429, resp.StatusCode)
	env.clock.Advance(time.Second)
	resp, _ = env.v2auth(t, basic("admin@example.com", "password1"))
	assert.Equal(t, 200, resp.StatusCode, "users may log in with their email too")
}

func TestV2Auth_ScopesAreParsedAndDownscoped(t *testing.T) {
	env := newRegEnv(t, "")
	robot := basic(env.reader, env.readerToken)

	resp, body := env.v2auth(t, robot, "repository:acme/app:push,pull,*", "repository:acme/other:pull", "repository:acme/pub:pull,push")
	require.Equal(t, 200, resp.StatusCode)
	_, claims := env.claimsOf(t, body)
	assert.Equal(t, [][]any{{"pull"}, {}, {"pull"}}, actionsOf(claims), "unauthorised actions are dropped; still 200")

	// The host may prefix the name; the grant keeps it as requested.
	_, body = env.v2auth(t, robot, "repository:"+env.host+"/acme/app:pull")
	_, claims = env.claimsOf(t, body)
	assert.Equal(t, env.host+"/acme/app", claims["access"].([]any)[0].(map[string]any)["name"])
	assert.Equal(t, [][]any{{"pull"}}, actionsOf(claims))

	// A name without a namespace is in "library", which does not exist.
	_, body = env.v2auth(t, robot, "repository:alpine:pull")
	_, claims = env.claimsOf(t, body)
	assert.Equal(t, [][]any{{}}, actionsOf(claims))

	// An empty scope is skipped for a logged-in caller.
	_, body = env.v2auth(t, robot, "")
	_, claims = env.claimsOf(t, body)
	assert.Equal(t, []any{}, claims["access"])

	for _, tc := range []struct{ scope, code, message string }{
		{"repository:acme/app:delete", "INVALID_REQUEST", "Unable to decode repository and actions: repository:acme/app:delete"},
		{"registry:catalog:*", "INVALID_REQUEST", "Unable to decode repository and actions: registry:catalog:*"},
		{"repository:acme/App:pull", "NAME_INVALID", "Invalid repository name: acme/App"},
	} {
		resp, body := env.v2auth(t, robot, tc.scope)
		assert.Equal(t, 400, resp.StatusCode, tc.scope)
		code, msg := v2ErrorOf(t, body)
		assert.Equal(t, tc.code, code)
		assert.Equal(t, tc.message, msg)
	}
}

func TestV2Auth_AdminStarAndNamespacePermissions(t *testing.T) {
	env := newRegEnv(t, "")
	admin := basic("admin", "password1")
	_, body := env.v2auth(t, admin, "repository:acme/app:*")
	_, claims := env.claimsOf(t, body)
	assert.Equal(t, [][]any{{"*"}}, actionsOf(claims), "the org admin administers every repository")

	_, body = env.v2auth(t, basic(env.writer, env.writerToken), "repository:acme/app:*")
	_, claims = env.claimsOf(t, body)
	assert.Equal(t, [][]any{{}}, actionsOf(claims), "* needs admin")

	// Pull on a missing repository: the namespace-wide permission answers.
	_, body = env.v2auth(t, admin, "repository:acme/ghost:pull")
	_, claims = env.claimsOf(t, body)
	assert.Equal(t, [][]any{{"pull"}}, actionsOf(claims))
	// * on a missing repository trips Quay's state assertion.
	resp, _ := env.v2auth(t, admin, "repository:acme/ghost:*")
	assert.Equal(t, 500, resp.StatusCode)

	// An $oauthtoken login is capped by the token's scopes.
	readOnly, err := env.emu.IssueToken("admin", "repo:read", time.Hour)
	require.NoError(t, err)
	_, body = env.v2auth(t, basic("$oauthtoken", readOnly), "repository:acme/app:push,pull")
	_, claims = env.claimsOf(t, body)
	assert.Equal(t, [][]any{{"pull"}}, actionsOf(claims))
}

func TestV2Auth_PushCreatesMissingRepositories(t *testing.T) {
	env := newRegEnv(t, "")
	// A robot in a team with the creator role may create repositories.
	code, _, raw := env.do(t, "PUT", "/api/v1/organization/acme/team/builders", env.admin, `{"role":"creator"}`)
	require.Equal(t, 200, code, raw)
	code, _, raw = env.do(t, "PUT", "/api/v1/organization/acme/team/builders/members/acme+writer", env.admin, "")
	require.Equal(t, 200, code, raw)

	_, body := env.v2auth(t, basic(env.writer, env.writerToken), "repository:acme/new/nested:push,pull")
	_, claims := env.claimsOf(t, body)
	assert.Equal(t, [][]any{{"push", "pull"}}, actionsOf(claims))
	code, repo, raw := env.do(t, "GET", "/api/v1/repository/acme/new/nested", env.admin, "")
	require.Equal(t, 200, code, raw)
	assert.Equal(t, false, repo["is_public"], "created private (CREATE_PRIVATE_REPO_ON_PUSH)")
	code, perm, raw := env.do(t, "GET", "/api/v1/repository/acme/new/nested/permissions/user/acme+writer", env.admin, "")
	require.Equal(t, 200, code, raw)
	assert.Equal(t, "admin", perm["role"], "the creating robot gets admin")

	// Without the creator role nothing is created.
	_, body = env.v2auth(t, basic(env.reader, env.readerToken), "repository:acme/fresh:push")
	_, claims = env.claimsOf(t, body)
	assert.Equal(t, [][]any{{}}, actionsOf(claims))
	code, _, _ = env.do(t, "GET", "/api/v1/repository/acme/fresh", env.admin, "")
	assert.Equal(t, 404, code)

	// Nor in a namespace that does not exist.
	_, body = env.v2auth(t, basic("admin", "password1"), "repository:nowhere/x:push")
	_, claims = env.claimsOf(t, body)
	assert.Equal(t, [][]any{{}}, actionsOf(claims))

	// CREATE_PRIVATE_REPO_ON_PUSH: false makes them public.
	pub := newRegEnv(t, "CREATE_PRIVATE_REPO_ON_PUSH: false\n")
	_, body = pub.v2auth(t, basic("admin", "password1"), "repository:admin/mine:push")
	_, claims = pub.claimsOf(t, body)
	assert.Equal(t, [][]any{{"push"}}, actionsOf(claims))
	code, repo, _ = pub.do(t, "GET", "/api/v1/repository/admin/mine", pub.admin, "")
	require.Equal(t, 200, code)
	assert.Equal(t, true, repo["is_public"])
}

func TestV2Auth_RegeneratedOrDeletedRobotsStopAtOnce(t *testing.T) {
	env := newRegEnv(t, "")
	resp, _ := env.v2auth(t, basic(env.writer, env.writerToken), "repository:acme/app:pull")
	require.Equal(t, 200, resp.StatusCode)

	code, body, _ := env.do(t, "POST", "/api/v1/organization/acme/robots/writer/regenerate", env.admin, "")
	require.Equal(t, 200, code)
	resp, _ = env.v2auth(t, basic(env.writer, env.writerToken), "repository:acme/app:pull")
	assert.Equal(t, 401, resp.StatusCode, "the old token")
	newToken := body["token"].(string)
	resp, _ = env.v2auth(t, basic(env.writer, newToken), "repository:acme/app:pull")
	assert.Equal(t, 200, resp.StatusCode)

	code, _, _ = env.do(t, "DELETE", "/api/v1/organization/acme/robots/writer", env.admin, "")
	require.Equal(t, 204, code)
	resp, body = env.v2auth(t, basic(env.writer, newToken), "repository:acme/app:pull")
	assert.Equal(t, 401, resp.StatusCode)
	_, msg := v2ErrorOf(t, body)
	assert.Equal(t, "Could not find robot with specified username", msg)
}

// registryRequest sends a request to the registry with an optional Bearer
// token.
func (env *regEnv) registryRequest(t *testing.T, method, path, bearer string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, env.srv.URL+path, nil)
	require.NoError(t, err)
	if bearer != "" {
		req.Header.Set("Authorization", bearer)
	}
	resp, err := env.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

func (env *regEnv) registryToken(t *testing.T, auth string, scopes ...string) string {
	t.Helper()
	resp, body := env.v2auth(t, auth, scopes...)
	require.Equal(t, 200, resp.StatusCode, body)
	return "Bearer " + body["token"].(string)
}

// sign makes a registry JWT with the instance key (or another one).
func (env *regEnv) sign(t *testing.T, key *rsa.PrivateKey, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return "Bearer " + s
}

func TestV2_BaseEndpoint(t *testing.T) {
	env := newRegEnv(t, "")
	resp, body := env.registryRequest(t, "GET", "/v2/", "")
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, "true", body)
	assert.Equal(t, `Bearer realm="http://`+env.host+`/v2/auth",service="`+env.host+`"`, resp.Header.Get("WWW-Authenticate"))
	assert.Equal(t, "registry/2.0", resp.Header.Get("Docker-Distribution-API-Version"))

	resp, body = env.registryRequest(t, "GET", "/v2/", env.registryToken(t, basic("admin", "password1")))
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "true", body)
	assert.NotEmpty(t, resp.Header.Get("WWW-Authenticate"), "Quay sends the challenge headers on the 200 too")

	// A presented token that does not validate: util.http.abort's body.
	resp, body = env.registryRequest(t, "GET", "/v2/", basic("admin", "password1"))
	assert.Equal(t, 401, resp.StatusCode)
	assert.JSONEq(t, `{"error": "Invalid bearer token format"}`, body)
	assert.NotEmpty(t, resp.Header.Get("WWW-Authenticate"))

	// With SERVER_HOSTNAME set, the realm and service use it.
	cfgEnv := newRegEnv(t, "SERVER_HOSTNAME: quay.example.com\nPREFERRED_URL_SCHEME: https\n")
	resp, _ = cfgEnv.registryRequest(t, "GET", "/v2/", "")
	assert.Equal(t, `Bearer realm="https://quay.example.com/v2/auth",service="quay.example.com"`, resp.Header.Get("WWW-Authenticate"))
}

func TestV2_TokenValidation(t *testing.T) {
	env := newRegEnv(t, "")
	now := env.clock.Now()
	valid := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "quay", "aud": env.host, "sub": "admin", "nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"access": []any{map[string]any{"type": "repository", "name": "acme/app", "actions": []any{"pull"}}}}
	}
	with := func(k string, v any) jwt.MapClaims {
		c := valid()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	key, kid := env.emu.registryKey, env.emu.registryKeyID
	for _, tc := range []struct {
		name  string
		token string
		error string
	}{
		// PyJWT's _validate_aud with a list of audiences.
		{"wrong audience", env.sign(t, key, kid, with("aud", "elsewhere")), "Audience doesn't match"},
		{"wrong issuer", env.sign(t, key, kid, with("iss", "other")), "Invalid issuer"},
		{"no kid", env.sign(t, key, "", valid()), "Missing kid header"},
		{"unknown kid", env.sign(t, key, "nope", valid()), "Unknown service key"},
		{"another key", env.sign(t, other, kid, valid()), "Signature verification failed"},
		{"no nbf", env.sign(t, key, kid, with("nbf", nil)), `Token is missing the "nbf" claim`},
		{"no sub", env.sign(t, key, kid, with("sub", nil)), "Missing sub field in JWT"},
		{"signed for too long", env.sign(t, key, kid, with("exp", now.Add(3661*time.Second).Unix())), // str() of InvalidTokenError(msg, 3660, start_time): the args tuple.
			"('Token was signed for more than %s seconds from %s', 3660, " + pyDatetimeRepr(float64(now.Unix())) + ")"},
		{"expired", env.sign(t, key, kid, with("exp", now.Add(-31*time.Second).Unix())), "Signature has expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := env.registryRequest(t, "GET", "/v2/acme/app/tags/list", tc.token)
			assert.Equal(t, 401, resp.StatusCode)
			assert.JSONEq(t, `{"error": "`+strings.ReplaceAll(tc.error, `"`, `\"`)+`"}`, body)
			assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `scope="repository:acme/app:pull"`)
		})
	}

	// 30 s of leeway on exp.
	almost := env.sign(t, key, kid, with("exp", now.Add(-29*time.Second).Unix()))
	resp, _ := env.registryRequest(t, "GET", "/v2/acme/app/tags/list", almost)
	assert.NotEqual(t, 401, resp.StatusCode)

	// Tokens from /v2/auth expire after an hour (plus the leeway).
	tok := env.registryToken(t, basic(env.reader, env.readerToken), "repository:acme/app:pull")
	env.clock.Advance(3600*time.Second + 29*time.Second)
	resp, _ = env.registryRequest(t, "GET", "/v2/acme/app/tags/list", tok)
	assert.NotEqual(t, 401, resp.StatusCode)
	env.clock.Advance(2 * time.Second)
	resp, body := env.registryRequest(t, "GET", "/v2/acme/app/tags/list", tok)
	assert.Equal(t, 401, resp.StatusCode)
	assert.JSONEq(t, `{"error": "Signature has expired"}`, body)
}

func TestV2_GrantsPerRepositoryAndAction(t *testing.T) {
	env := newRegEnv(t, "")
	pullOnly := env.registryToken(t, basic(env.reader, env.readerToken), "repository:acme/app:pull")

	// Reading with a pull grant reaches the registry (an empty repository
	// is the registry's own 404).
	resp, body := env.registryRequest(t, "GET", "/v2/acme/app/tags/list", pullOnly)
	assert.Equal(t, 404, resp.StatusCode, body)
	assert.Contains(t, body, "NAME_UNKNOWN")

	// Writing needs push; the challenge names the scope Quay wants.
	resp, body = env.registryRequest(t, "POST", "/v2/acme/app/blobs/uploads/", pullOnly)
	assert.Equal(t, 401, resp.StatusCode)
	code, msg := v2ErrorOf(t, mustJSON(t, body))
	assert.Equal(t, "UNAUTHORIZED", code)
	assert.Equal(t, "access to the requested resource is not authorized", msg)
	assert.Equal(t, `Bearer realm="http://`+env.host+`/v2/auth",service="`+env.host+`",scope="repository:acme/app:pull,push"`, resp.Header.Get("WWW-Authenticate"))

	// Another repository: nothing.
	resp, _ = env.registryRequest(t, "GET", "/v2/acme/other/tags/list", pullOnly)
	assert.Equal(t, 401, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `scope="repository:acme/other:pull"`)

	// A push grant also allows pulling (a write grant satisfies reads).
	pushOnly := env.registryToken(t, basic(env.writer, env.writerToken), "repository:acme/app:push")
	resp, _ = env.registryRequest(t, "GET", "/v2/acme/app/tags/list", pushOnly)
	assert.Equal(t, 404, resp.StatusCode)

	// A grant requested with the host prefix names another repository for
	// Quay's parser ("<host>" / "acme/app").
	prefixed := env.registryToken(t, basic(env.reader, env.readerToken), "repository:"+env.host+"/acme/app:pull")
	resp, _ = env.registryRequest(t, "GET", "/v2/acme/app/tags/list", prefixed)
	assert.Equal(t, 401, resp.StatusCode)

	// Public repositories can be read without any token.
	resp, _ = env.registryRequest(t, "GET", "/v2/acme/pub/tags/list", "")
	assert.Equal(t, 404, resp.StatusCode)
	resp, _ = env.registryRequest(t, "GET", "/v2/acme/app/tags/list", "")
	assert.Equal(t, 401, resp.StatusCode)
}

func mustJSON(t *testing.T, raw string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(raw), &m), raw)
	return m
}

// Real clients: go-containerregistry's remote package pushes and pulls
// through the token flow.
func TestV2_RealClientPushPullWithRobots(t *testing.T) {
	env := newRegEnv(t, "")
	ref := func(repo string) name.Reference {
		r, err := name.ParseReference(env.host+"/acme/"+repo+":v1", name.Insecure)
		require.NoError(t, err)
		return r
	}
	writer := remote.WithAuth(&authn.Basic{Username: env.writer, Password: env.writerToken})
	reader := remote.WithAuth(&authn.Basic{Username: env.reader, Password: env.readerToken})
	img, err := random.Image(2048, 3)
	require.NoError(t, err)
	want, err := img.Digest()
	require.NoError(t, err)

	require.NoError(t, remote.Write(ref("app"), img, writer), "write permission pushes")
	pulled, err := remote.Image(ref("app"), reader)
	require.NoError(t, err, "read permission pulls")
	got, err := pulled.Digest()
	require.NoError(t, err)
	assert.Equal(t, want, got)
	layers, err := pulled.Layers()
	require.NoError(t, err)
	for _, l := range layers {
		rc, err := l.Compressed()
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, rc)
		require.NoError(t, err)
		rc.Close()
	}

	another, err := random.Image(256, 1)
	require.NoError(t, err)
	assert.Error(t, remote.Write(ref("app"), another, reader), "read permission does not push")
	assert.Error(t, remote.Write(ref("other"), img, writer), "no permission on acme/other")
	_, err = remote.Image(ref("other"), writer)
	assert.Error(t, err)
	_, err = remote.Image(ref("app"))
	assert.Error(t, err, "anonymous pull of a private repository")

	// Team permissions count: a team with read on acme/other lets the
	// writer pull it once pushed there by the admin.
	admin := remote.WithAuth(&authn.Basic{Username: "admin", Password: "password1"})
	require.NoError(t, remote.Write(ref("other"), img, admin))
	code, _, raw := env.do(t, "PUT", "/api/v1/organization/acme/team/readers", env.admin, `{"role":"member"}`)
	require.Equal(t, 200, code, raw)
	code, _, raw = env.do(t, "PUT", "/api/v1/organization/acme/team/readers/members/acme+writer", env.admin, "")
	require.Equal(t, 200, code, raw)
	code, _, raw = env.do(t, "PUT", "/api/v1/repository/acme/other/permissions/team/readers", env.admin, `{"role":"read"}`)
	require.Equal(t, 200, code, raw)
	_, err = remote.Image(ref("other"), writer)
	assert.NoError(t, err)

	// Deleting the robot refuses its next token request.
	code, _, _ = env.do(t, "DELETE", "/api/v1/organization/acme/robots/reader", env.admin, "")
	require.Equal(t, 204, code)
	_, err = remote.Image(ref("app"), reader)
	assert.Error(t, err)

	// Public repositories pull anonymously.
	require.NoError(t, remote.Write(ref("pub"), img, admin))
	_, err = remote.Image(ref("pub"))
	assert.NoError(t, err)
}

// A registry JWT already issued stays valid until it expires, as Quay's
// signed auth context does not go back to the database.
func TestV2_IssuedTokenOutlivesTheRobot(t *testing.T) {
	env := newRegEnv(t, "")
	tok := env.registryToken(t, basic(env.reader, env.readerToken), "repository:acme/app:pull")
	code, _, _ := env.do(t, "DELETE", "/api/v1/organization/acme/robots/reader", env.admin, "")
	require.Equal(t, 204, code)
	resp, _ := env.registryRequest(t, "GET", "/v2/acme/app/tags/list", tok)
	assert.Equal(t, 404, resp.StatusCode, "still authorised; the repository is just empty")
}

// A cross-repository mount needs read on the source; without it Quay
// starts an ordinary upload.
func TestV2_MountNeedsReadOnTheSource(t *testing.T) {
	env := newRegEnv(t, "")
	img, _ := random.Image(512, 1)
	admin := remote.WithAuth(&authn.Basic{Username: "admin", Password: "password1"})
	otherRef, err := name.ParseReference(env.host+"/acme/other:v1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(otherRef, img, admin))
	layers, _ := img.Layers()
	digest, _ := layers[0].Digest()

	mount := "/v2/acme/app/blobs/uploads/?mount=" + digest.String() + "&from=acme/other"
	tok := env.registryToken(t, basic(env.writer, env.writerToken), "repository:acme/app:push,pull", "repository:acme/other:pull")
	resp, _ := env.registryRequest(t, "POST", mount, tok)
	assert.Equal(t, 202, resp.StatusCode, "no read on acme/other: an upload, not a mount")

	tok = env.registryToken(t, basic("admin", "password1"), "repository:acme/app:push,pull", "repository:acme/other:pull")
	resp, _ = env.registryRequest(t, "POST", mount, tok)
	assert.Equal(t, 201, resp.StatusCode, "mounted")
}

func TestV2_AuthOnlyAnswersGET(t *testing.T) {
	env := newRegEnv(t, "")
	resp, _ := env.registryRequest(t, "POST", "/v2/auth", "")
	assert.Equal(t, 405, resp.StatusCode)
}

// $app logins: the context names the token; a disabled owner gets Quay's
// message (auth/credentials.py).
func TestV2Auth_AppSpecificTokenContext(t *testing.T) {
	env := newRegEnv(t, "")
	code, created, raw := env.do(t, "POST", "/api/v1/user/apptoken", env.admin, `{"title":"laptop"}`)
	require.Equal(t, 200, code, raw)
	tok := created["token"].(map[string]any)
	resp, body := env.v2auth(t, basic("$app", tok["token_code"].(string)), "repository:acme/app:pull")
	require.Equal(t, 200, resp.StatusCode)
	_, claims := env.claimsOf(t, body)
	ctx := claims["context"].(map[string]any)
	assert.Equal(t, "appspecifictoken", ctx["entity_kind"])
	assert.Equal(t, tok["uuid"], ctx["entity_reference"])
	assert.Equal(t, "user", ctx["kind"])
	assert.Equal(t, "admin", ctx["user"])
	assert.Equal(t, "admin", claims["sub"])

	env.emu.mu.Lock()
	env.emu.db.accounts["admin"].enabled = false
	env.emu.mu.Unlock()
	resp, body = env.v2auth(t, basic("$app", tok["token_code"].(string)), "repository:acme/app:pull")
	assert.Equal(t, 401, resp.StatusCode)
	_, msg := v2ErrorOf(t, body)
	assert.Equal(t, "This user has been disabled. Please contact your administrator.", msg)
}
