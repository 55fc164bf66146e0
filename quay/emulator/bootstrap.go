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

// Programmatic bootstrap (FEATURE_PROGRAMMATIC_BOOTSTRAP; boot.py
// setup_bootstrap_token, util/bootstrap_token.py, endpoints/api/bootstrap.py).

const defaultBootstrapTokenPath = "/var/lib/quay/quay-machine-token.json"

// checkBootstrapConfig refuses a programmatic bootstrap configuration that
// cannot work. Quay's boot.py only logs these and starts without a
// bootstrap token; the emulator fails loudly instead, so that a test or demo
// does not wait for a file that never comes (an allowed difference of the
// conformance table).
func (e *Emulator) checkBootstrapConfig() error {
	owner := e.cfg.BootstrapTokenOwner
	if owner == "" {
		return fmt.Errorf("BOOTSTRAP_TOKEN_OWNER is required when FEATURE_PROGRAMMATIC_BOOTSTRAP is on")
	}
	if !contains(e.cfg.SuperUsers, owner) {
		return fmt.Errorf("BOOTSTRAP_TOKEN_OWNER %q must be listed in SUPER_USERS", owner)
	}
	// util/config/schema.py: an integer, minimum 1.
	if e.cfg.BootstrapTokenExpiration < 0 {
		return fmt.Errorf("BOOTSTRAP_TOKEN_EXPIRATION must be at least 1 second")
	}
	return nil
}

// Restart does what restarting Quay on the same database does for the
// emulator's state: boot.py's programmatic bootstrap runs again (the
// emulator keeps everything else, as Quay's database does).
func (e *Emulator) Restart() error {
	if !e.cfg.FeatureProgrammaticBootstrap {
		return nil
	}
	return e.provisionBootstrapToken()
}

// provisionBootstrapToken is boot.py's _provision_bootstrap_token, run at
// every start:
//   - nothing happens until BOOTSTRAP_TOKEN_OWNER exists (Quay does not
//     create the owner: POST /api/v1/user/initialize or an operator does,
//     and the token comes with the next start);
//   - an application named __quay_bootstrap_app in the owner's namespace
//     that still holds a bootstrap token of the owner, expired or not, means
//     "already provisioned": nothing is written, even when the file is gone
//     (the plaintext cannot be rebuilt from the database);
//   - otherwise a new application of that name (a new one, beside any
//     emptied one) and a token on it are created, and the file is written;
//     a failed write rolls both back (Quay only logs it).
//
// Every other application of that name holding bootstrap tokens (another
// owner's, an older duplicate) is deleted, tokens and all.
func (e *Emulator) provisionBootstrapToken() error {
	owner := e.cfg.BootstrapTokenOwner
	e.mu.Lock()
	defer e.mu.Unlock()
	if u := e.db.accounts[owner]; u == nil || u.org || u.robot {
		return nil
	}
	var canonical *application
	var stale []*application
	apps := sortedApps(e.db.apps)
	for i := len(apps) - 1; i >= 0; i-- { // newest first
		a := apps[i]
		if a.name != reservedAppName || !e.db.hasBootstrapTokens(a.clientID, "") {
			continue
		}
		if canonical == nil && a.org == owner && e.db.hasBootstrapTokens(a.clientID, owner) {
			canonical = a
			continue
		}
		stale = append(stale, a)
	}
	deleteStale := func() {
		for _, a := range stale {
			e.db.deleteTokensOfApp(a.clientID)
			delete(e.db.apps, a.clientID)
		}
	}
	if canonical != nil {
		deleteStale()
		return nil
	}
	app := &application{id: e.db.id(), clientID: randomString(20, upperDigit), clientSecret: randomString(40, upperDigit),
		org: owner, name: reservedAppName, description: bootstrapAppDescription}
	e.db.apps[app.clientID] = app
	t, secret := e.mintBootstrapTokenOn(app, owner)
	if err := writeBootstrapToken(e.bootstrapTokenPath(), secret); err != nil {
		delete(e.db.tokens, t.lookup)
		delete(e.db.apps, app.clientID)
		return fmt.Errorf("writing the bootstrap token: %w", err)
	}
	deleteStale()
	return nil
}

// hasBootstrapTokens reports whether the application holds a token minted
// by programmatic bootstrap (for owner, when not empty), expired or not.
func (s *store) hasBootstrapTokens(clientID, owner string) bool {
	for _, t := range s.tokens {
		if t.bootstrap && t.clientID == clientID && (owner == "" || t.user == owner) {
			return true
		}
	}
	return false
}

// bootstrapScope is BOOTSTRAP_TOKEN_SCOPE as configured: Quay stores the
// string on the token unchecked (a string of unknown scopes gives a token
// with no rights, as scopes_from_scope_string makes nothing of it).
func (e *Emulator) bootstrapScope() string {
	if e.cfg.BootstrapTokenScope == "" {
		return defaultBootstrapScope
	}
	return e.cfg.BootstrapTokenScope
}

func (e *Emulator) bootstrapLifetime() time.Duration {
	if e.cfg.BootstrapTokenExpiration <= 0 {
		return 3600 * time.Second
	}
	return time.Duration(e.cfg.BootstrapTokenExpiration) * time.Second
}

func (e *Emulator) bootstrapTokenPath() string {
	if e.cfg.BootstrapTokenPath == "" {
		return defaultBootstrapTokenPath
	}
	return e.cfg.BootstrapTokenPath
}

// bootstrapAppDescription is data/model/oauth.py BOOTSTRAP_APP_DESCRIPTION.
const bootstrapAppDescription = "Auto-created by bootstrap token provisioning"

// mintBootstrapTokenOn creates a bootstrap token for owner on app.
func (e *Emulator) mintBootstrapTokenOn(app *application, owner string) (*oauthToken, string) {
	now := e.now()
	t, secret := e.db.newToken(upperDigit, app.clientID, owner, e.bootstrapScope(), nil, now, now.Add(e.bootstrapLifetime()))
	t.bootstrap = true
	return t, secret
}

// writeBootstrapToken is util/bootstrap_token.py write_token_file: the
// parent made with mode 0700, then json.dumps({"access_token": …}) written
// to a temporary file in the same directory, chmod 0600, and renamed over
// the path, so that a reader never sees a partial file.
func writeBootstrapToken(path, secret string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "*.tmp")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	content, _ := json.Marshal(secret)
	if _, err := tmp.Write([]byte(`{"access_token": ` + string(content) + `}`)); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
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
	t := e.db.matchToken(secret)
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
	// In one transaction: a new token on the same application (with the
	// scope and lifetime configured now), every other bootstrap token of
	// it deleted, the file written. A failed write rolls it all back: the
	// old token keeps working.
	kept := map[string]*oauthToken{}
	for k, other := range e.db.tokens {
		if other.bootstrap && other.clientID == t.clientID {
			kept[k] = other
			delete(e.db.tokens, k)
		}
	}
	fresh, secret := e.mintBootstrapTokenOn(e.db.apps[t.clientID], t.user)
	if err := writeBootstrapToken(e.bootstrapTokenPath(), secret); err != nil {
		delete(e.db.tokens, fresh.lookup)
		for k, other := range kept {
			e.db.tokens[k] = other
		}
		e.apiException(w, r, http.StatusInternalServerError, "token_rotation_failed", "Token rotation failed: could not write token", nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "rotated"})
}
