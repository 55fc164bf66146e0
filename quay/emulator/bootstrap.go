package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Programmatic bootstrap (FEATURE_PROGRAMMATIC_BOOTSTRAP, reference §2.4).

const defaultBootstrapTokenPath = "/var/lib/quay/quay-machine-token.json"

// provisionBootstrapToken is boot.py's setup_bootstrap_token: an app named
// __quay_bootstrap_app in the owner's user namespace, a token for the owner,
// and {"access_token": …} written to BOOTSTRAP_TOKEN_PATH with mode 0600.
func (e *Emulator) provisionBootstrapToken() error {
	owner := e.cfg.BootstrapTokenOwner
	if owner == "" {
		return fmt.Errorf("BOOTSTRAP_TOKEN_OWNER is required when FEATURE_PROGRAMMATIC_BOOTSTRAP is on")
	}
	if !contains(e.cfg.SuperUsers, owner) {
		return fmt.Errorf("BOOTSTRAP_TOKEN_OWNER %q must be listed in SUPER_USERS", owner)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.db.accounts[owner] == nil {
		// Quay expects the owner to exist already; the emulator starts
		// empty, so it stands in for the pre-provisioned database.
		e.db.addUser(owner, owner+"@localhost", "", e.now())
	}
	_, err := e.mintBootstrapToken(owner)
	return err
}

func (e *Emulator) bootstrapScope() string {
	if e.cfg.BootstrapTokenScope == "" {
		return defaultBootstrapScope
	}
	scope, ok := parseScopes(e.cfg.BootstrapTokenScope)
	if !ok {
		return defaultBootstrapScope
	}
	return scope
}

func (e *Emulator) mintBootstrapToken(owner string) (string, error) {
	var app *application
	for _, a := range e.db.apps {
		if a.name == reservedAppName && a.org == owner {
			app = a
		}
	}
	if app == nil {
		app = &application{id: e.db.id(), clientID: randomString(20, upperDigit), clientSecret: randomString(40, upperDigit), org: owner, name: reservedAppName}
		e.db.apps[app.clientID] = app
	}
	lifetime := e.cfg.BootstrapTokenExpiration
	if lifetime <= 0 {
		lifetime = 3600
	}
	now := e.now()
	t, secret := e.db.newToken(upperDigit, app.clientID, owner, e.bootstrapScope(), nil, now, now.Add(time.Duration(lifetime)*time.Second))
	t.bootstrap = true
	path := e.cfg.BootstrapTokenPath
	if path == "" {
		path = defaultBootstrapTokenPath
	}
	data, _ := json.Marshal(map[string]string{"access_token": secret})
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("writing the bootstrap token: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("writing the bootstrap token: %w", err)
	}
	return secret, nil
}

func (e *Emulator) bootstrapRoutes() {
	if !e.cfg.FeatureProgrammaticBootstrap {
		return
	}
	e.handle("POST /api/v1/bootstrap/renew", "renewBootstrapToken", apiRoute, e.renewBootstrapToken)
}

// csrfExempt: the bootstrap renewal accepts a Bearer request without CSRF
// (_has_bootstrap_auth) even when the token did not authenticate the caller.
func (e *Emulator) csrfExempt(r *http.Request, nickname string) bool {
	return nickname == "renewBootstrapToken" && e.cfg.FeatureProgrammaticBootstrap &&
		strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "bearer ")
}

// renewBootstrapToken is POST /api/v1/bootstrap/renew: the current bootstrap
// token (expired ones only from localhost, as nginx marks them) buys a new
// one, written to the file only; the old one stops working at once.
func (e *Emulator) renewBootstrapToken(w http.ResponseWriter, r *http.Request, c *caller) {
	secret := ""
	if parts := strings.SplitN(r.Header.Get("Authorization"), " ", 2); len(parts) == 2 && strings.EqualFold(parts[0], "bearer") {
		secret = strings.TrimSpace(parts[1])
	}
	var t *oauthToken
	if len(secret) > 20 {
		if cand := e.db.tokens[secret[:20]]; cand != nil && e.db.lookupToken(secret, cand.expiresAt.Add(-time.Nanosecond)) != nil {
			t = cand
		}
	}
	switch {
	case t == nil:
		e.apiException(w, r, http.StatusUnauthorized, "invalid_token", "Requires valid bootstrap bearer token", nil)
		return
	case !t.bootstrap:
		// A valid (non-expired) OAuth token that is not the bootstrap
		// token is Unauthorized (403); anything else is the 401.
		if c != nil && c.token != nil {
			e.unauthorized(w, r, c)
			return
		}
		e.apiException(w, r, http.StatusUnauthorized, "invalid_token", "Requires valid bootstrap bearer token", nil)
		return
	case !t.expiresAt.After(e.now()) && !isLoopback(r):
		e.apiException(w, r, http.StatusUnauthorized, "invalid_token", "Requires valid bootstrap bearer token", nil)
		return
	}
	delete(e.db.tokens, t.lookup)
	if _, err := e.mintBootstrapToken(t.user); err != nil {
		e.apiException(w, r, http.StatusInternalServerError, "token_rotation_failed", err.Error(), nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "rotated"})
}
