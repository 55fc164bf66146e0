package emulator

import (
	"encoding/json"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// usernameRule is util/validation.py's rule for users, organizations, robots
// and teams (reference §5.1).
var usernameRule = regexp.MustCompile(`^([a-z0-9]+(?:[._-][a-z0-9]+)*)$`)

func validName(s string) bool { return len(s) >= 2 && len(s) <= 255 && usernameRule.MatchString(s) }

// validPassword: at least 8 characters, no whitespace (reference §3, §6.1).
func validPassword(pw string) bool {
	return len(pw) >= 8 && !strings.ContainsAny(pw, " \t\r\n")
}

const invalidPasswordMessage = "Invalid password, password must be at least 8 characters and contain no whitespace."

// initializeScope is the fixed scope of the initialization token (reference §3).
const initializeScope = "org:admin repo:admin repo:create repo:read repo:write super:user user:admin user:read"

// initializeTokenLifetime: data/model/oauth.py create_user_access_token default.
const initializeTokenLifetime = 9000 * time.Second

// initializeUser is POST /api/v1/user/initialize, a plain web route: no auth,
// no CSRF (reference §3).
func (e *Emulator) initializeUser(w http.ResponseWriter, r *http.Request, _ *caller) {
	if !e.cfg.FeatureUserInitialize {
		abort(w, http.StatusNotFound, "Not Found")
		return
	}
	if !e.cfg.databaseAuth() {
		dataModelError(w, "Cannot initialize user in a non-database auth system")
		return
	}
	if e.db.hasUsers() {
		dataModelError(w, "Cannot initialize user in a non-empty database")
		return
	}
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	username, okU := body["username"].(string)
	password, okP := body["password"].(string)
	if !okU || !okP {
		// Quay indexes the JSON directly: a missing key is a KeyError, a 500.
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(nginxPage(http.StatusInternalServerError)))
		return
	}
	email, _ := body["email"].(string)
	switch {
	case !validName(username):
		dataModelError(w, "Failed to initialize user: Invalid namespace "+username+": Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$ and be between 2 and 255 characters in length")
		return
	case !validPassword(password):
		dataModelError(w, "Failed to initialize user: "+invalidPasswordMessage)
		return
	case e.cfg.mailing() && email == "":
		// unverified: the exact wording Quay uses for a missing email.
		dataModelError(w, "Failed to initialize user: Missing email address")
		return
	}
	now := e.now()
	e.db.addUser(username, email, password, now)
	resp := map[string]any{"username": username, "email": nilIfEmpty(email), "encrypted_password": randomString(64, alnum)}
	if truthy(body["access_token"]) {
		app := &application{id: e.db.id(), clientID: username, clientSecret: randomString(40, upperDigit), org: username, name: "automation"}
		e.db.apps[app.clientID] = app
		_, secret := e.db.newToken(upperDigit, app.clientID, username, initializeScope, nil, now, now.Add(initializeTokenLifetime))
		resp["access_token"] = secret
	}
	writeJSON(w, http.StatusOK, resp)
}

