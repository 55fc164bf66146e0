package emulator

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// Robot accounts (endpoints/api/robot.py). Listing an organization's robots
// needs membership (OrgRobotList.get), their tokens and permissions and any
// change need org admin (org:admin); user robots live in the caller's own
// namespace (user:admin).

const robotNotFoundMessage = "Could not find robot with specified username"

func (e *Emulator) robotRoutes() {
	for _, scope := range []struct{ base, prefix string }{
		{"/api/v1/organization/{orgname}/robots", "Org"},
		{"/api/v1/user/robots", "User"},
	} {
		e.handle("GET "+scope.base, "get"+scope.prefix+"Robots", apiRoute, e.listRobots)
		e.handle("PUT "+scope.base+"/{robot_shortname}", "create"+scope.prefix+"Robot", apiRoute, e.createRobot)
		e.handle("GET "+scope.base+"/{robot_shortname}", "get"+scope.prefix+"Robot", apiRoute, e.getRobot)
		e.handle("DELETE "+scope.base+"/{robot_shortname}", "delete"+scope.prefix+"Robot", apiRoute, e.deleteRobot)
		e.handle("POST "+scope.base+"/{robot_shortname}/regenerate", "regenerate"+scope.prefix+"RobotToken", apiRoute, e.regenerateRobot)
		e.handle("GET "+scope.base+"/{robot_shortname}/permissions", "get"+scope.prefix+"RobotPermissions", apiRoute, e.robotPermissions)
	}
}

// truthyBool is util/parsing.py truthy_bool for a query parameter that is
// present: everything but false, False, FALSE, 0, null and "" is true.
func truthyBool(r *http.Request, name string, def bool) bool {
	q := r.URL.Query()
	if !q.Has(name) {
		return def
	}
	switch q.Get(name) {
	case "false", "False", "FALSE", "0", "", "null":
		return false
	}
	return true
}

// userRobotNamespace is require_user_admin for /api/v1/user/robots: the
// caller's own namespace.
func (e *Emulator) userRobotNamespace(w http.ResponseWriter, r *http.Request, c *caller) (string, bool) {
	if c == nil || !e.userAdmin(c) {
		e.unauthorized(w, r, c)
		return "", false
	}
	return c.user.username, true
}

// robotAdminNamespace resolves the namespace of a robot route that needs
// AdministerOrganizationPermission (organization routes) or user:admin
// (user routes).
func (e *Emulator) robotAdminNamespace(w http.ResponseWriter, r *http.Request, c *caller) (string, bool) {
	org := pathValue(r, "orgname")
	if org == "" {
		return e.userRobotNamespace(w, r, c)
	}
	if !e.orgAdmin(c, org) {
		e.unauthorized(w, r, c)
		return "", false
	}
	return org, true
}

// robotParent is model.organization.get_organization for the organization
// routes that load the parent (get, create, regenerate): a namespace that
// is not an organization is a data-model error, 400.
func (e *Emulator) robotParent(w http.ResponseWriter, r *http.Request, ns string) bool {
	if pathValue(r, "orgname") != "" && !e.isOrg(ns) {
		dataModelError(w, "Organization does not exist: "+ns)
		return false
	}
	return true
}

func (e *Emulator) robotDict(a *account, withToken, withMetadata bool) map[string]any {
	var lastAccessed any
	if !a.lastAccessed.IsZero() {
		lastAccessed = rfc2822(a.lastAccessed)
	}
	d := map[string]any{"name": a.username, "created": rfc2822(a.created), "last_accessed": lastAccessed, "description": a.description}
	if withToken {
		d["token"] = a.robotToken
	}
	if withMetadata {
		md := a.metadata
		if md == nil {
			md = map[string]any{}
		}
		d["unstructured_metadata"] = md
	}
	return d
}

