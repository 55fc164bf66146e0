package emulator

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"time"
)

// Repositories and their permissions (reference §5.5). Nested repository
// names (ns/a/b) are not emulated.

var repoNameRule = regexp.MustCompile(`^[a-z0-9][._a-z0-9-]{0,254}$`)

func (e *Emulator) repositoryRoutes() {
	e.handle("POST /api/v1/repository", "createRepo", apiRoute, e.createRepo)
	e.handle("GET /api/v1/repository", "listRepos", apiRoute, e.listRepos)
	e.handle("GET /api/v1/repository/{ns}/{repo}", "getRepo", apiRoute, e.getRepo)
	e.handle("GET /api/v1/repository/{ns}/{repo}/permissions/user/{$}", "listRepoUserPermissions", apiRoute, e.listUserPermissions)
	e.handle("GET /api/v1/repository/{ns}/{repo}/permissions/user/{username}", "getUserPermissions", apiRoute, e.getUserPermission)
	e.handle("PUT /api/v1/repository/{ns}/{repo}/permissions/user/{username}", "changeUserPermissions", apiRoute, e.changeUserPermission)
	e.handle("DELETE /api/v1/repository/{ns}/{repo}/permissions/user/{username}", "deleteUserPermissions", apiRoute, e.deleteUserPermission)
	e.handle("PUT /api/v1/repository/{ns}/{repo}/permissions/team/{teamname}", "changeTeamPermissions", apiRoute, e.changeTeamPermission)
	e.handle("DELETE /api/v1/repository/{ns}/{repo}/permissions/team/{teamname}", "deleteTeamPermissions", apiRoute, e.deleteTeamPermission)
}

