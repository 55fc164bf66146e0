package emulator

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Quay's "direct OAuth" (endpoints/web.py authorize_application,
// data/model/oauth.py DatabaseAuthorizationProvider):
// POST /oauth/authorizeapp with Basic user:password credentials and a form;
// CSRF is skipped only for client IDs in DIRECT_OAUTH_CLIENTID_WHITELIST.
// The token comes back in the fragment of a 302's Location and lives ten
// years.

func (e *Emulator) oauthRoutes() {
	e.handle("POST /oauth/authorizeapp", "authorizeApplication", webRoute, e.authorizeApp)
	e.handle("GET /config", "config", webRoute, e.publicConfig)
}

// publicConfig is Quay's anonymous GET /config (endpoints/web.py config):
// the config.yaml keys config.py's CLIENT_WHITELIST lets the web UI see,
// and the features. A client learns from it the address Quay's local OAuth
// handler must be reached at (SERVER_HOSTNAME, not the request's host).
func (e *Emulator) publicConfig(w http.ResponseWriter, r *http.Request, _ *caller) {
	authType := e.cfg.AuthenticationType
	if authType == "" {
		authType = "Database"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"config": map[string]any{
			"SERVER_HOSTNAME":      e.host(r),
			"PREFERRED_URL_SCHEME": e.cfg.scheme(),
			"AUTHENTICATION_TYPE":  authType,
			"LOCAL_OAUTH_HANDLER":  "/oauth/localapp",
		},
		"features": map[string]bool{
			"USER_INITIALIZE":        e.cfg.FeatureUserInitialize,
			"SUPER_USERS":            e.cfg.superUsersEnabled(),
			"MAILING":                e.cfg.mailing(),
			"APP_SPECIFIC_TOKENS":    e.cfg.appSpecificTokens(),
			"PROGRAMMATIC_BOOTSTRAP": e.cfg.FeatureProgrammaticBootstrap,
		},
		"registry_state": "normal",
		"version_number": "Quay 3.18.0",
	})
}

const directOAuthLifetime = 315576000 * time.Second

func (e *Emulator) authorizeApp(w http.ResponseWriter, r *http.Request, _ *caller) {
	// process_auth_or_cookie: Basic credentials (a session cookie is not
	// emulated). No user: Flask's abort(401).
	var user *account
	if username, password, ok := r.BasicAuth(); ok {
		u, _, throttled := e.passwordLogin(username, password)
		if throttled != nil {
			writeThrottled(w, throttled)
			return
		}
		user = u
	}
	if user == nil {
		htmlError(w, http.StatusUnauthorized)
		return
	}
	if err := r.ParseForm(); err != nil {
		htmlError(w, http.StatusBadRequest)
		return
	}
	form := r.PostForm
	clientID := form.Get("client_id")
	if !contains(e.cfg.DirectOAuthClientIDWhitelist, clientID) {
		abort(w, http.StatusForbidden, "CSRF token was invalid or missing.")
		return
	}
	redirect := form.Get("redirect_uri")
	responseType := form.Get("response_type")
	if responseType == "" {
		responseType = "code"
	}
	if responseType != "token" {
		// The authorization-code flow is not emulated; Quay's token
		// provider answers other response types this way.
		redirectError(w, redirect, "unsupported_response_type")
		return
	}
	app := e.db.apps[clientID]
	if app == nil || e.db.orgRole(app.org, user.username) != "admin" {
		redirectError(w, redirect, "unauthorized_client")
		return
	}
	if !e.validRedirectURI(r, app, redirect) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error": "invalid_request"}`))
		return
	}
	rawScope := form.Get("scope")
	if _, ok := parseScopes(rawScope); !ok {
		redirectError(w, redirect, "invalid_scope")
		return
	}
	now := e.now()
	// The scope is stored as sent (it passed Quay's strict parse).
	_, secret := e.db.newToken(alnum, app.clientID, user.username, rawScope, nil, now, now.Add(directOAuthLifetime))
	// build_url(redirect_uri, {"scope": scope, "state": state}): absent
	// ones (None) are dropped.
	var params []param
	for _, k := range []string{"scope", "state"} {
		if form.Has(k) {
			v := form.Get(k)
			params = append(params, param{k, &v})
		} else {
			params = append(params, param{k, nil})
		}
	}
	location := buildURL(redirect, params) + "#access_token=" + secret + "&token_type=Bearer&expires_in=315576000"
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusFound)
}

// validRedirectURI is validate_redirect_uri: the local handler exactly, or
// the application's redirect URI's scheme and host with its path as a
// prefix (no credentials, no "..", no "@" and no escapes after the prefix).
func (e *Emulator) validRedirectURI(r *http.Request, app *application, redirect string) bool {
	if redirect == e.cfg.scheme()+"://"+e.host(r)+"/oauth/localapp" {
		return true
	}
	if app.redirectURI == "" || redirect == "" {
		return false
	}
	configured, err1 := url.Parse(app.redirectURI)
	provided, err2 := url.Parse(redirect)
	if err1 != nil || err2 != nil {
		return false
	}
	if configured.Scheme != provided.Scheme || configured.Host != provided.Host || provided.User != nil {
		return false
	}
	rawPath := provided.EscapedPath()
	if strings.Contains(provided.Path, "..") || strings.Contains(rawPath, "@") {
		return false
	}
	prefix := configured.EscapedPath()
	if !strings.HasPrefix(rawPath, prefix) {
		return false
	}
	return !strings.Contains(rawPath[len(prefix):], "%")
}

// redirectError is the provider's _make_redirect_error_response.
func redirectError(w http.ResponseWriter, redirect, code string) {
	w.Header().Set("Location", buildURL(redirect, []param{{"error", &code}, {"response_type", nil}, {"client_id", nil}, {"redirect_uri", nil}}))
	w.WriteHeader(http.StatusFound)
}

// param is a query parameter; a nil value removes the key.
type param struct {
	key   string
	value *string
}

// buildURL is oauth/utils.py build_url: the URL's own query merged with
// the parameters like a Python dict (existing keys keep their place, nil
// values remove the key), re-encoded with urlencode.
func buildURL(base string, params []param) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	var keys []string
	values := map[string]string{}
	for _, pair := range strings.Split(u.RawQuery, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, _ = url.QueryUnescape(k)
		v, _ = url.QueryUnescape(v)
		if _, seen := values[k]; !seen {
			keys = append(keys, k)
		}
		values[k] = v
	}
	for _, p := range params {
		if _, seen := values[p.key]; !seen {
			keys = append(keys, p.key)
		}
		values[p.key] = ""
		if p.value != nil {
			values[p.key] = *p.value
		}
	}
	var enc []string
	for _, k := range keys {
		removed := false
		for _, p := range params {
			if p.key == k && p.value == nil {
				removed = true
			}
		}
		if !removed {
			enc = append(enc, url.QueryEscape(k)+"="+url.QueryEscape(values[k]))
		}
	}
	u.RawQuery = strings.Join(enc, "&")
	u.ForceQuery = false
	return u.String()
}