// listRobots is getOrgRobots / getUserRobots. Organization members may
// list; only admins (or full-access superusers) get tokens and
// permissions. Quay orders by last_accessed descending (never-used robots
// first, as PostgreSQL sorts NULLs; unverified for other databases), and
// its limit applies to the rows of the robot × repository × team join when
// permissions are included, so it can cut a robot's lists short.
func (e *Emulator) listRobots(w http.ResponseWriter, r *http.Request, c *caller) {
	ns := pathValue(r, "orgname")
	admin := true
	if ns == "" {
		var ok bool
		if ns, ok = e.userRobotNamespace(w, r, c); !ok {
			return
		}
	} else {
		if !e.orgMember(c, ns) {
			e.unauthorized(w, r, c)
			return
		}
		admin = e.orgAdmin(c, ns)
	}
	withToken := admin && truthyBool(r, "token", true)
	withPerms := admin && truthyBool(r, "permissions", false)
	limit := -1
	if q := r.URL.Query(); q.Has("limit") {
		if n, err := strconv.Atoi(q.Get("limit")); err == nil && n >= 0 {
			limit = n
		}
	}

	var robots []*account
	for name, a := range e.db.accounts {
		if a.robot && strings.HasPrefix(name, ns+"+") {
			robots = append(robots, a)
		}
	}
	sort.Slice(robots, func(i, j int) bool {
		a, b := robots[i], robots[j]
		if a.lastAccessed.IsZero() != b.lastAccessed.IsZero() {
			return a.lastAccessed.IsZero()
		}
		if !a.lastAccessed.Equal(b.lastAccessed) {
			return a.lastAccessed.After(b.lastAccessed)
		}
		return a.id < b.id
	})

	list := []map[string]any{}
	rows := 0
	for _, a := range robots {
		if limit >= 0 && rows >= limit {
			break
		}
		if !withPerms {
			rows++
			list = append(list, e.robotDict(a, withToken, false))
			continue
		}
		var repoNames, teamNames []string
		for _, repo := range sortedRepos(e.db.repos) {
			if repo.userPerms[a.username] != "" {
				repoNames = append(repoNames, repo.name)
			}
		}
		for _, orgTeams := range e.db.sortedTeams() {
			if orgTeams.members[a.username] {
				teamNames = append(teamNames, orgTeams.name)
			}
		}
		repos, teams := []string{}, []map[string]any{}
		seenTeams := map[string]bool{}
		for _, repoName := range orNil(repoNames) {
			for _, teamName := range orNil(teamNames) {
				if limit >= 0 && rows >= limit {
					break
				}
				rows++
				if repoName != "" && !contains(repos, repoName) {
					repos = append(repos, repoName)
				}
				if teamName != "" && !seenTeams[teamName] {
					seenTeams[teamName] = true
					teams = append(teams, map[string]any{"name": teamName, "avatar": avatar(teamName, "team")})
				}
			}
		}
		d := e.robotDict(a, withToken, false)
		d["teams"], d["repositories"] = teams, repos
		list = append(list, d)
	}
	writeJSON(w, http.StatusOK, map[string]any{"robots": list})
}

// orNil is a LEFT OUTER JOIN's view of a list: one null row when empty.
func orNil(list []string) []string {
	if len(list) == 0 {
		return []string{""}
	}
	return list
}

var createRobotSchema = objectSchema{props: []prop{
	{name: "description", types: []string{"string"}, maxLength: 255},
	{name: "unstructured_metadata", types: []string{"object"}},
}}

// robotMaxSize is ROBOT_MAX_SIZE. max_json_size raises InvalidRequest()
// without its required description argument, a TypeError: a larger JSON
// body is a 500.
const robotMaxSize = 1024 * 1024

// createRobot is createOrgRobot / createUserRobot: 201. Organization routes
// check the body before the permission, user routes after user:admin.
func (e *Emulator) createRobot(w http.ResponseWriter, r *http.Request, c *caller) {
	org := pathValue(r, "orgname")
	if org == "" {
		if _, ok := e.userRobotNamespace(w, r, c); !ok {
			return
		}
	}
	raw := readBody(r)
	if isJSONRequest(r) && len(raw) > robotMaxSize {
		internalError(w)
		return
	}
	body, ok := e.optionalJSONRequest(w, r, raw, createRobotSchema)
	if !ok {
		return
	}
	ns, ok := e.robotAdminNamespace(w, r, c)
	if !ok || !e.robotParent(w, r, ns) {
		return
	}
	short := pathValue(r, "robot_shortname")
	if issue := usernameIssue(short); issue != "" {
		e.invalidRequest(w, r, "The name for the robot '"+short+"' is invalid: "+issue)
		return
	}
	full := ns + "+" + short
	if _, exists := e.db.accounts[full]; exists {
		e.invalidRequest(w, r, "Existing robot with name: "+full)
		return
	}
	a := e.db.addUser(full, "", "", e.now())
	a.robot = true
	a.robotToken = randomString(64, upperDigit)
	a.description, _ = body["description"].(string)
	md, _ := body["unstructured_metadata"].(map[string]any)
	a.metadata = md
	resp := e.robotDict(a, true, true)
	// The create answer echoes the metadata as sent (null when absent);
	// {} is stored.
	resp["unstructured_metadata"] = body["unstructured_metadata"]
	writeJSON(w, http.StatusCreated, resp)
}

