package emulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testIssuer is an OIDC issuer served over HTTPS with a certificate of its
// own test CA, which only a client given CA trusts.
type testIssuer struct {
	URL string
	CA  *x509.CertPool

	mu sync.Mutex
	// keys sign tokens by kid; published lists the kids the key set serves.
	keys      map[string]*rsa.PrivateKey
	published []string
	// discoveryIssuer is the discovery document's "issuer" (URL by default).
	discoveryIssuer any
	requests        map[string]int
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "federation test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, caCert, &leafKey.PublicKey, caKey)
	require.NoError(t, err)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	iss := &testIssuer{keys: map[string]*rsa.PrivateKey{"k1": key}, published: []string{"k1"}, requests: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss.mu.Lock()
		defer iss.mu.Unlock()
		iss.requests["discovery"]++
		writeJSON(w, http.StatusOK, map[string]any{"issuer": iss.discoveryIssuer, "jwks_uri": iss.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		iss.mu.Lock()
		defer iss.mu.Unlock()
		iss.requests["keys"]++
		var set jose.JSONWebKeySet
		for _, kid := range iss.published {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &iss.keys[kid].PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"})
		}
		writeJSON(w, http.StatusOK, set)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}
	// Handshakes from clients that do not trust the CA are expected.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	iss.URL = srv.URL
	iss.discoveryIssuer = srv.URL
	iss.CA = x509.NewCertPool()
	iss.CA.AddCert(caCert)
	return iss
}

// addKey adds a signing key, published or not.
func (i *testIssuer) addKey(t *testing.T, kid string, publish bool) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys[kid] = key
	if publish {
		i.published = append(i.published, kid)
	}
}

func (i *testIssuer) count(what string) int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.requests[what]
}

// mint signs claims; "_kid" and "_alg" in claims choose the header
// (default k1, RS256).
func (i *testIssuer) mint(t *testing.T, claims map[string]any) string {
	t.Helper()
	kid, alg := "k1", "RS256"
	c := map[string]any{}
	for k, v := range claims {
		switch k {
		case "_kid":
			kid = v.(string)
		case "_alg":
			alg = v.(string)
		default:
			c[k] = v
		}
	}
	i.mu.Lock()
	key := i.keys[kid]
	if key == nil {
		key = i.keys["k1"]
	}
	i.mu.Unlock()
	method := jwt.GetSigningMethod(alg)
	require.NotNil(t, method, alg)
	tok := jwt.NewWithClaims(method, jwt.MapClaims(c))
	tok.Header["kid"] = kid
	signed, err := tok.SignedString(key)
	require.NoError(t, err)
	return signed
}

// federationEnv is a quayEnv whose emulator trusts the issuer's CA, with
// robots acme+bot (federated with the issuer for subjects "ci" and
// "deploy", read on acme/app), acme+plain (no federation) and acme+insecure
// (federated with an http:// issuer).
type federationEnv struct {
	*quayEnv
	issuer *testIssuer
}

func newFederationEnv(t *testing.T) *federationEnv {
	t.Helper()
	issuer := newTestIssuer(t)
	cfg, err := ParseConfig([]byte("SUPER_USERS: [admin]\nSERVER_HOSTNAME: quay.test\n"))
	require.NoError(t, err)
	clock := &testClock{now: time.Now().UTC().Truncate(time.Second)}
	emu, err := New(cfg, WithClock(clock.Now), WithRootCAs(issuer.CA))
	require.NoError(t, err)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	require.NoError(t, emu.CreateUser("admin", "password1", "admin@example.com"))
	require.NoError(t, emu.CreateOrganization("acme", "admin"))
	require.NoError(t, emu.CreateRepository("acme", "app", false))
	tok, err := emu.IssueToken("admin", strings.Join(knownScopes, " "), 24*time.Hour)
	require.NoError(t, err)
	env := &federationEnv{quayEnv: &quayEnv{emu: emu, srv: srv, admin: tok, clock: clock}, issuer: issuer}
	for _, robot := range []string{"bot", "plain", "insecure"} {
		code, _, body := env.do(t, "PUT", "/api/v1/organization/acme/robots/"+robot, tok, "")
		require.Equal(t, 201, code, body)
	}
	code, _, body := env.do(t, "PUT", "/api/v1/repository/acme/app/permissions/user/acme+bot", tok, `{"role":"read"}`)
	require.Equal(t, 200, code, body)
	env.federate(t, "/api/v1/organization/acme/robots/bot/federation",
		`[{"issuer":"`+issuer.URL+`","subject":"ci"},{"issuer":"`+issuer.URL+`","subject":"deploy"}]`)
	env.federate(t, "/api/v1/organization/acme/robots/insecure/federation",
		`[{"issuer":"`+strings.Replace(issuer.URL, "https://", "http://", 1)+`","subject":"ci"}]`)
	return env
}

