package quay

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A server that keeps cycling between cursors must not hold the caller.
func TestPagination_StopsOnACursorSeenBefore(t *testing.T) {
	var pages atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pages.Add(1)
		if r.URL.Query().Get("next_page") == "a" {
			_, _ = w.Write([]byte(`{"tokens":[{"uuid":"2"}],"next_page":"b"}`))
			return
		}
		_, _ = w.Write([]byte(`{"tokens":[{"uuid":"1"}],"next_page":"a"}`))
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Credential: StaticToken("t")})
	require.NoError(t, err)
	tokens, err := c.ListApplicationTokens(context.Background(), "acme", "CID")
	require.NoError(t, err)
	assert.EqualValues(t, 3, pages.Load(), "first page, a, b; b points back at a")
	assert.Len(t, tokens, 3)
}

// A call that fails for good must not empty the shared connection pool:
// the next calls keep using the open connection.
func TestClient_FailedCallKeepsThePool(t *testing.T) {
	var conns atomic.Int32
	fail := atomic.Bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"username":"u"}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Credential: StaticToken("t"), MaxRetries: 1, RetryWaitMin: 1, RetryWaitMax: 2})
	require.NoError(t, err)

	_, err = c.GetUser(context.Background())
	require.NoError(t, err)
	fail.Store(true)
	_, err = c.GetUser(context.Background())
	require.Error(t, err)
	fail.Store(false)
	for range 3 {
		_, err = c.GetUser(context.Background())
		require.NoError(t, err)
	}
	assert.EqualValues(t, 1, conns.Load(), "one connection for every call")
}

// Cancelling the caller's context while a list is being paged ends the walk:
// no further page is asked for and no partial list is returned.
func TestPagination_CancellationStopsPaging(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
		jsonReply(200, `{"repositories": [{"namespace": "acme", "name": "app"}], "next_page": "p2"}`)(w, r)
		// The flush makes the answer chunked: its last chunk only leaves
		// when the handler returns, so the client has the whole first
		// page only after the cancellation.
		w.(http.Flusher).Flush()
		cancel()
	})
	repos, err := newTestClient(t, srv.URL).ListRepositories(ctx, "acme")
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Nil(t, repos)
	assert.Equal(t, 1, srv.Calls())
}
