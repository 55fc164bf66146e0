//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

// Differential conformance: every route the emulator serves (every route the
// engine calls, and what the tests use to look at Quay) is asked the same
// questions, good and bad, in the emulator and in real Quay, and must answer
// alike: the same status, the same JSON keys with the same types, and the same
// error messages. Values that are random or per-server (tokens, IDs, times)
// are not compared.
//
//	E2E_QUAY=real go test -tags e2e -run Conformance ./e2e/
//
// TestConformanceCoversEveryEmulatorRoute runs with every target: a new
// emulator route without a step here fails it.

// The only places the emulator may answer otherwise than real Quay, each
// with its reason. Keep them short: a difference is a bug a user meets first.
var (
	// allowedDifferences: steps whose answers may differ, by step name, and
	// only in the differences the pattern matches (any other fails).
	allowedDifferences = map[string]struct {
		diffs  *regexp.Regexp
		reason string
	}{
		"public config": {
			diffs: regexp.MustCompile(`^\$(\.config|\.features)? lacks keys real Quay has: `),
			reason: "GET /config lists every CLIENT_WHITELIST key and every FEATURE_ flag of the deployment (about 130, mostly " +
				"for the web UI); the emulator serves the ones a client of this engine reads (SERVER_HOSTNAME, " +
				"PREFERRED_URL_SCHEME, LOCAL_OAUTH_HANDLER, AUTHENTICATION_TYPE and the features that change its paths), with " +
				"Quay's types; no key it serves may differ",
		},
	}

	// allowedMessageDifferences: parts of real Quay's error messages the
	// emulator leaves out (removed from real Quay's message before the
	// messages are compared).
	allowedMessageDifferences = []struct {
		part   *regexp.Regexp
		reason string
	}{{
		part: regexp.MustCompile(`(?s)\n\nFailed validating .*$`),
		reason: "a request body that fails Quay's JSON schema gets jsonschema's str(ValidationError): the reason, then a " +
			"pprint dump of the failing part of Quay's request schema (its descriptions included) and of the offending value. " +
			"Reproducing it would copy Quay's schemas into the emulator verbatim (the project copies no other project's code); " +
			"the reason, the first line, is what a client can act on, and it is compared exactly",
	}}
)

// The emulator also differs where no request shows it (see
// docs/development.md): it refuses to start with a programmatic bootstrap
// configuration that cannot work, where Quay logs an error and starts
// without a bootstrap token.

// confStep is one request, sent to both Quays.
type confStep struct {
	name   string
	method string
	// path may hold {placeholders}: the side's fixture values and what
	// earlier steps saved.
	path string
	// auth is who asks: admin (the owner's token with every scope), none,
	// readonly (an application token with repo:read user:read), expired,
	// deleted (a token deleted before), garbage (an unknown Bearer token),
	// basic-robot / basic-wrong (Basic credentials of the robot {robot}).
	auth string
	// body is sent as JSON (strings may hold placeholders); form as a form.
	body any
	form url.Values
	// save stores top-level string fields of a JSON answer (field -> name).
	save map[string]string
	// wait sleeps before the request (token expiry).
	wait time.Duration
	// repeat sends the request this many times (the answers of the last
	// one are compared).
	repeat int
	// statusOnly compares only the status (answers that are not API JSON).
	statusOnly bool
	// needs names a capability the side must have (ownerPassword).
	needs string
}