func (env *federationEnv) federate(t *testing.T, path, body string) {
	t.Helper()
	code, _, raw := env.do(t, "POST", path, env.admin, body)
	require.Equal(t, 200, code, raw)
}

// claims are valid claims for acme+bot, issued now by the emulator's clock.
func (env *federationEnv) claims(extra map[string]any) map[string]any {
	now := env.clock.Now().Unix()
	c := map[string]any{"iss": env.issuer.URL, "sub": "ci", "aud": "quay.test", "iat": now, "exp": now + 300}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func basicHeader(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// exchange calls the exchange endpoint with this Authorization header.
func (env *federationEnv) exchange(t *testing.T, authorization string) (int, map[string]any, string) {
	t.Helper()
	return env.raw(t, "GET", "/oauth2/federation/robot/token", authorization, "")
}

func jsonList(t *testing.T, raw string) []map[string]any {
	t.Helper()
	var out []map[string]any
	require.NoError(t, json.Unmarshal([]byte(raw), &out), raw)
	return out
}

// The configuration API answers as real Quay 3.18 did (checked on
// /work/shared/realquay): POST replaces the list and returns it, GET
// returns it, DELETE empties it; schema errors first, then
// _parse_federation_config's checks, then the robot lookup.
func TestRobotFederationAPI(t *testing.T) {
	q := newQuayEnv(t, "")
	for _, robot := range []string{"bot", "other"} {
		code, _, body := q.do(t, "PUT", "/api/v1/organization/acme/robots/"+robot, q.admin, "")
		require.Equal(t, 201, code, body)
	}
	path := "/api/v1/organization/acme/robots/bot/federation"

	code, _, raw := q.do(t, "GET", path, q.admin, "")
	require.Equal(t, 200, code)
	assert.Empty(t, jsonList(t, raw), "a robot starts without federation")

	code, _, raw = q.do(t, "POST", path, q.admin, `[{"issuer":"https://a.example","subject":"one"},{"issuer":"https://b.example","subject":"two","audiences":["x"]}]`)
	require.Equal(t, 200, code, raw)
	want := []map[string]any{{"issuer": "https://a.example", "subject": "one"}, {"issuer": "https://b.example", "subject": "two"}}
	assert.Equal(t, want, jsonList(t, raw), "only issuer and subject are stored (audiences dropped)")
	_, _, raw = q.do(t, "GET", path, q.admin, "")
	assert.Equal(t, want, jsonList(t, raw))

	code, _, raw = q.do(t, "POST", path, q.admin, `[{"issuer":"http://c.example","subject":"three"}]`)
	require.Equal(t, 200, code, raw)
	_, _, raw = q.do(t, "GET", path, q.admin, "")
	assert.Equal(t, []map[string]any{{"issuer": "http://c.example", "subject": "three"}}, jsonList(t, raw), "POST replaces")
	_, _, raw = q.do(t, "GET", "/api/v1/organization/acme/robots/other/federation", q.admin, "")
	assert.Empty(t, jsonList(t, raw), "per robot")

	for body, msg := range map[string]string{
		`{"issuer":"https://x","subject":"s"}`: "{'issuer': 'https://x', 'subject': 's'} is not of type 'array'",
		`[{"issuer":"https://x"}]`:             "'subject' is a required property",
		`[{}]`:                                 "'issuer' is a required property",
		`[{"issuer":5,"subject":"s"}]`:         "5 is not of type 'string'",
		`[5]`:                                  "5 is not of type 'object'",
		`[{"issuer":5,"subject":"s"},{"issuer":"x"}]`: "'subject' is a required property",
		`null`:                                   "Missing JSON body",
		`[{"issuer":"","subject":"s"}]`:          "Missing one or more required fields (issuer, subject)",
		`[{"issuer":"https://x","subject":""}]`:  "Missing one or more required fields (issuer, subject)",
		`[{"issuer":"ftp://x","subject":"s"}]`:   "Issuer must be a URL (http:// or https://)",
		`[{"issuer":"HTTPS://x","subject":"s"}]`: "Issuer must be a URL (http:// or https://)",
		`[{"issuer":"https://x","subject":"s"},{"issuer":"https://x","subject":"s"}]`: "Duplicate federation config entry",
	} {
		code, resp, _ := q.do(t, "POST", path, q.admin, body)
		assert.Equal(t, 400, code, body)
		assert.Equal(t, "invalid_request", resp["error_type"], body)
		assert.Equal(t, msg, resp["error_message"], body)
	}
	_, _, raw = q.do(t, "GET", path, q.admin, "")
	assert.Equal(t, []map[string]any{{"issuer": "http://c.example", "subject": "three"}}, jsonList(t, raw), "a refused POST changes nothing")

	code, resp, _ := q.rawCT(t, "POST", path, "Bearer "+q.admin, "application/json", "")
	assert.Equal(t, 400, code)
	assert.Equal(t, map[string]any{"message": badRequestMessage}, resp)

	// The body is checked before the robot exists.
	code, resp, _ = q.do(t, "POST", "/api/v1/organization/acme/robots/ghost/federation", q.admin, `[{"issuer":"ftp://x","subject":"s"}]`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "Issuer must be a URL (http:// or https://)", resp["error_message"])
	for _, method := range []string{"GET", "POST", "DELETE"} {
		code, resp, _ := q.do(t, method, "/api/v1/organization/acme/robots/ghost/federation", q.admin, map[string]string{"POST": "[]"}[method])
		assert.Equal(t, 400, code, method)
		assert.Equal(t, map[string]any{"message": "Could not find robot with specified username"}, resp, method)
	}

	// Organization admins only; anonymous mutations meet the CSRF check.
	member, _ := q.emu.IssueToken("admin", "repo:read", time.Hour)
	for _, method := range []string{"GET", "POST", "DELETE"} {
		code, resp, _ := q.do(t, method, path, member, map[string]string{"POST": "[]"}[method])
		assert.Equal(t, 403, code, method)
		assert.Equal(t, "insufficient_scope", resp["error_type"], method)
	}
	code, _, _ = q.do(t, "POST", "/api/v1/organization/ghost/robots/x/federation", q.admin, "[]")
	assert.Equal(t, 403, code, "no permission on an organization that does not exist")
	code, resp, _ = q.do(t, "POST", path, "", "[]")
	assert.Equal(t, 403, code)
	assert.Equal(t, map[string]any{"error": "CSRF token was invalid or missing."}, resp)
	code, resp, _ = q.do(t, "GET", path, "", "")
	assert.Equal(t, 401, code)
	assert.Equal(t, "invalid_token", resp["error_type"])

	code, _, raw = q.do(t, "DELETE", path, q.admin, "")
	assert.Equal(t, 204, code)
	assert.Empty(t, raw)
	_, _, raw = q.do(t, "GET", path, q.admin, "")
	assert.Empty(t, jsonList(t, raw))

	// The list lives with the robot: a robot deleted and created again
	// starts without one.
	q.do(t, "POST", path, q.admin, `[{"issuer":"https://a.example","subject":"one"}]`)
	code, _, _ = q.do(t, "DELETE", "/api/v1/organization/acme/robots/bot", q.admin, "")
	require.Equal(t, 204, code)
	code, _, _ = q.do(t, "PUT", "/api/v1/organization/acme/robots/bot", q.admin, "")
	require.Equal(t, 201, code)
	_, _, raw = q.do(t, "GET", path, q.admin, "")
	assert.Empty(t, jsonList(t, raw))

	// Faults and counters know the routes by Quay's nicknames.
	q.emu.ResetCalls()
	q.do(t, "GET", path, q.admin, "")
	q.do(t, "POST", path, q.admin, "[]")
	q.do(t, "DELETE", path, q.admin, "")
	assert.Equal(t, map[string]int{"getOrgRobotFederation": 1, "createOrgRobotFederation": 1, "deleteOrgRobotFederation": 1}, q.emu.CallCounts())
}

// User robots: the caller's own namespace, user:admin.
func TestRobotFederationAPI_UserRobots(t *testing.T) {
	q := newQuayEnv(t, "")
	code, _, body := q.do(t, "PUT", "/api/v1/user/robots/mine", q.admin, "")
	require.Equal(t, 201, code, body)
	path := "/api/v1/user/robots/mine/federation"
	code, _, raw := q.do(t, "POST", path, q.admin, `[{"issuer":"https://a.example","subject":"one"}]`)
	require.Equal(t, 200, code, raw)
	_, _, raw = q.do(t, "GET", path, q.admin, "")
	assert.Equal(t, []map[string]any{{"issuer": "https://a.example", "subject": "one"}}, jsonList(t, raw))
	_, _, raw = q.do(t, "GET", "/api/v1/organization/admin/robots/mine/federation", q.admin, "")
	assert.Equal(t, []map[string]any{{"issuer": "https://a.example", "subject": "one"}}, jsonList(t, raw),
		"the same robot through the organization route (a user administers its own namespace)")

	noUserAdmin, _ := q.emu.IssueToken("admin", "org:admin", time.Hour)
	for _, method := range []string{"GET", "POST", "DELETE"} {
		code, resp, _ := q.do(t, method, path, noUserAdmin, `{"not":"checked first"}`)
		assert.Equal(t, 403, code, method)
		assert.Equal(t, "insufficient_scope", resp["error_type"], method)
	}
	code, resp, _ := q.do(t, "GET", "/api/v1/user/robots/ghost/federation", q.admin, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, map[string]any{"message": "Could not find robot with specified username"}, resp)
	q.emu.ResetCalls()
	code, _, _ = q.do(t, "DELETE", path, q.admin, "")
	assert.Equal(t, 204, code)
	_, _, raw = q.do(t, "GET", path, q.admin, "")
	assert.Empty(t, jsonList(t, raw))
	q.do(t, "POST", path, q.admin, "[]")
	assert.Equal(t, map[string]int{"getUserRobotFederation": 1, "createUserRobotFederation": 1, "deleteUserRobotFederation": 1}, q.emu.CallCounts())
}

// The exchange answers every case as real Quay 3.18 did against an HTTPS
// issuer whose CA it trusted through REQUESTS_CA_BUNDLE.
func TestFederatedExchange_QuaysAnswers(t *testing.T) {
	env := newFederationEnv(t)
	iss := env.issuer
	iss.addKey(t, "unpublished", false)
	now := env.clock.Now().Unix()
	good := iss.mint(t, env.claims(nil))
	const internal = 500 // an exception escaped Quay's handler: an error page

	for _, tc := range []struct {
		name, header string
		status       int
		body         map[string]any
	}{
		{"no header", "", 401, map[string]any{"error": "No auth header"}},
		{"bearer", "Bearer " + good, 401, map[string]any{"error": "Invalid basic auth header"}},
		{"three parts", "Basic a b", 401, map[string]any{"error": "Invalid basic auth header"}},
		{"garbage base64", "Basic !!!", 401, map[string]any{"error": "Unexpected number of credentials found in basic auth header"}},
		{"bad padding", "Basic YWJ", 401, map[string]any{"error": "Could not parse basic auth header"}},
		{"no colon", "Basic " + base64.StdEncoding.EncodeToString([]byte("abc")), 401, map[string]any{"error": "Unexpected number of credentials found in basic auth header"}},
		{"not a robot", basicHeader("admin", good), 401, map[string]any{"error": "Invalid robot"}},
		{"unknown robot", basicHeader("acme+ghost", good), 400, map[string]any{"message": "Could not find robot with specified username"}},
		{"not a JWT", basicHeader("acme+bot", "notajwt"), internal, nil},
		{"no iss", basicHeader("acme+bot", iss.mint(t, env.claims(map[string]any{"iss": nil}))), 400, map[string]any{"message": "Token does not contain issuer"}},
		{"robot without federation", basicHeader("acme+plain", good), 400, map[string]any{"message": "Robot does not have federated login configured"}},
		{"other issuer", basicHeader("acme+bot", iss.mint(t, env.claims(map[string]any{"iss": "https://other.example"}))), 400, map[string]any{"message": "issuer https://other.example not configured for this robot"}},
		{"issuer with a trailing slash", basicHeader("acme+bot", iss.mint(t, env.claims(map[string]any{"iss": iss.URL + "/"}))), 400, map[string]any{"message": "issuer " + iss.URL + "/ not configured for this robot"}},
		{"numeric issuer", basicHeader("acme+bot", iss.mint(t, env.claims(map[string]any{"iss": 5}))), 400, map[string]any{"message": "issuer 5 not configured for this robot"}},
		{"wrong subject", basicHeader("acme+bot", iss.mint(t, env.claims(map[string]any{"sub": "intruder"}))), 400, map[string]any{"message": "Token does not match robot"}},
		{"no subject", basicHeader("acme+bot", iss.mint(t, env.claims(map[string]any{"sub": nil}))), 400, map[string]any{"message": "Token does not match robot"}},
		{"expired", basicHeader("acme+bot", iss.mint(t, env.claims(map[string]any{"iat": now - 100, "exp": now - 40}))), 400, map[string]any{"message": "Invalid token: Signature has expired"}},
		{"no iat", basicHeader("acme+bot", iss.mint(t, env.claims(map[string]any{"iat": nil}))), 400, map[string]any{"message": `Invalid token: Token is missing the "iat" claim`}},
		{"no exp", basicHeader("acme+bot", iss.mint(t, env.claims(map[string]any{"exp": nil}))), 400, map[string]any{"message": `Invalid token: Token is missing the "exp" claim`}},
		{"iat in the future", basicHeader("acme+bot", iss.mint(t, env.claims(map[string]any{"iat": now + 120}))), 400, map[string]any{"message": "Invalid token: Issued At claim (iat) cannot be in the future."}},
		{"RS512", basicHeader("acme+bot", iss.mint(t, env.claims(map[string]any{"_alg": "RS512"}))), 400, map[string]any{"message": "Invalid token: The specified alg value is not allowed"}},
		{"PS256", basicHeader("acme+bot", iss.mint(t, env.claims(map[string]any{"_alg": "PS256"}))), 400, map[string]any{"message": "Invalid token: The specified alg value is not allowed"}},
		{"kid not published", basicHeader("acme+bot", iss.mint(t, env.claims(map[string]any{"_kid": "unpublished"}))), internal, nil},
		{"http issuer", basicHeader("acme+insecure", iss.mint(t, env.claims(map[string]any{"iss": strings.Replace(iss.URL, "https://", "http://", 1)}))), internal, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, resp, raw := env.exchange(t, tc.header)
			assert.Equal(t, tc.status, code, raw)
			if tc.status == internal {
				assert.Contains(t, raw, "<html>", "an error page, not JSON")
				return
			}
			assert.Equal(t, tc.body, resp)
		})
	}

	for name, claims := range map[string]map[string]any{
		"valid":                     nil,
		"second subject":            {"sub": "deploy"},
		"RS384":                     {"_alg": "RS384"},
		"expired within the leeway": {"iat": now - 100, "exp": now - 10},
		"nbf in the future":         {"nbf": now + 120},
		"any audience":              {"aud": "someone-else"},
		"no audience":               {"aud": nil},
	} {
		t.Run("accepted: "+name, func(t *testing.T) {
			code, resp, raw := env.exchange(t, basicHeader("acme+bot", iss.mint(t, env.claims(claims))))
			require.Equal(t, 200, code, raw)
			assert.Len(t, resp, 1)
			assert.NotEmpty(t, resp["token"])
		})
	}

	code, _, raw := env.raw(t, "POST", "/oauth2/federation/robot/token", basicHeader("acme+bot", good), "")
	assert.Equal(t, 405, code, raw)
	code, _, _ = env.raw(t, "OPTIONS", "/oauth2/federation/robot/token", "", "")
	assert.Equal(t, 200, code)
}

// What the issuer's discovery document says decides as in Quay: its
// issuer must match the token's (trailing slashes aside), and an issuer
// whose certificate Quay does not trust fails the exchange.
func TestFederatedExchange_Discovery(t *testing.T) {
	env := newFederationEnv(t)
	token := env.issuer.mint(t, env.claims(nil))

	env.issuer.mu.Lock()
	env.issuer.discoveryIssuer = "https://elsewhere.example"
	env.issuer.mu.Unlock()
	code, resp, _ := env.exchange(t, basicHeader("acme+bot", token))
	assert.Equal(t, 400, code)
	assert.Equal(t, map[string]any{"message": "Invalid token: Issuer '" + env.issuer.URL + "' not in configured issuers: ['https://elsewhere.example']"}, resp)

	env.issuer.mu.Lock()
	env.issuer.discoveryIssuer = env.issuer.URL + "/"
	env.issuer.mu.Unlock()
	code, _, raw := env.exchange(t, basicHeader("acme+bot", token))
	assert.Equal(t, 200, code, raw)

	// Quay builds the login service anew for every exchange: one
	// discovery and one key-set fetch per success, nothing cached.
	before, beforeKeys := env.issuer.count("discovery"), env.issuer.count("keys")
	code, _, raw = env.exchange(t, basicHeader("acme+bot", token))
	require.Equal(t, 200, code, raw)
	assert.Equal(t, 1, env.issuer.count("discovery")-before)
	assert.Equal(t, 1, env.issuer.count("keys")-beforeKeys)

	// The emulator trusts only the CAs it was given, like Quay with
	// REQUESTS_CA_BUNDLE; DEBUGGING never loosens federation (its
	// service config has no DEBUGGING key).
	cfg, err := ParseConfig([]byte("SUPER_USERS: [admin]\nDEBUGGING: true\n"))
	require.NoError(t, err)
	untrusting, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, untrusting.CreateUser("admin", "password1", "a@example.com"))
	require.NoError(t, untrusting.CreateOrganization("acme", "admin"))
	srv := httptest.NewServer(untrusting)
	t.Cleanup(srv.Close)
	admin, _ := untrusting.IssueToken("admin", "org:admin", time.Hour)
	status, body := call(t, srv, "PUT", "/api/v1/organization/acme/robots/bot", admin, "{}")
	require.Equal(t, 201, status, body)
	status, body = call(t, srv, "POST", "/api/v1/organization/acme/robots/bot/federation", admin, `[{"issuer":"`+env.issuer.URL+`","subject":"ci"}]`)
	require.Equal(t, 200, status, body)
	req, _ := http.NewRequest("GET", srv.URL+"/oauth2/federation/robot/token", nil)
	req.Header.Set("Authorization", basicHeader("acme+bot", token))
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, 500, res.StatusCode, "an untrusted certificate escapes as requests' SSLError")
}

