package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type bootstrapEnv struct {
	*quayEnv
	path string
}

func newBootstrapEnv(t *testing.T, extra string) *bootstrapEnv {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "quay-machine-token.json")
	q := emptyQuay(t, fmt.Sprintf("SUPER_USERS: [owner]\nFEATURE_PROGRAMMATIC_BOOTSTRAP: true\nBOOTSTRAP_TOKEN_OWNER: owner\nBOOTSTRAP_TOKEN_PATH: %s\n%s", path, extra))
	// As with Quay: the owner first, then a start that finds it.
	require.NoError(t, q.emu.CreateUser("owner", "password1", "owner@example.com"))
	require.NoError(t, q.emu.Restart())
	return &bootstrapEnv{quayEnv: q, path: path}
}

func (b *bootstrapEnv) token(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(b.path)
	require.NoError(t, err)
	var f map[string]string
	require.NoError(t, json.Unmarshal(raw, &f))
	require.Len(t, f, 1, "only access_token: %s", raw)
	return f["access_token"]
}

// renew calls the renewal from a client address of one's choosing (Quay's
// nginx marks loopback clients as local).
func (b *bootstrapEnv) renew(t *testing.T, authorization, remote string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/bootstrap/renew", nil)
	req.RemoteAddr = remote
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	b.emu.ServeHTTP(rec, req)
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	return rec.Code, m
}

