package emulator

import (
	"net/http"
	"sort"
	"strings"
)

// Teams and members (endpoints/api/team.py). Managing them needs org admin.

func (e *Emulator) teamRoutes() {
	base := "/api/v1/organization/{orgname}/team/{teamname}"
	e.handle("PUT "+base, "updateOrganizationTeam", apiRoute, e.updateTeam)
	e.handle("DELETE "+base, "deleteOrganizationTeam", apiRoute, e.deleteTeam)
	e.handle("GET "+base+"/members", "getOrganizationTeamMembers", apiRoute, e.teamMembers)
	e.handle("PUT "+base+"/members/{membername}", "updateOrganizationTeamMember", apiRoute, e.addTeamMember)
	e.handle("DELETE "+base+"/members/{membername}", "deleteOrganizationTeamMember", apiRoute, e.removeTeamMember)
}

// teamView is an entry of getOrganization's teams (organization.py
// team_view).
func (e *Emulator) teamView(t *team, canView bool) map[string]any {
	repos := 0
	for _, repo := range e.db.repos {
		if repo.namespace == t.org && repo.teamPerms[t.name] != "" {
			repos++
		}
	}
	return map[string]any{"name": t.name, "description": t.description, "role": t.role, "avatar": avatar(t.name, "team"),
		"can_view": canView, "member_count": len(t.members), "repo_count": repos, "is_synced": false}
}

// teamPutView is endpoints/api/team.py team_view.
func (e *Emulator) teamPutView(c *caller, t *team, isNew bool) map[string]any {
	return map[string]any{"name": t.name, "description": t.description, "can_view": e.viewTeam(c, t.org, t.name),
		"role": t.role, "avatar": avatar(t.name, "team"), "new_team": isNew}
}

var teamDescriptionSchema = objectSchema{required: []string{"role"}, props: []prop{
	{name: "role", types: []string{"string"}, enum: []any{"member", "creator", "admin"}},
	{name: "description", types: []string{"string"}},
}}

// adminTeamsOf lists the admin-role teams of org the user belongs to.
func (s *store) adminTeamsOf(org, user string) []*team {
	var out []*team
	for _, t := range s.teamsOf(org, user) {
		if t.role == "admin" {
			out = append(out, t)
		}
	}
	return out
}

// updateTeam is PUT …/team/{teamname}: the body first, then org admin; it
// creates the team (validating its name) or updates it. Demoting the
// caller's only admin team is refused.
func (e *Emulator) updateTeam(w http.ResponseWriter, r *http.Request, c *caller) {
	body, ok := e.jsonRequest(w, r, teamDescriptionSchema)
	if !ok {
		return
	}
	org := pathValue(r, "orgname")
	if !e.orgAdmin(c, org) {
		e.unauthorized(w, r, c)
		return
	}
	name := pathValue(r, "teamname")
	role := body["role"].(string)
	t := e.db.teams[org][name]
	isNew := t == nil
	if isNew {
		if !e.isOrg(org) {
			dataModelError(w, "Organization does not exist: "+org)
			return
		}
		if issue := teamNameIssue(name); issue != "" {
			dataModelError(w, "Invalid team name "+name+": "+issue)
			return
		}
		t = &team{id: e.db.id(), org: org, name: name, role: role, members: map[string]bool{}}
		t.description, _ = body["description"].(string)
		e.db.teams[org][name] = t
	} else {
		if d, ok := body["description"].(string); ok {
			t.description = d
		}
		if t.role == "admin" && role != "admin" {
			admins := e.db.adminTeamsOf(org, c.user.username)
			if len(admins) <= 1 && t.members[c.user.username] {
				dataModelError(w, "Cannot remove admin from team '"+name+"' because calling user would no longer have admin on org '"+org+"'")
				return
			}
		}
		t.role = role
	}
	writeJSON(w, http.StatusOK, e.teamPutView(c, t, isNew))
}

// teamNameIssue is data/model/team.py validate_team_name.
func teamNameIssue(name string) string {
	if !usernameRule.MatchString(name) {
		return "Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$"
	}
	if len(name) < 2 || len(name) > 255 {
		return "Team must be between 2 and 255 characters in length"
	}
	return ""
}

