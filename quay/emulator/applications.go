package emulator

import (
	"net/http"
)

// reservedAppName is the programmatic bootstrap application
// (data/model/oauth.py BOOTSTRAP_APP_NAME).
const reservedAppName = "__quay_bootstrap_app"

func appView(a *application, admin bool) map[string]any {
	v := map[string]any{
		"name": a.name, "description": a.description, "application_uri": a.uri, "client_id": a.clientID,
		"client_secret": nil, "redirect_uri": nil, "avatar_email": nil,
	}
	if admin {
		v["client_secret"] = a.clientSecret
		v["redirect_uri"] = a.redirectURI // "" when created without one
		if a.avatarEmail != nil {
			v["avatar_email"] = *a.avatarEmail
		}
	}
	return v
}

// orgAdminOr404 runs Quay's order of checks for the org-admin resources:
// permission first (an unknown organization is "Unauthorized" to anyone but
// a full-access superuser), then existence (404).
func (e *Emulator) orgAdminOr404(w http.ResponseWriter, r *http.Request, c *caller, org string) bool {
	if !e.orgAdmin(c, org) {
		e.unauthorized(w, r, c)
		return false
	}
	if !e.isOrg(org) {
		e.notFound(w, r)
		return false
	}
	return true
}

// adminApp runs the checks every route below an application shares: org
// admin, an organization (a user namespace is a 404), the application in
// that organization (else 404). It answers the request itself and returns
// nil when one fails.
func (e *Emulator) adminApp(w http.ResponseWriter, r *http.Request, c *caller) *application {
	org := pathValue(r, "orgname")
	if !e.orgAdminOr404(w, r, c, org) {
		return nil
	}
	a := e.appOf(org, pathValue(r, "client_id"))
	if a == nil {
		e.notFound(w, r)
		return nil
	}
	return a
}

func (e *Emulator) appOf(org, clientID string) *application {
	a := e.db.apps[clientID]
	if a == nil || a.org != org {
		return nil
	}
	return a
}

func (e *Emulator) listApplications(w http.ResponseWriter, r *http.Request, c *caller) {
	org := pathValue(r, "orgname")
	if !e.orgAdminOr404(w, r, c, org) {
		return
	}
	list := []map[string]any{}
	for _, a := range sortedApps(e.db.apps) {
		if a.org == org {
			list = append(list, appView(a, true))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"applications": list})
}

// reservedAppNameMessage is _ensure_oauth_app_name_is_not_reserved's error.
const reservedAppNameMessage = "Application name is reserved for bootstrap token provisioning"

var newAppSchema = objectSchema{required: []string{"name"}, props: []prop{
	{name: "name", types: []string{"string"}},
	{name: "redirect_uri", types: []string{"string"}},
	{name: "application_uri", types: []string{"string"}},
	{name: "description", types: []string{"string"}},
	{name: "avatar_email", types: []string{"string"}},
}}

var updateAppSchema = objectSchema{required: []string{"name", "redirect_uri", "application_uri"}, props: newAppSchema.props}

// createApplication: the body is validated before the permission check.
func (e *Emulator) createApplication(w http.ResponseWriter, r *http.Request, c *caller) {
	org := pathValue(r, "orgname")
	body, ok := e.jsonRequest(w, r, newAppSchema)
	if !ok {
		return
	}
	if !e.orgAdminOr404(w, r, c, org) {
		return
	}
	name := body["name"].(string)
	if name == reservedAppName {
		e.invalidRequest(w, r, reservedAppNameMessage)
		return
	}
	str := func(k string) string { v, _ := body[k].(string); return v }
	a := &application{
		id: e.db.id(), clientID: randomString(20, upperDigit), clientSecret: randomString(40, upperDigit), org: org,
		name: name, description: str("description"), uri: str("application_uri"), redirectURI: str("redirect_uri"),
	}
	if v, ok := body["avatar_email"].(string); ok {
		a.avatarEmail = &v
	}
	e.db.apps[a.clientID] = a
	writeJSON(w, http.StatusOK, appView(a, true))
}

func (e *Emulator) getApplication(w http.ResponseWriter, r *http.Request, c *caller) {
	a := e.adminApp(w, r, c)
	if a == nil {
		return
	}
	writeJSON(w, http.StatusOK, appView(a, true))
}

// updateApplication replaces the application's fields: an absent
// description becomes "" and an absent avatar_email null.
func (e *Emulator) updateApplication(w http.ResponseWriter, r *http.Request, c *caller) {
	body, ok := e.jsonRequest(w, r, updateAppSchema)
	if !ok {
		return
	}
	a := e.adminApp(w, r, c)
	if a == nil {
		return
	}
	name := body["name"].(string)
	if name == reservedAppName {
		e.invalidRequest(w, r, reservedAppNameMessage)
		return
	}
	a.name, a.redirectURI, a.uri = name, body["redirect_uri"].(string), body["application_uri"].(string)
	a.description, _ = body["description"].(string)
	a.avatarEmail = nil
	if v, ok := body["avatar_email"].(string); ok {
		a.avatarEmail = &v
	}
	writeJSON(w, http.StatusOK, appView(a, true))
}

// deleteApplication cascades: the application's tokens go with it.
func (e *Emulator) deleteApplication(w http.ResponseWriter, r *http.Request, c *caller) {
	a := e.adminApp(w, r, c)
	if a == nil {
		return
	}
	e.db.deleteTokensOfApp(a.clientID)
	delete(e.db.apps, a.clientID)
	noContent(w)
}

// getApplicationInformation is the public GET /api/v1/app/{client_id}:
// the organization as org_view(organization, []) shows it to the caller.
func (e *Emulator) getApplicationInformation(w http.ResponseWriter, r *http.Request, c *caller) {
	a := e.db.apps[pathValue(r, "client_id")]
	if a == nil {
		e.notFound(w, r)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name": a.name, "description": a.description, "uri": a.uri, "avatar": avatar(a.name, "app"),
		"organization": e.orgView(c, a.org, []*team{}),
	})
}

func sortedApps(apps map[string]*application) []*application {
	out := make([]*application, 0, len(apps))
	for _, a := range apps {
		out = append(out, a)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].id < out[j-1].id; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
