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
	assert.Equal(t, []any{float64(7000215)}, body["error_codes"])
	code, body = tokenRequest(t, p, "nobody", "s3cret", "api://quay-api/.default", true)
	assert.Equal(t, 400, code)
	assert.Equal(t, "unauthorized_client", body["error"], "Entra's AADSTS700016 for an unknown application")
	for _, scope := range []string{"", "api://quay-api", "/.default", "api://quay-api/.default api://other/.default"} {
		code, body = tokenRequest(t, p, "vault", "s3cret", scope, false)
		assert.Equal(t, 400, code, scope)
		assert.Equal(t, "invalid_scope", body["error"], "client credentials need exactly one <resource>/.default: %q", scope)
	}

	resp, err := http.PostForm(p.TokenURL(), url.Values{"grant_type": {"password"}})
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, 400, resp.StatusCode)
	assert.Equal(t, 0, p.TokensIssued())
	assert.Equal(t, 7, p.TokenRequests(), "refused requests count as requests")
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
	_, err = jwt.Parse(bad, func(*jwt.Token) (any, error) { return &p.keys[0].key.PublicKey, nil })
	assert.ErrorIs(t, err, jwt.ErrTokenSignatureInvalid)

	_, err = p.MintRefused("no-such-refusal", vault, "api://quay-api")
	assert.Error(t, err)
}

// Entra's issuers are not its token host: the discovery's issuer and the
// tokens' iss are set apart from the provider's URL and from each other.
func TestIssuersApartFromTheURL(t *testing.T) {
	p, srv := serve(t, Config{Tenant: tenant, DiscoveryIssuer: "https://elsewhere.example/", Clients: []Client{
		vault, {ID: "legacy", Secret: "l", Subject: "legacy-sp", Version: 1},
	}})
	var doc map[string]any
	require.Equal(t, 200, getJSON(t, srv.URL+"/.well-known/openid-configuration", &doc))
	assert.Equal(t, "https://elsewhere.example/", doc["issuer"])

	_, body := tokenRequest(t, p, "vault", "s3cret", "api://quay-api/.default", false)
	claims := verify(t, p, body["access_token"].(string))
	assert.Equal(t, IssuerV2(tenant), claims["iss"], "the provider's version (2) for Tenant")
	assert.Equal(t, tenant, claims["tid"])
	_, body = tokenRequest(t, p, "legacy", "l", "api://quay-api/.default", false)
	claims = verify(t, p, body["access_token"].(string))
	assert.Equal(t, IssuerV1(tenant), claims["iss"], "a v1.0 client gets the v1.0 issuer of the same tenant")
	assert.Equal(t, "legacy", claims["appid"])
	assert.NotContains(t, claims, "azp")

	// No issuer in the discovery at all ("-"): Quay falls back to OIDC_SERVER.
	p2, srv2 := serve(t, Config{Issuer: IssuerV2(tenant), DiscoveryIssuer: "-"})
	doc = nil
	require.Equal(t, 200, getJSON(t, srv2.URL+"/.well-known/openid-configuration", &doc))
	assert.NotContains(t, doc, "issuer")
	assert.Equal(t, tenant, p2.Claims(vault, "x")["tid"], "the tenant read from an Entra issuer")

	_, err := New(Config{})
	assert.Error(t, err, "an issuer or a tenant is needed")
	_, err = New(Config{Tenant: tenant, Version: 3})
	assert.Error(t, err)
}

func TestClaimsAreConfigurable(t *testing.T) {
	now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	jane := Client{ID: "rhdh", Secret: "x", Subject: "oid-jane", PreferredUsername: "Jane.Doe@contoso.com", Claims: map[string]any{"roles": []string{"push"}}}
	p, _ := serve(t, Config{Tenant: tenant, Clients: []Client{jane}, ExtraClaims: map[string]any{"roles": []string{"pull"}, "email": "x@contoso.com"},
		Now: func() time.Time { return now }})
	c := p.Claims(jane, "api://quay-api")
	assert.Equal(t, "Jane.Doe@contoso.com", c["preferred_username"])
	assert.Equal(t, []string{"push"}, c["roles"], "the client's claims win")
	assert.Equal(t, "x@contoso.com", c["email"])
	assert.Equal(t, now.Unix(), c["iat"])
	got, ok := p.Client("rhdh")
	assert.True(t, ok)
	assert.Equal(t, jane.Subject, got.Subject)
	_, ok = p.Client("nobody")
	assert.False(t, ok)
}