// The exchanged token is a robot JWT of the instance key, valid one hour,
// accepted as the robot's password at /v2/auth (and so by docker login)
// until then; Quay does not revoke it when the federation goes away.
func TestFederatedExchange_RobotJWTAsPassword(t *testing.T) {
	env := newFederationEnv(t)
	code, resp, raw := env.exchange(t, basicHeader("acme+bot", env.issuer.mint(t, env.claims(nil))))
	require.Equal(t, 200, code, raw)
	robotJWT := resp["token"].(string)

	claims, err := unverifiedClaims(robotJWT)
	require.NoError(t, err)
	header, err := unverifiedHeader(robotJWT)
	require.NoError(t, err)
	now := env.clock.Now().Unix()
	assert.Equal(t, map[string]any{"alg": "RS256", "typ": "JWT", "kid": env.emu.registryKeyID}, header)
	assert.Equal(t, "quay", claims["iss"])
	assert.Equal(t, "quay.test", claims["aud"], "SERVER_HOSTNAME")
	assert.Equal(t, "acme+bot", claims["sub"])
	assert.Equal(t, map[string]any{}, claims["access"])
	assert.Equal(t, json.Number(strconv.FormatInt(now, 10)), claims["iat"])
	assert.Equal(t, json.Number(strconv.FormatInt(now+3600, 10)), claims["exp"], "TMP_ROBOT_TOKEN_VALIDITY_LIFETIME_S")

	auth := func(user, password string) (int, map[string]any) {
		code, resp, _ := env.raw(t, "GET", "/v2/auth?service=quay.test&scope=repository:quay.test/acme/app:pull,push", basicHeader(user, password), "")
		return code, resp
	}
	code, resp = auth("acme+bot", robotJWT)
	require.Equal(t, 200, code, resp)
	registryClaims, err := unverifiedClaims(resp["token"].(string))
	require.NoError(t, err)
	assert.Equal(t, "acme+bot", registryClaims["sub"])
	assert.Equal(t, []any{map[string]any{"type": "repository", "name": "quay.test/acme/app", "actions": []any{"pull"}}}, registryClaims["access"],
		"the robot's own permissions (read) apply")

	code, resp = auth("acme+plain", robotJWT)
	assert.Equal(t, 401, code)
	assert.Equal(t, "Token does not match robot", resp["errors"].([]any)[0].(map[string]any)["message"])
	code, _ = auth("acme+bot", env.issuer.mint(t, env.claims(nil)))
	assert.Equal(t, 500, code, "an external JWT as the password: InvalidBearerTokenException escapes")

	// Deleting the federation does not revoke what was exchanged.
	code, _, _ = env.do(t, "DELETE", "/api/v1/organization/acme/robots/bot/federation", env.admin, "")
	require.Equal(t, 204, code)
	code, _ = auth("acme+bot", robotJWT)
	assert.Equal(t, 200, code)

	// Valid for the hour and the 30 s leeway; then Quay refuses it with
	// a 500 (the escaped InvalidBearerTokenException).
	env.clock.Advance(time.Hour + 29*time.Second)
	code, _ = auth("acme+bot", robotJWT)
	assert.Equal(t, 200, code)
	env.clock.Advance(2 * time.Second)
	code, _ = auth("acme+bot", robotJWT)
	assert.Equal(t, 500, code)

	// A deleted robot is refused before its JWT is looked at.
	code, _, _ = env.do(t, "DELETE", "/api/v1/organization/acme/robots/bot", env.admin, "")
	require.Equal(t, 204, code)
	code, resp = auth("acme+bot", robotJWT)
	assert.Equal(t, 401, code)
	assert.Equal(t, robotNotFoundMessage, resp["errors"].([]any)[0].(map[string]any)["message"])
}

