package emulator

import (
	"cmp"
	"math"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// usernameRule is util/validation.py's rule for users, organizations, robots
// and teams (validate_username; data/model/team.py validate_team_name has
// the same regex and lengths).
var usernameRule = regexp.MustCompile(`^([a-z0-9]+(?:[._-][a-z0-9]+)*)$`)

func validName(s string) bool { return len(s) >= 2 && len(s) <= 255 && usernameRule.MatchString(s) }

// validatePassword is util/validation.py validate_password: more than 7
// characters (code points) and no whitespace (Python's \s, Unicode-aware).
func validPassword(pw string) bool {
	return utf8.RuneCountInString(pw) > 7 && !strings.ContainsFunc(pw, unicode.IsSpace)
}

const invalidPasswordMessage = "Invalid password, password must be at least 8 characters and contain no whitespace."

// usernameIssue is util/validation.py validate_username: the expression is
// checked first, the length (2–255) only for names that match it. It
// returns "" for a valid name.
func usernameIssue(name string) string {
	if !usernameRule.MatchString(name) {
		return "Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$"
	}
	if len(name) < 2 || len(name) > 255 {
		return "Namespace must be between 2 and 255 characters in length"
	}
	return ""
}

// validEmail is util/validation.py validate_email.
func validEmail(addr string) bool {
	if addr == "" || len(addr) > 254 {
		return false
	}
	parts := strings.Split(addr, "@")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return false
	}
	labels := strings.Split(parts[1], ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" {
			return false
		}
	}
	return true
}

// initializeScope is the fixed scope of the initialization token
// (endpoints/web.py user_initialize).
const initializeScope = "org:admin repo:admin repo:create repo:read repo:write super:user user:admin user:read"

// initializeTokenLifetime: data/model/oauth.py create_user_access_token default.
const initializeTokenLifetime = 9000 * time.Second