// The v1.0-style endpoint takes resource instead of scope.
func TestClientCredentials_V1Endpoint(t *testing.T) {
	p, _ := serve(t, Config{Tenant: tenant, Clients: []Client{vault}})
	resp, err := http.PostForm(p.TokenURLV1(), url.Values{"grant_type": {"client_credentials"}, "client_id": {"vault"},
		"client_secret": {"s3cret"}, "resource": {"api://quay-api"}})
	require.NoError(t, err)
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, body)
	assert.Equal(t, "api://quay-api", verify(t, p, body["access_token"].(string))["aud"])

	resp, err = http.PostForm(p.TokenURLV1(), url.Values{"grant_type": {"client_credentials"}, "client_id": {"vault"}, "client_secret": {"s3cret"}})
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 400, resp.StatusCode, "resource is required")
}

// HTTP Basic credentials are form-urlencoded first (RFC 6749 §2.3.1), as
// golang.org/x/oauth2 sends them; Entra secrets often hold such characters.
func TestClientCredentials_BasicIsURLDecoded(t *testing.T) {
	odd := Client{ID: "odd", Secret: "a+b/c=d~e:f", Subject: "odd-sp"}
	p, _ := serve(t, Config{Tenant: tenant, Clients: []Client{odd}})
	req, err := http.NewRequest(http.MethodPost, p.TokenURL(), strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"api://quay-api/.default"}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(odd.ID), url.QueryEscape(odd.Secret))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	code, _ := tokenRequest(t, p, "odd", odd.Secret, "api://quay-api/.default", false)
	assert.Equal(t, 200, code, "form fields as sent")
}

func TestKeyRotation(t *testing.T) {
	p, _ := serve(t, Config{Tenant: tenant, Clients: []Client{vault}})
	old := p.KeyID()
	before, err := p.Mint(p.Claims(vault, "a"), nil)
	require.NoError(t, err)

	require.NoError(t, p.RotateKey(false))
	assert.NotEqual(t, old, p.KeyID())
	var set jose.JSONWebKeySet
	require.Equal(t, 200, getJSON(t, p.KeysURL(), &set))
	assert.Len(t, set.Keys, 2, "the old key stays published")
	verify(t, p, before)
	after, err := p.Mint(p.Claims(vault, "a"), nil)
	require.NoError(t, err)
	verify(t, p, after)
	_, header := parseUnverified(t, after)
	assert.Equal(t, p.KeyID(), header["kid"])

	require.NoError(t, p.RotateKey(true))
	require.Equal(t, 200, getJSON(t, p.KeysURL(), &set))
	assert.Len(t, set.Keys, 1, "retired")

	kid := p.KeyID()
	require.NoError(t, p.ReplaceKey())
	assert.Equal(t, kid, p.KeyID(), "same kid, another key")
	assert.Equal(t, 4, p.KeySetFetches(), "two verifications and two reads here")
	assert.Equal(t, 2, p.DiscoveryFetches())
}

func TestNewServerAndTypeHeader(t *testing.T) {
	p, srv, err := NewServer(Config{Tenant: tenant, Clients: []Client{vault}})
	require.NoError(t, err)
	defer srv.Close()
	assert.Equal(t, srv.URL, p.BaseURL)
	var doc map[string]any
	require.Equal(t, 200, getJSON(t, srv.URL+"/.well-known/openid-configuration", &doc))
	assert.Equal(t, 1, p.DiscoveryFetches())

	for typ, want := range map[string]any{"-": nil, "at+jwt": "at+jwt"} {
		raw, err := p.Mint(p.Claims(vault, "a"), &MintOptions{Type: typ})
		require.NoError(t, err)
		_, header := parseUnverified(t, raw)
		assert.Equal(t, want, header["typ"])
	}
	assert.Len(t, Refusals(), 8)
}

func parseUnverified(t *testing.T, raw string) (jwt.MapClaims, map[string]any) {
	t.Helper()
	claims := jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(raw, claims)
	require.NoError(t, err)
	return claims, tok.Header
}

