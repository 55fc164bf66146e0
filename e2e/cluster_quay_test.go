//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// What is in Quay, looked at from outside Vault (an inspection token minted
// through the emulator's control API), so the cluster tests and the soak can
// tell owned credentials from orphans.

// quayInventory is every credential the engine may have created.
type quayInventory struct {
	// Robots are the organization's robots (namespace+short).
	Robots []string
	// OAuthTokens are the UUIDs of the tokens of the engine's managed
	// applications in the organization.
	OAuthTokens []string
	// OAuthNames names each of OAuthTokens (Quay's token name, which the
	// engine's logs and write-ahead entries carry).
	OAuthNames map[string]string
	// RootTokens are the UUIDs of the tokens of the engine's root
	// application(s) in the root organization.
	RootTokens []string
}

// inventory lists org's robots and the engine's tokens in org and rootOrg.
func (e *Emulator) inventory(t testing.TB, insp, org, rootOrg string) quayInventory {
	t.Helper()
	inv := quayInventory{OAuthNames: map[string]string{}}
	code, body := e.Do(t, http.MethodGet, "/api/v1/organization/"+org+"/robots?token=false", insp, nil)
	if code != http.StatusOK {
		t.Fatalf("listing robots of %s: %d %s", org, code, body)
	}
	var robots struct {
		Robots []struct{ Name string } `json:"robots"`
	}
	must(t, json.Unmarshal(body, &robots))
	for _, r := range robots.Robots {
		inv.Robots = append(inv.Robots, r.Name)
	}
	for _, a := range e.applications(t, insp, org) {
		if strings.HasPrefix(a.Name, "vault-secrets-quay") && !strings.HasSuffix(a.Name, "-root") {
			for _, tok := range e.appTokensAs(t, insp, org, a.ClientID) {
				inv.OAuthTokens = append(inv.OAuthTokens, tok.UUID)
				inv.OAuthNames[tok.UUID] = tok.Name
			}
		}
	}
	if rootOrg != "" {
		inv.RootTokens = e.rootTokenIDs(t, insp, rootOrg)
	}
	sort.Strings(inv.Robots)
	sort.Strings(inv.OAuthTokens)
	sort.Strings(inv.RootTokens)
	return inv
}

type quayApplication struct {
	Name     string `json:"name"`
	ClientID string `json:"client_id"`
}

func (e *Emulator) applications(t testing.TB, insp, org string) []quayApplication {
	t.Helper()
	code, body := e.Do(t, http.MethodGet, "/api/v1/organization/"+org+"/applications", insp, nil)
	if code == http.StatusNotFound {
		return nil
	}
	if code != http.StatusOK {
		t.Fatalf("listing applications of %s: %d %s", org, code, body)
	}
	var apps struct {
		Applications []quayApplication `json:"applications"`
	}
	must(t, json.Unmarshal(body, &apps))
	return apps.Applications
}

// ownership is what Vault owns in Quay: robots and OAuth token UUIDs of
// live leases and static roles, and the root token the config names.
type ownership struct {
	Robots      map[string]bool
	OAuthTokens map[string]bool
	RootToken   string
}

func newOwnership() ownership {
	return ownership{Robots: map[string]bool{}, OAuthTokens: map[string]bool{}}
}

// orphans compares the inventory with what Vault owns: credentials in Quay
// nothing owns, and owned credentials missing from Quay.
func (inv quayInventory) orphans(own ownership) (orphans, missing []string) {
	seen := map[string]bool{}
	for _, r := range inv.Robots {
		seen["robot "+r] = true
		if !own.Robots[r] {
			orphans = append(orphans, "robot "+r)
		}
	}
	for _, id := range inv.OAuthTokens {
		seen["oauth "+id] = true
		if !own.OAuthTokens[id] {
			orphans = append(orphans, "oauth token "+id)
		}
	}
	for _, id := range inv.RootTokens {
		if id != own.RootToken {
			orphans = append(orphans, "root token "+id)
		}
	}
	for r := range own.Robots {
		if !seen["robot "+r] {
			missing = append(missing, "robot "+r)
		}
	}
	for id := range own.OAuthTokens {
		if !seen["oauth "+id] {
			missing = append(missing, "oauth token "+id)
		}
	}
	if own.RootToken != "" && !slices.Contains(inv.RootTokens, own.RootToken) {
		missing = append(missing, "root token "+own.RootToken)
	}
	sort.Strings(orphans)
	sort.Strings(missing)
	return orphans, missing
}

// robotLogin is a registry login (GET /v2/auth with Basic credentials), what
// docker login does: 200 when Quay accepts the robot's password.
func (e *Emulator) robotLogin(t testing.TB, username, password string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	host := strings.TrimPrefix(strings.TrimPrefix(e.URL, "http://"), "https://")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/v2/auth?service="+host, nil)
	must(t, err)
	req.SetBasicAuth(username, password)
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatalf("GET /v2/auth as %s: %v", username, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// callTimes records when the emulator's per-route counters move, by polling
// them, so tests can tell when (not only how often) a scheduled job ran.
type callTimes struct {
	routes map[string][]time.Time
	last   map[string]int
}

func newCallTimes() *callTimes {
	return &callTimes{routes: map[string][]time.Time{}, last: map[string]int{}}
}

// poll reads the counters once; each increase is recorded at now.
func (c *callTimes) poll(t testing.TB, e *Emulator, routes ...string) {
	t.Helper()
	counts := e.Control.Calls(t)
	now := time.Now()
	for _, r := range routes {
		for n := c.last[r]; n < counts[r]; n++ {
			c.routes[r] = append(c.routes[r], now)
		}
		c.last[r] = counts[r]
	}
}

// describe formats a route's call times relative to start.
func (c *callTimes) describe(route string, start time.Time) string {
	var parts []string
	for _, at := range c.routes[route] {
		parts = append(parts, fmt.Sprintf("+%s", at.Sub(start).Round(time.Second)))
	}
	return route + ": [" + strings.Join(parts, " ") + "]"
}