// deleteTeam is remove_team: a missing team is a data-model error (400),
// and deleting the caller's only admin team is refused. The team's
// permissions and default permissions go with it.
func (e *Emulator) deleteTeam(w http.ResponseWriter, r *http.Request, c *caller) {
	org := pathValue(r, "orgname")
	if !e.orgAdmin(c, org) {
		e.unauthorized(w, r, c)
		return
	}
	name := pathValue(r, "teamname")
	t := e.db.teams[org][name]
	if t == nil || !e.isOrg(org) {
		dataModelError(w, "Team '"+name+"' is not a team in org '"+org+"'")
		return
	}
	if t.role == "admin" {
		admins := e.db.adminTeamsOf(org, c.user.username)
		if len(admins) == 0 {
			// admin_teams[0] on an empty list: an IndexError (a full-access
			// superuser outside the org's admin teams).
			internalError(w)
			return
		}
		if len(admins) <= 1 && admins[0].name == name {
			dataModelError(w, "Deleting team '"+name+"' would remove admin ability for user '"+c.user.username+"' in organization '"+org+"'")
			return
		}
	}
	delete(e.db.teams[org], name)
	for _, repo := range e.db.repos {
		if repo.namespace == org {
			delete(repo.teamPerms, name)
		}
	}
	kept := e.db.prototypes[org][:0]
	for _, p := range e.db.prototypes[org] {
		if p.delegateTeam != name {
			kept = append(kept, p)
		}
	}
	e.db.prototypes[org] = kept
	noContent(w)
}

func (e *Emulator) memberView(a *account, invited bool) map[string]any {
	return map[string]any{"name": a.username, "kind": "user", "is_robot": a.robot, "avatar": avatar(a.username, "user"), "invited": invited}
}

func (e *Emulator) requireTeamInvite() bool {
	return e.cfg.mailing() && (e.cfg.FeatureRequireTeamInvite == nil || *e.cfg.FeatureRequireTeamInvite)
}

// addTeamMember is PUT …/members/{membername} (handle_addinvite_team). With
// FEATURE_MAILING and FEATURE_REQUIRE_TEAM_INVITE (both default on), a
// robot must belong to the organization and a user who is in none of its
// teams is invited instead of added ("invited": true). Not idempotent: an
// existing member is a 400 with a data-model message.
func (e *Emulator) addTeamMember(w http.ResponseWriter, r *http.Request, c *caller) {
	org := pathValue(r, "orgname")
	if !e.orgAdmin(c, org) {
		e.unauthorized(w, r, c)
		return
	}
	t := e.db.teams[org][pathValue(r, "teamname")]
	if t == nil || !e.isOrg(org) {
		e.notFound(w, r)
		return
	}
	member := pathValue(r, "membername")
	a := e.db.accounts[member]
	if a == nil || a.org {
		e.invalidRequest(w, r, "Unknown user")
		return
	}
	if e.requireTeamInvite() {
		if a.robot {
			if !strings.HasPrefix(member, org+"+") {
				dataModelError(w, "Cannot add the specified robot to this team, as it is not a member of the organization")
				return
			}
		} else if len(e.db.teamsOf(org, member)) == 0 {
			if t.invites == nil {
				t.invites = map[string]bool{}
			}
			t.invites[member] = true
			writeJSON(w, http.StatusOK, e.memberView(a, true))
			return
		}
	}
	if t.members[member] {
		dataModelError(w, "User "+member+" is already a member of team "+t.name)
		return
	}
	t.members[member] = true
	writeJSON(w, http.StatusOK, e.memberView(a, false))
}

// removeTeamMember removes a member, or an invite. Removing oneself from
// one's only admin team is refused.
func (e *Emulator) removeTeamMember(w http.ResponseWriter, r *http.Request, c *caller) {
	org := pathValue(r, "orgname")
	if !e.orgAdmin(c, org) {
		e.unauthorized(w, r, c)
		return
	}
	t := e.db.teams[org][pathValue(r, "teamname")]
	member := pathValue(r, "membername")
	if a := e.db.accounts[member]; t == nil || !e.isOrg(org) || a == nil || a.org {
		e.notFound(w, r)
		return
	}
	if t.invites[member] {
		delete(t.invites, member)
		noContent(w)
		return
	}
	if !t.members[member] {
		dataModelError(w, "User "+member+" does not belong to team "+t.name)
		return
	}
	if member == c.user.username && t.role == "admin" && len(e.db.adminTeamsOf(org, member)) <= 1 {
		dataModelError(w, "User cannot remove themselves from their only admin team.")
		return
	}
	delete(t.members, member)
	noContent(w)
}

// teamMembers is GET …/members: ViewTeamPermission (a member of the team
// or an org admin); invites only with includePending for admins.
func (e *Emulator) teamMembers(w http.ResponseWriter, r *http.Request, c *caller) {
	org := pathValue(r, "orgname")
	teamName := pathValue(r, "teamname")
	if !e.viewTeam(c, org, teamName) {
		e.unauthorized(w, r, c)
		return
	}
	t := e.db.teams[org][teamName]
	if t == nil || !e.isOrg(org) {
		e.notFound(w, r)
		return
	}
	members := []map[string]any{}
	for _, m := range sortedKeys(t.members) {
		if a := e.db.accounts[m]; a != nil {
			members = append(members, e.memberView(a, false))
		}
	}
	admin := e.orgAdmin(c, org)
	if admin && truthyBool(r, "includePending", false) {
		for _, m := range sortedKeys(t.invites) {
			if a := e.db.accounts[m]; a != nil {
				members = append(members, e.memberView(a, true))
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": teamName, "members": members, "can_edit": admin})
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
