package emulator

import (
	"fmt"
	"time"
)

// Seeding: a Go API for tests and demos to set Quay up the way an operator
// would through Quay's UI or database. It is not part of the Quay surface.

// UserOption modifies a user created by CreateUser.
type UserOption func(*userOptions)

type userOptions struct{ superuser bool }

// SuperUser makes the new user a superuser, as if listed in SUPER_USERS
// (util/config/superusermanager.py register_superuser, which Quay 3.18
// itself never calls at run time). FEATURE_SUPER_USERS must be on, and an OAuth token still needs
// super:user for the grant (data/users/__init__.py UserManager.is_superuser,
// auth/permissions.py QuayDeferredPermissionUser.can).
func SuperUser() UserOption { return func(o *userOptions) { o.superuser = true } }

// CreateUser creates a user (a superuser with the SuperUser option, or by
// naming it in SUPER_USERS).
func (e *Emulator) CreateUser(username, password, email string, opts ...UserOption) error {
	var o userOptions
	for _, opt := range opts {
		opt(&o)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !validName(username) {
		return fmt.Errorf("invalid username %q", username)
	}
	if e.db.accounts[username] != nil {
		return fmt.Errorf("%q already exists", username)
	}
	e.db.addUser(username, email, password, e.now())
	if o.superuser {
		e.db.superUsers[username] = true
	}
	return nil
}

// IsSuperUser reports whether username is a superuser (SUPER_USERS or the
// SuperUser option) with FEATURE_SUPER_USERS on.
func (e *Emulator) IsSuperUser(username string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg.superUsersEnabled() && e.isSuperUserName(username)
}

// CreateOrganization creates an organization whose "owners" team holds admin.
func (e *Emulator) CreateOrganization(name, admin string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !validName(name) {
		return fmt.Errorf("invalid organization name %q", name)
	}
	if e.db.accounts[name] != nil {
		return fmt.Errorf("%q already exists", name)
	}
	if u := e.db.accounts[admin]; u == nil || u.org || u.robot {
		return fmt.Errorf("no user %q", admin)
	}
	e.createOrg(name, "", admin)
	return nil
}

// CreateApplication creates an OAuth application with a chosen client ID
// (so a config's DIRECT_OAUTH_CLIENTID_WHITELIST can name it in advance).
func (e *Emulator) CreateApplication(org, name, clientID, redirectURI string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.db.accounts[org] == nil {
		return fmt.Errorf("no namespace %q", org)
	}
	if clientID == "" {
		clientID = randomString(20, upperDigit)
	}
	if e.db.apps[clientID] != nil {
		return fmt.Errorf("client id %q taken", clientID)
	}
	e.db.apps[clientID] = &application{id: e.db.id(), clientID: clientID, clientSecret: randomString(40, upperDigit), org: org, name: name, redirectURI: redirectURI}
	return nil
}

// IssueToken mints an OAuth token for a user, as Quay's UI "Generate Token"
// does, on an application named "emulator" in the user's namespace.
func (e *Emulator) IssueToken(username, scope string, ttl time.Duration) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if u := e.db.accounts[username]; u == nil || u.org || u.robot {
		return "", fmt.Errorf("no user %q", username)
	}
	normalized, ok := parseScopes(normalizeScope(scope))
	if !ok {
		return "", fmt.Errorf("invalid scope %q", scope)
	}
	var app *application
	for _, a := range e.db.apps {
		if a.org == username && a.name == "emulator" {
			app = a
		}
	}
	if app == nil {
		app = &application{id: e.db.id(), clientID: randomString(20, upperDigit), clientSecret: randomString(40, upperDigit), org: username, name: "emulator"}
		e.db.apps[app.clientID] = app
	}
	if ttl <= 0 {
		ttl = 10 * 365 * 24 * time.Hour
	}
	now := e.now()
	_, secret := e.db.newToken(alnum, app.clientID, username, normalized, nil, now, now.Add(ttl))
	return secret, nil
}

// TokenValid reports whether a token authenticates right now.
func (e *Emulator) TokenValid(token string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.db.lookupToken(token, e.now()) != nil
}

// TokenExists reports whether an OAuth token with this uuid exists, expired
// or not (Quay keeps expired tokens until they are deleted).
func (e *Emulator) TokenExists(uuid string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.db.tokens {
		if t.uuid == uuid {
			return true
		}
	}
	return false
}

// ApplicationExists reports whether an OAuth application with this client
// ID exists.
func (e *Emulator) ApplicationExists(clientID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.db.apps[clientID] != nil
}

// RobotExists reports whether a robot (<namespace>+<short>) exists.
func (e *Emulator) RobotExists(username string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.db.accounts[username]
	return a != nil && a.robot
}

// CreateRepository creates a repository owned by namespace.
func (e *Emulator) CreateRepository(namespace, name string, public bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.db.accounts[namespace] == nil {
		return fmt.Errorf("no namespace %q", namespace)
	}
	if e.db.repos[namespace+"/"+name] != nil {
		return fmt.Errorf("repository %s/%s exists", namespace, name)
	}
	e.db.createRepo(namespace, name, public, "", "", e.now())
	return nil
}