func (e *Emulator) findRobot(w http.ResponseWriter, ns, short string) *account {
	a := e.db.accounts[ns+"+"+short]
	if a == nil || !a.robot {
		dataModelError(w, robotNotFoundMessage)
		return nil
	}
	return a
}

func (e *Emulator) getRobot(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, ok := e.robotAdminNamespace(w, r, c)
	if !ok || !e.robotParent(w, r, ns) {
		return
	}
	if a := e.findRobot(w, ns, pathValue(r, "robot_shortname")); a != nil {
		writeJSON(w, http.StatusOK, e.robotDict(a, true, true))
	}
}

// deleteRobot cascades like Quay's recursive delete: the robot's repository
// permissions, team memberships and default permissions go with it.
func (e *Emulator) deleteRobot(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, ok := e.robotAdminNamespace(w, r, c)
	if !ok {
		return
	}
	a := e.findRobot(w, ns, pathValue(r, "robot_shortname"))
	if a == nil {
		return
	}
	e.db.removeAccount(a.username)
	noContent(w)
}

func (s *store) removeAccount(name string) {
	delete(s.accounts, name)
	for _, repo := range s.repos {
		delete(repo.userPerms, name)
	}
	for _, teams := range s.teams {
		for _, t := range teams {
			delete(t.members, name)
			delete(t.invites, name)
		}
	}
	for org, protos := range s.prototypes {
		kept := protos[:0]
		for _, p := range protos {
			if p.delegateUser != name && p.activatingUser != name {
				kept = append(kept, p)
			}
		}
		s.prototypes[org] = kept
	}
	for k, t := range s.tokens {
		if t.user == name {
			delete(s.tokens, k)
		}
	}
}

// regenerateRobot gives the robot a new token; the old one stops working.
func (e *Emulator) regenerateRobot(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, ok := e.robotAdminNamespace(w, r, c)
	if !ok || !e.robotParent(w, r, ns) {
		return
	}
	a := e.findRobot(w, ns, pathValue(r, "robot_shortname"))
	if a == nil {
		return
	}
	a.robotToken = randomString(64, upperDigit)
	a.uuid = newUUID()
	writeJSON(w, http.StatusOK, e.robotDict(a, true, false))
}

// robotPermissions is decorated require_user_admin in Quay, so an OAuth
// caller needs user:admin first (an ApiException otherwise); a caller
// without organization admin then gets Flask's plain abort(403)
// (endpoints/api/robot.py OrgRobotPermissions.get).
func (e *Emulator) robotPermissions(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, ok := e.userRobotNamespace(w, r, c)
	if !ok {
		return
	}
	if org := pathValue(r, "orgname"); org != "" {
		if !e.orgAdmin(c, org) {
			// unverified: Flask-RESTful's body for werkzeug's Forbidden.
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "You don't have the permission to access the requested resource. It is either read-protected or not readable by the server."})
			return
		}
		ns = org
		if !e.robotParent(w, r, ns) {
			return
		}
	}
	a := e.findRobot(w, ns, pathValue(r, "robot_shortname"))
	if a == nil {
		return
	}
	perms := []map[string]any{}
	for _, repo := range sortedRepos(e.db.repos) {
		if role := repo.userPerms[a.username]; role != "" {
			perms = append(perms, map[string]any{"repository": map[string]any{"name": repo.name, "is_public": repo.public}, "role": role})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"permissions": perms})
}
