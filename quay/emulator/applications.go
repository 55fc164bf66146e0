package emulator

import (
	"encoding/json"
	"net/http"
)

// reservedAppName is the programmatic bootstrap application (reference §2.4).
const reservedAppName = "__quay_bootstrap_app"

func appView(a *application, admin bool) map[string]any {
	v := map[string]any{
		"name": a.name, "description": a.description, "application_uri": a.uri, "client_id": a.clientID,
		"client_secret": nil, "redirect_uri": nil, "avatar_email": nil,
	}
	if admin {
		v["client_secret"] = a.clientSecret
		v["redirect_uri"] = nilIfEmpty(a.redirectURI)
		v["avatar_email"] = nilIfEmpty(a.avatarEmail)
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

type newAppBody struct {
	Name           *string `json:"name"`
	RedirectURI    string  `json:"redirect_uri"`
	ApplicationURI string  `json:"application_uri"`
	Description    string  `json:"description"`
	AvatarEmail    string  `json:"avatar_email"`
}

func (e *Emulator) createApplication(w http.ResponseWriter, r *http.Request, c *caller) {
	org := pathValue(r, "orgname")
	var body newAppBody
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Name == nil {
		e.invalidRequest(w, r, "'name' is a required property")
		return
	}
	if !e.orgAdminOr404(w, r, c, org) {
		return
	}
	if *body.Name == reservedAppName {
		e.invalidRequest(w, r, "The application name '"+reservedAppName+"' is reserved")
		return
	}
	a := &application{
		id: e.db.id(), clientID: randomString(20, upperDigit), clientSecret: randomString(40, upperDigit), org: org,
		name: *body.Name, description: body.Description, uri: body.ApplicationURI, redirectURI: body.RedirectURI, avatarEmail: body.AvatarEmail,
	}
	e.db.apps[a.clientID] = a
	writeJSON(w, http.StatusOK, appView(a, true))
}

func (e *Emulator) getApplication(w http.ResponseWriter, r *http.Request, c *caller) {
	org := pathValue(r, "orgname")
	if !e.orgAdminOr404(w, r, c, org) {
		return
	}
	a := e.appOf(org, pathValue(r, "client_id"))
	if a == nil {
		e.notFound(w, r)
		return
	}
	writeJSON(w, http.StatusOK, appView(a, true))
}

func (e *Emulator) updateApplication(w http.ResponseWriter, r *http.Request, c *caller) {
	org := pathValue(r, "orgname")
	var body struct {
		Name           *string `json:"name"`
		RedirectURI    *string `json:"redirect_uri"`
		ApplicationURI *string `json:"application_uri"`
		Description    *string `json:"description"`
		AvatarEmail    *string `json:"avatar_email"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Name == nil || body.RedirectURI == nil || body.ApplicationURI == nil {
		e.invalidRequest(w, r, "'name', 'redirect_uri' and 'application_uri' are required properties")
		return
	}
	if !e.orgAdminOr404(w, r, c, org) {
		return
	}
	a := e.appOf(org, pathValue(r, "client_id"))
	if a == nil {
		e.notFound(w, r)
		return
	}
	if *body.Name == reservedAppName {
		e.invalidRequest(w, r, "The application name '"+reservedAppName+"' is reserved")
		return
	}
	a.name, a.redirectURI, a.uri = *body.Name, *body.RedirectURI, *body.ApplicationURI
	if body.Description != nil {
		a.description = *body.Description
	}
	if body.AvatarEmail != nil {
		a.avatarEmail = *body.AvatarEmail
	}
	writeJSON(w, http.StatusOK, appView(a, true))
}

// deleteApplication cascades: the application's tokens go with it.
func (e *Emulator) deleteApplication(w http.ResponseWriter, r *http.Request, c *caller) {
	org := pathValue(r, "orgname")
	if !e.orgAdminOr404(w, r, c, org) {
		return
	}
	a := e.appOf(org, pathValue(r, "client_id"))
	if a == nil {
		e.notFound(w, r)
		return
	}
	e.db.deleteTokensOfApp(a.clientID)
	delete(e.db.apps, a.clientID)
	noContent(w)
}

// getApplicationInformation is the public GET /api/v1/app/{client_id}.
func (e *Emulator) getApplicationInformation(w http.ResponseWriter, r *http.Request, _ *caller) {
	a := e.db.apps[pathValue(r, "client_id")]
	if a == nil {
		e.notFound(w, r)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name": a.name, "description": a.description, "uri": a.uri, "avatar": avatar(a.name, "app"),
		"organization": map[string]any{"name": a.org, "avatar": avatar(a.org, "org")},
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