// conformanceSteps is the table. Names are unique; the order matters
// (later steps use what earlier ones created).
func conformanceSteps() []confStep {
	long := strings.Repeat("d", 256)
	scopes := "repo:read user:read"
	return []confStep{
		// Users and tokens.
		{name: "whoami", method: "GET", path: "/api/v1/user/", auth: "admin"},
		{name: "whoami no auth", method: "GET", path: "/api/v1/user/", auth: "none"},
		{name: "whoami unknown token", method: "GET", path: "/api/v1/user/", auth: "garbage"},
		{name: "whoami slash-less redirect", method: "GET", path: "/api/v1/user", auth: "admin", statusOnly: true},
		{name: "unknown api route", method: "GET", path: "/api/v1/no-such-thing", auth: "admin"},
		{name: "initialize a used Quay", method: "POST", path: "/api/v1/user/initialize", auth: "none",
			body: map[string]any{"username": "someone", "password": "password123", "email": "someone@example.com"}},
		{name: "change password too short", method: "PUT", path: "/api/v1/user/", auth: "admin", body: map[string]any{"password": "x"}},
		{name: "change password no auth", method: "PUT", path: "/api/v1/user/", auth: "none", body: map[string]any{"password": "password123"}},
		{name: "change password", method: "PUT", path: "/api/v1/user/", auth: "admin", body: map[string]any{"password": "{ownerPassword}"}, needs: "ownerPassword"},

		// Organizations.
		{name: "create org", method: "POST", path: "/api/v1/organization/", auth: "admin", body: map[string]any{"name": "{org}", "email": "{org}@example.com"}},
		{name: "create org duplicate", method: "POST", path: "/api/v1/organization/", auth: "admin", body: map[string]any{"name": "{org}", "email": "{org}-2@example.com"}},
		{name: "create org bad name", method: "POST", path: "/api/v1/organization/", auth: "admin", body: map[string]any{"name": "Not A Name!", "email": "x@example.com"}},
		{name: "create org no name", method: "POST", path: "/api/v1/organization/", auth: "admin", body: map[string]any{"email": "x@example.com"}},
		{name: "create org no auth (CSRF)", method: "POST", path: "/api/v1/organization/", auth: "none", body: map[string]any{"name": "{org}x"}},
		{name: "create org insufficient scope", method: "POST", path: "/api/v1/organization/", auth: "readonly-early", body: map[string]any{"name": "{org}x"}},
		{name: "get org", method: "GET", path: "/api/v1/organization/{org}", auth: "admin"},
		{name: "get missing org", method: "GET", path: "/api/v1/organization/{org}-missing", auth: "admin"},
		{name: "get org no auth", method: "GET", path: "/api/v1/organization/{org}", auth: "none"},

		// OAuth applications.
		{name: "list apps", method: "GET", path: "/api/v1/organization/{org}/applications", auth: "admin"},
		{name: "list apps missing org", method: "GET", path: "/api/v1/organization/{org}-missing/applications", auth: "admin"},
		{name: "create app", method: "POST", path: "/api/v1/organization/{org}/applications", auth: "admin", body: map[string]any{"name": "vault-app", "description": "d"}, save: map[string]string{"client_id": "cid"}},
		{name: "create app duplicate name", method: "POST", path: "/api/v1/organization/{org}/applications", auth: "admin", body: map[string]any{"name": "vault-app"}, save: map[string]string{"client_id": "cid2"}},
		{name: "create app reserved name", method: "POST", path: "/api/v1/organization/{org}/applications", auth: "admin", body: map[string]any{"name": "__quay_bootstrap_app"}},
		{name: "create app no name", method: "POST", path: "/api/v1/organization/{org}/applications", auth: "admin", body: map[string]any{"description": "d"}},
		{name: "create app missing org", method: "POST", path: "/api/v1/organization/{org}-missing/applications", auth: "admin", body: map[string]any{"name": "a"}},
		{name: "get app", method: "GET", path: "/api/v1/organization/{org}/applications/{cid}", auth: "admin"},
		{name: "get missing app", method: "GET", path: "/api/v1/organization/{org}/applications/NOSUCHCLIENT00000000", auth: "admin"},
		{name: "update app", method: "PUT", path: "/api/v1/organization/{org}/applications/{cid}", auth: "admin",
			body: map[string]any{"name": "vault-app", "redirect_uri": "https://example.com/cb", "application_uri": "https://example.com", "description": "e"}},
		{name: "update app missing fields", method: "PUT", path: "/api/v1/organization/{org}/applications/{cid}", auth: "admin", body: map[string]any{"name": "vault-app"}},
		{name: "public app info", method: "GET", path: "/api/v1/app/{cid}", auth: "none"},
		{name: "public app info missing", method: "GET", path: "/api/v1/app/NOSUCHCLIENT00000000", auth: "none"},

		// Organization application tokens (Quay 3.18).
		{name: "create app token", method: "POST", path: "/api/v1/organization/{org}/applications/{cid}/tokens", auth: "admin",
			body: map[string]any{"name": "t1", "scope": scopes, "expiration": 3600}, save: map[string]string{"uuid": "tokuuid", "token": "tok"}},
		{name: "create app token comma scopes", method: "POST", path: "/api/v1/organization/{org}/applications/{cid}/tokens", auth: "admin",
			body: map[string]any{"name": "t2", "scope": "repo:read,user:read", "expiration": 60}},
		{name: "create app token bad scope", method: "POST", path: "/api/v1/organization/{org}/applications/{cid}/tokens", auth: "admin",
			body: map[string]any{"name": "t3", "scope": "repo:nope"}},
		{name: "create app token no name", method: "POST", path: "/api/v1/organization/{org}/applications/{cid}/tokens", auth: "admin",
			body: map[string]any{"scope": scopes}},
		{name: "create app token blank name", method: "POST", path: "/api/v1/organization/{org}/applications/{cid}/tokens", auth: "admin",
			body: map[string]any{"name": "   ", "scope": scopes}},
		{name: "create app token long name", method: "POST", path: "/api/v1/organization/{org}/applications/{cid}/tokens", auth: "admin",
			body: map[string]any{"name": long, "scope": scopes}},
		{name: "create app token zero expiration", method: "POST", path: "/api/v1/organization/{org}/applications/{cid}/tokens", auth: "admin",
			body: map[string]any{"name": "t4", "scope": scopes, "expiration": 0}},
		{name: "create app token string expiration", method: "POST", path: "/api/v1/organization/{org}/applications/{cid}/tokens", auth: "admin",
			body: map[string]any{"name": "t4", "scope": scopes, "expiration": "60"}},
		{name: "create app token insufficient scope", method: "POST", path: "/api/v1/organization/{org}/applications/{cid}/tokens", auth: "readonly",
			body: map[string]any{"name": "t5", "scope": "repo:read"}},
		{name: "create app token missing app", method: "POST", path: "/api/v1/organization/{org}/applications/NOSUCHCLIENT00000000/tokens", auth: "admin",
			body: map[string]any{"name": "t6", "scope": scopes}},
		{name: "create app token missing org", method: "POST", path: "/api/v1/organization/{org}-missing/applications/{cid}/tokens", auth: "admin",
			body: map[string]any{"name": "t6", "scope": scopes}},
		{name: "create app token no auth (CSRF)", method: "POST", path: "/api/v1/organization/{org}/applications/{cid}/tokens", auth: "none",
			body: map[string]any{"name": "t7", "scope": scopes}},
		{name: "create app token expiring in 1s", method: "POST", path: "/api/v1/organization/{org}/applications/{cid}/tokens", auth: "admin",
			body: map[string]any{"name": "short", "scope": scopes, "expiration": 1}, save: map[string]string{"token": "expiredtok", "uuid": "expireduuid"}},
		{name: "app token works", method: "GET", path: "/api/v1/user/", auth: "readonly"},
		{name: "app token scope too narrow", method: "GET", path: "/api/v1/organization/{org}/applications", auth: "readonly"},
		{name: "expired app token", method: "GET", path: "/api/v1/user/", auth: "expired", wait: 2 * time.Second},
		{name: "list app tokens", method: "GET", path: "/api/v1/organization/{org}/applications/{cid}/tokens", auth: "admin"},
		{name: "list app tokens missing app", method: "GET", path: "/api/v1/organization/{org}/applications/NOSUCHCLIENT00000000/tokens", auth: "admin"},
		{name: "list app tokens insufficient scope", method: "GET", path: "/api/v1/organization/{org}/applications/{cid}/tokens", auth: "readonly"},
		{name: "fill a page of app tokens", method: "POST", path: "/api/v1/organization/{org}/applications/{cid}/tokens", auth: "admin",
			body: map[string]any{"name": "page", "scope": "repo:read", "expiration": 600}, repeat: 50},
		{name: "list app tokens first page", method: "GET", path: "/api/v1/organization/{org}/applications/{cid}/tokens", auth: "admin", save: map[string]string{"next_page": "nextpage"}},
		{name: "list app tokens second page", method: "GET", path: "/api/v1/organization/{org}/applications/{cid}/tokens?next_page={nextpage}", auth: "admin"},
		{name: "list app tokens bad page token", method: "GET", path: "/api/v1/organization/{org}/applications/{cid}/tokens?next_page=garbage", auth: "admin"},
		{name: "delete expired app token", method: "DELETE", path: "/api/v1/organization/{org}/applications/{cid}/tokens/{expireduuid}", auth: "admin"},
		{name: "delete missing app token", method: "DELETE", path: "/api/v1/organization/{org}/applications/{cid}/tokens/{expireduuid}", auth: "admin"},
		{name: "delete app token missing app", method: "DELETE", path: "/api/v1/organization/{org}/applications/NOSUCHCLIENT00000000/tokens/{tokuuid}", auth: "admin"},

		// The user's authorizations (how the engine revokes bootstrap tokens).
		{name: "list authorizations", method: "GET", path: "/api/v1/user/authorizations", auth: "admin"},
		{name: "list authorizations readonly", method: "GET", path: "/api/v1/user/authorizations", auth: "readonly"},
		{name: "get authorization", method: "GET", path: "/api/v1/user/authorizations/{tokuuid}", auth: "admin"},
		{name: "get missing authorization", method: "GET", path: "/api/v1/user/authorizations/00000000-0000-4000-8000-000000000000", auth: "admin"},

		// App-specific tokens.
		{name: "list app-specific tokens", method: "GET", path: "/api/v1/user/apptoken", auth: "admin"},
		{name: "create app-specific token", method: "POST", path: "/api/v1/user/apptoken", auth: "admin", body: map[string]any{"title": "conformance"}, save: map[string]string{"token.uuid": "astuuid"}},
		{name: "create app-specific token no title", method: "POST", path: "/api/v1/user/apptoken", auth: "admin", body: map[string]any{}},
		{name: "get app-specific token", method: "GET", path: "/api/v1/user/apptoken/{astuuid}", auth: "admin"},
		{name: "revoke app-specific token", method: "DELETE", path: "/api/v1/user/apptoken/{astuuid}", auth: "admin"},
		{name: "get revoked app-specific token", method: "GET", path: "/api/v1/user/apptoken/{astuuid}", auth: "admin"},
		{name: "revoke missing app-specific token", method: "DELETE", path: "/api/v1/user/apptoken/{astuuid}", auth: "admin"},

		// Organization robots.
		{name: "list robots empty", method: "GET", path: "/api/v1/organization/{org}/robots", auth: "admin"},
		{name: "list robots missing org", method: "GET", path: "/api/v1/organization/{org}-missing/robots", auth: "admin"},
		{name: "create robot", method: "PUT", path: "/api/v1/organization/{org}/robots/bot1", auth: "admin",
			body: map[string]any{"description": "ci robot", "unstructured_metadata": map[string]any{"vault_mount": "m1"}}, save: map[string]string{"token": "robottoken"}},
		{name: "create robot duplicate", method: "PUT", path: "/api/v1/organization/{org}/robots/bot1", auth: "admin", body: map[string]any{"description": "again"}},
		{name: "create robot description over 255", method: "PUT", path: "/api/v1/organization/{org}/robots/bot2", auth: "admin", body: map[string]any{"description": long}},
		{name: "create robot bad name", method: "PUT", path: "/api/v1/organization/{org}/robots/Bad-Name", auth: "admin", body: map[string]any{}},
		{name: "create robot metadata not an object", method: "PUT", path: "/api/v1/organization/{org}/robots/bot3", auth: "admin", body: map[string]any{"unstructured_metadata": "x"}},
		{name: "create robot no body", method: "PUT", path: "/api/v1/organization/{org}/robots/bot4", auth: "admin"},
		{name: "create robot missing org", method: "PUT", path: "/api/v1/organization/{org}-missing/robots/bot1", auth: "admin", body: map[string]any{}},
		{name: "create robot insufficient scope", method: "PUT", path: "/api/v1/organization/{org}/robots/bot5", auth: "readonly", body: map[string]any{}},
		{name: "create robot no auth (CSRF)", method: "PUT", path: "/api/v1/organization/{org}/robots/bot5", auth: "none", body: map[string]any{}},
		{name: "get robot", method: "GET", path: "/api/v1/organization/{org}/robots/bot1", auth: "admin"},
		{name: "get missing robot", method: "GET", path: "/api/v1/organization/{org}/robots/nosuchbot", auth: "admin"},
		{name: "list robots", method: "GET", path: "/api/v1/organization/{org}/robots?permissions=true&token=false", auth: "admin"},
		{name: "list robots with tokens", method: "GET", path: "/api/v1/organization/{org}/robots", auth: "admin"},
		{name: "list robots limited", method: "GET", path: "/api/v1/organization/{org}/robots?limit=1", auth: "admin"},
		{name: "regenerate robot", method: "POST", path: "/api/v1/organization/{org}/robots/bot1/regenerate", auth: "admin", save: map[string]string{"token": "robottoken"}},
		{name: "regenerate missing robot", method: "POST", path: "/api/v1/organization/{org}/robots/nosuchbot/regenerate", auth: "admin"},
		{name: "robot permissions", method: "GET", path: "/api/v1/organization/{org}/robots/bot1/permissions", auth: "admin"},
		{name: "missing robot permissions", method: "GET", path: "/api/v1/organization/{org}/robots/nosuchbot/permissions", auth: "admin"},

		// Robot identity federation.
		{name: "robot federation empty", method: "GET", path: "/api/v1/organization/{org}/robots/bot1/federation", auth: "admin"},
		{name: "set robot federation", method: "POST", path: "/api/v1/organization/{org}/robots/bot1/federation", auth: "admin",
			body: []any{map[string]any{"issuer": "https://issuer.example.com", "subject": "system:serviceaccount:ci:builder"}}},
		{name: "set robot federation not a list", method: "POST", path: "/api/v1/organization/{org}/robots/bot1/federation", auth: "admin",
			body: map[string]any{"issuer": "https://issuer.example.com", "subject": "s"}},
		{name: "set robot federation no subject", method: "POST", path: "/api/v1/organization/{org}/robots/bot1/federation", auth: "admin",
			body: []any{map[string]any{"issuer": "https://issuer.example.com"}}},
		{name: "robot federation", method: "GET", path: "/api/v1/organization/{org}/robots/bot1/federation", auth: "admin"},
		{name: "missing robot federation", method: "GET", path: "/api/v1/organization/{org}/robots/nosuchbot/federation", auth: "admin"},
		{name: "robot federation insufficient scope", method: "GET", path: "/api/v1/organization/{org}/robots/bot1/federation", auth: "readonly"},
		{name: "federated token no auth", method: "GET", path: "/oauth2/federation/robot/token", auth: "none"},
		{name: "federated token POST", method: "POST", path: "/oauth2/federation/robot/token", auth: "none", statusOnly: true},
		{name: "federated token not a JWT", method: "GET", path: "/oauth2/federation/robot/token", auth: "basic-wrong", statusOnly: true},
		{name: "delete robot federation", method: "DELETE", path: "/api/v1/organization/{org}/robots/bot1/federation", auth: "admin"},
		{name: "robot federation after delete", method: "GET", path: "/api/v1/organization/{org}/robots/bot1/federation", auth: "admin"},

		// The caller's own robots.
		{name: "list user robots", method: "GET", path: "/api/v1/user/robots", auth: "admin"},
		{name: "create user robot", method: "PUT", path: "/api/v1/user/robots/{userbot}", auth: "admin", body: map[string]any{"description": "mine"}},
		{name: "create user robot readonly", method: "PUT", path: "/api/v1/user/robots/{userbot}x", auth: "readonly", body: map[string]any{}},
		{name: "get user robot", method: "GET", path: "/api/v1/user/robots/{userbot}", auth: "admin"},
		{name: "regenerate user robot", method: "POST", path: "/api/v1/user/robots/{userbot}/regenerate", auth: "admin"},
		{name: "user robot permissions", method: "GET", path: "/api/v1/user/robots/{userbot}/permissions", auth: "admin"},
		{name: "set user robot federation", method: "POST", path: "/api/v1/user/robots/{userbot}/federation", auth: "admin",
			body: []any{map[string]any{"issuer": "https://issuer.example.com", "subject": "s1"}}},
		{name: "user robot federation", method: "GET", path: "/api/v1/user/robots/{userbot}/federation", auth: "admin"},
		{name: "delete user robot federation", method: "DELETE", path: "/api/v1/user/robots/{userbot}/federation", auth: "admin"},
		{name: "delete user robot", method: "DELETE", path: "/api/v1/user/robots/{userbot}", auth: "admin"},
		{name: "get deleted user robot", method: "GET", path: "/api/v1/user/robots/{userbot}", auth: "admin"},
		{name: "delete deleted user robot", method: "DELETE", path: "/api/v1/user/robots/{userbot}", auth: "admin"},

		// Repositories and their permissions.
		{name: "create repo", method: "POST", path: "/api/v1/repository", auth: "admin",
			body: map[string]any{"namespace": "{org}", "repository": "app", "visibility": "private", "description": ""}},
		{name: "create repo duplicate", method: "POST", path: "/api/v1/repository", auth: "admin",
			body: map[string]any{"namespace": "{org}", "repository": "app", "visibility": "private", "description": ""}},
		{name: "create repo bad name", method: "POST", path: "/api/v1/repository", auth: "admin",
			body: map[string]any{"namespace": "{org}", "repository": "Bad Name", "visibility": "private", "description": ""}},
		{name: "create repo bad visibility", method: "POST", path: "/api/v1/repository", auth: "admin",
			body: map[string]any{"namespace": "{org}", "repository": "app2", "visibility": "secret", "description": ""}},
		{name: "create repo nested", method: "POST", path: "/api/v1/repository", auth: "admin",
			body: map[string]any{"namespace": "{org}", "repository": "team/app", "visibility": "private", "description": ""}},
		{name: "create repo no auth (CSRF)", method: "POST", path: "/api/v1/repository", auth: "none",
			body: map[string]any{"namespace": "{org}", "repository": "app3", "visibility": "private", "description": ""}},
		{name: "get repo", method: "GET", path: "/api/v1/repository/{org}/app", auth: "admin"},
		{name: "get nested repo", method: "GET", path: "/api/v1/repository/{org}/team/app", auth: "admin"},
		{name: "get missing repo", method: "GET", path: "/api/v1/repository/{org}/nosuchrepo", auth: "admin"},
		{name: "list repos", method: "GET", path: "/api/v1/repository?namespace={org}", auth: "admin"},
		{name: "list repos without a filter", method: "GET", path: "/api/v1/repository", auth: "admin"},
		{name: "grant robot read", method: "PUT", path: "/api/v1/repository/{org}/app/permissions/user/{org}+bot1", auth: "admin", body: map[string]any{"role": "read"}},
		{name: "grant robot bad role", method: "PUT", path: "/api/v1/repository/{org}/app/permissions/user/{org}+bot1", auth: "admin", body: map[string]any{"role": "owner"}},
		{name: "grant missing robot", method: "PUT", path: "/api/v1/repository/{org}/app/permissions/user/{org}+nosuchbot", auth: "admin", body: map[string]any{"role": "read"}},
		{name: "grant on missing repo", method: "PUT", path: "/api/v1/repository/{org}/nosuchrepo/permissions/user/{org}+bot1", auth: "admin", body: map[string]any{"role": "read"}},
		{name: "grant nested repo", method: "PUT", path: "/api/v1/repository/{org}/team/app/permissions/user/{org}+bot1", auth: "admin", body: map[string]any{"role": "write"}},
		{name: "get robot permission", method: "GET", path: "/api/v1/repository/{org}/app/permissions/user/{org}+bot1", auth: "admin"},
		{name: "get missing permission", method: "GET", path: "/api/v1/repository/{org}/app/permissions/user/{user}", auth: "admin"},
		{name: "list user permissions", method: "GET", path: "/api/v1/repository/{org}/app/permissions/user/", auth: "admin"},
		{name: "robot permissions after grant", method: "GET", path: "/api/v1/organization/{org}/robots/bot1/permissions", auth: "admin"},

		// Teams.
		{name: "create team", method: "PUT", path: "/api/v1/organization/{org}/team/builders", auth: "admin", body: map[string]any{"role": "member", "description": "ci"}},
		{name: "update team bad role", method: "PUT", path: "/api/v1/organization/{org}/team/builders", auth: "admin", body: map[string]any{"role": "king"}},
		{name: "create team bad name", method: "PUT", path: "/api/v1/organization/{org}/team/Bad Team", auth: "admin", body: map[string]any{"role": "member"}},
		{name: "team members", method: "GET", path: "/api/v1/organization/{org}/team/builders/members", auth: "admin"},
		{name: "missing team members", method: "GET", path: "/api/v1/organization/{org}/team/nosuchteam/members", auth: "admin"},
		{name: "add robot to team", method: "PUT", path: "/api/v1/organization/{org}/team/builders/members/{org}+bot1", auth: "admin"},
		{name: "add missing robot to team", method: "PUT", path: "/api/v1/organization/{org}/team/builders/members/{org}+nosuchbot", auth: "admin"},
		{name: "team members after add", method: "GET", path: "/api/v1/organization/{org}/team/builders/members", auth: "admin"},
		{name: "grant team write", method: "PUT", path: "/api/v1/repository/{org}/app/permissions/team/builders", auth: "admin", body: map[string]any{"role": "write"}},
		{name: "grant missing team", method: "PUT", path: "/api/v1/repository/{org}/app/permissions/team/nosuchteam", auth: "admin", body: map[string]any{"role": "write"}},
		{name: "get team permission", method: "GET", path: "/api/v1/repository/{org}/app/permissions/team/builders", auth: "admin"},
		{name: "list team permissions", method: "GET", path: "/api/v1/repository/{org}/app/permissions/team/", auth: "admin"},
		{name: "org with team", method: "GET", path: "/api/v1/organization/{org}", auth: "admin"},

		// Default permissions (prototypes).
		{name: "list prototypes", method: "GET", path: "/api/v1/organization/{org}/prototypes", auth: "admin"},
		{name: "create prototype", method: "POST", path: "/api/v1/organization/{org}/prototypes", auth: "admin",
			body: map[string]any{"role": "read", "delegate": map[string]any{"name": "{org}+bot1", "kind": "user"}}, save: map[string]string{"id": "protoid"}},
		{name: "create prototype bad role", method: "POST", path: "/api/v1/organization/{org}/prototypes", auth: "admin",
			body: map[string]any{"role": "boss", "delegate": map[string]any{"name": "{org}+bot1", "kind": "user"}}},
		{name: "create prototype missing delegate", method: "POST", path: "/api/v1/organization/{org}/prototypes", auth: "admin",
			body: map[string]any{"role": "read", "delegate": map[string]any{"name": "{org}+nosuchbot", "kind": "user"}}},
		{name: "update prototype", method: "PUT", path: "/api/v1/organization/{org}/prototypes/{protoid}", auth: "admin", body: map[string]any{"role": "write"}},
		{name: "list prototypes after create", method: "GET", path: "/api/v1/organization/{org}/prototypes", auth: "admin"},
		{name: "delete prototype", method: "DELETE", path: "/api/v1/organization/{org}/prototypes/{protoid}", auth: "admin"},
		{name: "delete missing prototype", method: "DELETE", path: "/api/v1/organization/{org}/prototypes/{protoid}", auth: "admin"},
		{name: "update missing prototype", method: "PUT", path: "/api/v1/organization/{org}/prototypes/{protoid}", auth: "admin", body: map[string]any{"role": "write"}},

		// Quay's public configuration (where its local OAuth handler lives).
		{name: "public config", method: "GET", path: "/config", auth: "none"},

		// The registry.
		{name: "service keys", method: "GET", path: "/keys/services/quay/keys", auth: "none"},
		{name: "v2 base no auth", method: "GET", path: "/v2/", auth: "none", statusOnly: true},
		{name: "v2 token for robot", method: "GET", path: "/v2/auth?service={host}&scope=repository:{org}/app:pull,push", auth: "basic-robot"},
		{name: "v2 token wrong password", method: "GET", path: "/v2/auth?service={host}&scope=repository:{org}/app:pull", auth: "basic-wrong"},
		{name: "v2 token anonymous", method: "GET", path: "/v2/auth?service={host}", auth: "none"},
		{name: "v2 auth POST", method: "POST", path: "/v2/auth", auth: "none", statusOnly: true},
		{name: "v2 tags no token", method: "GET", path: "/v2/{org}/app/tags/list", auth: "none", statusOnly: true},
		{name: "direct oauth no auth", method: "POST", path: "/oauth/authorizeapp", auth: "none", statusOnly: true,
			form: url.Values{"client_id": {"{cid}"}, "response_type": {"token"}, "scope": {"user:read"}, "redirect_uri": {"{base}/oauth/localapp"}}},
		{name: "direct oauth wrong password", method: "POST", path: "/oauth/authorizeapp", auth: "basic-wrong-owner", statusOnly: true,
			form: url.Values{"client_id": {"{cid}"}, "response_type": {"token"}, "scope": {"user:read"}, "redirect_uri": {"{base}/oauth/localapp"}}},
		{name: "bootstrap renew no auth (CSRF)", method: "POST", path: "/api/v1/bootstrap/renew", auth: "none"},
		{name: "bootstrap renew unknown token", method: "POST", path: "/api/v1/bootstrap/renew", auth: "garbage"},
		{name: "bootstrap renew not a bootstrap token", method: "POST", path: "/api/v1/bootstrap/renew", auth: "readonly"},

		// Deleting, and the answers about what was deleted.
		{name: "remove permission", method: "DELETE", path: "/api/v1/repository/{org}/app/permissions/user/{org}+bot1", auth: "admin"},
		{name: "remove removed permission", method: "DELETE", path: "/api/v1/repository/{org}/app/permissions/user/{org}+bot1", auth: "admin"},
		{name: "remove team permission", method: "DELETE", path: "/api/v1/repository/{org}/app/permissions/team/builders", auth: "admin"},
		{name: "remove removed team permission", method: "DELETE", path: "/api/v1/repository/{org}/app/permissions/team/builders", auth: "admin"},
		{name: "remove robot from team", method: "DELETE", path: "/api/v1/organization/{org}/team/builders/members/{org}+bot1", auth: "admin"},
		{name: "remove non-member from team", method: "DELETE", path: "/api/v1/organization/{org}/team/builders/members/{org}+bot1", auth: "admin"},
		{name: "delete team", method: "DELETE", path: "/api/v1/organization/{org}/team/builders", auth: "admin"},
		{name: "delete deleted team", method: "DELETE", path: "/api/v1/organization/{org}/team/builders", auth: "admin"},
		{name: "delete robot", method: "DELETE", path: "/api/v1/organization/{org}/robots/bot1", auth: "admin"},
		{name: "get deleted robot", method: "GET", path: "/api/v1/organization/{org}/robots/bot1", auth: "admin"},
		{name: "delete deleted robot", method: "DELETE", path: "/api/v1/organization/{org}/robots/bot1", auth: "admin"},
		{name: "regenerate deleted robot", method: "POST", path: "/api/v1/organization/{org}/robots/bot1/regenerate", auth: "admin"},
		{name: "v2 token for deleted robot", method: "GET", path: "/v2/auth?service={host}&scope=repository:{org}/app:pull", auth: "basic-robot"},
		{name: "delete app token", method: "DELETE", path: "/api/v1/organization/{org}/applications/{cid}/tokens/{tokuuid}", auth: "admin"},
		{name: "deleted app token", method: "GET", path: "/api/v1/user/", auth: "readonly"},
		{name: "delete deleted app token", method: "DELETE", path: "/api/v1/organization/{org}/applications/{cid}/tokens/{tokuuid}", auth: "admin"},
		{name: "get deleted authorization", method: "GET", path: "/api/v1/user/authorizations/{tokuuid}", auth: "admin"},
		{name: "delete deleted authorization", method: "DELETE", path: "/api/v1/user/authorizations/{tokuuid}", auth: "admin"},
		{name: "create token for revocation", method: "POST", path: "/api/v1/organization/{org}/applications/{cid2}/tokens", auth: "admin",
			body: map[string]any{"name": "rev", "scope": scopes, "expiration": 600}, save: map[string]string{"uuid": "revuuid", "token": "revtok"}},
		{name: "revoke authorization", method: "DELETE", path: "/api/v1/user/authorizations/{revuuid}", auth: "admin"},
		{name: "revoked authorization token", method: "GET", path: "/api/v1/user/", auth: "revoked"},
		{name: "delete app", method: "DELETE", path: "/api/v1/organization/{org}/applications/{cid}", auth: "admin"},
		{name: "get deleted app", method: "GET", path: "/api/v1/organization/{org}/applications/{cid}", auth: "admin"},
		{name: "delete deleted app", method: "DELETE", path: "/api/v1/organization/{org}/applications/{cid}", auth: "admin"},
		{name: "deleted app's tokens", method: "GET", path: "/api/v1/organization/{org}/applications/{cid}/tokens", auth: "admin"},
		{name: "token on deleted app", method: "POST", path: "/api/v1/organization/{org}/applications/{cid}/tokens", auth: "admin", body: map[string]any{"name": "x", "scope": scopes}},
		{name: "deleted app public info", method: "GET", path: "/api/v1/app/{cid}", auth: "none"},
	}
}

