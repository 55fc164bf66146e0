package quay

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// MaxTokenExpiration is the longest expiration Quay grants an application
// token; longer requests are silently clamped (endpoints/api/organization_application_tokens.py).
const MaxTokenExpiration = 315576000 * time.Second

// ApplicationToken is an OAuth access token of an organization application
// (Quay 3.18+, endpoints/api/organization_application_tokens.py). Token holds the secret and is only set in the
// answer to CreateApplicationToken.
type ApplicationToken struct {
	UUID         string  `json:"uuid"`
	Name         string  `json:"name"`
	Scope        string  `json:"scope"`
	ExpiresAt    ISOTime `json:"expires_at"`
	Created      ISOTime `json:"created"`
	CreatedBy    string  `json:"created_by"`
	LastAccessed ISOTime `json:"last_accessed"`
	Token        string  `json:"token,omitempty"`
}

// Scopes returns the token's scopes as a list.
func (t ApplicationToken) Scopes() []string { return SplitScopes(t.Scope) }

// NewApplicationToken is the body of CreateApplicationToken.
type NewApplicationToken struct {
	Name   string
	Scopes []string
	// Expiration is rounded up to whole seconds; zero lets Quay apply its
	// default of ten years.
	Expiration time.Duration
}

func appTokensPath(org, clientID string) string {
	return applicationsPath(org) + "/" + escape(clientID) + "/tokens"
}

// CreateApplicationToken mints a token for the application. The token acts as
// the caller, with the requested scopes, which must be a subset of the
// caller's own. Quay answers 200 with the secret, once.
func (c *Client) CreateApplicationToken(ctx context.Context, org, clientID string, in NewApplicationToken) (*ApplicationToken, error) {
	if in.Name == "" {
		return nil, errors.New("quay: application token name is empty")
	}
	body := map[string]any{"name": in.Name, "scope": strings.Join(in.Scopes, " ")}
	if in.Expiration > 0 {
		body["expiration"] = int64(math.Ceil(min(in.Expiration, MaxTokenExpiration).Seconds()))
	}
	var tok ApplicationToken
	r := request{route: "createOrganizationApplicationToken", method: http.MethodPost, path: appTokensPath(org, clientID), body: body}
	if err := c.do(ctx, r, &tok); err != nil {
		return nil, err
	}
	if tok.UUID == "" || tok.Token == "" {
		return nil, r.incomplete("the token's uuid or secret")
	}
	return &tok, nil
}

// ListApplicationTokens returns the application's non-expired tokens (without
// secrets), following Quay's next_page cursor through every page.
func (c *Client) ListApplicationTokens(ctx context.Context, org, clientID string) ([]ApplicationToken, error) {
	var all []ApplicationToken
	err := eachPage(ctx, func(cursor string) (string, error) {
		var page struct {
			Tokens   []ApplicationToken `json:"tokens"`
			NextPage string             `json:"next_page"`
		}
		r := request{route: "listOrganizationApplicationTokens", method: http.MethodGet, path: appTokensPath(org, clientID), idempotent: true}
		if cursor != "" {
			r.query = url.Values{"next_page": {cursor}}
		}
		if err := c.do(ctx, r, &page); err != nil {
			return "", err
		}
		all = append(all, page.Tokens...)
		return page.NextPage, nil
	})
	if err != nil {
		return nil, err
	}
	return all, nil
}

// DeleteApplicationToken revokes a token. Quay answers 404 when it does not
// exist (any more); callers that treat "gone" as success check IsNotFound.
func (c *Client) DeleteApplicationToken(ctx context.Context, org, clientID, tokenUUID string) error {
	r := request{route: "deleteOrganizationApplicationToken", method: http.MethodDelete, path: appTokensPath(org, clientID) + "/" + escape(tokenUUID), idempotent: true}
	return c.do(ctx, r, nil)
}