// initializeUser is POST /api/v1/user/initialize (endpoints/web.py
// user_initialize), a plain web route: no auth, no CSRF.
func (e *Emulator) initializeUser(w http.ResponseWriter, r *http.Request, _ *caller) {
	if !e.cfg.FeatureUserInitialize {
		abort(w, http.StatusNotFound, "Not Found") // route_show_if
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
	raw := readBody(r)
	if !isJSONRequest(r) {
		// unverified: Werkzeug's HTML error page for get_json() on a
		// non-JSON request outside Flask-RESTful.
		htmlError(w, http.StatusUnsupportedMediaType)
		return
	}
	decoded, err := decodeBody(raw)
	if err != nil {
		htmlError(w, http.StatusBadRequest)
		return
	}
	body, _ := decoded.(map[string]any)
	username, okU := body["username"].(string)
	password, okP := body["password"].(string)
	if !okU || !okP {
		// Quay indexes the JSON directly: a missing key (or a null body) is
		// a KeyError/TypeError, a 500 (unverified: the exact page).
		internalError(w)
		return
	}
	// model.user.create_user: the password first, then (with
	// FEATURE_MAILING) the email, then the username.
	emailValue, hasEmail := body["email"]
	email, _ := emailValue.(string)
	if !validPassword(password) {
		dataModelError(w, "Failed to initialize user: "+invalidPasswordMessage)
		return
	}
	if e.cfg.mailing() && !validEmail(email) {
		shown := "None"
		if s, ok := emailValue.(string); ok {
			shown = s
		} else if hasEmail && emailValue != nil {
			shown = pyRepr(emailValue)
		}
		dataModelError(w, "Failed to initialize user: Invalid email address: "+shown)
		return
	}
	if issue := usernameIssue(username); issue != "" {
		dataModelError(w, "Failed to initialize user: Invalid namespace "+username+": "+issue)
		return
	}
	now := e.now()
	u := e.db.addUser(username, email, password, now)
	u.encryptedPassword = randomString(64, alnum)
	resp := map[string]any{"username": username, "email": emailValue, "encrypted_password": u.encryptedPassword}
	if pyTruthy(body["access_token"]) {
		app := &application{id: e.db.id(), clientID: username, clientSecret: randomString(40, upperDigit), org: username, name: "automation",
			description: "Application token generated via /api/v1/user/initialize"}
		e.db.apps[app.clientID] = app
		_, secret := e.db.newToken(upperDigit, app.clientID, username, initializeScope, nil, now, now.Add(initializeTokenLifetime))
		resp["access_token"] = secret
	}
	writeJSON(w, http.StatusOK, resp)
}

// htmlError is Werkzeug's default HTML error page.
func htmlError(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	title := strconv.Itoa(status) + " " + http.StatusText(status)
	_, _ = w.Write([]byte("<!doctype html>\n<html lang=en>\n<title>" + title + "</title>\n<h1>" + http.StatusText(status) + "</h1>\n"))
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

// getLoggedInUser is GET /api/v1/user/ (endpoints/api/user.py User.get).
// Without a user, or without user:read, it is InvalidToken (401) with
// session_required, not the usual 403.
func (e *Emulator) getLoggedInUser(w http.ResponseWriter, r *http.Request, c *caller) {
	if c == nil || !e.userRead(c) {
		e.apiException(w, r, http.StatusUnauthorized, "invalid_token", "Requires authentication", map[string]any{"session_required": false})
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
	// org_view: the permissions are the caller's, capped by its scopes;
	// is_org_admin and preferred_namespace only with user:admin.
	orgs := []map[string]any{}
	var names []string
	for name, a := range e.db.accounts {
		if a.org && e.db.orgRole(name, u.username) != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		org := map[string]any{"name": name, "avatar": avatar(name, "org"), "can_create_repo": e.canCreateRepo(c, name), "public": false}
		if admin {
			org["is_org_admin"] = e.orgAdmin(c, name)
			org["preferred_namespace"] = false
		}
		orgs = append(orgs, org)
	}
	view["organizations"] = orgs
	if admin {
		// list_federated_logins: the SSO binding, with the LoginService
		// name (the service id); a federated user is created with the
		// confirm_username prompt (FEATURE_USERNAME_CONFIRMATION).
		logins := []any{}
		if u.federatedService != "" {
			logins = append(logins, map[string]any{"service": u.federatedService, "service_identifier": u.federatedSub, "metadata": map[string]any{}})
			view["prompts"] = []any{"confirm_username"}
		}
		view["logins"] = logins
	}
	if e.superuser(c) {
		view["super_user"] = true
	}
	return view
}

// changeUserDetails is PUT /api/v1/user/ (internal; endpoints/api/user.py
// User.put, data/model/user.py change_password): needs
// user:admin (checked before the body); a password change asks for no
// current password, rotates the user's uuid, and leaves OAuth tokens valid.
// With FEATURE_MAILING an email change only sends a confirmation mail.
func (e *Emulator) changeUserDetails(w http.ResponseWriter, r *http.Request, c *caller) {
	if !e.userAdmin(c) {
		e.unauthorized(w, r, c)
		return
	}
	body, ok := e.jsonRequest(w, r, updateUserSchema)
	if !ok {
		return
	}
	if v, ok := body["password"]; ok {
		pw, _ := v.(string)
		if !validPassword(pw) {
			e.invalidRequest(w, r, invalidPasswordMessage)
			return
		}
		c.user.setPassword(pw)
		c.user.uuid = newUUID()
	}
	if v, ok := body["email"].(string); ok && v != c.user.email {
		for _, a := range e.db.accounts {
			if !a.org && a.email == v {
				e.invalidRequest(w, r, "E-mail address already used")
				return
			}
		}
		if !e.cfg.mailing() {
			c.user.email = v
		}
	}
	writeJSON(w, http.StatusOK, e.userView(c))
}

var updateUserSchema = objectSchema{props: []prop{
	{name: "password", types: []string{"string"}},
	{name: "email", types: []string{"string"}},
	{name: "username", types: []string{"string"}},
}}

// Authorizations (internal; endpoints/api/user.py UserAuthorizationList,
// UserAuthorization): the caller's own OAuth tokens.

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

// ownTokens lists the user's OAuth tokens in the database's row order (by
// id), as Quay's unordered query returns them in practice.
func (e *Emulator) ownTokens(user string) []*oauthToken {
	var out []*oauthToken
	for _, t := range e.db.tokens {
		if t.user == user {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b *oauthToken) int { return cmp.Compare(a.id, b.id) })
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

// ownAuthorization is the caller's OAuth token named by the path (user:admin
// needed; another user's token is a 404). It answers the request itself and
// returns nil when either check fails.
func (e *Emulator) ownAuthorization(w http.ResponseWriter, r *http.Request, c *caller) *oauthToken {
	if !e.userAdmin(c) {
		e.unauthorized(w, r, c)
		return nil
	}
	uuid := pathValue(r, "uuid")
	for _, t := range e.ownTokens(c.user.username) {
		if t.uuid == uuid {
			return t
		}
	}
	e.notFound(w, r)
	return nil
}

func (e *Emulator) getUserAuthorization(w http.ResponseWriter, r *http.Request, c *caller) {
	t := e.ownAuthorization(w, r, c)
	if t == nil {
		return
	}
	writeJSON(w, http.StatusOK, e.authorizationView(t))
}

func (e *Emulator) deleteUserAuthorization(w http.ResponseWriter, r *http.Request, c *caller) {
	t := e.ownAuthorization(w, r, c)
	if t == nil {
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

// loginThrottled is a password login refused by Quay's back-off: 429 with a
// Retry-After (endpoints/decorated.py handle_too_many_login_attempts).
type loginThrottled struct{ retryAfter time.Duration }

// passwordLogin is verify_and_link_user(basic_auth=True) for Database auth
// (data/users/__init__.py, data/model/user.py verify_user): the name may be
// a username or a user's email; the "encrypted password" stands in for the
// password; after invalid attempts the account is locked for
// 0.5·(2^attempts − 1) seconds, even for the right password; a disabled
// user is refused after the password check. It returns the account, or the
// error message Quay reports, or a throttle.
func (e *Emulator) passwordLogin(name, password string) (*account, string, *loginThrottled) {
	const invalid = "Invalid Username or Password"
	var u *account
	if a := e.db.accounts[name]; a != nil {
		u = a
	} else if name != "" {
		for _, a := range e.db.accounts {
			if !a.org && a.email == name {
				u = a
				break
			}
		}
	}
	if u == nil {
		return nil, invalid, nil
	}
	now := e.now()
	if u.invalidLoginAttempts > 0 {
		backoff := time.Duration(float64(time.Second) * 0.5 * (math.Pow(2, float64(u.invalidLoginAttempts)) - 1))
		if retryAt := u.lastInvalidLogin.Add(backoff); retryAt.After(now) {
			return nil, "", &loginThrottled{retryAfter: retryAt.Sub(now)}
		}
	}
	ok := u.checkPassword(password) || (u.encryptedPassword != "" && password == u.encryptedPassword && u.passwordHash != "")
	if !ok {
		u.invalidLoginAttempts++
		u.lastInvalidLogin = now
		return nil, invalid, nil
	}
	u.invalidLoginAttempts = 0
	if !u.enabled {
		return nil, "This user has been disabled. Please contact your administrator.", nil
	}
	return u, "", nil
}

// writeThrottled answers a throttled login as Quay does: 429, text body,
// Retry-After in whole seconds.
func writeThrottled(w http.ResponseWriter, t *loginThrottled) {
	w.Header().Set("Retry-After", strconv.Itoa(int(t.retryAfter.Seconds())))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte("Too many login attempts. \nPlease reset your Quay password and try again."))
}
