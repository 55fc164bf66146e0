package quay

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func BenchmarkCreateApplicationToken(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"uuid": "0b0c4d3e-5f60-4718-8a9b-0c1d2e3f4a5b", "name": "bench", "scope": "repo:read", "expires_at": "2036-07-10T11:05:34.123456Z", "created": "2026-07-10T11:05:34Z", "created_by": "quayadmin", "last_accessed": null, "token": "ABCDEFGHIJabcdefghij0123456789ABCDEFGHIJ"}`)
	}))
	defer srv.Close()
	c := newTestClient(b, srv.URL)
	in := NewApplicationToken{Name: "bench", Scopes: []string{ScopeRepoRead}, Expiration: time.Hour}
	b.ReportAllocs()
	for b.Loop() {
		tok, err := c.CreateApplicationToken(bg, "acme", "CID", in)
		if err != nil {
			b.Fatal(err)
		}
		if tok.Token == "" {
			b.Fatal("no token")
		}
	}
}
