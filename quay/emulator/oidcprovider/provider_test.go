package oidcprovider

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const tenant = "11111111-2222-3333-4444-555555555555"

var vault = Client{ID: "vault", Secret: "s3cret", Subject: "vault-sp"}

func serve(t *testing.T, cfg Config) (*Provider, *httptest.Server) {
	t.Helper()
	p, err := New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.BaseURL = srv.URL
	return p, srv
}

func getJSON(t *testing.T, u string, v any) int {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	if v != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
	}
	return resp.StatusCode
}

// tokenRequest posts a client-credentials request; basic selects client
// authentication by HTTP Basic instead of form fields.
func tokenRequest(t *testing.T, p *Provider, id, secret, scope string, basic bool) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	if !basic {
		form.Set("client_id", id)
		form.Set("client_secret", secret)
	}
	req, err := http.NewRequest(http.MethodPost, p.TokenURL(), strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(id, secret)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

// verify checks a token against the provider's published key set, as Quay
// does, and returns its claims.
func verify(t *testing.T, p *Provider, raw string) jwt.MapClaims {
	t.Helper()
	var doc map[string]any
	require.Equal(t, 200, getJSON(t, p.BaseURL+"/.well-known/openid-configuration", &doc))
	var set jose.JSONWebKeySet
	require.Equal(t, 200, getJSON(t, doc["jwks_uri"].(string), &set))
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(raw, claims, func(tok *jwt.Token) (any, error) {
		keys := set.Key(tok.Header["kid"].(string))
		require.Len(t, keys, 1)
		return keys[0].Key, nil
	}, jwt.WithValidMethods([]string{"RS256"}))
	require.NoError(t, err)
	assert.Equal(t, "JWT", tok.Header["typ"], "Quay treats a Bearer token as a JWT only with typ JWT or at+jwt")
	return claims
}

func TestDiscoveryAndKeys(t *testing.T) {
	p, srv := serve(t, Config{Issuer: IssuerV2(tenant), Clients: []Client{vault}})
	var doc map[string]any
	require.Equal(t, 200, getJSON(t, srv.URL+"/.well-known/openid-configuration", &doc))
	assert.Equal(t, "https://login.microsoftonline.com/"+tenant+"/v2.0", doc["issuer"], "Entra's issuer, not the provider's URL")
	assert.Equal(t, srv.URL+"/discovery/v2.0/keys", doc["jwks_uri"])
	assert.Equal(t, p.TokenURL(), doc["token_endpoint"])
	// Quay joins OIDC_SERVER (often with a trailing slash) and the path.
	require.Equal(t, 200, getJSON(t, srv.URL+"/tenant/.well-known/openid-configuration", &doc))

	var set map[string][]map[string]any
	require.Equal(t, 200, getJSON(t, doc["jwks_uri"].(string), &set))
	require.Len(t, set["keys"], 1)
	key := set["keys"][0]
	assert.Equal(t, "RSA", key["kty"])
	assert.NotEmpty(t, key["kid"])
	assert.Equal(t, "AQAB", key["e"])

	assert.Equal(t, 404, getJSON(t, srv.URL+"/nothing", nil))
	assert.Equal(t, IssuerV1(tenant), "https://sts.windows.net/"+tenant+"/")
}

func TestClientCredentials_V2(t *testing.T) {
	now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	p, _ := serve(t, Config{Issuer: IssuerV2(tenant), Clients: []Client{vault}, TokenTTL: 10 * time.Minute, Now: func() time.Time { return now }})
	for _, basic := range []bool{false, true} {
		code, body := tokenRequest(t, p, "vault", "s3cret", "api://quay-api/.default", basic)
		require.Equal(t, 200, code, body)
		assert.Equal(t, "Bearer", body["token_type"])
		assert.Equal(t, float64(600), body["expires_in"])
		claims := jwt.MapClaims{}
		_, _, err := jwt.NewParser().ParseUnverified(body["access_token"].(string), claims)
		require.NoError(t, err)
		assert.Equal(t, IssuerV2(tenant), claims["iss"])
		assert.Equal(t, "api://quay-api", claims["aud"], "the scope's resource, /.default cut")
		assert.Equal(t, "vault", claims["azp"])
		assert.Equal(t, "vault-sp", claims["sub"])
		assert.Equal(t, "2.0", claims["ver"])
		assert.Equal(t, float64(now.Unix()), claims["iat"])
		assert.Equal(t, float64(now.Add(10*time.Minute).Unix()), claims["exp"])
	}
	assert.Equal(t, 2, p.TokensIssued())
}

func TestClientCredentials_V1HasAppID(t *testing.T) {
	p, _ := serve(t, Config{Issuer: IssuerV1(tenant), Version: 1, Clients: []Client{vault}})
	code, body := tokenRequest(t, p, "vault", "s3cret", "api://quay-api/.default", false)
	require.Equal(t, 200, code)
	claims := verify(t, p, body["access_token"].(string))
	assert.Equal(t, IssuerV1(tenant), claims["iss"])
	assert.Equal(t, "vault", claims["appid"])
	assert.NotContains(t, claims, "azp", "v1.0 tokens carry appid, not azp")
	assert.Equal(t, "1.0", claims["ver"])
}

func TestClientCredentials_Refusals(t *testing.T) {
	p, _ := serve(t, Config{Issuer: IssuerV2(tenant), Clients: []Client{vault}})
	code, body := tokenRequest(t, p, "vault", "wrong", "api://quay-api/.default", false)
	assert.Equal(t, 401, code)
	assert.Equal(t, "invalid_client", body["error"])
	code, body = tokenRequest(t, p, "nobody", "s3cret", "api://quay-api/.default", true)
	assert.Equal(t, 401, code)
	assert.Equal(t, "invalid_client", body["error"])
	code, body = tokenRequest(t, p, "vault", "s3cret", "", false)
	assert.Equal(t, 400, code)
	assert.Equal(t, "invalid_scope", body["error"])

	resp, err := http.PostForm(p.TokenURL(), url.Values{"grant_type": {"password"}})
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, 400, resp.StatusCode)
	assert.Equal(t, 0, p.TokensIssued())
}

