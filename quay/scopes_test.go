package quay

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitScopes(t *testing.T) {
	for in, want := range map[string][]string{
		"repo:read repo:write":        {"repo:read", "repo:write"},
		"repo:read,repo:write":        {"repo:read", "repo:write"},
		" repo:read ,\trepo:write\n ": {"repo:read", "repo:write"},
		"org:admin":                   {"org:admin"},
		"":                            nil,
		" , ,, ":                      nil,
	} {
		got := SplitScopes(in)
		if want == nil {
			assert.Empty(t, got, "%q", in)
			continue
		}
		assert.Equal(t, want, got, "%q", in)
	}
}

func TestNormalizeScopes(t *testing.T) {
	got, err := NormalizeScopes([]string{"user:read", " repo:read ", "repo:read", "", "org:admin", "super:user", "repo:create"})
	require.NoError(t, err)
	assert.Equal(t, []string{"repo:read", "repo:create", "user:read", "org:admin", "super:user"}, got, "deduplicated, in Quay's order")

	got, err = NormalizeScopes(KnownScopes())
	require.NoError(t, err)
	assert.Equal(t, KnownScopes(), got)

	got, err = NormalizeScopes(nil)
	require.NoError(t, err)
	assert.Empty(t, got)

	for _, bad := range []string{"repo:nope", "direct_user_login", "REPO:READ", "repo:read repo:write"} {
		_, err := NormalizeScopes([]string{"repo:read", bad})
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), `"`+bad+`"`, "the error names the scope")
	}
}

func TestKnownScopes(t *testing.T) {
	assert.Equal(t, []string{"repo:read", "repo:write", "repo:admin", "repo:create", "user:read", "user:admin", "org:admin", "super:user"}, KnownScopes())
	s := KnownScopes()
	s[0] = "changed"
	assert.Equal(t, ScopeRepoRead, KnownScopes()[0], "callers get a copy")
}

// ScopesCover applies Quay's implications: repo:admin ⊃ repo:write ⊃
// repo:read, every other scope only itself (auth/scopes.py).
func TestScopesCover(t *testing.T) {
	for _, tc := range []struct {
		granted, requested, missing []string
	}{
		{[]string{"repo:admin"}, []string{"repo:admin", "repo:write", "repo:read"}, nil},
		{[]string{"repo:write"}, []string{"repo:write", "repo:read"}, nil},
		{[]string{"repo:read"}, []string{"repo:read"}, nil},
		{[]string{"repo:write"}, []string{"repo:admin"}, []string{"repo:admin"}},
		{[]string{"repo:read"}, []string{"repo:write", "repo:admin"}, []string{"repo:write", "repo:admin"}},
		{[]string{"repo:admin"}, []string{"repo:create"}, []string{"repo:create"}},
		{[]string{"org:admin"}, []string{"repo:read"}, []string{"repo:read"}},
		{[]string{"user:admin"}, []string{"user:read"}, []string{"user:read"}},
		{[]string{"super:user"}, []string{"org:admin"}, []string{"org:admin"}},
		{[]string{"repo:admin", "user:read"}, []string{"repo:read", "user:read", "org:admin"}, []string{"org:admin"}},
		{nil, nil, nil},
		{nil, []string{"repo:read"}, []string{"repo:read"}},
		{KnownScopes(), KnownScopes(), nil},
	} {
		ok, missing := ScopesCover(tc.granted, tc.requested)
		assert.Equal(t, len(tc.missing) == 0, ok, "%v covers %v", tc.granted, tc.requested)
		assert.Equal(t, tc.missing, missing, "%v covers %v", tc.granted, tc.requested)
	}
}
