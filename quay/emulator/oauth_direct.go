package emulator

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Quay's "direct OAuth" (reference §2.5): POST /oauth/authorizeapp with Basic
// user:password credentials and a form; CSRF is skipped only for client IDs
// in DIRECT_OAUTH_CLIENTID_WHITELIST. The token comes back in the fragment of
// a 302's Location and lives ten years.

func (e *Emulator) oauthRoutes() {
	e.handle("POST /oauth/authorizeapp", "authorizeApplication", webRoute, e.authorizeApp)
}

const directOAuthLifetime = 315576000 * time.Second

func (e *Emulator) authorizeApp(w http.ResponseWriter, r *http.Request, _ *caller) {
	if err := r.ParseForm(); err != nil {
		abort(w, http.StatusBadRequest, "Invalid form")
		return
	}
	clientID := r.PostForm.Get("client_id")
	if !contains(e.cfg.DirectOAuthClientIDWhitelist, clientID) {
		abort(w, http.StatusForbidden, "CSRF token was invalid or missing.")
		return
	}
	username, password, ok := r.BasicAuth()
	user := e.db.accounts[username]
	if !ok || user == nil || user.org || user.robot || !user.enabled || !user.checkPassword(password) {
		abort(w, http.StatusUnauthorized, "Invalid Username or Password")
		return
	}
	app := e.db.apps[clientID]
	if app == nil {
		abort(w, http.StatusNotFound, "Not Found")
		return
	}
	redirect := r.PostForm.Get("redirect_uri")
	local := e.cfg.scheme() + "://" + e.host(r) + "/oauth/localapp"
	if redirect != local && (app.redirectURI == "" || !strings.HasPrefix(redirect, app.redirectURI)) {
		abort(w, http.StatusBadRequest, "Invalid redirect URI")
		return
	}
	if r.PostForm.Get("response_type") != "token" {
		abort(w, http.StatusBadRequest, "Unsupported response type")
		return
	}
	scope, ok := parseScopes(r.PostForm.Get("scope"))
	if !ok {
		abort(w, http.StatusBadRequest, "Invalid scope")
		return
	}
	// A password login has the user's full rights; it must administer the
	// application's organization.
	login := &caller{user: user, sso: true}
	if !e.orgAdmin(login, app.org) {
		abort(w, http.StatusForbidden, "Unauthorized")
		return
	}
	now := e.now()
	_, secret := e.db.newToken(alnum, app.clientID, user.username, scope, nil, now, now.Add(directOAuthLifetime))
	frag := url.Values{"access_token": {secret}, "token_type": {"Bearer"}, "expires_in": {"315576000"}}
	w.Header().Set("Location", redirect+"#"+frag.Encode())
	w.WriteHeader(http.StatusFound)
}