// confSide is one Quay answering the table.
type confSide struct {
	name string
	base string
	host string
	http *http.Client
	vars map[string]string
}

type confAnswer struct {
	// missing lists the values earlier steps failed to save: the step was
	// not sent.
	missing     []string
	status      int
	contentType string
	json        any
	raw         string
	location    string
}

func TestConformanceCoversEveryEmulatorRoute(t *testing.T) {
	emu, err := emulator.New(emulator.Config{FeatureProgrammaticBootstrap: true, BootstrapTokenOwner: "quayadmin", SuperUsers: []string{"quayadmin"}})
	must(t, err)
	covered := map[string][]string{}
	for _, step := range conformanceSteps() {
		covered[emu.RouteOf(step.request(t, "http://quay.example"))] = append(covered[emu.RouteOf(step.request(t, "http://quay.example"))], step.name)
	}
	var missing []string
	for _, route := range emu.Routes() {
		if len(covered[route.Nickname]) == 0 {
			missing = append(missing, fmt.Sprintf("%s %s (%s)", route.Method, route.Path, route.Nickname))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("emulator routes without a conformance step (add one to conformanceSteps):\n  %s", strings.Join(missing, "\n  "))
	}
	names := map[string]bool{}
	for _, step := range conformanceSteps() {
		if names[step.name] {
			t.Errorf("two steps named %q", step.name)
		}
		names[step.name] = true
	}
	for name := range allowedDifferences {
		if !names[name] {
			t.Errorf("allowedDifferences names %q, which is no step", name)
		}
	}
}

// request is the step's request with its placeholders left in (for route
// naming only).
func (s confStep) request(t testing.TB, base string) *http.Request {
	t.Helper()
	path := placeholder.ReplaceAllString(s.path, "x")
	req, err := http.NewRequest(s.method, base+path, nil)
	must(t, err)
	return req
}

func TestConformance(t *testing.T) {
	if suite.target == targetEmulator {
		t.Skip("compares the emulator with a real Quay: run with E2E_QUAY=real (or E2E_QUAY_URL)")
	}
	real := sharedRealQuay(t)
	names := &testNames{prefix: fmt.Sprintf("%s-%sconf", suite.namePrefix, suite.runID)}
	t.Cleanup(func() { real.cleanupTest(names) })
	org := names.name("org")
	names.name("org-early")
	userBot := "conf" + suite.runID + "ubot"

	emu := startConformanceEmulator(t, real.owner, probeFeatures(t, real))
	realSide := &confSide{name: "real Quay", base: real.url, host: strings.TrimPrefix(strings.TrimPrefix(real.url, "http://"), "https://"), http: real.http,
		vars: map[string]string{"admin": real.admin, "ownerPassword": real.ownerPassword}}
	sides := []*confSide{emu, realSide}
	for _, side := range sides {
		side.vars["org"], side.vars["userbot"], side.vars["user"], side.vars["base"] = org, userBot, real.owner, side.base
	}
	// The user robot lives in the owner's namespace, which cleanup does
	// not delete.
	t.Cleanup(func() {
		_, _, _ = real.call(http.MethodDelete, "/api/v1/user/robots/"+userBot, real.admin, nil)
	})
	// A token with only repo:read user:read, made before anything else.
	for _, side := range sides {
		side.vars["readonly-early"] = side.mintEarlyToken(t)
	}

	var failures []string
	for _, step := range conformanceSteps() {
		if step.needs != "" && realSide.vars[step.needs] == "" {
			t.Logf("step %q skipped: this Quay lacks %s", step.name, step.needs)
			continue
		}
		if step.wait > 0 {
			time.Sleep(step.wait)
		}
		answers := make([]confAnswer, len(sides))
		took := make([]time.Duration, len(sides))
		for i, side := range sides {
			start := time.Now()
			answers[i] = side.do(t, step)
			took[i] = time.Since(start)
		}
		if os.Getenv("E2E_CONFORMANCE_VERBOSE") != "" {
			t.Logf("step %q: %s %s\n    emulator (%s):  %s\n    real Quay (%s): %s", step.name, step.method, step.path,
				took[0].Round(time.Millisecond), answers[0].summary(), took[1].Round(time.Millisecond), answers[1].summary())
		}
		var diffs []string
		for i, a := range answers {
			if len(a.missing) > 0 {
				diffs = append(diffs, fmt.Sprintf("not sent to the %s: an earlier step saved no %s", sides[i].name, strings.Join(a.missing, ", ")))
			}
		}
		if len(diffs) == 0 {
			diffs = compareAnswers(answers[0], answers[1], emu, realSide)
		}
		allowed, hasAllowance := allowedDifferences[step.name]
		if len(diffs) == 0 {
			if hasAllowance {
				t.Errorf("step %q: the emulator and real Quay now agree; drop it from allowedDifferences", step.name)
			}
			continue
		}
		var unexpected []string
		for _, d := range diffs {
			if !hasAllowance || !allowed.diffs.MatchString(d) {
				unexpected = append(unexpected, d)
			}
		}
		report := fmt.Sprintf("step %q: %s %s\n    %s\n    emulator:  %s\n    real Quay: %s", step.name, step.method, step.path,
			strings.Join(diffs, "\n    "), answers[0].summary(), answers[1].summary())
		if len(unexpected) == 0 {
			t.Logf("allowed difference (%s):\n%s", allowed.reason, report)
			continue
		}
		failures = append(failures, report)
	}
	if len(failures) > 0 {
		t.Errorf("%d of %d steps answer differently in the emulator and in real Quay:\n%s", len(failures), len(conformanceSteps()), strings.Join(failures, "\n"))
	}
}

// probeFeatures asks real Quay which of the features the table touches
// are on, so that the emulator can be configured alike (a Quay of the
// user's own may differ from the one the suite starts): routes Quay does not
// serve answer a POST with the web UI's 405, a hidden one with 404.
func probeFeatures(t testing.TB, real *realQuay) map[string]bool {
	t.Helper()
	features := map[string]bool{}
	code, _, err := real.call(http.MethodPost, "/api/v1/bootstrap/renew", "", nil)
	must(t, err)
	features["FEATURE_PROGRAMMATIC_BOOTSTRAP"] = code != http.StatusMethodNotAllowed
	code, _, err = real.call(http.MethodPost, "/api/v1/user/initialize", "", map[string]any{})
	must(t, err)
	features["FEATURE_USER_INITIALIZE"] = code != http.StatusNotFound
	return features
}

// startConformanceEmulator runs an emulator in-process, configured as real
// Quay is (as the suite configures it, with the features probeFeatures
// found), with its owner initialized through POST /api/v1/user/initialize.
func startConformanceEmulator(t testing.TB, owner string, features map[string]bool) *confSide {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	host := ln.Addr().String()
	config := fmt.Sprintf(`SERVER_HOSTNAME: %s
SUPER_USERS: [%s]
FEATURE_SUPER_USERS: true
FEATURE_USER_INITIALIZE: %t
FEATURE_MAILING: false
`, host, owner, features["FEATURE_USER_INITIALIZE"])
	if features["FEATURE_PROGRAMMATIC_BOOTSTRAP"] {
		config += fmt.Sprintf("FEATURE_PROGRAMMATIC_BOOTSTRAP: true\nBOOTSTRAP_TOKEN_OWNER: %s\nBOOTSTRAP_TOKEN_PATH: %s\n", owner, filepath.Join(t.TempDir(), "token.json"))
	}
	cfg, err := emulator.ParseConfig([]byte(config))
	must(t, err)
	emu, err := emulator.New(cfg)
	must(t, err)
	srv := httptest.NewUnstartedServer(emu)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	side := &confSide{name: "emulator", base: srv.URL, host: host, http: &http.Client{Timeout: 30 * time.Second}, vars: map[string]string{}}
	password := "conformance-" + randomHex(6)
	side.vars["ownerPassword"] = password
	if !features["FEATURE_USER_INITIALIZE"] {
		// As an operator would have made the owner of such a Quay.
		must(t, emu.CreateUser(owner, password, owner+"@example.com"))
		admin, err := emu.IssueToken(owner, standInScopes, 24*time.Hour)
		must(t, err)
		side.vars["admin"] = admin
		return side
	}
	code, body := doJSON(t, side.http, http.MethodPost, side.base+"/api/v1/user/initialize", "",
		map[string]any{"username": owner, "password": password, "email": owner + "@example.com", "access_token": true})
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &out) != nil {
		t.Fatalf("initializing the emulator: %d %s", code, redactSecrets(string(body)))
	}
	side.vars["admin"] = out.AccessToken
	return side
}

