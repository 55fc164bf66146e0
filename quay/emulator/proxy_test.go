package emulator

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// proxyEnv is a Proxy in front of an emulator standing in for real Quay.
type proxyEnv struct {
	upstream *quayEnv
	proxy    *Proxy
	srv      *httptest.Server
}

func newProxyEnv(t *testing.T) *proxyEnv {
	t.Helper()
	up := newQuayEnv(t, "")
	p, err := NewProxy(up.srv.URL, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return &proxyEnv{upstream: up, proxy: p, srv: srv}
}

func (e *proxyEnv) createOrg(ctx context.Context, t *testing.T, name string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/api/v1/organization/", strings.NewReader(`{"name":"`+name+`"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.upstream.admin)
	return e.srv.Client().Do(req)
}

// A call held by a latency fault reaches Quay even when its client gave up
// meanwhile: Quay finishes what it started, and so does the proxy.
func TestProxy_HeldCallReachesQuayAfterTheClientGaveUp(t *testing.T) {
	e := newProxyEnv(t)
	e.proxy.Faults().Add(Fault{Route: "createOrganization", Latency: 300 * time.Millisecond, Count: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.createOrg(ctx, t, "held")
	require.Error(t, err, "the client gave up")
	require.Eventually(t, func() bool { return e.upstream.emu.Calls("createOrganization") == 1 }, 5*time.Second, 10*time.Millisecond)
	code, _, _ := e.upstream.do(t, "GET", "/api/v1/organization/held", e.upstream.admin, "")
	assert.Equal(t, 200, code, "Quay created the organization")
	assert.Equal(t, 1, e.proxy.Calls("createOrganization"))
}

// after_quay: Quay acts, the client gets the fault's answer.
func TestProxy_AfterQuayFault(t *testing.T) {
	e := newProxyEnv(t)
	e.proxy.Faults().Add(Fault{Route: "createOrganization", Status: 502, AfterQuay: true, Count: 1})
	resp, err := e.createOrg(context.Background(), t, "committed")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 502, resp.StatusCode)
	assert.Contains(t, string(body), "nginx")
	code, _, _ := e.upstream.do(t, "GET", "/api/v1/organization/committed", e.upstream.admin, "")
	assert.Equal(t, 200, code, "the change was committed before the answer was lost")
}

// Requests no emulator route serves are forwarded without a count; an
// upstream that does not answer is nginx's 502.
func TestProxy_UnnamedRoutesAndADeadUpstream(t *testing.T) {
	e := newProxyEnv(t)
	resp, err := e.srv.Client().Get(e.srv.URL + "/api/v1/no-such-route")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode, "Quay's own answer")
	assert.Empty(t, e.proxy.CallCounts())

	e.upstream.srv.Close()
	resp, err = e.srv.Client().Get(e.srv.URL + "/api/v1/user/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 502, resp.StatusCode)
	assert.Contains(t, string(body), "502 Bad Gateway")
	assert.Equal(t, 1, e.proxy.Calls("getLoggedInUser"))
}

func TestProxy_RefusesAnUpstreamWithAPath(t *testing.T) {
	_, err := NewProxy("http://quay.example.com/quay", nil)
	assert.ErrorContains(t, err, "serves at the root")
}
