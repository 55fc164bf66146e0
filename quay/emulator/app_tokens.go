package emulator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Organization application tokens, Quay 3.18+
// (endpoints/api/organization_application_tokens.py, data/model/oauth.py).

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
// opaque next_page cursor in the body (paginate(..., descending=True)).
// A page token that does not decrypt, or is older than two days, is
// ignored: the first page comes back (util/pagination.py).
func (e *Emulator) listAppTokens(w http.ResponseWriter, r *http.Request, c *caller) {
	a := e.adminApp(w, r, c)
	if a == nil {
		return
	}
	tokens := e.liveTokensOf(a.clientID)
	if from, ok := e.decodeCursor(r.URL.Query().Get("next_page")); ok {
		var rest []*oauthToken
		for _, t := range tokens {
			if t.id <= from {
				rest = append(rest, t)
			}
		}
		tokens = rest
	}
	resp := map[string]any{}
	if len(tokens) > appTokensPageSize {
		resp["next_page"] = e.encodeCursor(tokens[appTokensPageSize].id)
		tokens = tokens[:appTokensPageSize]
	}
	list := []map[string]any{}
	for _, t := range tokens {
		list = append(list, e.tokenView(t))
	}
	resp["tokens"] = list
	writeJSON(w, http.StatusOK, resp)
}

// pageTokenTTL is util/pagination.py _PAGE_TOKEN_TTL.
const pageTokenTTL = 48 * time.Hour

// Quay's page tokens are encrypted with PAGE_TOKEN_KEY; clients must treat
// them as opaque, so the start id and the issue time, encoded, do here.
func (e *Emulator) encodeCursor(startID int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("tokens-from:%d:%d", startID, e.now().Unix())))
}

func (e *Emulator) decodeCursor(s string) (int, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, false
	}
	var id int
	var issued int64
	if _, err := fmt.Sscanf(string(raw), "tokens-from:%d:%d", &id, &issued); err != nil {
		return 0, false
	}
	if e.now().Sub(time.Unix(issued, 0)) > pageTokenTTL {
		return 0, false
	}
	return id, true
}

var newTokenSchema = objectSchema{required: []string{"name", "scope"}, props: []prop{
	{name: "name", types: []string{"string"}, minLength: 1, maxLength: 255},
	{name: "scope", types: []string{"string"}},
	{name: "expiration", types: []string{"number"}, minimum: minimum(1)},
}}

// createAppToken mints a token (nickname createOrganizationApplicationToken,
// endpoints/api/organization_application_tokens.py): the schema first, then
// the org-admin check, the application (404), the name, the scope, the
// minting rule, the expiration and the token limit.
func (e *Emulator) createAppToken(w http.ResponseWriter, r *http.Request, c *caller) {
	body, ok := e.jsonRequest(w, r, newTokenSchema)
	if !ok {
		return
	}
	a := e.adminApp(w, r, c)
	if a == nil {
		return
	}
	name := strings.TrimSpace(body["name"].(string))
	if name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "'name' must not be empty"})
		return
	}
	rawScope := body["scope"].(string)
	scope, ok := parseScopes(normalizeScope(rawScope))
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Invalid scope: " + rawScope})
		return
	}
	if !e.canMintScope(c, a.org, scope) {
		e.unauthorized(w, r, c)
		return
	}
	// validate_expiration: int(value), clamped to [1, ten years].
	expiration := float64(defaultTokenExpiration)
	if v, present := body["expiration"]; present {
		f, _ := v.(json.Number).Float64()
		if math.IsInf(f, 0) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "'expiration' must be a finite number of seconds"})
			return
		}
		expiration = math.Max(1, math.Min(math.Trunc(f), defaultTokenExpiration))
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
	a := e.adminApp(w, r, c)
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