// mintEarlyToken makes an organization and application of its own for a
// repo:read user:read token that exists before the table's organization.
func (s *confSide) mintEarlyToken(t testing.TB) string {
	t.Helper()
	org := s.vars["org"] + "-early"
	code, body := doJSON(t, s.http, http.MethodPost, s.base+"/api/v1/organization/", s.vars["admin"], map[string]any{"name": org, "email": org + "@example.com"})
	if code != http.StatusCreated {
		t.Fatalf("%s: creating %s: %d %s", s.name, org, code, body)
	}
	code, body = doJSON(t, s.http, http.MethodPost, s.base+"/api/v1/organization/"+org+"/applications", s.vars["admin"], map[string]any{"name": "early"})
	var app struct {
		ClientID string `json:"client_id"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &app) != nil {
		t.Fatalf("%s: creating an application: %d %s", s.name, code, redactSecrets(string(body)))
	}
	code, body = doJSON(t, s.http, http.MethodPost, s.base+appTokensPath(org, app.ClientID), s.vars["admin"], map[string]any{"name": "early", "scope": "repo:read user:read"})
	var tok struct {
		Token string `json:"token"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &tok) != nil {
		t.Fatalf("%s: minting a token: %d %s", s.name, code, redactSecrets(string(body)))
	}
	return tok.Token
}

