package emulator

import (
	"net/http"
	"sort"
)

// createOrganization is POST /api/v1/organization/
// (endpoints/api/organization.py OrganizationList.post): needs user:admin
// (checked before the body); answers 201 with the JSON string "Created".
// The creator joins the "owners" team, which has the admin role.
func (e *Emulator) createOrganization(w http.ResponseWriter, r *http.Request, c *caller) {
	if c == nil || !e.userAdmin(c) {
		e.unauthorized(w, r, c)
		return
	}
	body, ok := e.jsonRequest(w, r, newOrgSchema)
	if !ok {
		return
	}
	name := body["name"].(string)
	if existing := e.db.accounts[name]; existing != nil {
		e.invalidRequest(w, r, "A user or organization with this name already exists")
		return
	}
	email, _ := body["contact_email"].(string)
	if email == "" {
		email, _ = body["email"].(string)
	}
	if email != "" && !validEmail(email) {
		e.invalidRequest(w, r, "Invalid email address")
		return
	}
	if issue := usernameIssue(name); issue != "" {
		e.invalidRequest(w, r, "Invalid namespace "+name+": "+issue)
		return
	}
	e.createOrg(name, email, c.user.username)
	writeJSON(w, http.StatusCreated, "Created")
}

var newOrgSchema = objectSchema{required: []string{"name"}, props: []prop{
	{name: "name", types: []string{"string"}},
	{name: "email", types: []string{"string"}},
	{name: "contact_email", types: []string{"string"}},
	{name: "recaptcha_response", types: []string{"string"}},
}}

func (e *Emulator) createOrg(name, email, owner string) {
	org := e.db.addUser(name, email, "", e.now())
	org.org = true
	e.db.teams[name] = map[string]*team{
		"owners": {id: e.db.id(), org: name, name: "owners", role: "admin", members: map[string]bool{owner: true}},
	}
}

// getOrganization is GET /api/v1/organization/{orgname} (organization.py
// org_view): anyone may read it; the email and admin fields are for
// admins, the teams for members (can_view for their own teams, or all for
// admins), ordered by creation.
func (e *Emulator) getOrganization(w http.ResponseWriter, r *http.Request, c *caller) {
	name := pathValue(r, "orgname")
	org := e.db.accounts[name]
	if org == nil || !org.org {
		e.notFound(w, r)
		return
	}
	var teams []*team
	if e.orgMember(c, name) {
		teams = []*team{}
		for _, t := range e.db.teams[name] {
			teams = append(teams, t)
		}
	}
	writeJSON(w, http.StatusOK, e.orgView(c, name, teams))
}

// orgView is endpoints/api/organization.py org_view for the caller: teams
// (nil: none shown) in creation order; an administrator sees the email and
// the account's settings. ns may be a user's namespace (the organization of
// an application in it).
func (e *Emulator) orgView(c *caller, ns string, teams []*team) map[string]any {
	admin, member := e.orgAdmin(c, ns), e.orgMember(c, ns)
	email := ""
	if a := e.db.accounts[ns]; admin && a != nil && validEmail(a.email) {
		email = a.email
	}
	view := map[string]any{"name": ns, "email": email, "avatar": avatar(ns, "org"), "is_admin": admin, "is_member": member}
	if teams != nil {
		sort.Slice(teams, func(i, j int) bool { return teams[i].id < teams[j].id })
		views, ordered := map[string]any{}, []string{}
		for _, t := range teams {
			views[t.name] = e.teamView(t, admin || (c != nil && c.user != nil && t.members[c.user.username]))
			ordered = append(ordered, t.name)
		}
		view["teams"], view["ordered_teams"] = views, ordered
	}
	if admin {
		view["invoice_email"] = false
		view["invoice_email_address"] = nil
		view["tag_expiration_s"] = 1209600
		view["is_free_account"] = true
	}
	return view
}

// isOrg reports whether name is an organization.
func (e *Emulator) isOrg(name string) bool {
	a := e.db.accounts[name]
	return a != nil && a.org
}
