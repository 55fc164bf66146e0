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

func TestFaults_LatencyThenNormalHandling(t *testing.T) {
	q := newQuayEnv(t, "")
	q.emu.Faults().AddLatency("createOrganization", 50*time.Millisecond)
	start := time.Now()
	code, _, _ := q.do(t, "POST", "/api/v1/organization/", q.admin, `{"name":"slow"}`)
	assert.Equal(t, 201, code, "the call proceeds after the delay")
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	code, _, _ = q.do(t, "GET", "/api/v1/user/", q.admin, "")
	assert.Equal(t, 200, code, "other routes are not delayed")
}

// Quay finishes what it started even when the client gave up.
func TestFaults_LatencyOutlivesTheClient(t *testing.T) {
	q := newQuayEnv(t, "")
	srv := httptest.NewServer(q.emu)
	q.emu.Faults().Add(Fault{Route: "createOrganization", Count: 1, Latency: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/api/v1/organization/", strings.NewReader(`{"name":"late"}`))
	req.Header.Set("Authorization", "Bearer "+q.admin)
	req.Header.Set("Content-Type", "application/json")
	_, err := srv.Client().Do(req)
	require.Error(t, err, "the client timed out")
	srv.Close() // waits for the handler to finish
	code, _, _ := q.do(t, "GET", "/api/v1/organization/late", q.admin, "")
	assert.Equal(t, 200, code, "the organization was created anyway")
}

func TestFaults_Statuses(t *testing.T) {
	q := newQuayEnv(t, "")
	get := func(path string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", q.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+q.admin)
		resp, err := q.srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	q.emu.Faults().FailNext("getLoggedInUser", 2, 502)
	for range 2 {
		resp, body := get("/api/v1/user/")
		assert.Equal(t, 502, resp.StatusCode)
		assert.Equal(t, "text/html", resp.Header.Get("Content-Type"))
		assert.Contains(t, body, "<title>502 Bad Gateway</title>")
		assert.Contains(t, body, "<center>nginx</center>")
	}
	resp, _ := get("/api/v1/user/")
	assert.Equal(t, 200, resp.StatusCode, "two calls only")

	q.emu.Faults().Burst429("getLoggedInUser", 1)
	resp, body := get("/api/v1/user/")
	assert.Equal(t, 429, resp.StatusCode)
	assert.Equal(t, "text/html", resp.Header.Get("Content-Type"))
	assert.Contains(t, body, "429 Too Many Requests")
	assert.Empty(t, resp.Header.Get("Retry-After"), "nginx's limit_req sends none")

	q.emu.Faults().FailNext("getLoggedInUser", 1, 400)
	resp, body = get("/api/v1/user/")
	assert.Equal(t, 400, resp.StatusCode)
	assert.JSONEq(t, `{"error": "Bad Request"}`, body)

	q.emu.Faults().Add(Fault{Route: "getLoggedInUser", Count: 1, Status: 503, Body: `{"message": "System is currently read-only.", "is_readonly": true}`, RetryAfter: "7"})
	resp, body = get("/api/v1/user/")
	assert.Equal(t, 503, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Equal(t, "7", resp.Header.Get("Retry-After"))
	assert.Contains(t, body, "is_readonly")

	// By method and path prefix instead of nickname; Count 0 is every call.
	q.emu.Faults().Add(Fault{Method: "get", PathPrefix: "/api/v1/organization/acme", Status: 500})
	resp, _ = get("/api/v1/organization/acme/robots")
	assert.Equal(t, 500, resp.StatusCode)
	resp, _ = get("/api/v1/organization/acme/applications")
	assert.Equal(t, 500, resp.StatusCode)
	resp, _ = get("/api/v1/user/")
	assert.Equal(t, 200, resp.StatusCode)
	// A fault selecting nothing matches nothing.
	q.emu.Faults().Add(Fault{Status: 500})
	resp, _ = get("/api/v1/user/")
	assert.Equal(t, 200, resp.StatusCode)

	q.emu.Faults().Reset()
	resp, _ = get("/api/v1/organization/acme/robots")
	assert.Equal(t, 200, resp.StatusCode)
}

func TestFaults_DropNextClosesTheConnection(t *testing.T) {
	q := newQuayEnv(t, "")
	q.emu.Faults().DropNext("createOrganization", 1)
	req, _ := http.NewRequest("POST", q.srv.URL+"/api/v1/organization/", strings.NewReader(`{"name":"dropped"}`))
	req.Header.Set("Authorization", "Bearer "+q.admin)
	req.Header.Set("Content-Type", "application/json")
	_, err := q.srv.Client().Do(req)
	require.Error(t, err)
	code, _, _ := q.do(t, "GET", "/api/v1/organization/dropped", q.admin, "")
	assert.Equal(t, 404, code, "a dropped call never reached Quay")
	code, _, _ = q.do(t, "POST", "/api/v1/organization/", q.admin, `{"name":"dropped"}`)
	assert.Equal(t, 201, code)
}

func TestFaults_CallCounters(t *testing.T) {
	q := newQuayEnv(t, "")
	q.emu.ResetCalls()
	q.emu.Faults().FailNext("getLoggedInUser", 1, 500)
	q.do(t, "GET", "/api/v1/user/", q.admin, "")
	q.do(t, "GET", "/api/v1/user/", q.admin, "")
	q.do(t, "GET", "/api/v1/organization/acme/robots", q.admin, "")
	q.do(t, "GET", "/v2/", "", "")
	q.do(t, "GET", "/api/v1/repository/acme/app/permissions/user/admin", q.admin, "")
	assert.Equal(t, 2, q.emu.Calls("getLoggedInUser"), "faulted calls count")
	assert.Equal(t, 1, q.emu.Calls("getOrgRobots"))
	assert.Equal(t, 1, q.emu.Calls("v2"))
	assert.Equal(t, 1, q.emu.Calls("getUserPermissions"), "nested repository routes keep Quay's nicknames")
	assert.Equal(t, 5, q.emu.TotalCalls())
	counts := q.emu.CallCounts()
	counts["getLoggedInUser"] = 99
	assert.Equal(t, 2, q.emu.Calls("getLoggedInUser"), "CallCounts is a copy")
	q.emu.ResetCalls()
	assert.Equal(t, 0, q.emu.TotalCalls())
}

// AfterQuay faults hit the answer, not the call: Quay acts either way.
func TestFaults_AfterQuayActsThenLosesOrReplacesTheAnswer(t *testing.T) {
	q := newQuayEnv(t, "")
	srv := httptest.NewServer(q.emu)
	t.Cleanup(srv.Close)
	post := func(name string) (int, string, error) {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/organization/", strings.NewReader(`{"name":"`+name+`"}`))
		req.Header.Set("Authorization", "Bearer "+q.admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	exists := func(name string) bool {
		code, _, _ := q.do(t, "GET", "/api/v1/organization/"+name, q.admin, "")
		return code == 200
	}

	q.emu.Faults().Add(Fault{Route: "createOrganization", Count: 1, AfterQuay: true, Status: 200, Body: `{}`})
	code, body, err := post("mangled")
	require.NoError(t, err)
	assert.Equal(t, 200, code)
	assert.Equal(t, `{}`, body, "the answer was replaced")
	assert.True(t, exists("mangled"), "Quay acted before the answer was replaced")

	q.emu.Faults().Add(Fault{Route: "createOrganization", Count: 1, AfterQuay: true, Drop: true})
	_, _, err = post("lost")
	require.Error(t, err, "the answer never arrived")
	assert.True(t, exists("lost"), "Quay acted before the connection was lost")

	q.emu.Faults().Add(Fault{Route: "createOrganization", Count: 1, AfterQuay: true, Latency: 20 * time.Millisecond})
	code, body, err = post("late")
	require.NoError(t, err)
	assert.Equal(t, 201, code, "a delayed answer is Quay's own")
	assert.Equal(t, `"Created"`, strings.TrimSpace(body))
}