var placeholder = regexp.MustCompile(`\{([a-zA-Z0-9-]+)\}`)

// expand fills in the placeholders; a value an earlier step failed to
// save is reported in missing.
func (s *confSide) expand(in string, missing *[]string) string {
	return placeholder.ReplaceAllStringFunc(in, func(m string) string {
		name := m[1 : len(m)-1]
		if name == "host" {
			return s.host
		}
		v, ok := s.vars[name]
		if !ok {
			*missing = append(*missing, name)
		}
		return v
	})
}

func (s *confSide) expandBody(v any, missing *[]string) any {
	switch v := v.(type) {
	case string:
		return s.expand(v, missing)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = s.expandBody(e, missing)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = s.expandBody(e, missing)
		}
		return out
	}
	return v
}

// do sends the step to this side and saves what it asks for.
func (s *confSide) do(t testing.TB, step confStep) confAnswer {
	t.Helper()
	var a confAnswer
	for i := 0; i < max(step.repeat, 1); i++ {
		a = s.send(t, step)
	}
	if m, ok := a.json.(map[string]any); ok {
		for field, name := range step.save {
			v := any(m)
			for _, part := range strings.Split(field, ".") {
				if mm, ok := v.(map[string]any); ok {
					v = mm[part]
				} else {
					v = nil
				}
			}
			if str, ok := v.(string); ok {
				s.vars[name] = str
			}
		}
	}
	return a
}