func (e *Emulator) createRepo(w http.ResponseWriter, r *http.Request, c *caller) {
	var body struct {
		Repository  string `json:"repository"`
		Visibility  string `json:"visibility"`
		Description string `json:"description"`
		Namespace   string `json:"namespace"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Repository == "" || (body.Visibility != "public" && body.Visibility != "private") {
		e.invalidRequest(w, r, "'repository', 'visibility' and 'description' are required; visibility is public or private")
		return
	}
	if c == nil {
		e.unauthorized(w, r, c)
		return
	}
	ns := body.Namespace
	if ns == "" {
		ns = c.user.username
	}
	if !e.canCreateRepo(c, ns) {
		e.unauthorized(w, r, c)
		return
	}
	if !repoNameRule.MatchString(body.Repository) {
		e.invalidRequest(w, r, "Invalid repository name")
		return
	}
	if _, exists := e.db.repos[ns+"/"+body.Repository]; exists {
		e.invalidRequest(w, r, "Repository already exists")
		return
	}
	e.db.createRepo(ns, body.Repository, body.Visibility == "public", body.Description, c.user.username, e.now())
	writeJSON(w, http.StatusCreated, map[string]any{"namespace": ns, "name": body.Repository, "kind": "image"})
}

// createRepo also grants the creator admin, as Quay does for a creator who
// is not an org admin.
func (s *store) createRepo(ns, name string, public bool, description, creator string, now time.Time) *repository {
	repo := &repository{namespace: ns, name: name, public: public, description: description, created: now, userPerms: map[string]string{}, teamPerms: map[string]string{}}
	if creator != "" && creator != ns && s.orgRole(ns, creator) != "admin" {
		repo.userPerms[creator] = "admin"
	}
	// Default permissions (prototypes) of the organization apply.
	for _, p := range s.prototypes[ns] {
		if p.activatingUser != "" && p.activatingUser != creator {
			continue
		}
		if p.delegateUser != "" {
			repo.userPerms[p.delegateUser] = maxRole(repoRoles, repo.userPerms[p.delegateUser], p.role)
		}
		if p.delegateTeam != "" {
			repo.teamPerms[p.delegateTeam] = maxRole(repoRoles, repo.teamPerms[p.delegateTeam], p.role)
		}
	}
	s.repos[ns+"/"+name] = repo
	return repo
}

func repoView(repo *repository) map[string]any {
	return map[string]any{
		"namespace": repo.namespace, "name": repo.name, "description": repo.description,
		"is_public": repo.public, "kind": "image", "state": "NORMAL",
	}
}

func (e *Emulator) getRepo(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, name := pathValue(r, "ns"), pathValue(r, "repo")
	repo := e.db.repos[ns+"/"+name]
	if repo != nil && repo.public {
		writeJSON(w, http.StatusOK, repoView(repo))
		return
	}
	if e.repoRole(c, ns, name) == "" {
		e.unauthorized(w, r, c)
		return
	}
	if repo == nil {
		e.notFound(w, r)
		return
	}
	writeJSON(w, http.StatusOK, repoView(repo))
}

func (e *Emulator) listRepos(w http.ResponseWriter, r *http.Request, c *caller) {
	ns := r.URL.Query().Get("namespace")
	if ns == "" && r.URL.Query().Get("public") == "" && r.URL.Query().Get("starred") == "" {
		e.invalidRequest(w, r, "namespace, starred or public are required for this API call")
		return
	}
	list := []map[string]any{}
	for _, repo := range sortedRepos(e.db.repos) {
		if ns != "" && repo.namespace != ns {
			continue
		}
		if repo.public || e.repoRole(c, repo.namespace, repo.name) != "" {
			list = append(list, repoView(repo))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"repositories": list})
}

// repoAdmin checks the caller administers the repository (repo:admin).
func (e *Emulator) repoAdmin(w http.ResponseWriter, r *http.Request, c *caller) (string, string, bool) {
	ns, name := pathValue(r, "ns"), pathValue(r, "repo")
	if e.repoRole(c, ns, name) != "admin" {
		e.unauthorized(w, r, c)
		return "", "", false
	}
	return ns, name, true
}

// internalError is what an unhandled exception looks like (e.g. peewee's
// DoesNotExist for a permission on a missing repository, reference §5.5).
func internalError(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte(nginxPage(http.StatusInternalServerError)))
}

func (e *Emulator) permissionView(ns, username, role string) map[string]any {
	a := e.db.accounts[username]
	v := map[string]any{"role": role, "name": username, "is_robot": a != nil && a.robot, "avatar": avatar(username, "user")}
	if e.isOrg(ns) {
		v["is_org_member"] = (a != nil && a.robot) || e.db.orgRole(ns, username) != ""
	}
	return v
}

func (e *Emulator) changeUserPermission(w http.ResponseWriter, r *http.Request, c *caller) {
	role, ok := e.decodeRepoRole(w, r)
	if !ok {
		return
	}
	ns, name, admin := e.repoAdmin(w, r, c)
	if !admin {
		return
	}
	username := pathValue(r, "username")
	a := e.db.accounts[username]
	switch {
	case username == ns:
		e.invalidRequest(w, r, "Namespace owner must always be admin.")
		return
	case a == nil || a.org:
		e.invalidRequest(w, r, "Invalid username: "+username)
		return
	case a.robot && !hasPrefix(username, ns+"+"):
		e.invalidRequest(w, r, "Cannot add robot "+username+" under namespace "+ns)
		return
	}
	repo := e.db.repos[ns+"/"+name]
	if repo == nil {
		internalError(w)
		return
	}
	repo.userPerms[username] = role
	writeJSON(w, http.StatusOK, e.permissionView(ns, username, role))
}

func (e *Emulator) getUserPermission(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, name, ok := e.repoAdmin(w, r, c)
	if !ok {
		return
	}
	repo := e.db.repos[ns+"/"+name]
	username := pathValue(r, "username")
	if repo == nil || repo.userPerms[username] == "" {
		dataModelError(w, "User does not have permission for repo.")
		return
	}
	writeJSON(w, http.StatusOK, e.permissionView(ns, username, repo.userPerms[username]))
}

func (e *Emulator) listUserPermissions(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, name, ok := e.repoAdmin(w, r, c)
	if !ok {
		return
	}
	repo := e.db.repos[ns+"/"+name]
	if repo == nil {
		e.notFound(w, r)
		return
	}
	perms := map[string]any{}
	for u, role := range repo.userPerms {
		perms[u] = e.permissionView(ns, u, role)
	}
	writeJSON(w, http.StatusOK, map[string]any{"permissions": perms})
}

func (e *Emulator) deleteUserPermission(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, name, ok := e.repoAdmin(w, r, c)
	if !ok {
		return
	}
	repo := e.db.repos[ns+"/"+name]
	username := pathValue(r, "username")
	if repo == nil || repo.userPerms[username] == "" {
		e.invalidRequest(w, r, "User does not have permission for repo.")
		return
	}
	delete(repo.userPerms, username)
	noContent(w)
}

func (e *Emulator) changeTeamPermission(w http.ResponseWriter, r *http.Request, c *caller) {
	role, ok := e.decodeRepoRole(w, r)
	if !ok {
		return
	}
	ns, name, admin := e.repoAdmin(w, r, c)
	if !admin {
		return
	}
	teamName := pathValue(r, "teamname")
	if e.db.teams[ns][teamName] == nil {
		e.invalidRequest(w, r, "Invalid team: "+teamName)
		return
	}
	repo := e.db.repos[ns+"/"+name]
	if repo == nil {
		internalError(w)
		return
	}
	repo.teamPerms[teamName] = role
	writeJSON(w, http.StatusOK, map[string]any{"role": role, "name": teamName, "avatar": avatar(teamName, "team")})
}

func (e *Emulator) deleteTeamPermission(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, name, ok := e.repoAdmin(w, r, c)
	if !ok {
		return
	}
	repo := e.db.repos[ns+"/"+name]
	teamName := pathValue(r, "teamname")
	if repo == nil || repo.teamPerms[teamName] == "" {
		e.invalidRequest(w, r, "Team does not have permission for repo.")
		return
	}
	delete(repo.teamPerms, teamName)
	noContent(w)
}

// decodeRepoRole reads {"role": "read"|"write"|"admin"} (the schema runs
// before the handler in Quay, so a bad body is a 400 even without rights).
func (e *Emulator) decodeRepoRole(w http.ResponseWriter, r *http.Request) (string, bool) {
	var body struct {
		Role string `json:"role"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || !contains(repoRoles[1:], body.Role) {
		e.invalidRequest(w, r, "'role' must be one of read, write, admin")
		return "", false
	}
	return body.Role, true
}

func sortedRepos(repos map[string]*repository) []*repository {
	out := make([]*repository, 0, len(repos))
	for _, r := range repos {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].namespace+"/"+out[i].name < out[j].namespace+"/"+out[j].name })
	return out
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }
