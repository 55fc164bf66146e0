package emulator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Organization application tokens, Quay 3.18+ (reference §2.3).

const (
	appTokensPageSize = 50
	// defaultTokenExpiration is DEFAULT_TOKEN_EXPIRATION_SECONDS: ten years,
	// also the maximum (longer is silently clamped).
	defaultTokenExpiration = 315576000
)

func (e *Emulator) tokenView(t *oauthToken) map[string]any {
	var name any
	if t.name != nil {
		name = *t.name
	}
	var lastAccessed any
	if !t.lastAccessed.IsZero() {
		lastAccessed = isoTime(t.lastAccessed)
	}
	return map[string]any{
		"uuid": t.uuid, "name": name, "scope": t.scope, "expires_at": isoTime(t.expiresAt),
		"created": isoTime(t.created), "created_by": t.user, "last_accessed": lastAccessed,
	}
}

// tokenApp runs the shared checks: org admin, an organization (a user
// namespace is a 404), the application in that organization (else 404).
func (e *Emulator) tokenApp(w http.ResponseWriter, r *http.Request, c *caller) *application {
	org := pathValue(r, "orgname")
	if !e.orgAdminOr404(w, r, c, org) {
		return nil
	}
	a := e.appOf(org, pathValue(r, "client_id"))
	if a == nil {
		e.notFound(w, r)
		return nil
	}
	return a
}

func (e *Emulator) liveTokensOf(clientID string) []*oauthToken {
	now := e.now()
	var out []*oauthToken
	for _, t := range e.db.tokens {
		if t.clientID == clientID && t.expiresAt.After(now) {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id > out[j].id })
	return out
}

// listAppTokens lists non-expired tokens, newest first, 50 a page, with an
// opaque next_page cursor in the body.
func (e *Emulator) listAppTokens(w http.ResponseWriter, r *http.Request, c *caller) {
	a := e.tokenApp(w, r, c)
	if a == nil {
		return
	}
	tokens := e.liveTokensOf(a.clientID)
	if cursor := r.URL.Query().Get("next_page"); cursor != "" {
		before, ok := decodeCursor(cursor)
		if !ok {
			e.invalidRequest(w, r, "Invalid page token")
			return
		}
		var rest []*oauthToken
		for _, t := range tokens {
			if t.id < before {
				rest = append(rest, t)
			}
		}
		tokens = rest
	}
	resp := map[string]any{}
	if len(tokens) > appTokensPageSize {
		tokens = tokens[:appTokensPageSize]
		resp["next_page"] = encodeCursor(tokens[len(tokens)-1].id)
	}
	list := []map[string]any{}
	for _, t := range tokens {
		list = append(list, e.tokenView(t))
	}
	resp["tokens"] = list
	writeJSON(w, http.StatusOK, resp)
}

// Quay's page tokens are encrypted and expire; clients must treat them as
// opaque, so an encoded id is enough here.
func encodeCursor(id int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("tokens-before:" + strconv.Itoa(id)))
}

func decodeCursor(s string) (int, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(raw), "tokens-before:") {
		return 0, false
	}
	id, err := strconv.Atoi(strings.TrimPrefix(string(raw), "tokens-before:"))
	return id, err == nil
}

// createAppToken mints a token (nickname createOrganizationApplicationToken).
func (e *Emulator) createAppToken(w http.ResponseWriter, r *http.Request, c *caller) {
	// validate_json_request("NewToken") runs before the handler.
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		e.invalidRequest(w, r, "Invalid JSON")
		return
	}
	rawName, ok := body["name"].(string)
	if !ok {
		e.invalidRequest(w, r, schemaMessage(body, "name"))
		return
	}
	rawScope, ok := body["scope"].(string)
	if !ok {
		e.invalidRequest(w, r, schemaMessage(body, "scope"))
		return
	}
	if len(rawName) < 1 || len(rawName) > 255 {
		e.invalidRequest(w, r, fmt.Sprintf("%q is too short or too long", rawName))
		return
	}
	expiration := float64(defaultTokenExpiration)
	if v, present := body["expiration"]; present && v != nil {
		f, isNum := v.(float64)
		if !isNum {
			e.invalidRequest(w, r, fmt.Sprintf("%v is not of type 'number'", v))
			return
		}
		if f < 1 {
			e.invalidRequest(w, r, fmt.Sprintf("%v is less than the minimum of 1", v))
			return
		}
		expiration = math.Min(math.Trunc(f), defaultTokenExpiration)
	}

	a := e.tokenApp(w, r, c)
	if a == nil {
		return
	}
	name := strings.TrimSpace(rawName)
	if name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "'name' must not be empty"})
		return
	}
	scope, ok := parseScopes(rawScope)
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Invalid scope: " + rawScope})
		return
	}
	if !e.canMintScope(c, a.org, scope) {
		e.unauthorized(w, r, c)
		return
	}
	if max := e.cfg.OAuthApplicationMaximumTokenCount; max != nil && len(e.liveTokensOf(a.clientID)) >= *max {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": fmt.Sprintf("Token limit reached: maximum %d non-expired tokens per application", *max)})
		return
	}
	now := e.now()
	t, secret := e.db.newToken(alnum, a.clientID, c.user.username, scope, &name, now, now.Add(time.Duration(expiration)*time.Second))
	view := e.tokenView(t)
	view["token"] = secret
	writeJSON(w, http.StatusOK, view)
}

func schemaMessage(body map[string]any, field string) string {
	if _, present := body[field]; present {
		return fmt.Sprintf("%v is not of type 'string'", body[field])
	}
	return fmt.Sprintf("'%s' is a required property", field)
}

// canMintScope is _can_mint_scope: an OAuth caller may only mint a subset of
// its own scopes, and every scope must pass its permission check; the
// org-level ones pass for the organization's admin, super:user needs a
// superuser.
func (e *Emulator) canMintScope(c *caller, org, scope string) bool {
	requested := strings.Fields(scope)
	if c.token != nil {
		have := scopeSet(c.token.scope)
		for _, s := range requested {
			if !have[s] {
				return false
			}
		}
	}
	for _, s := range requested {
		switch s {
		case "super:user":
			if !e.superuser(c) {
				return false
			}
		case "user:read":
			if !e.userRead(c) {
				return false
			}
		case "user:admin":
			if !e.userAdmin(c) {
				return false
			}
		default:
			if !e.orgAdmin(c, org) {
				return false
			}
		}
	}
	return true
}

// deleteAppToken revokes a token: 204, or 404 when the app has no such token
// (expired tokens can still be deleted).
func (e *Emulator) deleteAppToken(w http.ResponseWriter, r *http.Request, c *caller) {
	a := e.tokenApp(w, r, c)
	if a == nil {
		return
	}
	id := pathValue(r, "token_uuid")
	for k, t := range e.db.tokens {
		if t.clientID == a.clientID && t.uuid == id {
			delete(e.db.tokens, k)
			noContent(w)
			return
		}
	}
	e.notFound(w, r)
}