func (s *confSide) send(t testing.TB, step confStep) confAnswer {
	t.Helper()
	var missing []string
	var body io.Reader
	contentType := ""
	switch {
	case step.form != nil:
		form := url.Values{}
		for k, vs := range step.form {
			for _, v := range vs {
				form.Add(k, s.expand(v, &missing))
			}
		}
		body, contentType = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
	case step.body != nil:
		b, err := json.Marshal(s.expandBody(step.body, &missing))
		must(t, err)
		body, contentType = bytes.NewReader(b), "application/json"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, step.method, s.base+s.expand(step.path, &missing), body)
	must(t, err)
	auth := map[string]string{"readonly": "tok", "expired": "expiredtok", "revoked": "revtok", "basic-robot": "robottoken"}[step.auth]
	if auth != "" {
		s.expand("{"+auth+"}", &missing)
	}
	if len(missing) > 0 {
		return confAnswer{missing: missing}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	switch step.auth {
	case "none":
	case "garbage":
		req.Header.Set("Authorization", "Bearer NOTATOKEN0000000000000000000000000000000")
	case "admin", "readonly-early":
		req.Header.Set("Authorization", "Bearer "+s.vars[step.auth])
	case "readonly":
		req.Header.Set("Authorization", "Bearer "+s.vars["tok"])
	case "expired":
		req.Header.Set("Authorization", "Bearer "+s.vars["expiredtok"])
	case "revoked":
		req.Header.Set("Authorization", "Bearer "+s.vars["revtok"])
	case "basic-robot":
		req.SetBasicAuth(s.vars["org"]+"+bot1", s.vars["robottoken"])
	case "basic-wrong":
		req.SetBasicAuth(s.vars["org"]+"+bot1", "wrong")
	case "basic-wrong-owner":
		req.SetBasicAuth(s.vars["user"], "wrong-password")
	default:
		t.Fatalf("step %q: unknown auth %q", step.name, step.auth)
	}
	client := *s.http
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: step %q: %v", s.name, step.name, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := confAnswer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), raw: string(raw), location: resp.Header.Get("Location")}
	if strings.HasPrefix(a.contentType, "application/json") && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &a.json); err != nil {
			a.json = nil
		}
	}
	return a
}

