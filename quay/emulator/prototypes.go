package emulator

import (
	"net/http"
)

// Default permissions ("prototypes", endpoints/api/prototype.py). Need org
// admin.

func (e *Emulator) prototypeRoutes() {
	base := "/api/v1/organization/{orgname}/prototypes"
	e.handle("GET "+base, "getOrganizationPrototypePermissions", apiRoute, e.listPrototypes)
	e.handle("POST "+base, "createOrganizationPrototypePermission", apiRoute, e.createPrototype)
	e.handle("PUT "+base+"/{prototypeid}", "updateOrganizationPrototypePermission", apiRoute, e.updatePrototype)
	e.handle("DELETE "+base+"/{prototypeid}", "deleteOrganizationPrototypePermission", apiRoute, e.deletePrototype)
}

func (e *Emulator) prototypeView(p *prototype) map[string]any {
	userView := func(name string) map[string]any {
		a := e.db.accounts[name]
		return map[string]any{"name": name, "is_robot": a != nil && a.robot, "kind": "user",
			"is_org_member": (a != nil && a.robot) || e.db.orgRole(p.org, name) != "", "avatar": avatar(name, "user")}
	}
	var activating any
	if p.activatingUser != "" {
		activating = userView(p.activatingUser)
	}
	var delegate map[string]any
	if p.delegateTeam != "" {
		delegate = map[string]any{"name": p.delegateTeam, "kind": "team", "avatar": avatar(p.delegateTeam, "team")}
	} else {
		delegate = userView(p.delegateUser)
	}
	return map[string]any{"activating_user": activating, "delegate": delegate, "role": p.role, "id": p.id}
}

func (e *Emulator) listPrototypes(w http.ResponseWriter, r *http.Request, c *caller) {
	org := pathValue(r, "orgname")
	if !e.orgAdminOr404(w, r, c, org) {
		return
	}
	list := []map[string]any{}
	for _, p := range e.db.prototypes[org] {
		list = append(list, e.prototypeView(p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"prototypes": list})
}

var newPrototypeSchema = objectSchema{required: []string{"role", "delegate"}, props: []prop{
	{name: "role", types: []string{"string"}, enum: []any{"read", "write", "admin"}},
	{name: "activating_user", types: []string{"object"}, object: &objectSchema{required: []string{"name"}, props: []prop{
		{name: "name", types: []string{"string"}},
	}}},
	{name: "delegate", types: []string{"object"}, object: &objectSchema{required: []string{"name", "kind"}, props: []prop{
		{name: "name", types: []string{"string"}},
		{name: "kind", types: []string{"string"}, enum: []any{"user", "team"}},
	}}},
}}

// createPrototype is POST …/prototypes (endpoints/api/prototype.py): the
// body first, then org admin, the organization (404), then the lookups in
// Quay's order: a missing delegate team raises before the activating user
// and delegate checks.
func (e *Emulator) createPrototype(w http.ResponseWriter, r *http.Request, c *caller) {
	body, ok := e.jsonRequest(w, r, newPrototypeSchema)
	if !ok {
		return
	}
	org := pathValue(r, "orgname")
	if !e.orgAdminOr404(w, r, c, org) {
		return
	}
	activatingName := ""
	if au, ok := body["activating_user"].(map[string]any); ok {
		activatingName, _ = au["name"].(string)
	}
	delegate := body["delegate"].(map[string]any)
	delegateName, _ := delegate["name"].(string)
	delegateKind, _ := delegate["kind"].(string)
	user := func(name string) *account { // model.user.get_user: not an organization
		if a := e.db.accounts[name]; a != nil && !a.org {
			return a
		}
		return nil
	}
	p := &prototype{id: newUUID(), org: org, role: body["role"].(string)}
	var activating, delegateUser *account
	if activatingName != "" {
		activating = user(activatingName)
	}
	if delegateKind == "user" && delegateName != "" {
		delegateUser = user(delegateName)
	}
	if delegateKind == "team" && delegateName != "" {
		if e.db.teams[org][delegateName] == nil {
			// InvalidTeamException("Team does not exist: %s/%s", org, team):
			// str() of a three-argument exception is the tuple.
			dataModelError(w, "('Team does not exist: %s/%s', "+pyStr(org)+", "+pyStr(delegateName)+")")
			return
		}
		p.delegateTeam = delegateName
	}
	if activatingName != "" && activating == nil {
		e.invalidRequest(w, r, "Unknown activating user")
		return
	}
	if delegateUser == nil && p.delegateTeam == "" {
		e.invalidRequest(w, r, "Missing delegate user or team")
		return
	}
	if activating != nil {
		p.activatingUser = activating.username
	}
	if delegateUser != nil {
		p.delegateUser = delegateUser.username
	}
	e.db.prototypes[org] = append(e.db.prototypes[org], p)
	writeJSON(w, http.StatusOK, e.prototypeView(p))
}

// adminPrototype is the organization's prototype named by the path (org
// admin needed, else 403/404 as orgAdminOr404; an unknown id is a 404). It
// answers the request itself and returns nil when a check fails.
func (e *Emulator) adminPrototype(w http.ResponseWriter, r *http.Request, c *caller) *prototype {
	org := pathValue(r, "orgname")
	if !e.orgAdminOr404(w, r, c, org) {
		return nil
	}
	id := pathValue(r, "prototypeid")
	for _, p := range e.db.prototypes[org] {
		if p.id == id {
			return p
		}
	}
	e.notFound(w, r)
	return nil
}

func (e *Emulator) updatePrototype(w http.ResponseWriter, r *http.Request, c *caller) {
	body, ok := e.jsonRequest(w, r, rolePermissionSchema)
	if !ok {
		return
	}
	role := body["role"].(string)
	p := e.adminPrototype(w, r, c)
	if p == nil {
		return
	}
	p.role = role
	writeJSON(w, http.StatusOK, e.prototypeView(p))
}

func (e *Emulator) deletePrototype(w http.ResponseWriter, r *http.Request, c *caller) {
	p := e.adminPrototype(w, r, c)
	if p == nil {
		return
	}
	org := pathValue(r, "orgname")
	kept := e.db.prototypes[org][:0]
	for _, q := range e.db.prototypes[org] {
		if q != p {
			kept = append(kept, q)
		}
	}
	e.db.prototypes[org] = kept
	noContent(w)
}
