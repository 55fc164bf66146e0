package emulator

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Repositories and their permissions (endpoints/api/repository.py,
// endpoints/api/permission.py). The repository path may be nested
// (FEATURE_EXTENDED_REPOSITORY_NAMES, on by default):
// /api/v1/repository/<ns>/<a/b>/permissions/user/<username>.

// repoNameRule is util/names.py REPOSITORY_NAME_EXTENDED_REGEX.
var repoNameRule = regexp.MustCompile(`^[a-z0-9][.a-z0-9_-]*(?:/[a-z0-9][.a-z0-9_-]*)*$`)

func validRepoName(name string) bool { return len(name) <= 255 && repoNameRule.MatchString(name) }

func (e *Emulator) repositoryRoutes() {
	e.handle("POST /api/v1/repository", "createRepo", apiRoute, e.createRepo)
	e.handle("GET /api/v1/repository", "listRepos", apiRoute, e.listRepos)
	e.declareOnly(http.MethodGet, repositoryPath, "getRepo")
	for _, kind := range []struct{ kind, name, list string }{{"user", "{username}", "listRepoUserPermissions"}, {"team", "{teamname}", "listRepoTeamPermissions"}} {
		e.declareOnly(http.MethodGet, repositoryPath+"/permissions/"+kind.kind+"/", kind.list)
		title := strings.ToUpper(kind.kind[:1]) + kind.kind[1:]
		e.declareOnly(http.MethodGet, repositoryPath+"/permissions/"+kind.kind+"/"+kind.name, "get"+title+"Permissions")
		e.declareOnly(http.MethodPut, repositoryPath+"/permissions/"+kind.kind+"/"+kind.name, "change"+title+"Permissions")
		e.declareOnly(http.MethodDelete, repositoryPath+"/permissions/"+kind.kind+"/"+kind.name, "delete"+title+"Permissions")
	}
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		e.mux.HandleFunc(method+" /api/v1/repository/{path...}", func(w http.ResponseWriter, r *http.Request) {
			nickname, h := e.repositoryRoute(r)
			if h == nil {
				w.Header().Set("Allow", "GET, HEAD, OPTIONS")
				http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
				return
			}
			e.serve(w, r, nickname, apiRoute, h)
		})
	}
}

// repositoryRoute resolves a /api/v1/repository/<repository>/… path the
// way Werkzeug's apirepopath rules do (the repository part backtracks to
// leave the suffix), setting the ns, repo, username and teamname path
// values. A nil handler means no emulated route.
func (e *Emulator) repositoryRoute(r *http.Request) (string, handlerFunc) {
	path := r.PathValue("path")
	repository, nickname, h := path, "", handlerFunc(nil)
	switch {
	case strings.HasSuffix(path, "/permissions/user/") && r.Method == http.MethodGet:
		repository, nickname, h = strings.TrimSuffix(path, "/permissions/user/"), "listRepoUserPermissions", e.listUserPermissions
	case strings.HasSuffix(path, "/permissions/team/") && r.Method == http.MethodGet:
		repository, nickname, h = strings.TrimSuffix(path, "/permissions/team/"), "listRepoTeamPermissions", e.listTeamPermissions
	case strings.Contains(path, "/permissions/user/"):
		repository, nickname, h = permissionRoute(r, path, "user", "username", map[string]permissionHandler{
			http.MethodGet:    {"getUserPermissions", e.getUserPermission},
			http.MethodPut:    {"changeUserPermissions", e.changeUserPermission},
			http.MethodDelete: {"deleteUserPermissions", e.deleteUserPermission},
		})
		if repository == "" {
			return "", nil
		}
	case strings.Contains(path, "/permissions/team/"):
		repository, nickname, h = permissionRoute(r, path, "team", "teamname", map[string]permissionHandler{
			http.MethodGet:    {"getTeamPermissions", e.getTeamPermission},
			http.MethodPut:    {"changeTeamPermissions", e.changeTeamPermission},
			http.MethodDelete: {"deleteTeamPermissions", e.deleteTeamPermission},
		})
		if repository == "" {
			return "", nil
		}
	case r.Method == http.MethodGet:
		nickname, h = "getRepo", e.getRepo
	}
	ns, name, ok := strings.Cut(repository, "/")
	if !ok || ns == "" || name == "" {
		return "", nil
	}
	r.SetPathValue("ns", ns)
	r.SetPathValue("repo", name)
	return nickname, h
}

