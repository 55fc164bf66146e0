package emulator

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// App-specific tokens (endpoints/api/appspecifictokens.py,
// data/model/appspecifictoken.py): per-user registry passwords, used
// only as Basic credentials with the username "$app". 120 characters
// [A-Z0-9]. Expiry comes only from APP_SPECIFIC_TOKEN_EXPIRATION.

type appSpecificToken struct {
	uuid, title, user, code string
	created, expiration     time.Time
	lastAccessed            time.Time
}

func (e *Emulator) appSpecificTokenRoutes() {
	if !e.cfg.appSpecificTokens() {
		return
	}
	e.handle("GET /api/v1/user/apptoken", "listAppTokens", apiRoute, e.listAppSpecificTokens)
	e.handle("POST /api/v1/user/apptoken", "createAppToken", apiRoute, e.createAppSpecificToken)
	e.handle("GET /api/v1/user/apptoken/{uuid}", "getAppToken", apiRoute, e.getAppSpecificToken)
	e.handle("DELETE /api/v1/user/apptoken/{uuid}", "revokeAppToken", apiRoute, e.revokeAppSpecificToken)
}

func (e *Emulator) appSpecificTokenView(t *appSpecificToken, withCode bool) map[string]any {
	var lastAccessed, expiration any
	if !t.lastAccessed.IsZero() {
		lastAccessed = rfc2822(t.lastAccessed)
	}
	if !t.expiration.IsZero() {
		expiration = rfc2822(t.expiration)
	}
	v := map[string]any{"uuid": t.uuid, "title": t.title, "last_accessed": lastAccessed, "created": rfc2822(t.created), "expiration": expiration}
	if withCode {
		v["token_code"] = t.code
	}
	return v
}

func (e *Emulator) ownAppSpecificTokens(user string) []*appSpecificToken {
	var out []*appSpecificToken
	for _, t := range e.db.appSpecificTokens {
		if t.user == user {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].created.Before(out[j].created) })
	return out
}

func (e *Emulator) listAppSpecificTokens(w http.ResponseWriter, r *http.Request, c *caller) {
	if !e.userAdmin(c) {
		e.unauthorized(w, r, c)
		return
	}
	list := []map[string]any{}
	for _, t := range e.ownAppSpecificTokens(c.user.username) {
		list = append(list, e.appSpecificTokenView(t, false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": list, "only_expiring": nil})
}

func (e *Emulator) createAppSpecificToken(w http.ResponseWriter, r *http.Request, c *caller) {
	var body struct {
		Title *string `json:"title"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Title == nil {
		e.invalidRequest(w, r, "'title' is a required property")
		return
	}
	if !e.userAdmin(c) {
		e.unauthorized(w, r, c)
		return
	}
	now := e.now()
	t := &appSpecificToken{uuid: newUUID(), title: *body.Title, user: c.user.username, code: randomString(120, upperDigit), created: now}
	if d := parseQuayDuration(e.cfg.AppSpecificTokenExpiration); d > 0 {
		t.expiration = now.Add(d)
	}
	e.db.appSpecificTokens[t.uuid] = t
	writeJSON(w, http.StatusOK, map[string]any{"token": e.appSpecificTokenView(t, true)})
}

// ownAppSpecificToken is the caller's token named by the path (user:admin
// needed; another user's token is a 404). It answers the request itself and
// returns nil when either check fails.
func (e *Emulator) ownAppSpecificToken(w http.ResponseWriter, r *http.Request, c *caller) *appSpecificToken {
	if !e.userAdmin(c) {
		e.unauthorized(w, r, c)
		return nil
	}
	t := e.db.appSpecificTokens[pathValue(r, "uuid")]
	if t == nil || t.user != c.user.username {
		e.notFound(w, r)
		return nil
	}
	return t
}

func (e *Emulator) getAppSpecificToken(w http.ResponseWriter, r *http.Request, c *caller) {
	t := e.ownAppSpecificToken(w, r, c)
	if t == nil {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": e.appSpecificTokenView(t, true)})
}

func (e *Emulator) revokeAppSpecificToken(w http.ResponseWriter, r *http.Request, c *caller) {
	t := e.ownAppSpecificToken(w, r, c)
	if t == nil {
		return
	}
	delete(e.db.appSpecificTokens, t.uuid)
	noContent(w)
}

// appSpecificTokenUser validates a "$app" registry login.
func (e *Emulator) appSpecificTokenUser(code string) *account {
	for _, t := range e.db.appSpecificTokens {
		if t.code != code {
			continue
		}
		if !t.expiration.IsZero() && !t.expiration.After(e.now()) {
			return nil
		}
		u := e.db.accounts[t.user]
		if u == nil || !u.enabled {
			return nil
		}
		t.lastAccessed = e.now()
		return u
	}
	return nil
}

var quayDurationRule = regexp.MustCompile(`^(\d+)([smhdw])$`)

// parseQuayDuration reads util/timedeltastring's form ("30d", "1h", "2w").
func parseQuayDuration(s string) time.Duration {
	m := quayDurationRule.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
	return time.Duration(n) * unit
}