func (a confAnswer) summary() string {
	raw := redactSecrets(strings.TrimSpace(a.raw))
	if len(raw) > 400 {
		raw = raw[:400] + "…"
	}
	return fmt.Sprintf("%d %s %s", a.status, a.contentType, raw)
}

// errorFields are the keys whose values are messages and must be equal.
var errorFields = []string{"message", "error", "error_message", "error_description", "detail", "error_type", "title", "type", "status"}

// compareAnswers lists how the emulator's answer differs from real Quay's.
func compareAnswers(emu, real confAnswer, emuSide, realSide *confSide) []string {
	var diffs []string
	if emu.status != real.status {
		diffs = append(diffs, fmt.Sprintf("status %d, real Quay %d", emu.status, real.status))
	}
	if emu.json == nil || real.json == nil {
		if (emu.json == nil) != (real.json == nil) && (emu.status < 300 || emu.status >= 400) {
			diffs = append(diffs, fmt.Sprintf("JSON body: emulator %v, real Quay %v", emu.json != nil, real.json != nil))
		}
		return diffs
	}
	diffs = append(diffs, compareShapes("$", emu.json, real.json)...)
	em, _ := emu.json.(map[string]any)
	rm, _ := real.json.(map[string]any)
	for _, field := range errorFields {
		ev, eok := em[field]
		rv, rok := rm[field]
		if !eok || !rok {
			continue
		}
		es, rs := fmt.Sprint(ev), fmt.Sprint(rv)
		for _, allowed := range allowedMessageDifferences {
			rs = allowed.part.ReplaceAllString(rs, "")
		}
		es = strings.ReplaceAll(es, emuSide.host, "<host>")
		rs = strings.ReplaceAll(rs, realSide.host, "<host>")
		if es != rs {
			diffs = append(diffs, fmt.Sprintf("%s %q, real Quay %q", field, es, rs))
		}
	}
	return diffs
}

