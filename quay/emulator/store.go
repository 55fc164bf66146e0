package emulator

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"sort"
	"time"
)

// The in-memory database. Like Quay's User table, one namespace holds users,
// organizations and robots (robots as "<namespace>+<short>"). All fields are
// guarded by Emulator.mu.

type account struct {
	id       int
	uuid     string // rotates when the password changes
	username string
	email    string
	// passwordHash is a salted SHA-256; Quay uses bcrypt, but nothing here
	// depends on the algorithm.
	passwordSalt, passwordHash string
	// encryptedPassword stands in for Quay's AES "encrypted_password", which
	// Basic auth accepts in place of the password.
	encryptedPassword string
	// invalidLoginAttempts and lastInvalidLogin drive Quay's exponential
	// back-off on password logins (data/model/user.py verify_user).
	invalidLoginAttempts int
	lastInvalidLogin     time.Time
	org                  bool
	robot                bool
	enabled              bool
	created              time.Time

	// Robots: Quay stores robot tokens retrievably (admins may read them).
	robotToken   string
	description  string
	metadata     map[string]any
	lastAccessed time.Time
	// federation is a robot's identity-federation list, which Quay keeps
	// in the robot's FederatedLogin row (federation.go).
	federation []federationEntry

	// federated identity of users created by an SSO login: service + sub.
	federatedService, federatedSub string
}

type team struct {
	id                           int
	org, name, description, role string
	members                      map[string]bool
	// invites are users invited to the team but not yet members
	// (FEATURE_MAILING and FEATURE_REQUIRE_TEAM_INVITE).
	invites map[string]bool
}

type application struct {
	id                                  int
	clientID, clientSecret, org         string
	name, description, uri, redirectURI string
	avatarEmail                         *string
}

// oauthToken is an OAuth access token. Only a hash of its secret part is kept.
type oauthToken struct {
	id           int
	uuid         string
	lookup       string // the first 20 characters of the token
	secretHash   [32]byte
	clientID     string
	user         string
	scope        string // space-separated, normalised
	name         *string
	expiresAt    time.Time
	created      time.Time
	lastAccessed time.Time
	bootstrap    bool
}

type repository struct {
	// id orders listings, as Quay's repository id does.
	id              int
	namespace, name string
	public          bool
	description     string
	// badgeToken is the repository's status (badge) token.
	badgeToken string
	userPerms  map[string]string // username (users and robots) -> role
	teamPerms  map[string]string // team -> role
	created    time.Time
}

type prototype struct {
	id, org, role  string
	delegateUser   string
	delegateTeam   string
	activatingUser string
}

type store struct {
	nextID     int
	accounts   map[string]*account
	teams      map[string]map[string]*team // org -> team name -> team
	apps       map[string]*application     // client id -> app
	tokens     map[string]*oauthToken      // lookup -> token
	repos      map[string]*repository      // "ns/name" -> repo
	prototypes map[string][]*prototype     // org -> prototypes

	appSpecificTokens map[string]*appSpecificToken // uuid -> token

	// superUsers are superusers registered at run time, besides SUPER_USERS.
	superUsers map[string]bool
}

func newStore() *store {
	return &store{
		accounts:   map[string]*account{},
		teams:      map[string]map[string]*team{},
		apps:       map[string]*application{},
		tokens:     map[string]*oauthToken{},
		repos:      map[string]*repository{},
		prototypes: map[string][]*prototype{},

		appSpecificTokens: map[string]*appSpecificToken{},
		superUsers:        map[string]bool{},
	}
}

func (s *store) id() int { s.nextID++; return s.nextID }

func (s *store) hasUsers() bool { return len(s.accounts) > 0 }

func (s *store) addUser(name, email, password string, now time.Time) *account {
	a := &account{id: s.id(), uuid: newUUID(), username: name, email: email, enabled: true, created: now}
	if password != "" {
		a.setPassword(password)
	}
	s.accounts[name] = a
	return a
}

func (a *account) setPassword(pw string) {
	a.encryptedPassword = ""
	a.passwordSalt = randomString(16, alnum)
	sum := sha256.Sum256([]byte(a.passwordSalt + pw))
	a.passwordHash = hex.EncodeToString(sum[:])
}

func (a *account) checkPassword(pw string) bool {
	if a.passwordHash == "" {
		return false
	}
	sum := sha256.Sum256([]byte(a.passwordSalt + pw))
	return subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(a.passwordHash)) == 1
}