// permissionHandler is one method of a repository permission route.
type permissionHandler struct {
	nickname string
	handle   handlerFunc
}

// permissionRoute splits <ns>/<repo>/permissions/<kind>/<name>, stores the
// name as the path value pathValue and picks the handler for the method. An
// empty repository means the path matches no route.
func permissionRoute(r *http.Request, path, kind, pathValue string, byMethod map[string]permissionHandler) (string, string, handlerFunc) {
	marker := "/permissions/" + kind + "/"
	i := strings.LastIndex(path, marker)
	name := path[i+len(marker):]
	if name == "" || strings.Contains(name, "/") {
		return "", "", nil
	}
	r.SetPathValue(pathValue, name)
	m := byMethod[r.Method]
	return path[:i], m.nickname, m.handle
}

var newRepoSchema = objectSchema{required: []string{"repository", "visibility", "description"}, props: []prop{
	{name: "repository", types: []string{"string"}},
	{name: "visibility", types: []string{"string"}, enum: []any{"public", "private"}},
	{name: "namespace", types: []string{"string"}},
	{name: "description", types: []string{"string"}},
	{name: "repo_kind", types: []string{"string", "null"}, enum: []any{"image", nil}},
}}

// createRepo is POST /api/v1/repository (endpoints/api/repository.py
// RepositoryList.post): the body first, then CreateRepositoryPermission on
// the namespace (the caller's own when absent), then existence and name.
func (e *Emulator) createRepo(w http.ResponseWriter, r *http.Request, c *caller) {
	body, ok := e.jsonRequest(w, r, newRepoSchema)
	if !ok {
		return
	}
	if c == nil {
		e.invalidRequest(w, r, "Must provide a namespace or must be logged in.")
		return
	}
	ns := c.user.username
	if v, present := body["namespace"]; present {
		ns = v.(string)
	}
	if !e.canCreateRepo(c, ns) {
		e.unauthorized(w, r, c)
		return
	}
	name := body["repository"].(string)
	if _, exists := e.db.repos[ns+"/"+name]; exists {
		e.invalidRequest(w, r, "Repository already exists")
		return
	}
	if !validRepoName(name) {
		e.invalidRequest(w, r, "Invalid repository name")
		return
	}
	if e.db.accounts[ns] == nil {
		// unverified: create_repository's User.get raises DoesNotExist.
		internalError(w)
		return
	}
	e.db.createRepo(ns, name, body["visibility"] == "public", body["description"].(string), c.user.username, e.now())
	writeJSON(w, http.StatusCreated, map[string]any{"namespace": ns, "name": name, "kind": "image"})
}

// createRepo is data/model/repository.py create_repository: a creating
// user (not an organization) always gets an explicit admin permission, and
// the organization's default permissions apply when the creator is not the
// namespace itself.
func (s *store) createRepo(ns, name string, public bool, description, creator string, now time.Time) *repository {
	repo := &repository{id: s.id(), namespace: ns, name: name, public: public, description: description, created: now, badgeToken: newUUID(),
		userPerms: map[string]string{}, teamPerms: map[string]string{}}
	s.repos[ns+"/"+name] = repo
	if a := s.accounts[creator]; a == nil || a.org {
		return repo
	}
	repo.userPerms[creator] = "admin"
	if creator != ns {
		s.applyDefaultPermissions(repo, creator)
	}
	return repo
}

// applyDefaultPermissions is apply_default_permissions: the organization's
// prototypes for this creator or for anyone; a creator-specific prototype
// pre-empts a general one for the same delegate, otherwise the later one
// wins. A prototype naming the creator is skipped (they are admin anyway).
func (s *store) applyDefaultPermissions(repo *repository, creator string) {
	apply := func(team bool) map[string]string {
		final := map[string]string{}
		for _, p := range s.prototypes[repo.namespace] {
			if p.activatingUser != "" && p.activatingUser != creator {
				continue
			}
			name := p.delegateUser
			if team {
				name = p.delegateTeam
			}
			if name == "" {
				continue
			}
			if _, seen := final[name]; seen && p.activatingUser == "" {
				continue
			}
			final[name] = p.role
		}
		return final
	}
	for t, role := range apply(true) {
		repo.teamPerms[t] = role
	}
	for u, role := range apply(false) {
		if u != creator {
			repo.userPerms[u] = role
		}
	}
}

