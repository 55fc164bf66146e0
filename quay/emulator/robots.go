package emulator

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// Robot accounts (reference §5.1–5.4). Organization robots need org admin
// (org:admin); user robots live in the caller's own namespace (user:admin).

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

// robotNamespace resolves the namespace of a robot route and checks the
// caller may administer it.
func (e *Emulator) robotNamespace(w http.ResponseWriter, r *http.Request, c *caller, listing bool) (string, bool) {
	org := pathValue(r, "orgname")
	if org == "" { // /api/v1/user/robots
		if !e.userAdmin(c) {
			e.unauthorized(w, r, c)
			return "", false
		}
		return c.user.username, true
	}
	allowed := e.orgAdmin(c, org) || (listing && e.orgMember(c, org))
	if !allowed {
		e.unauthorized(w, r, c)
		return "", false
	}
	if !e.isOrg(org) {
		e.notFound(w, r)
		return "", false
	}
	return org, true
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

func (e *Emulator) listRobots(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, ok := e.robotNamespace(w, r, c, true)
	if !ok {
		return
	}
	q := r.URL.Query()
	withPerms := strings.EqualFold(q.Get("permissions"), "true")
	withToken := q.Get("token") == "" || strings.EqualFold(q.Get("token"), "true")
	if pathValue(r, "orgname") != "" && !e.orgAdmin(c, ns) {
		withToken = false // members may list, only admins see tokens
	}
	var robots []*account
	for name, a := range e.db.accounts {
		if a.robot && strings.HasPrefix(name, ns+"+") {
			robots = append(robots, a)
		}
	}
	sort.Slice(robots, func(i, j int) bool { return robots[i].username < robots[j].username })
	if limit, err := strconv.Atoi(q.Get("limit")); err == nil && limit > 0 && limit < len(robots) {
		robots = robots[:limit]
	}
	list := []map[string]any{}
	for _, a := range robots {
		d := e.robotDict(a, withToken, false)
		if withPerms {
			teams := []map[string]any{}
			for _, t := range e.db.teamsOf(ns, a.username) {
				teams = append(teams, map[string]any{"name": t.name, "avatar": avatar(t.name, "team")})
			}
			repos := []string{}
			for _, repo := range sortedRepos(e.db.repos) {
				if repo.namespace == ns && repo.userPerms[a.username] != "" {
					repos = append(repos, repo.name)
				}
			}
			d["teams"], d["repositories"] = teams, repos
		}
		list = append(list, d)
	}
	writeJSON(w, http.StatusOK, map[string]any{"robots": list})
}

func (e *Emulator) createRobot(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, ok := e.robotNamespace(w, r, c, false)
	if !ok {
		return
	}
	short := pathValue(r, "robot_shortname")
	var body struct {
		Description          *string        `json:"description"`
		UnstructuredMetadata map[string]any `json:"unstructured_metadata"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			e.invalidRequest(w, r, "Invalid JSON")
			return
		}
	}
	if !validName(short) {
		e.invalidRequest(w, r, "The name for the robot '"+short+"' is invalid: Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$ and be between 2 and 255 characters in length")
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
	if body.Description != nil {
		d := *body.Description
		if len(d) > 255 {
			d = d[:255]
		}
		a.description = d
	}
	a.metadata = body.UnstructuredMetadata
	resp := e.robotDict(a, true, true)
	// The create answer echoes the metadata as sent (null when absent).
	if body.UnstructuredMetadata == nil {
		resp["unstructured_metadata"] = nil
	}
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
	ns, ok := e.robotNamespace(w, r, c, false)
	if !ok {
		return
	}
	if a := e.findRobot(w, ns, pathValue(r, "robot_shortname")); a != nil {
		writeJSON(w, http.StatusOK, e.robotDict(a, true, true))
	}
}

// deleteRobot cascades like Quay's recursive delete: the robot's repository
// permissions, team memberships and default permissions go with it.
func (e *Emulator) deleteRobot(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, ok := e.robotNamespace(w, r, c, false)
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
	ns, ok := e.robotNamespace(w, r, c, false)
	if !ok {
		return
	}
	a := e.findRobot(w, ns, pathValue(r, "robot_shortname"))
	if a == nil {
		return
	}
	a.robotToken = randomString(64, upperDigit)
	writeJSON(w, http.StatusOK, e.robotDict(a, true, false))
}

// robotPermissions is decorated require_user_admin in Quay, so an OAuth
// caller needs user:admin as well (reference §5.3).
func (e *Emulator) robotPermissions(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, ok := e.robotNamespace(w, r, c, false)
	if !ok {
		return
	}
	if !e.userAdmin(c) {
		abort(w, http.StatusForbidden, "Forbidden")
		return
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

// robotToken finds the robot a registry login names and checks its token.
func (s *store) robotByToken(username, token string) *account {
	a := s.accounts[username]
	if a == nil || !a.robot || a.robotToken == "" || a.robotToken != token {
		return nil
	}
	owner := s.accounts[strings.SplitN(username, "+", 2)[0]]
	if owner == nil || !owner.enabled {
		return nil
	}
	return a
}
