package emulator

import "strings"

// Quay's grantable scopes (auth/scopes.py, reference §1.3), in Quay's order.
var knownScopes = []string{"repo:read", "repo:write", "repo:admin", "repo:create", "user:read", "user:admin", "org:admin", "super:user"}

// parseScopes splits on spaces or commas. Any unknown scope makes the whole
// string invalid (ok=false), as in Quay. The result is de-duplicated and
// space-joined in input order.
func parseScopes(raw string) (string, bool) {
	parts := strings.FieldsFunc(raw, func(r rune) bool { return r == ' ' || r == ',' })
	if len(parts) == 0 {
		return "", false
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range parts {
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

// scopeSet expands implications: repo:admin ⊃ repo:write ⊃ repo:read.
func scopeSet(scope string) map[string]bool {
	set := map[string]bool{}
	for _, s := range strings.Fields(scope) {
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
