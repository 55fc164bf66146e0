package quay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// fakeQuay stands in for a Quay instance in the examples.
func fakeQuay() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") == "Bearer revoked" {
			// An unknown token: Quay serves a GET anonymously and refuses
			// it, but rejects a mutation at its CSRF check first.
			if r.Method == http.MethodGet {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"detail": "Requires authentication", "error_message": "Requires authentication", "error_type": "invalid_token", "title": "invalid_token", "status": 401}`)
				return
			}
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"error": "CSRF token was invalid or missing."}`)
			return
		}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/oauth/authorizeapp":
			if user, pass, _ := r.BasicAuth(); user != "svc" || pass != "correct horse" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Location", r.PostFormValue("redirect_uri")+"#access_token=ABCDEFGHIJabcdefghij0123456789ABCDEFGHIJ&token_type=Bearer&expires_in=315576000")
			w.WriteHeader(http.StatusFound)
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/organization/acme/applications/CLIENTID/tokens":
			_, _ = io.WriteString(w, `{"uuid": "6f1c…", "name": "ci", "scope": "repo:read repo:write",
				"expires_at": "2026-08-22T10:00:00Z", "created": "2026-07-23T10:00:00.123456Z",
				"created_by": "quayadmin", "last_accessed": null, "token": "ABCDEFGHIJabcdefghij0123456789ABCDEFGHIJ"}`)
		case r.URL.Path == "/api/v1/organization/acme/robots/gone":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"message": "Could not find robot with specified username"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"detail": "Not Found", "error_message": "Not Found", "error_type": "not_found", "title": "not_found", "status": 404}`)
		}
	}))
}

// A client authenticates every /api/v1 call with a Bearer token; an
// application token is minted with scopes no wider than the caller's own.
func ExampleClient_CreateApplicationToken() {
	srv := fakeQuay()
	defer srv.Close()

	client, err := quay.New(quay.Config{
		BaseURL:    srv.URL, // e.g. https://quay.example.com
		Credential: quay.StaticToken("an OAuth token with org:admin"),
	})
	if err != nil {
		panic(err)
	}
	defer client.Close()

	tok, err := client.CreateApplicationToken(context.Background(), "acme", "CLIENTID", quay.NewApplicationToken{
		Name:       "ci",
		Scopes:     []string{quay.ScopeRepoRead, quay.ScopeRepoWrite},
		Expiration: 30 * 24 * time.Hour, // sent as 2592000 seconds
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(tok.Name, tok.Scopes(), tok.ExpiresAt.Format(time.RFC3339), len(tok.Token))
	// Output: ci [repo:read repo:write] 2026-08-22T10:00:00Z 40
}

// Quay reports a missing robot with a 400, not a 404; IsRobotNotFound knows.
func ExampleIsRobotNotFound() {
	srv := fakeQuay()
	defer srv.Close()
	client, _ := quay.New(quay.Config{BaseURL: srv.URL, Credential: quay.StaticToken("token")})
	defer client.Close()

	err := client.DeleteRobot(context.Background(), quay.Namespace{Kind: quay.NamespaceOrganization, Name: "acme"}, "gone")
	fmt.Println(quay.IsRobotNotFound(err), quay.StatusOf(err))
	fmt.Println(err)
	// Output:
	// true 400
	// quay: DELETE /api/v1/organization/acme/robots/gone: 400 Could not find robot with specified username
}

// Every failed call is an *Error carrying Quay's status, error type and
// message, whatever the shape of Quay's error body.
func ExampleError() {
	srv := fakeQuay()
	defer srv.Close()
	client, _ := quay.New(quay.Config{BaseURL: srv.URL, Credential: quay.StaticToken("token")})
	defer client.Close()

	_, err := client.GetOrganization(context.Background(), "nope")
	var qe *quay.Error
	if errors.As(err, &qe) {
		fmt.Println(qe.StatusCode, qe.Type, qe.Message, quay.IsNotFound(err), quay.IsTransient(err))
	}
	// Output: 404 not_found Not Found true false
}

// NormalizeScopes checks scopes against Quay's set, as Quay rejects a whole
// scope string for one unknown scope.
func ExampleNormalizeScopes() {
	scopes, err := quay.NormalizeScopes(quay.SplitScopes("user:read,repo:read repo:read"))
	fmt.Println(scopes, err)
	_, err = quay.NormalizeScopes([]string{"repo:pull"})
	fmt.Println(err != nil)
	// Output:
	// [repo:read user:read] <nil>
	// true
}

// ScopesCover tells whether a token may mint another with the requested
// scopes, applying repo:admin ⊃ repo:write ⊃ repo:read.
func ExampleScopesCover() {
	ok, missing := quay.ScopesCover([]string{quay.ScopeRepoAdmin}, []string{quay.ScopeRepoWrite, quay.ScopeOrgAdmin})
	fmt.Println(ok, missing)
	// Output: false [org:admin]
}

// Direct OAuth trades a user's password for a token of an application
// whitelisted in DIRECT_OAUTH_CLIENTID_WHITELIST. The client sends Basic
// credentials on this call only, and reads the token from the redirect
// without following it.
func ExampleClient_AuthorizeApp() {
	srv := fakeQuay()
	defer srv.Close()
	client, _ := quay.New(quay.Config{BaseURL: srv.URL}) // no credential needed
	defer client.Close()

	tok, err := client.AuthorizeApp(context.Background(), quay.DirectOAuthRequest{
		Username:    "svc",
		Password:    "correct horse",
		ClientID:    "CLIENTID",
		RedirectURI: srv.URL + "/oauth/localapp",
		Scopes:      []string{quay.ScopeOrgAdmin, quay.ScopeUserRead},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(tok.AccessToken), tok.ExpiresIn)
	// Output: 40 87660h0m0s
}

// A token Quay does not know is refused with a 401 on reads but a 403 CSRF
// answer on mutations; IsUnauthorized reports both, IsForbidden neither.
func ExampleIsUnauthorized() {
	srv := fakeQuay()
	defer srv.Close()
	client, _ := quay.New(quay.Config{BaseURL: srv.URL, Credential: quay.StaticToken("revoked")})
	defer client.Close()

	ctx := context.Background()
	_, err := client.GetUser(ctx)
	fmt.Println(quay.StatusOf(err), quay.IsUnauthorized(err), quay.IsForbidden(err))
	_, err = client.CreateRobot(ctx, quay.Namespace{Kind: quay.NamespaceOrganization, Name: "acme"}, "ci", quay.RobotSpec{})
	fmt.Println(quay.StatusOf(err), quay.IsUnauthorized(err), quay.IsForbidden(err))
	// Output:
	// 401 true false
	// 403 true false
}