// Entra documents its endpoints under the tenant
// (https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token); a
// token_url copied from Entra's portal works against the provider with only
// the host changed.
func TestTenantScopedEndpoints(t *testing.T) {
	p, srv := serve(t, Config{Issuer: IssuerV2(tenant), Clients: []Client{vault}})
	assert.Equal(t, srv.URL+"/"+tenant+"/oauth2/v2.0/token", p.TenantTokenURL())
	assert.Equal(t, srv.URL+"/"+tenant+"/oauth2/token", p.TenantTokenURLV1())

	// Discovery under the tenant names the tenant's endpoints, as Entra's does.
	var doc map[string]any
	require.Equal(t, 200, getJSON(t, srv.URL+"/"+tenant+"/v2.0/.well-known/openid-configuration", &doc))
	assert.Equal(t, p.TenantTokenURL(), doc["token_endpoint"])
	assert.Equal(t, srv.URL+"/"+tenant+"/discovery/v2.0/keys", doc["jwks_uri"])
	assert.Equal(t, IssuerV2(tenant), doc["issuer"])

	post := func(u string, form url.Values) (int, map[string]any) {
		t.Helper()
		resp, err := http.PostForm(u, form)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp.StatusCode, body
	}
	creds := url.Values{"grant_type": {"client_credentials"}, "client_id": {"vault"}, "client_secret": {"s3cret"}}

	v2 := url.Values{"scope": {"api://quay-api/.default"}}
	for k, v := range creds {
		v2[k] = v
	}
	code, body := post(p.TenantTokenURL(), v2)
	require.Equal(t, 200, code, body)
	claims := verify(t, p, body["access_token"].(string))
	assert.Equal(t, "api://quay-api", claims["aud"])
	assert.Equal(t, "vault", claims["azp"])
	assert.Equal(t, tenant, claims["tid"])
	// The tenant-scoped key set is the provider's key set.
	var set map[string][]map[string]any
	require.Equal(t, 200, getJSON(t, doc["jwks_uri"].(string), &set))
	require.Len(t, set["keys"], 1)
	assert.Equal(t, p.KeyID(), set["keys"][0]["kid"])

	// Tenant IDs are compared without regard to case.
	code, body = post(srv.URL+"/"+strings.ToUpper(tenant)+"/oauth2/v2.0/token", v2)
	assert.Equal(t, 200, code, body)

	v1 := url.Values{"resource": {"api://quay-api"}}
	for k, v := range creds {
		v1[k] = v
	}
	code, body = post(p.TenantTokenURLV1(), v1)
	require.Equal(t, 200, code, body)
	assert.Equal(t, "api://quay-api", verify(t, p, body["access_token"].(string))["aud"])

	// Another tenant is Entra's AADSTS90002, for tokens and keys alike.
	requests, issued := p.TokenRequests(), p.TokensIssued()
	const other = "99999999-8888-7777-6666-555555555555"
	code, body = post(srv.URL+"/"+other+"/oauth2/v2.0/token", v2)
	assert.Equal(t, 400, code)
	assert.Equal(t, "invalid_request", body["error"])
	assert.Equal(t, []any{float64(90002)}, body["error_codes"])
	assert.Contains(t, body["error_description"], "Tenant '"+other+"' not found")
	assert.Equal(t, requests+1, p.TokenRequests(), "a refused token request is still a token request")
	assert.Equal(t, issued, p.TokensIssued())
	assert.Equal(t, 400, getJSON(t, srv.URL+"/"+other+"/discovery/v2.0/keys", nil))

	// Only the token routes and the key set live under the tenant.
	assert.Equal(t, 404, getJSON(t, srv.URL+"/"+tenant+"/oauth2/v2.0/authorize", nil))
	assert.Equal(t, 404, getJSON(t, p.TenantTokenURL(), nil), "the token endpoint takes POST only")
}

// A provider whose issuer is not Entra's has no tenant to serve.
func TestTenantScopedEndpoints_NoTenant(t *testing.T) {
	_, srv := serve(t, Config{Issuer: "https://idp.example.com", Clients: []Client{vault}})
	resp, err := http.PostForm(srv.URL+"/"+tenant+"/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {"vault"}, "client_secret": {"s3cret"}, "scope": {"api://quay-api/.default"}})
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 400, resp.StatusCode)
}