// repoView is RepositoryBaseElement.to_dict, a repository in a list: with
// is_starred for a signed-in caller (nothing is ever starred here).
func repoView(repo *repository, c *caller) map[string]any {
	v := map[string]any{
		"namespace": repo.namespace, "name": repo.name, "description": repo.description,
		"is_public": repo.public, "kind": "image", "state": "NORMAL",
	}
	if c != nil && c.user != nil {
		v["is_starred"] = false
	}
	return v
}

// getRepo is Repository.get: ImageRepositoryRepository.to_dict plus the
// caller's rights. A private repository's status_token is its badge
// token. The emulator keeps no tag history, so tags is always empty.
func (e *Emulator) getRepo(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, name := pathValue(r, "ns"), pathValue(r, "repo")
	repo := e.db.repos[ns+"/"+name]
	if repo == nil || !repo.public {
		if e.repoRole(c, ns, name) == "" {
			e.unauthorized(w, r, c)
			return
		}
		if repo == nil {
			e.notFound(w, r)
			return
		}
	}
	role := e.repoRole(c, ns, name)
	statusToken := ""
	if !repo.public {
		statusToken = repo.badgeToken
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"namespace": repo.namespace, "name": repo.name, "kind": "image", "description": repo.description,
		"is_public": repo.public, "is_organization": e.isOrg(repo.namespace), "is_starred": false,
		"status_token": statusToken, "trust_enabled": false, "tag_expiration_s": 1209600,
		"is_free_account": true, "state": "NORMAL", "tags": map[string]any{},
		"can_write": role == "write" || role == "admin", "can_admin": role == "admin",
	})
}

// reposPerPage is REPOS_PER_PAGE (endpoints/api/repository_models_pre_oci.py).
const reposPerPage = 100

// listRepos is listRepos: the repositories the caller may see, in the order
// of their ids, 100 a page, with an opaque next_page cursor in the body
// (model.modelutil.paginate_query over the repository id). A cursor that does
// not decode, or is older than two days, is ignored: the first page comes
// back (util/pagination.py).
func (e *Emulator) listRepos(w http.ResponseWriter, r *http.Request, c *caller) {
	ns := r.URL.Query().Get("namespace")
	if ns == "" && r.URL.Query().Get("public") == "" && r.URL.Query().Get("starred") == "" {
		e.invalidRequest(w, r, "namespace, starred or public are required for this API call")
		return
	}
	var visible []*repository
	for _, repo := range sortedRepos(e.db.repos) {
		if ns != "" && repo.namespace != ns {
			continue
		}
		if repo.public || e.repoRole(c, repo.namespace, repo.name) != "" {
			visible = append(visible, repo)
		}
	}
	sort.SliceStable(visible, func(i, j int) bool { return visible[i].id < visible[j].id })
	if from, ok := e.decodeRepoCursor(r.URL.Query().Get("next_page")); ok {
		i := sort.Search(len(visible), func(i int) bool { return visible[i].id >= from })
		visible = visible[i:]
	}
	resp := map[string]any{}
	if len(visible) > reposPerPage {
		resp["next_page"] = e.encodeRepoCursor(visible[reposPerPage].id)
		visible = visible[:reposPerPage]
	}
	list := make([]map[string]any, 0, len(visible))
	for _, repo := range visible {
		list = append(list, repoView(repo, c))
	}
	resp["repositories"] = list
	writeJSON(w, http.StatusOK, resp)
}

func (e *Emulator) encodeRepoCursor(startID int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("repos-from:%d:%d", startID, e.now().Unix())))
}

