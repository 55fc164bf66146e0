package emulator

import (
	"encoding/json"
	"net/http"
	"sort"
)

// Teams and members (reference §5.6). Managing them needs org admin.

func (e *Emulator) teamRoutes() {
	base := "/api/v1/organization/{orgname}/team/{teamname}"
	e.handle("PUT "+base, "updateOrganizationTeam", apiRoute, e.updateTeam)
	e.handle("DELETE "+base, "deleteOrganizationTeam", apiRoute, e.deleteTeam)
	e.handle("GET "+base+"/members", "getOrganizationTeamMembers", apiRoute, e.teamMembers)
	e.handle("PUT "+base+"/members/{membername}", "updateOrganizationTeamMember", apiRoute, e.addTeamMember)
	e.handle("DELETE "+base+"/members/{membername}", "deleteOrganizationTeamMember", apiRoute, e.removeTeamMember)
}

func (e *Emulator) teamView(t *team) map[string]any {
	return map[string]any{"name": t.name, "description": t.description, "role": t.role, "avatar": avatar(t.name, "team"),
		"can_view": true, "member_count": len(t.members), "repo_count": 0, "is_synced": false}
}

func (e *Emulator) updateTeam(w http.ResponseWriter, r *http.Request, c *caller) {
	var body struct {
		Role        string  `json:"role"`
		Description *string `json:"description"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || !contains([]string{"member", "creator", "admin"}, body.Role) {
		e.invalidRequest(w, r, "'role' must be one of member, creator, admin")
		return
	}
	org := pathValue(r, "orgname")
	if !e.orgAdminOr404(w, r, c, org) {
		return
	}
	name := pathValue(r, "teamname")
	if !validName(name) {
		e.invalidRequest(w, r, "Invalid team name "+name+": Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$ and be between 2 and 255 characters in length")
		return
	}
	t := e.db.teams[org][name]
	isNew := t == nil
	if isNew {
		t = &team{org: org, name: name, members: map[string]bool{}}
		e.db.teams[org][name] = t
	}
	t.role = body.Role
	if body.Description != nil {
		t.description = *body.Description
	}
	view := e.teamView(t)
	view["new_team"] = isNew
	writeJSON(w, http.StatusOK, view)
}

func (e *Emulator) deleteTeam(w http.ResponseWriter, r *http.Request, c *caller) {
	org := pathValue(r, "orgname")
	if !e.orgAdminOr404(w, r, c, org) {
		return
	}
	name := pathValue(r, "teamname")
	if e.db.teams[org][name] == nil {
		e.notFound(w, r)
		return
	}
	delete(e.db.teams[org], name)
	for _, repo := range e.db.repos {
		if repo.namespace == org {
			delete(repo.teamPerms, name)
		}
	}
	noContent(w)
}

func (e *Emulator) memberView(a *account) map[string]any {
	return map[string]any{"name": a.username, "kind": "user", "is_robot": a.robot, "avatar": avatar(a.username, "user"), "invited": false}
}

// addTeamMember adds a user or robot. Not idempotent: an existing member is
// a 400 with a data-model message.
func (e *Emulator) addTeamMember(w http.ResponseWriter, r *http.Request, c *caller) {
	org := pathValue(r, "orgname")
	if !e.orgAdminOr404(w, r, c, org) {
		return
	}
	t := e.db.teams[org][pathValue(r, "teamname")]
	if t == nil {
		e.notFound(w, r)
		return
	}
	member := pathValue(r, "membername")
	a := e.db.accounts[member]
	if a == nil || a.org {
		e.invalidRequest(w, r, "Unknown user")
		return
	}
	if t.members[member] {
		dataModelError(w, "User "+member+" is already a member of team "+t.name)
		return
	}
	t.members[member] = true
	writeJSON(w, http.StatusOK, e.memberView(a))
}

func (e *Emulator) removeTeamMember(w http.ResponseWriter, r *http.Request, c *caller) {
	org := pathValue(r, "orgname")
	if !e.orgAdminOr404(w, r, c, org) {
		return
	}
	t := e.db.teams[org][pathValue(r, "teamname")]
	member := pathValue(r, "membername")
	if t == nil || e.db.accounts[member] == nil {
		e.notFound(w, r)
		return
	}
	if !t.members[member] {
		dataModelError(w, "User "+member+" does not belong to team "+t.name)
		return
	}
	delete(t.members, member)
	noContent(w)
}

func (e *Emulator) teamMembers(w http.ResponseWriter, r *http.Request, c *caller) {
	org := pathValue(r, "orgname")
	if !e.orgMember(c, org) {
		e.unauthorized(w, r, c)
		return
	}
	t := e.db.teams[org][pathValue(r, "teamname")]
	if t == nil {
		e.notFound(w, r)
		return
	}
	var names []string
	for m := range t.members {
		names = append(names, m)
	}
	sort.Strings(names)
	members := []map[string]any{}
	for _, m := range names {
		if a := e.db.accounts[m]; a != nil {
			members = append(members, e.memberView(a))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": t.name, "members": members, "can_edit": e.orgAdmin(c, org)})
}