// compareShapes compares JSON key sets and value types, recursively.
func compareShapes(path string, emu, real any) []string {
	if jsonType(emu) != jsonType(real) {
		return []string{fmt.Sprintf("%s is %s, real Quay %s", path, jsonType(emu), jsonType(real))}
	}
	switch e := emu.(type) {
	case map[string]any:
		r := real.(map[string]any)
		var diffs []string
		var onlyEmu, onlyReal []string
		for k := range e {
			if _, ok := r[k]; !ok {
				onlyEmu = append(onlyEmu, k)
			}
		}
		for k := range r {
			if _, ok := e[k]; !ok {
				onlyReal = append(onlyReal, k)
			}
		}
		sort.Strings(onlyEmu)
		sort.Strings(onlyReal)
		if len(onlyEmu) > 0 {
			diffs = append(diffs, fmt.Sprintf("%s has keys real Quay lacks: %s", path, strings.Join(onlyEmu, ", ")))
		}
		if len(onlyReal) > 0 {
			diffs = append(diffs, fmt.Sprintf("%s lacks keys real Quay has: %s", path, strings.Join(onlyReal, ", ")))
		}
		keys := make([]string, 0, len(e))
		for k := range e {
			if _, ok := r[k]; ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			diffs = append(diffs, compareShapes(path+"."+k, e[k], r[k])...)
		}
		return diffs
	case []any:
		// How many entries depends on each Quay's state (a shared real
		// Quay has more organizations, service keys, tokens): compare
		// the first entries' shapes, and emptiness.
		r := real.([]any)
		switch {
		case len(e) == 0 && len(r) == 0:
			return nil
		case len(e) == 0 || len(r) == 0:
			return []string{fmt.Sprintf("%s has %d entries, real Quay %d", path, len(e), len(r))}
		}
		return compareShapes(path+"[0]", e[0], r[0])
	}
	return nil
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	}
	return fmt.Sprintf("%T", v)
}