func (e *Emulator) decodeRepoCursor(s string) (int, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, false
	}
	var id int
	var issued int64
	if _, err := fmt.Sscanf(string(raw), "repos-from:%d:%d", &id, &issued); err != nil {
		return 0, false
	}
	if e.now().Sub(time.Unix(issued, 0)) > pageTokenTTL {
		return 0, false
	}
	return id, true
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
// DoesNotExist for a permission on a missing repository:
// data/model/permission.py __set_entity_repo_permission).
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

var rolePermissionSchema = objectSchema{required: []string{"role"}, props: []prop{
	{name: "role", types: []string{"string"}, enum: []any{"read", "write", "admin"}},
}}

// changeUserPermission is PUT …/permissions/user/{username}: repository
// admin first, then the body, then set_user_repo_permission's checks (an
// upsert). Any account but a robot of another namespace can be granted,
// organizations included.
func (e *Emulator) changeUserPermission(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, name, ok := e.repoAdmin(w, r, c)
	if !ok {
		return
	}
	body, ok := e.jsonRequest(w, r, rolePermissionSchema)
	if !ok {
		return
	}
	role := body["role"].(string)
	username := pathValue(r, "username")
	a := e.db.accounts[username]
	switch {
	case username == ns:
		e.invalidRequest(w, r, "Namespace owner must always be admin.")
		return
	case a == nil:
		e.invalidRequest(w, r, "Invalid username: "+username)
		return
	case a.robot && !strings.HasPrefix(username, ns+"+"):
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

// listUserPermissions: a missing repository simply has none.
func (e *Emulator) listUserPermissions(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, name, ok := e.repoAdmin(w, r, c)
	if !ok {
		return
	}
	perms := map[string]any{}
	if repo := e.db.repos[ns+"/"+name]; repo != nil {
		for u, role := range repo.userPerms {
			perms[u] = e.permissionView(ns, u, role)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"permissions": perms})
}

func (e *Emulator) deleteUserPermission(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, name, ok := e.repoAdmin(w, r, c)
	if !ok {
		return
	}
	username := pathValue(r, "username")
	if username == ns {
		e.invalidRequest(w, r, "Namespace owner must always be admin.")
		return
	}
	repo := e.db.repos[ns+"/"+name]
	if repo == nil || repo.userPerms[username] == "" {
		e.invalidRequest(w, r, "User does not have permission for repo.")
		return
	}
	delete(repo.userPerms, username)
	noContent(w)
}

func (e *Emulator) changeTeamPermission(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, name, ok := e.repoAdmin(w, r, c)
	if !ok {
		return
	}
	body, ok := e.jsonRequest(w, r, rolePermissionSchema)
	if !ok {
		return
	}
	role := body["role"].(string)
	teamName := pathValue(r, "teamname")
	if e.db.teams[ns][teamName] == nil {
		e.invalidRequest(w, r, "No team "+teamName+" in organization "+ns)
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

// listTeamPermissions is listRepoTeamPermissions: {"permissions": {team:
// {"role", "name", "avatar"}}}.
func (e *Emulator) listTeamPermissions(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, name, ok := e.repoAdmin(w, r, c)
	if !ok {
		return
	}
	perms := map[string]any{}
	if repo := e.db.repos[ns+"/"+name]; repo != nil {
		for teamName, role := range repo.teamPerms {
			perms[teamName] = map[string]any{"role": role, "name": teamName, "avatar": avatar(teamName, "team")}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"permissions": perms})
}

// getTeamPermission is getTeamPermissions: only {"role"}; none is a
// data-model error, 400 {"message"}.
func (e *Emulator) getTeamPermission(w http.ResponseWriter, r *http.Request, c *caller) {
	ns, name, ok := e.repoAdmin(w, r, c)
	if !ok {
		return
	}
	repo := e.db.repos[ns+"/"+name]
	teamName := pathValue(r, "teamname")
	if repo == nil || repo.teamPerms[teamName] == "" {
		dataModelError(w, "Team does not have permission for repo.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"role": repo.teamPerms[teamName]})
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

func sortedRepos(repos map[string]*repository) []*repository {
	out := make([]*repository, 0, len(repos))
	for _, r := range repos {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].namespace+"/"+out[i].name < out[j].namespace+"/"+out[j].name })
	return out
}