func TestBootstrap_TokenFile(t *testing.T) {
	b := newBootstrapEnv(t, "")
	st, err := os.Stat(b.path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	tok := b.token(t)
	assert.Regexp(t, `^[A-Z0-9]{40}$`, tok)

	// The owner exists and the token carries the default scope.
	code, user, _ := b.do(t, "GET", "/api/v1/user/", tok, "")
	require.Equal(t, 200, code)
	assert.Equal(t, "owner", user["username"])
	assert.Equal(t, true, user["super_user"])
	_, auths, _ := b.do(t, "GET", "/api/v1/user/authorizations", tok, "")
	a := auths["authorizations"].([]any)[0].(map[string]any)
	assert.Equal(t, "__quay_bootstrap_app", a["application"].(map[string]any)["name"])
	assert.Len(t, a["scopes"], 8)

	// BOOTSTRAP_TOKEN_EXPIRATION defaults to 3600 s.
	b.clock.Advance(3599 * time.Second)
	code, _, _ = b.do(t, "GET", "/api/v1/user/", tok, "")
	assert.Equal(t, 200, code)
	b.clock.Advance(time.Second)
	code, _, _ = b.do(t, "GET", "/api/v1/user/", tok, "")
	assert.Equal(t, 401, code)
}

func TestBootstrap_ConfigErrors(t *testing.T) {
	for extra, want := range map[string]string{
		"SUPER_USERS: [owner]\nBOOTSTRAP_TOKEN_OWNER: \"\"\n":                                  "BOOTSTRAP_TOKEN_OWNER is required",
		"SUPER_USERS: [someone]\nBOOTSTRAP_TOKEN_OWNER: owner\n":                               "must be listed in SUPER_USERS",
		"SUPER_USERS: [owner]\nBOOTSTRAP_TOKEN_OWNER: owner\nBOOTSTRAP_TOKEN_EXPIRATION: -5\n": "BOOTSTRAP_TOKEN_EXPIRATION must be at least 1",
	} {
		cfg, err := ParseConfig([]byte("FEATURE_PROGRAMMATIC_BOOTSTRAP: true\nBOOTSTRAP_TOKEN_PATH: " + filepath.Join(t.TempDir(), "t.json") + "\n" + extra))
		require.NoError(t, err)
		_, err = New(cfg)
		require.Error(t, err)
		assert.Contains(t, err.Error(), want)
	}
}

func TestBootstrap_Renew(t *testing.T) {
	b := newBootstrapEnv(t, "BOOTSTRAP_TOKEN_EXPIRATION: 600\nBOOTSTRAP_TOKEN_SCOPE: \"org:admin user:admin\"\n")
	first := b.token(t)
	code, body := b.renew(t, "Bearer "+first, "192.0.2.7:4000")
	require.Equal(t, 200, code)
	assert.Equal(t, map[string]any{"status": "rotated"}, body, "the new token is not in the answer")
	second := b.token(t)
	assert.NotEqual(t, first, second)
	assert.False(t, b.emu.TokenValid(first), "the old token stops at once")
	assert.True(t, b.emu.TokenValid(second))
	_, auths, _ := b.do(t, "GET", "/api/v1/user/authorizations", second, "")
	assert.Len(t, auths["authorizations"], 1, "only the new bootstrap token is left")
	a := auths["authorizations"].([]any)[0].(map[string]any)
	assert.Len(t, a["scopes"], 2, "BOOTSTRAP_TOKEN_SCOPE")

	// The old token again: invalid.
	code, body = b.renew(t, "Bearer "+first, "192.0.2.7:4000")
	assert.Equal(t, 401, code)
	assert.Equal(t, "Requires valid bootstrap bearer token", body["detail"])
	assert.Equal(t, "invalid_token", body["error_type"])

	// No header, or Basic: Quay's CSRF check (test_bootstrap.py).
	for _, h := range []string{"", basic("owner", "x")} {
		code, body = b.renew(t, h, "192.0.2.7:4000")
		assert.Equal(t, 403, code)
		assert.Equal(t, "CSRF token was invalid or missing.", body["error"])
	}
	// A valid OAuth token that is not the bootstrap token: Unauthorized.
	other, err := b.emu.IssueToken("owner", "user:read", time.Hour)
	require.NoError(t, err)
	code, body = b.renew(t, "Bearer "+other, "192.0.2.7:4000")
	assert.Equal(t, 403, code)
	assert.Equal(t, "insufficient_scope", body["error_type"])
	// ... unless it has expired: then the bootstrap 401.
	b.clock.Advance(2 * time.Hour)
	code, body = b.renew(t, "Bearer "+other, "192.0.2.7:4000")
	assert.Equal(t, 401, code)
	assert.Equal(t, "Requires valid bootstrap bearer token", body["detail"])

	// An expired bootstrap token renews only from the local host.
	expired := b.token(t)
	code, _ = b.renew(t, "Bearer "+expired, "192.0.2.7:4000")
	assert.Equal(t, 401, code)
	code, _ = b.renew(t, "Bearer "+expired, "127.0.0.1:4000")
	assert.Equal(t, 200, code)
	fresh := b.token(t)
	assert.True(t, b.emu.TokenValid(fresh))
	b.clock.Advance(599 * time.Second)
	assert.True(t, b.emu.TokenValid(fresh), "BOOTSTRAP_TOKEN_EXPIRATION: 600")
	b.clock.Advance(time.Second)
	assert.False(t, b.emu.TokenValid(fresh))
}

func TestBootstrap_FeatureOff(t *testing.T) {
	q := newQuayEnv(t, "")
	code, _, raw := q.do(t, "POST", "/api/v1/bootstrap/renew", q.admin, "")
	assert.Equal(t, 405, code, "not registered without FEATURE_PROGRAMMATIC_BOOTSTRAP: only the web UI's GET catch-all matches")
	assert.False(t, strings.Contains(raw, "rotated"))
}

// The file is exactly json.dumps({"access_token": …}) (a space after the
// colon, no newline), replaced atomically, and 0600 even when an older file
// had another mode (util/bootstrap_token.py write_token_file).
func TestBootstrap_FileBytesAndMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.json")
	require.NoError(t, os.WriteFile(path, []byte("stale"), 0o644))
	cfg, err := ParseConfig([]byte("SUPER_USERS: [owner]\nFEATURE_PROGRAMMATIC_BOOTSTRAP: true\nBOOTSTRAP_TOKEN_OWNER: owner\nBOOTSTRAP_TOKEN_PATH: " + path + "\n"))
	require.NoError(t, err)
	emu, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, emu.CreateUser("owner", "password1", "owner@example.com"))
	require.NoError(t, emu.Restart())
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Regexp(t, `^\{"access_token": "[A-Z0-9]{40}"\}$`, string(raw))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")
}

// A renewal whose write fails is Quay's 500 token_rotation_failed, and the
// transaction rolls back: the old token keeps working.
func TestBootstrap_RenewWriteFailureRollsBack(t *testing.T) {
	b := newBootstrapEnv(t, "")
	first := b.token(t)
	require.NoError(t, os.Remove(b.path))
	require.NoError(t, os.MkdirAll(filepath.Join(b.path, "blocker"), 0o700)) // rename onto a non-empty directory fails
	code, body := b.renew(t, "Bearer "+first, "192.0.2.7:4000")
	assert.Equal(t, 500, code)
	assert.Equal(t, "token_rotation_failed", body["error_type"])
	assert.Equal(t, "Token rotation failed: could not write token", body["detail"])
	assert.True(t, b.emu.TokenValid(first), "rolled back")
	_, auths, _ := b.do(t, "GET", "/api/v1/user/authorizations", first, "")
	assert.Len(t, auths["authorizations"], 1, "the new token was rolled back too")
}

