package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestControl_Endpoints(t *testing.T) {
	q := newQuayEnv(t, "")
	ctl := httptest.NewServer(q.emu.ControlHandler())
	t.Cleanup(ctl.Close)
	send := func(method, path, body string) (int, map[string]any) {
		req, err := http.NewRequest(method, ctl.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := ctl.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return resp.StatusCode, m
	}

	code, _ := send("POST", "/users", `{"username":"bob","password":"password2","email":"bob@example.com"}`)
	assert.Equal(t, 204, code)
	code, body := send("POST", "/users", `{"username":"bob","password":"password2"}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, body["error"], "already exists")
	code, _ = send("POST", "/organizations", `{"name":"bobs","admin":"bob"}`)
	assert.Equal(t, 204, code)
	code, _ = send("POST", "/applications", `{"organization":"bobs","name":"app","client_id":"FIXEDCLIENTID","redirect_uri":"https://x/cb"}`)
	assert.Equal(t, 204, code)
	code, _, _ = q.do(t, "GET", "/api/v1/app/FIXEDCLIENTID", "", "")
	assert.Equal(t, 200, code)
	code, _ = send("POST", "/repositories", `{"namespace":"bobs","name":"app","public":true}`)
	assert.Equal(t, 204, code)
	code, _, _ = q.do(t, "GET", "/api/v1/repository/bobs/app", "", "")
	assert.Equal(t, 200, code, "public")

	code, body = send("POST", "/tokens", `{"username":"bob","scope":"user:read","ttl_seconds":60}`)
	require.Equal(t, 200, code)
	tok := body["token"].(string)
	code, body = send("GET", "/tokens/valid?token="+tok, "")
	assert.Equal(t, 200, code)
	assert.Equal(t, true, body["valid"])
	code, _ = send("POST", "/clock", `{"advance_seconds":61}`)
	assert.Equal(t, 204, code)
	_, body = send("GET", "/tokens/valid?token="+tok, "")
	assert.Equal(t, false, body["valid"], "the clock moved past its expiry")
	code, body = send("POST", "/tokens", `{"username":"bob","scope":"bogus"}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, body["error"], "invalid scope")

	_, body = send("GET", "/robots/exists?username=bobs%2Bci", "")
	assert.Equal(t, false, body["exists"])
	code, _, _ = q.do(t, "PUT", "/api/v1/organization/acme/robots/ci", q.admin, "")
	require.Equal(t, 201, code)
	_, body = send("GET", "/robots/exists?username=acme%2Bci", "")
	assert.Equal(t, true, body["exists"])

	// Faults and counters over HTTP.
	code, _ = send("POST", "/faults", `{"route":"getLoggedInUser","count":1,"status":503,"latency_ms":1}`)
	assert.Equal(t, 204, code)
	code, _, _ = q.do(t, "GET", "/api/v1/user/", q.admin, "")
	assert.Equal(t, 503, code)
	code, _ = send("POST", "/faults", `{"route":"getLoggedInUser","status":500}`)
	require.Equal(t, 204, code)
	code, _ = send("DELETE", "/faults", "")
	assert.Equal(t, 204, code)
	code, _, _ = q.do(t, "GET", "/api/v1/user/", q.admin, "")
	assert.Equal(t, 200, code)
	code, body = send("GET", "/calls", "")
	assert.Equal(t, 200, code)
	assert.Equal(t, float64(2), body["getLoggedInUser"])
	code, _ = send("DELETE", "/calls", "")
	assert.Equal(t, 204, code)
	_, body = send("GET", "/calls", "")
	assert.Empty(t, body)

	code, body = send("POST", "/faults", `{not json`)
	assert.Equal(t, 400, code)
	assert.Contains(t, body["error"], "invalid JSON")
	code, _ = send("PUT", "/faults", "")
	assert.Equal(t, 405, code)
}

func TestControl_DropFaultOverHTTP(t *testing.T) {
	q := newQuayEnv(t, "")
	ctl := httptest.NewServer(q.emu.ControlHandler())
	t.Cleanup(ctl.Close)
	resp, err := ctl.Client().Post(ctl.URL+"/faults", "application/json", strings.NewReader(`{"path_prefix":"/api/v1/user/","count":1,"drop":true}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 204, resp.StatusCode)
	req, _ := http.NewRequest("GET", q.srv.URL+"/api/v1/user/", nil)
	req.Header.Set("Authorization", "Bearer "+q.admin)
	_, err = q.srv.Client().Do(req)
	assert.Error(t, err)
	code, _, _ := q.do(t, "GET", "/api/v1/user/", q.admin, "")
	assert.Equal(t, 200, code)
}

// The seeding and inspection endpoints added for out-of-process tests:
// superusers, token and application existence, the installed faults.
func TestControl_SuperusersExistenceAndFaultList(t *testing.T) {
	q := newQuayEnv(t, "")
	ctl := httptest.NewServer(q.emu.ControlHandler())
	t.Cleanup(ctl.Close)
	send := func(method, path, body string) (int, map[string]any) {
		req, err := http.NewRequest(method, ctl.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := ctl.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}

	code, _ := send("POST", "/users", `{"username":"root2","password":"password2","email":"r@example.com","superuser":true}`)
	require.Equal(t, 204, code)
	assert.True(t, q.emu.IsSuperUser("root2"))
	_, body := send("POST", "/tokens", `{"username":"root2","scope":"user:read super:user"}`)
	code, user, _ := q.do(t, "GET", "/api/v1/user/", body["token"].(string), "")
	require.Equal(t, 200, code)
	assert.Equal(t, true, user["super_user"], "a superuser's token with super:user")
	_, body = send("POST", "/tokens", `{"username":"root2","scope":"user:read"}`)
	_, user, _ = q.do(t, "GET", "/api/v1/user/", body["token"].(string), "")
	assert.NotContains(t, user, "super_user", "without super:user the grant is not made")

	// Tokens by uuid, applications by client id.
	_, created, _ := q.do(t, "POST", "/api/v1/organization/acme/applications", q.admin, `{"name":"ci"}`)
	clientID := created["client_id"].(string)
	_, body = send("GET", "/applications/exists?client_id="+clientID, "")
	assert.Equal(t, true, body["exists"])
	_, tok, _ := q.do(t, "POST", "/api/v1/organization/acme/applications/"+clientID+"/tokens", q.admin, `{"name":"t","scope":"repo:read","expiration":60}`)
	uuid := tok["uuid"].(string)
	_, body = send("GET", "/tokens/exists?uuid="+uuid, "")
	assert.Equal(t, true, body["exists"])
	q.clock.Advance(time.Hour)
	_, body = send("GET", "/tokens/exists?uuid="+uuid, "")
	assert.Equal(t, true, body["exists"], "expired tokens exist until deleted")
	code, _, _ = q.do(t, "DELETE", "/api/v1/organization/acme/applications/"+clientID, q.admin, "")
	require.Equal(t, 204, code)
	_, body = send("GET", "/tokens/exists?uuid="+uuid, "")
	assert.Equal(t, false, body["exists"], "deleting the application deletes its tokens")
	_, body = send("GET", "/applications/exists?client_id="+clientID, "")
	assert.Equal(t, false, body["exists"])

	// GET /faults lists what is installed and what is left of it.
	code, _ = send("POST", "/faults", `{"route":"getLoggedInUser","count":2,"status":503,"retry_after":"7"}`)
	require.Equal(t, 204, code)
	q.emu.Faults().AddLatency("listRepos", 250*time.Millisecond)
	q.do(t, "GET", "/api/v1/user/", q.admin, "")
	code, body = send("GET", "/faults", "")
	require.Equal(t, 200, code)
	faults := body["faults"].([]any)
	require.Len(t, faults, 2)
	first := faults[0].(map[string]any)
	assert.Equal(t, "getLoggedInUser", first["route"])
	assert.Equal(t, float64(1), first["remaining"])
	assert.Equal(t, "7", first["retry_after"])
	second := faults[1].(map[string]any)
	assert.Equal(t, float64(250), second["latency_ms"])
	assert.Equal(t, float64(-1), second["remaining"])
}
