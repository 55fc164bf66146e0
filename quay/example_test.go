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
		switch {
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
