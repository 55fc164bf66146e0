package emulator

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
)

// caller is who an /api/v1 request acts as (auth/oauth.py, reference §1.1).
type caller struct {
	user  *account
	token *oauthToken // nil for an SSO JWT
	sso   bool
	// scopes caps the caller's rights (OAuth tokens only; an SSO identity
	// has direct_user_login rights, uncapped).
	scopes map[string]bool
}

// authenticate resolves the caller of an /api/v1 request. Only a Bearer
// token is accepted. An opaque token that does not validate leaves the
// request anonymous (no immediate 401); a JWT that does not validate is a 401
// at once (reported through ssoErr). Call with e.mu held.
func (e *Emulator) authenticate(r *http.Request) (c *caller, ssoErr string) {
	header := r.Header.Get("Authorization")
	parts := strings.Split(header, " ")
	if len(parts) != 2 || !strings.EqualFold(parts[0], "bearer") {
		return nil, "" // no token, or Basic: not an /api/v1 credential
	}
	token := parts[1]
	if looksLikeJWT(token) {
		user, errMsg := e.validateSSOToken(r, token)
		if errMsg != "" {
			return nil, errMsg
		}
		return &caller{user: user, sso: true}, ""
	}
	now := e.now()
	t := e.db.lookupToken(token, now)
	if t == nil {
		return nil, ""
	}
	user := e.db.accounts[t.user]
	if user == nil || !user.enabled {
		return nil, ""
	}
	t.lastAccessed = now
	return &caller{user: user, token: t, scopes: scopeSet(t.scope)}, ""
}

// looksLikeJWT is util/security/jwtutil.is_jwt: the unverified JOSE header's
// typ is "jwt" or "at+jwt".
func looksLikeJWT(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return false
	}
	var header struct {
		Typ string `json:"typ"`
	}
	if json.Unmarshal(raw, &header) != nil {
		return false
	}
	typ := strings.ToLower(header.Typ)
	return typ == "jwt" || typ == "at+jwt"
}

func (c *caller) has(scope string) bool {
	if c == nil || c.user == nil {
		return false
	}
	return c.sso || c.scopes[scope]
}

// superuser: listed in SUPER_USERS (with the feature on) and, for an OAuth
// token, holding super:user (reference §6.3).
func (e *Emulator) superuser(c *caller) bool {
	if c == nil || c.user == nil || !e.cfg.superUsersEnabled() {
		return false
	}
	return contains(e.cfg.SuperUsers, c.user.username) && c.has("super:user")
}

// fullAccess: FEATURE_SUPERUSERS_FULL_ACCESS lets a superuser pass every
// namespace and repository check.
func (e *Emulator) fullAccess(c *caller) bool {
	return e.cfg.FeatureSuperusersFullAccess && e.superuser(c)
}

// orgAdmin is AdministerOrganizationPermission: an admin team member whose
// token holds org:admin. A user's own namespace counts as an org they
// administer.
func (e *Emulator) orgAdmin(c *caller, org string) bool {
	if c == nil || c.user == nil {
		return false
	}
	if e.fullAccess(c) {
		return true
	}
	if !c.has("org:admin") {
		return false
	}
	if org == c.user.username {
		return true
	}
	return e.db.orgRole(org, c.user.username) == "admin"
}

func (e *Emulator) orgMember(c *caller, org string) bool {
	if c == nil || c.user == nil {
		return false
	}
	return e.fullAccess(c) || e.db.orgRole(org, c.user.username) != ""
}

func (e *Emulator) userAdmin(c *caller) bool { return c.has("user:admin") }
func (e *Emulator) userRead(c *caller) bool  { return c.has("user:read") || c.has("user:admin") }

// repoRole is the caller's role on a repository, capped by its scopes:
// repo:read→read, repo:write→write, repo:admin→admin.
func (e *Emulator) repoRole(c *caller, ns, name string) string {
	if c == nil || c.user == nil {
		return ""
	}
	if e.fullAccess(c) {
		return "admin"
	}
	return capRepoRole(c, e.db.effectiveRepoRole(c.user.username, ns, name))
}

func capRepoRole(c *caller, role string) string {
	if c.sso {
		return role
	}
	limit := ""
	switch {
	case c.scopes["repo:admin"]:
		limit = "admin"
	case c.scopes["repo:write"]:
		limit = "write"
	case c.scopes["repo:read"]:
		limit = "read"
	}
	return minRole(repoRoles, role, limit)
}

// effectiveRepoRole is a user's (or robot's) uncapped role on a repository:
// namespace owner, org admin team, direct permission, team permissions.
func (s *store) effectiveRepoRole(user, ns, name string) string {
	if user == ns {
		return "admin"
	}
	role := ""
	if s.orgRole(ns, user) == "admin" {
		role = "admin"
	}
	repo := s.repos[ns+"/"+name]
	if repo == nil {
		return role
	}
	role = maxRole(repoRoles, role, repo.userPerms[user])
	for _, t := range s.teamsOf(ns, user) {
		role = maxRole(repoRoles, role, repo.teamPerms[t.name])
	}
	if repo.public {
		role = maxRole(repoRoles, role, "read")
	}
	return role
}

// canCreateRepo is CreateRepositoryPermission(ns), capped by repo:create or
// org:admin (reference §1.3).
func (e *Emulator) canCreateRepo(c *caller, ns string) bool {
	if c == nil || c.user == nil {
		return false
	}
	if e.fullAccess(c) {
		return true
	}
	if !(c.has("repo:create") || c.has("org:admin")) {
		return false
	}
	if ns == c.user.username {
		return true
	}
	role := e.db.orgRole(ns, c.user.username)
	return role == "creator" || role == "admin"
}