// teamsOf returns the teams of org the user belongs to.
func (s *store) teamsOf(org, user string) []*team {
	var out []*team
	for _, t := range s.teams[org] {
		if t.members[user] {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// orgRole is the user's best team role in org: "", member, creator or admin.
func (s *store) orgRole(org, user string) string {
	best := ""
	for _, t := range s.teamsOf(org, user) {
		if rank(orgRoles, t.role) > rank(orgRoles, best) {
			best = t.role
		}
	}
	return best
}

var (
	orgRoles  = []string{"", "member", "creator", "admin"}
	repoRoles = []string{"", "read", "write", "admin"}
)

func rank(order []string, v string) int {
	for i, o := range order {
		if o == v {
			return i
		}
	}
	return 0
}

func minRole(order []string, a, b string) string {
	if rank(order, a) < rank(order, b) {
		return a
	}
	return b
}

func maxRole(order []string, a, b string) string {
	if rank(order, a) > rank(order, b) {
		return a
	}
	return b
}

// newToken creates an OAuth token for user on app and returns its secret.
func (s *store) newToken(alphabet, clientID, user, scope string, name *string, now, expires time.Time) (*oauthToken, string) {
	for {
		secret := randomString(40, alphabet)
		lookup := secret[:20]
		if _, taken := s.tokens[lookup]; taken {
			continue
		}
		t := &oauthToken{
			id: s.id(), uuid: newUUID(), lookup: lookup, secretHash: sha256.Sum256([]byte(secret[20:])),
			clientID: clientID, user: user, scope: scope, name: name, created: now, expiresAt: expires,
		}
		s.tokens[lookup] = t
		return t, secret
	}
}

// lookupToken finds a non-expired token by its secret.
// matchToken finds the token whose secret this is, expired or not: Quay
// keeps the row, and some routes tell "expired" from "unknown".
func (s *store) matchToken(secret string) *oauthToken {
	if len(secret) <= 20 {
		return nil
	}
	t := s.tokens[secret[:20]]
	if t == nil {
		return nil
	}
	sum := sha256.Sum256([]byte(secret[20:]))
	if subtle.ConstantTimeCompare(sum[:], t.secretHash[:]) != 1 {
		return nil
	}
	return t
}

// lookupToken finds the token whose secret this is if it is still valid.
func (s *store) lookupToken(secret string, now time.Time) *oauthToken {
	t := s.matchToken(secret)
	if t == nil || !t.expiresAt.After(now) {
		return nil
	}
	return t
}

func (s *store) deleteTokensOfApp(clientID string) {
	for k, t := range s.tokens {
		if t.clientID == clientID {
			delete(s.tokens, k)
		}
	}
}

const (
	alnum      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	upperDigit = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)

func randomString(n int, alphabet string) string {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		panic(err)
	}
	for i, b := range buf {
		buf[i] = alphabet[int(b)%len(alphabet)]
	}
	return string(buf)
}

func newUUID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// isoTime formats like Python's datetime.isoformat() of a naive UTC time,
// plus "Z": microseconds only when non-zero (organization application tokens).
func isoTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	s := t.Format("2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	return s + "Z"
}

// rfc2822 formats like Quay's format_date (robots): "Wed, 22 Jul 2026 10:00:00 -0000".
func rfc2822(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("Mon, 02 Jan 2006 15:04:05") + " -0000"
}

// sortedTeams lists every team, by organization then name.
func (s *store) sortedTeams() []*team {
	var out []*team
	for _, teams := range s.teams {
		for _, t := range teams {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].org != out[j].org {
			return out[i].org < out[j].org
		}
		return out[i].name < out[j].name
	})
	return out
}

const (
	// oauthLastAccessedThreshold is OAUTH_TOKEN_LAST_ACCESSED_UPDATE_THRESHOLD_S.
	oauthLastAccessedThreshold = 60 * time.Second
	// lastAccessedThreshold is LAST_ACCESSED_UPDATE_THRESHOLD_S (users and robots).
	lastAccessedThreshold = 120 * time.Second
)

// touchAccess records an access the way Quay's update_last_accessed does:
// not again within the threshold of the previous one.
func touchAccess(last *time.Time, now time.Time, threshold time.Duration) {
	if !last.IsZero() && now.Sub(*last) < threshold {
		return
	}
	*last = now
}