// The exchange is served outside the global lock: a slow issuer does not
// stall the rest of the API.
func TestFederatedExchange_SlowIssuerDoesNotBlockQuay(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	pool := x509.NewCertPool()
	pool.AddCert(slow.Certificate())
	cfg, err := ParseConfig([]byte("SUPER_USERS: [admin]\n"))
	require.NoError(t, err)
	emu, err := New(cfg, WithRootCAs(pool))
	require.NoError(t, err)
	require.NoError(t, emu.CreateUser("admin", "password1", "a@example.com"))
	require.NoError(t, emu.CreateOrganization("acme", "admin"))
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	admin, _ := emu.IssueToken("admin", "org:admin", time.Hour)
	status, body := call(t, srv, "PUT", "/api/v1/organization/acme/robots/bot", admin, "{}")
	require.Equal(t, 201, status, body)
	status, body = call(t, srv, "POST", "/api/v1/organization/acme/robots/bot/federation", admin, `[{"issuer":"`+slow.URL+`","subject":"ci"}]`)
	require.Equal(t, 200, status, body)

	token := (&testIssuer{}).unsigned(map[string]any{"iss": slow.URL, "sub": "ci"})
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", srv.URL+"/oauth2/federation/robot/token", nil)
		req.Header.Set("Authorization", basicHeader("acme+bot", token))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		done <- res.StatusCode
	}()
	require.Eventually(t, func() bool { return emu.Calls(federatedTokenRoute) == 1 }, 5*time.Second, 10*time.Millisecond)
	status, _ = call(t, srv, "GET", "/api/v1/organization/acme/robots/bot/federation", admin, "")
	assert.Equal(t, 200, status, "answered while the exchange waits on the issuer")
	select {
	case <-done:
		t.Fatal("the exchange finished before the issuer answered")
	default:
	}
	release <- struct{}{}
	assert.Equal(t, 500, <-done, "a failed discovery escapes")
}

// unsigned is a JWT-shaped token with a kid and these claims; its
// signature is never checked before discovery.
func (*testIssuer) unsigned(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "k1"}) + "." + enc(claims) + ".c2ln"
}
