package quay

import (
	"fmt"
	"slices"
	"strings"
)

// OAuth scopes Quay grants to applications (auth/scopes.py).
const (
	ScopeRepoRead   = "repo:read"
	ScopeRepoWrite  = "repo:write"
	ScopeRepoAdmin  = "repo:admin"
	ScopeRepoCreate = "repo:create"
	ScopeUserRead   = "user:read"
	ScopeUserAdmin  = "user:admin"
	ScopeOrgAdmin   = "org:admin"
	ScopeSuperUser  = "super:user"
)

// KnownScopes returns Quay's grantable scopes in a stable order.
func KnownScopes() []string {
	return []string{ScopeRepoRead, ScopeRepoWrite, ScopeRepoAdmin, ScopeRepoCreate,
		ScopeUserRead, ScopeUserAdmin, ScopeOrgAdmin, ScopeSuperUser}
}

// SplitScopes splits a scope string the way Quay does: on spaces or commas.
func SplitScopes(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\n' })
}

// NormalizeScopes validates scopes against Quay's set, removes duplicates and
// returns them in KnownScopes order. Quay rejects a whole scope string if any
// scope is unknown, so an unknown one is an error naming it.
func NormalizeScopes(scopes []string) ([]string, error) {
	known := KnownScopes()
	seen := make(map[string]bool, len(scopes))
	for _, raw := range scopes {
		s := strings.TrimSpace(raw)
		if s == "" {
			continue
		}
		if !slices.Contains(known, s) {
			return nil, fmt.Errorf("unknown scope %q (Quay's scopes are %s)", s, strings.Join(known, ", "))
		}
		seen[s] = true
	}
	out := make([]string, 0, len(seen))
	for _, s := range known {
		if seen[s] {
			out = append(out, s)
		}
	}
	return out, nil
}

// impliedScopes expands Quay's implications: repo:admin ⊃ repo:write ⊃ repo:read.
func impliedScopes(scopes []string) map[string]bool {
	set := make(map[string]bool, len(scopes)+2)
	for _, s := range scopes {
		set[s] = true
		switch s {
		case ScopeRepoAdmin:
			set[ScopeRepoWrite], set[ScopeRepoRead] = true, true
		case ScopeRepoWrite:
			set[ScopeRepoRead] = true
		}
	}
	return set
}

// ScopesCover reports whether a token holding granted may mint a token with
// requested, applying Quay's scope implications (the subset rule of the
// application-token API, endpoints/api/organization_application_tokens.py). It returns the scopes not covered.
func ScopesCover(granted, requested []string) (bool, []string) {
	have := impliedScopes(granted)
	var missing []string
	for _, s := range requested {
		if !have[s] {
			missing = append(missing, s)
		}
	}
	return len(missing) == 0, missing
}
