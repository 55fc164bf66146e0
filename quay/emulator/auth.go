package emulator

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
)

// caller is who an /api/v1 request acts as (auth/decorators.py
// process_oauth, auth/oauth.py validate_bearer_auth).
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
func (e *Emulator) authenticate(r *http.Request) (c *caller, ssoErr *ssoFailure) {
	parts := authParts(r.Header.Get("Authorization"))
	if len(parts) != 2 || !strings.EqualFold(parts[0], "bearer") {
		return nil, nil // no token, or Basic: not an /api/v1 credential
	}
	token := parts[1]
	if looksLikeJWT(token) {
		user, failure := e.validateSSOToken(r, token)
		if failure != nil {
			return nil, failure
		}
		return &caller{user: user, sso: true}, nil
	}
	now := e.now()
	t := e.db.lookupToken(token, now)
	if t == nil {
		return nil, nil
	}
	user := e.db.accounts[t.user]
	if user == nil || !user.enabled {
		return nil, nil
	}
	touchAccess(&t.lastAccessed, now, oauthLastAccessedThreshold)
	return &caller{user: user, token: t, scopes: scopeSet(t.scope)}, nil
}

// authParts splits an Authorization header as auth/oauth.py does:
// [part.strip() for part in header.split(" ") if part].
func authParts(header string) []string {
	var parts []string
	for _, p := range strings.Split(header, " ") {
		if p != "" {
			parts = append(parts, strings.TrimSpace(p))
		}
	}
	return parts
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
// token, holding super:user (data/users/__init__.py UserManager.is_superuser,
// auth/permissions.py QuayDeferredPermissionUser.can).
func (e *Emulator) superuser(c *caller) bool {
	if c == nil || c.user == nil || !e.cfg.superUsersEnabled() {
		return false
	}
	return e.isSuperUserName(c.user.username) && c.has("super:user")
}

// isSuperUserName: listed in SUPER_USERS, or registered since (Quay's
// ConfigUserManager.register_superuser, which its OIDC group sync uses;
// here the seeding API's SuperUser option).
func (e *Emulator) isSuperUserName(name string) bool {
	return contains(e.cfg.SuperUsers, name) || e.db.superUsers[name]
}

// fullAccess: FEATURE_SUPERUSERS_FULL_ACCESS lets a superuser pass every
// namespace and repository check.
func (e *Emulator) fullAccess(c *caller) bool {
	return e.cfg.FeatureSuperusersFullAccess && e.superuser(c)
}

// orgRole is the caller's organization role in ns, capped by its scopes
// (auth/permissions.py SCOPE_MAX_TEAM_ROLES: repo:create→creator,
// org:admin→admin, anything else→none). A user's own namespace counts as an
// organization they administer.
func (e *Emulator) orgRole(c *caller, ns string) string {
	if c == nil || c.user == nil {
		return ""
	}
	role := e.db.orgRole(ns, c.user.username)
	if ns == c.user.username {
		role = "admin"
	}
	return minRole(orgRoles, role, teamRoleCap(c))
}

func teamRoleCap(c *caller) string {
	switch {
	case c.sso || c.scopes["org:admin"]:
		return "admin"
	case c.scopes["repo:create"]:
		return "creator"
	}
	return ""
}

// orgAdmin is AdministerOrganizationPermission (or a full-access superuser).
func (e *Emulator) orgAdmin(c *caller, org string) bool {
	return e.fullAccess(c) || e.orgRole(c, org) == "admin"
}

// orgMember is OrganizationMemberPermission (or a full-access superuser):
// any capped team role in the organization.
func (e *Emulator) orgMember(c *caller, org string) bool {
	return e.fullAccess(c) || e.orgRole(c, org) != ""
}

// viewTeam is ViewTeamPermission: a member of that team (with a team role
// the scopes leave), or an organization admin.
func (e *Emulator) viewTeam(c *caller, org, teamName string) bool {
	if e.fullAccess(c) || e.orgAdmin(c, org) {
		return true
	}
	if c == nil || c.user == nil || teamRoleCap(c) == "" {
		return false
	}
	t := e.db.teams[org][teamName]
	return t != nil && t.members[c.user.username]
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
// Public visibility is not a role (ReadRepositoryPermission ignores it;
// callers that allow public reads check it themselves).
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
	return role
}

// canCreateRepo is CreateRepositoryPermission(ns): a capped organization
// role of creator or admin (repo:create or org:admin), or a full-access
// superuser.
func (e *Emulator) canCreateRepo(c *caller, ns string) bool {
	if e.fullAccess(c) {
		return true
	}
	role := e.orgRole(c, ns)
	return role == "creator" || role == "admin"
}
