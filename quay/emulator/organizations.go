package emulator

import (
	"encoding/json"
	"net/http"
)

// createOrganization is POST /api/v1/organization/ (reference §4): needs
// user:admin; answers 201 with the JSON string "Created". The creator joins
// the "owners" team, which has the admin role.
func (e *Emulator) createOrganization(w http.ResponseWriter, r *http.Request, c *caller) {
	var body struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Name == "" {
		e.invalidRequest(w, r, "'name' is a required property")
		return
	}
	if !e.userAdmin(c) {
		e.unauthorized(w, r, c)
		return
	}
	if _, exists := e.db.accounts[body.Name]; exists {
		e.invalidRequest(w, r, "A user or organization with this name already exists")
		return
	}
	if !validName(body.Name) {
		e.invalidRequest(w, r, "Invalid namespace "+body.Name+": Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$ and be between 2 and 255 characters in length")
		return
	}
	e.createOrg(body.Name, body.Email, c.user.username)
	writeJSON(w, http.StatusCreated, "Created")
}

func (e *Emulator) createOrg(name, email, owner string) {
	org := e.db.addUser(name, email, "", e.now())
	org.org = true
	e.db.teams[name] = map[string]*team{
		"owners": {org: name, name: "owners", role: "admin", members: map[string]bool{owner: true}},
	}
}

// getOrganization is GET /api/v1/organization/{orgname}: anyone may read it;
// members also see the teams.
func (e *Emulator) getOrganization(w http.ResponseWriter, r *http.Request, c *caller) {
	name := pathValue(r, "orgname")
	org := e.db.accounts[name]
	if org == nil || !org.org {
		e.notFound(w, r)
		return
	}
	admin := e.orgAdmin(c, name)
	view := map[string]any{
		"name": name, "avatar": avatar(name, "org"), "is_admin": admin, "is_member": e.orgMember(c, name),
		"is_free_account": true,
	}
	if admin {
		view["email"] = org.email
	}
	if e.orgMember(c, name) {
		teams := map[string]any{}
		var ordered []string
		for tn, t := range e.db.teams[name] {
			teams[tn] = e.teamView(t)
			ordered = append(ordered, tn)
		}
		view["teams"] = teams
		view["ordered_teams"] = ordered
	}
	writeJSON(w, http.StatusOK, view)
}

// isOrg reports whether name is an organization.
func (e *Emulator) isOrg(name string) bool {
	a := e.db.accounts[name]
	return a != nil && a.org
}