// BOOTSTRAP_TOKEN_SCOPE is stored as configured: commas work (Quay's scope
// parser splits on them), and a string with an unknown scope gives a token
// that authenticates but carries no rights.
func TestBootstrap_ScopeStoredAsConfigured(t *testing.T) {
	b := newBootstrapEnv(t, "BOOTSTRAP_TOKEN_SCOPE: \"user:read,user:admin\"\n")
	code, user, _ := b.do(t, "GET", "/api/v1/user/", b.token(t), "")
	require.Equal(t, 200, code)
	assert.Equal(t, true, user["is_me"], "user:admin after the comma")

	b = newBootstrapEnv(t, "BOOTSTRAP_TOKEN_SCOPE: \"user:read repo:everything\"\n")
	code, _, _ = b.do(t, "GET", "/api/v1/user/", b.token(t), "")
	assert.Equal(t, 401, code, "no scope at all: GET /user/ is InvalidToken")
	assert.True(t, b.emu.TokenValid(b.token(t)))
	code, body, _ := b.do(t, "POST", "/api/v1/organization/", b.token(t), `{"name":"neworg"}`)
	assert.Equal(t, 403, code, "authenticated, so no CSRF 403 but Unauthorized")
	assert.Equal(t, "insufficient_scope", body["error_type"])
}

// boot.py writes nothing until BOOTSTRAP_TOKEN_OWNER exists: Quay does not
// create the owner. Once it exists (here through initialize, as on a fresh
// Quay), the next start writes the token.
func TestBootstrap_OwnerMustExistFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.json")
	q := emptyQuay(t, "SUPER_USERS: [owner]\nFEATURE_USER_INITIALIZE: true\nFEATURE_PROGRAMMATIC_BOOTSTRAP: true\nBOOTSTRAP_TOKEN_OWNER: owner\nBOOTSTRAP_TOKEN_PATH: "+path+"\n")
	_, err := os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "no owner at the first start: no file")
	require.NoError(t, q.emu.Restart())
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "still no owner")

	code, _, _ := q.do(t, "POST", "/api/v1/user/initialize", "", `{"username":"owner","password":"password1","email":"o@example.com"}`)
	require.Equal(t, 200, code)
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "initialize does not write it either")
	require.NoError(t, q.emu.Restart())
	b := &bootstrapEnv{quayEnv: q, path: path}
	code, user, _ := q.do(t, "GET", "/api/v1/user/", b.token(t), "")
	require.Equal(t, 200, code)
	assert.Equal(t, "owner", user["username"])
}

// Later starts keep the provisioned token and do not rewrite the file, even
// after it expired or the file was removed; a token deleted in Quay (the
// engine revoking it through /api/v1/user/authorizations) is replaced at the
// next start, by a new application beside the emptied one.
func TestBootstrap_RestartSemantics(t *testing.T) {
	b := newBootstrapEnv(t, "BOOTSTRAP_TOKEN_EXPIRATION: 600\n")
	first := b.token(t)

	require.NoError(t, b.emu.Restart())
	assert.Equal(t, first, b.token(t), "a restart keeps the file")
	b.clock.Advance(time.Hour)
	require.False(t, b.emu.TokenValid(first))
	require.NoError(t, b.emu.Restart())
	assert.Equal(t, first, b.token(t), "an expired bootstrap token is not replaced")
	require.NoError(t, os.Remove(b.path))
	require.NoError(t, b.emu.Restart())
	_, err := os.Stat(b.path)
	assert.ErrorIs(t, err, os.ErrNotExist, "nor a missing file rewritten")

	// Renewing from the local host is the way out; then revoke it.
	code, _ := b.renew(t, "Bearer "+first, "127.0.0.1:4000")
	require.Equal(t, 200, code)
	second := b.token(t)
	admin, err := b.emu.IssueToken("owner", "user:admin user:read", time.Hour)
	require.NoError(t, err)
	_, auths, _ := b.do(t, "GET", "/api/v1/user/authorizations", admin, "")
	var bootstrapUUID string
	for _, a := range auths["authorizations"].([]any) {
		a := a.(map[string]any)
		if a["application"].(map[string]any)["name"] == "__quay_bootstrap_app" {
			bootstrapUUID = a["uuid"].(string)
		}
	}
	require.NotEmpty(t, bootstrapUUID)
	code, _, _ = b.do(t, "DELETE", "/api/v1/user/authorizations/"+bootstrapUUID, admin, "")
	require.Equal(t, 204, code)
	assert.Equal(t, second, b.token(t), "revoking does not touch the file")
	assert.False(t, b.emu.TokenValid(second))

	require.NoError(t, b.emu.Restart())
	third := b.token(t)
	assert.NotEqual(t, second, third, "the next start provisions a new token")
	assert.True(t, b.emu.TokenValid(third))
	apps := 0
	for _, a := range b.emu.db.apps {
		if a.name == "__quay_bootstrap_app" {
			apps++
		}
	}
	assert.Equal(t, 2, apps, "a new application, the emptied one stays")
}