func truthy(v any) bool {
	switch t := v.(type) {
	case bool:
		return t
	case string:
		return t != "" && !strings.EqualFold(t, "false")
	case float64:
		return t != 0
	}
	return false
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func avatar(name, kind string) map[string]any {
	return map[string]any{"name": name, "hash": randomHashFor(name), "color": "#9467bd", "kind": kind}
}

// randomHashFor is stable per name (avatars are a hash of the email).
func randomHashFor(name string) string {
	h := uint64(1469598103934665603)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	const hex = "0123456789abcdef"
	out := make([]byte, 32)
	for i := range out {
		out[i] = hex[(h>>(uint(i%16)*4))&0xf]
	}
	return string(out)
}

// getLoggedInUser is GET /api/v1/user/ (reference §6.1). It needs user:read.
func (e *Emulator) getLoggedInUser(w http.ResponseWriter, r *http.Request, c *caller) {
	if c == nil {
		e.apiException(w, r, http.StatusUnauthorized, "invalid_token", "Requires authentication", map[string]any{"session_required": false})
		return
	}
	if !e.userRead(c) {
		e.unauthorized(w, r, c)
		return
	}
	writeJSON(w, http.StatusOK, e.userView(c))
}

func (e *Emulator) userView(c *caller) map[string]any {
	u := c.user
	view := map[string]any{"anonymous": false, "username": u.username, "avatar": avatar(u.username, "user")}
	admin := e.userAdmin(c)
	if admin {
		view["can_create_repo"] = true
		view["is_me"] = true
		view["verified"] = true
		view["email"] = u.email
		view["logins"] = []any{}
		view["invoice_email"] = false
		view["invoice_email_address"] = nil
		view["preferred_namespace"] = false
		view["tag_expiration_s"] = 1209600
		view["prompts"] = []any{}
		view["company"] = nil
		view["family_name"] = nil
		view["given_name"] = nil
		view["location"] = nil
		view["is_free_account"] = true
		view["has_password_set"] = u.passwordHash != ""
	}
	var orgs []map[string]any
	for name, a := range e.db.accounts {
		if !a.org {
			continue
		}
		role := e.db.orgRole(name, u.username)
		if role == "" {
			continue
		}
		orgs = append(orgs, map[string]any{
			"name": name, "avatar": avatar(name, "org"), "can_create_repo": role == "creator" || role == "admin",
			"public": false, "is_org_admin": role == "admin" && admin, "preferred_namespace": false,
		})
	}
	if orgs == nil {
		orgs = []map[string]any{}
	}
	view["organizations"] = orgs
	if e.superuser(c) {
		view["super_user"] = true
	}
	return view
}

// changeUserDetails is PUT /api/v1/user/ (internal, reference §6.1): needs
// user:admin; a password change asks for no current password, and existing
// OAuth tokens stay valid.
func (e *Emulator) changeUserDetails(w http.ResponseWriter, r *http.Request, c *caller) {
	if !e.userAdmin(c) {
		e.unauthorized(w, r, c)
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		e.invalidRequest(w, r, "Invalid JSON")
		return
	}
	if v, ok := body["password"]; ok {
		pw, _ := v.(string)
		if !validPassword(pw) {
			e.invalidRequest(w, r, invalidPasswordMessage)
			return
		}
		c.user.setPassword(pw)
	}
	if v, ok := body["email"].(string); ok {
		c.user.email = v
	}
	writeJSON(w, http.StatusOK, e.userView(c))
}

// Authorizations (internal, reference §2.5): the caller's own OAuth tokens.

func (e *Emulator) authorizationView(t *oauthToken) map[string]any {
	app := e.db.apps[t.clientID]
	appView := map[string]any{"name": "", "description": "", "url": "", "avatar": avatar("", "app"), "organization": map[string]any{"name": "", "avatar": avatar("", "org")}}
	if app != nil {
		appView = map[string]any{
			"name": app.name, "description": app.description, "url": app.uri, "avatar": avatar(app.name, "app"),
			"organization": map[string]any{"name": app.org, "avatar": avatar(app.org, "org")},
		}
	}
	var scopes []map[string]any
	for _, s := range strings.Fields(t.scope) {
		scopes = append(scopes, map[string]any{"scope": s, "title": s, "description": s, "icon": "fa-key", "dangerous": s == "super:user" || s == "org:admin"})
	}
	return map[string]any{"application": appView, "scopes": scopes, "uuid": t.uuid}
}

func (e *Emulator) ownTokens(user string) []*oauthToken {
	var out []*oauthToken
	for _, t := range e.db.tokens {
		if t.user == user {
			out = append(out, t)
		}
	}
	return out
}

func (e *Emulator) listUserAuthorizations(w http.ResponseWriter, r *http.Request, c *caller) {
	if !e.userAdmin(c) {
		e.unauthorized(w, r, c)
		return
	}
	list := []map[string]any{}
	for _, t := range e.ownTokens(c.user.username) {
		list = append(list, e.authorizationView(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"authorizations": list})
}

func (e *Emulator) findOwnToken(user, uuid string) *oauthToken {
	for _, t := range e.ownTokens(user) {
		if t.uuid == uuid {
			return t
		}
	}
	return nil
}

func (e *Emulator) getUserAuthorization(w http.ResponseWriter, r *http.Request, c *caller) {
	if !e.userAdmin(c) {
		e.unauthorized(w, r, c)
		return
	}
	t := e.findOwnToken(c.user.username, pathValue(r, "uuid"))
	if t == nil {
		e.notFound(w, r)
		return
	}
	writeJSON(w, http.StatusOK, e.authorizationView(t))
}

func (e *Emulator) deleteUserAuthorization(w http.ResponseWriter, r *http.Request, c *caller) {
	if !e.userAdmin(c) {
		e.unauthorized(w, r, c)
		return
	}
	t := e.findOwnToken(c.user.username, pathValue(r, "uuid"))
	if t == nil {
		e.notFound(w, r)
		return
	}
	delete(e.db.tokens, t.lookup)
	noContent(w)
}

// isLoopback reports a client on 127.0.0.1 or ::1 (what Quay's nginx marks
// as a local bootstrap renewal).
func isLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
