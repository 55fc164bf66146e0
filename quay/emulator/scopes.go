package emulator

import (
	"regexp"
	"strings"
)

// Quay's grantable scopes (auth/scopes.py), in the order that file defines
// them.
var knownScopes = []string{"repo:read", "repo:write", "repo:admin", "repo:create", "user:read", "user:admin", "org:admin", "super:user"}

// scopeSeparator is scopes_from_scope_string's re.split(" |,"): every single
// space or comma separates, so doubled separators yield an empty (unknown)
// scope.
var scopeSeparator = regexp.MustCompile(" |,")

// parseScopes is auth/scopes.py scopes_from_scope_string + validate_scope_string:
// the string is split on every single space or comma, and any unknown part
// (an empty one included, as in "a  b" or "a, b") makes the whole string
// invalid (ok=false). The result is de-duplicated and space-joined in input
// order.
func parseScopes(raw string) (string, bool) {
	seen := map[string]bool{}
	var out []string
	for _, p := range scopeSeparator.Split(raw, -1) {
		if !contains(knownScopes, p) {
			return "", false
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return strings.Join(out, " "), true
}

// normalizeScope is data/model/oauth.py normalize_scope: commas become
// spaces, the string is split on any whitespace and de-duplicated in order.
// The organization application-token API normalises before it validates, so
// "repo:read, repo:write" is accepted there (and stored space-separated).
func normalizeScope(raw string) string {
	seen := map[string]bool{}
	var out []string
	for _, p := range strings.Fields(strings.ReplaceAll(raw, ",", " ")) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

// scopeSet is the rights a token's stored scope string gives:
// scopes_from_scope_string (split on every space or comma; any unknown part
// leaves no scope at all), with the implications (IMPLIED_SCOPES) expanded:
// repo:admin ⊃ repo:write ⊃ repo:read. Every other scope implies only
// itself (user:admin does not imply user:read).
func scopeSet(scope string) map[string]bool {
	set := map[string]bool{}
	parsed, ok := parseScopes(scope)
	if !ok {
		return set
	}
	for _, s := range strings.Fields(parsed) {
		set[s] = true
		switch s {
		case "repo:admin":
			set["repo:write"], set["repo:read"] = true, true
		case "repo:write":
			set["repo:read"] = true
		}
	}
	return set
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