// MintRefused changes exactly one thing about an otherwise valid token.
func TestMintRefused(t *testing.T) {
	p, _ := serve(t, Config{Issuer: IssuerV2(tenant), Clients: []Client{vault}})
	parse := func(raw string) (jwt.MapClaims, map[string]any) {
		claims := jwt.MapClaims{}
		tok, _, err := jwt.NewParser().ParseUnverified(raw, claims)
		require.NoError(t, err)
		return claims, tok.Header
	}
	good, err := p.Mint(p.Claims(vault, "api://quay-api"), nil)
	require.NoError(t, err)
	verify(t, p, good)

	for reason, check := range map[Refusal]func(jwt.MapClaims, map[string]any){
		UnknownIssuer:  func(c jwt.MapClaims, _ map[string]any) { assert.Equal(t, OtherTenantIssuer, c["iss"]) },
		WrongAudience:  func(c jwt.MapClaims, _ map[string]any) { assert.Equal(t, "api://wrong-audience", c["aud"]) },
		UnlistedClient: func(c jwt.MapClaims, _ map[string]any) { assert.Equal(t, "unlisted-client", c["azp"]) },
		Expired: func(c jwt.MapClaims, _ map[string]any) {
			exp, _ := c.GetExpirationTime()
			assert.True(t, exp.Before(time.Now().Add(-30*time.Second)), "beyond Quay's leeway")
		},
		MissingKeyID:     func(_ jwt.MapClaims, h map[string]any) { assert.NotContains(t, h, "kid") },
		UnknownKeyID:     func(_ jwt.MapClaims, h map[string]any) { assert.Equal(t, "unknown-kid", h["kid"]) },
		DisallowedMethod: func(_ jwt.MapClaims, h map[string]any) { assert.Equal(t, "HS256", h["alg"]) },
		BadSignature:     func(_ jwt.MapClaims, h map[string]any) { assert.Equal(t, "RS256", h["alg"]) },
	} {
		raw, err := p.MintRefused(reason, vault, "api://quay-api")
		require.NoError(t, err, reason)
		claims, header := parse(raw)
		check(claims, header)
	}
	bad, err := p.MintRefused(BadSignature, vault, "api://quay-api")
	require.NoError(t, err)
	_, err = jwt.Parse(bad, func(*jwt.Token) (any, error) { return &p.key.PublicKey, nil })
	assert.ErrorIs(t, err, jwt.ErrTokenSignatureInvalid)

	_, err = p.MintRefused("no-such-refusal", vault, "api://quay-api")
	assert.Error(t, err)
}
