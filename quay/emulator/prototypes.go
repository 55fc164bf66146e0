package emulator

import (
	"encoding/json"
	"net/http"
)

// Default permissions ("prototypes", reference §5.7). Need org admin.

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

func (e *Emulator) createPrototype(w http.ResponseWriter, r *http.Request, c *caller) {
	var body struct {
		Role     string `json:"role"`
		Delegate *struct {
			Name string `json:"name"`
			Kind string `json:"kind"`
		} `json:"delegate"`
		ActivatingUser *struct {
			Name string `json:"name"`
		} `json:"activating_user"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || !contains([]string{"read", "write", "admin"}, body.Role) || body.Delegate == nil {
		e.invalidRequest(w, r, "'role' and 'delegate' are required properties")
		return
	}
	org := pathValue(r, "orgname")
	if !e.orgAdminOr404(w, r, c, org) {
		return
	}
	p := &prototype{id: newUUID(), org: org, role: body.Role}
	if body.ActivatingUser != nil && body.ActivatingUser.Name != "" {
		if a := e.db.accounts[body.ActivatingUser.Name]; a == nil || a.org {
			e.invalidRequest(w, r, "Unknown activating user")
			return
		}
		p.activatingUser = body.ActivatingUser.Name
	}
	switch body.Delegate.Kind {
	case "user":
		if a := e.db.accounts[body.Delegate.Name]; a == nil || a.org {
			e.invalidRequest(w, r, "Missing delegate user or team")
			return
		}
		p.delegateUser = body.Delegate.Name
	case "team":
		if e.db.teams[org][body.Delegate.Name] == nil {
			e.invalidRequest(w, r, "Missing delegate user or team")
			return
		}
		p.delegateTeam = body.Delegate.Name
	default:
		e.invalidRequest(w, r, "Missing delegate user or team")
		return
	}
	e.db.prototypes[org] = append(e.db.prototypes[org], p)
	writeJSON(w, http.StatusOK, e.prototypeView(p))
}

func (e *Emulator) findPrototype(org, id string) *prototype {
	for _, p := range e.db.prototypes[org] {
		if p.id == id {
			return p
		}
	}
	return nil
}

func (e *Emulator) updatePrototype(w http.ResponseWriter, r *http.Request, c *caller) {
	role, ok := e.decodeRepoRole(w, r)
	if !ok {
		return
	}
	org := pathValue(r, "orgname")
	if !e.orgAdminOr404(w, r, c, org) {
		return
	}
	p := e.findPrototype(org, pathValue(r, "prototypeid"))
	if p == nil {
		e.notFound(w, r)
		return
	}
	p.role = role
	writeJSON(w, http.StatusOK, e.prototypeView(p))
}

func (e *Emulator) deletePrototype(w http.ResponseWriter, r *http.Request, c *caller) {
	org := pathValue(r, "orgname")
	if !e.orgAdminOr404(w, r, c, org) {
		return
	}
	p := e.findPrototype(org, pathValue(r, "prototypeid"))
	if p == nil {
		e.notFound(w, r)
		return
	}
	kept := e.db.prototypes[org][:0]
	for _, q := range e.db.prototypes[org] {
		if q != p {
			kept = append(kept, q)
		}
	}
	e.db.prototypes[org] = kept
	noContent(w)
}
