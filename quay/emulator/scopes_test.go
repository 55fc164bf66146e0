package emulator

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestScopes_StrictParse(t *testing.T) {
	for raw, want := range map[string]string{
		"repo:read":                       "repo:read",
		"repo:read repo:write":            "repo:read repo:write",
		"repo:read,repo:write":            "repo:read repo:write",
		"repo:read,repo:read":             "repo:read",
		"super:user org:admin user:admin": "super:user org:admin user:admin",
	} {
		got, ok := parseScopes(raw)
		assert.True(t, ok, raw)
		assert.Equal(t, want, got, raw)
	}
	// re.split(" |,"): any empty or unknown part invalidates the whole string.
	for _, raw := range []string{"", " ", "repo:read  repo:write", "repo:read, repo:write", " repo:read", "repo:read,", "repo:read bogus", "direct_user_login", "repo:read\trepo:write"} {
		_, ok := parseScopes(raw)
		assert.False(t, ok, "%q", raw)
	}
}

func TestScopes_NormalizeThenParse(t *testing.T) {
	for raw, want := range map[string]string{
		"repo:read, repo:write":    "repo:read repo:write",
		" repo:read\trepo:write\n": "repo:read repo:write",
		"repo:write,repo:read,,":   "repo:write repo:read",
		"org:admin org:admin":      "org:admin",
	} {
		got, ok := parseScopes(normalizeScope(raw))
		assert.True(t, ok, raw)
		assert.Equal(t, want, got, raw)
	}
	_, ok := parseScopes(normalizeScope("  "))
	assert.False(t, ok, "nothing left is invalid")
}

func TestScopes_Implications(t *testing.T) {
	assert.Equal(t, map[string]bool{"repo:admin": true, "repo:write": true, "repo:read": true}, scopeSet("repo:admin"))
	assert.Equal(t, map[string]bool{"repo:write": true, "repo:read": true}, scopeSet("repo:write"))
	assert.Equal(t, map[string]bool{"user:admin": true}, scopeSet("user:admin"), "user:admin does not imply user:read")
	assert.Equal(t, map[string]bool{"org:admin": true}, scopeSet("org:admin"), "nor org:admin anything else")
}

func TestJSONSchema_MessagesAsJsonschema(t *testing.T) {
	decode := func(s string) any {
		v, err := decodeBody([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for body, want := range map[string]string{
		`[]`:                        "[] is not of type 'object'",
		`{}`:                        "'name' is a required property",
		`{"scope":"x"}`:             "'name' is a required property",
		`{"name":"x"}`:              "'scope' is a required property",
		`{"name":5,"scope":"x"}`:    "5 is not of type 'string'",
		`{"name":"","scope":"x"}`:   "'' is too short",
		`{"name":"x","scope":null}`: "None is not of type 'string'",
		`{"name":"x","scope":"x","expiration":"1"}`:  "'1' is not of type 'number'",
		`{"name":"x","scope":"x","expiration":0}`:    "0 is less than the minimum of 1",
		`{"name":"x","scope":"x","expiration":0.5}`:  "0.5 is less than the minimum of 1",
		`{"name":"x","scope":"x","expiration":true}`: "True is not of type 'number'",
		`{"name":"x","scope":"x","expiration":1e-7}`: "1e-07 is less than the minimum of 1",
		`{"name":"it's","scope":["a",{"b":false}]}`:  `['a', {'b': False}] is not of type 'string'`,
	} {
		assert.Equal(t, want, newTokenSchema.validate(decode(body)), body)
	}
	assert.Equal(t, "", newTokenSchema.validate(decode(`{"name":"x","scope":"y","expiration":1}`)))
	assert.Equal(t, "'x' is not one of ['read', 'write', 'admin']", rolePermissionSchema.validate(decode(`{"role":"x"}`)))
	assert.Equal(t, "'x' is not one of ['image', None]", newRepoSchema.validate(decode(`{"repository":"a","visibility":"public","description":"","repo_kind":"x"}`)))
	// The shallowest error wins: a missing property before a nested one.
	assert.Equal(t, "'role' is a required property", newPrototypeSchema.validate(decode(`{"delegate":{"kind":"x"}}`)))
	assert.Equal(t, "'name' is a required property", newPrototypeSchema.validate(decode(`{"role":"read","delegate":{"kind":"user"}}`)))
	assert.Equal(t, "'robot' is not one of ['user', 'team']", newPrototypeSchema.validate(decode(`{"role":"read","delegate":{"kind":"robot","name":"x"}}`)))
}

func TestJSONSchema_PythonRepr(t *testing.T) {
	for in, want := range map[string]string{
		`"it's"`:        `"it's"`,
		`"say \"hi\""`:  `'say "hi"'`,
		`"both ' \""`:   `'both \' "'`,
		`"tab\there"`:   `'tab\there'`,
		`1.0`:           `1.0`,
		`100`:           `100`,
		`1e16`:          `1e+16`,
		`null`:          `None`,
		`{"b":1,"a":2}`: `{'a': 2, 'b': 1}`,
	} {
		var v any
		v, err := decodeBody([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		assert.Equal(t, want, pyRepr(v), in)
	}
	assert.True(t, pyTruthy("false"), "a non-empty string is truthy in Python")
	assert.False(t, pyTruthy(json.Number("0")))
	assert.False(t, pyTruthy(""))
	assert.True(t, pyTruthy(map[string]any{"a": nil}))
}

// Bodies are read like Flask 2.3 does before the schema.
func TestJSONSchema_BodyReading(t *testing.T) {
	q := newQuayEnv(t, "")
	req := func(contentType, body string) (int, map[string]any) {
		code, m, _ := q.rawCT(t, "POST", "/api/v1/organization/", "Bearer "+q.admin, contentType, body)
		return code, m
	}
	code, body := req("text/plain", `{"name":"x1"}`)
	assert.Equal(t, 415, code)
	assert.Equal(t, "Did not attempt to load JSON data because the request Content-Type was not 'application/json'.", body["message"])
	code, body = req("application/json", `{"name":`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "The browser (or proxy) sent a request that this server could not understand.", body["message"])
	code, body = req("application/json", `null`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "Missing JSON body", body["error_message"])
	code, _ = req("application/vnd.quay+json; charset=utf-8", `{"name":"x1"}`)
	assert.Equal(t, 201, code, "application/*+json is JSON")
}
