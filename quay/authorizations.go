package quay

import (
	"context"
	"net/http"
)

// Authorization is one OAuth token granted to the calling user, as Quay's
// internal GET /api/v1/user/authorizations lists it. Quay does not say which
// token the caller itself is using, nor the application's client ID: only
// its name and organization.
type Authorization struct {
	UUID        string `json:"uuid"`
	Application struct {
		Name         string `json:"name"`
		Organization struct {
			Name string `json:"name"`
		} `json:"organization"`
	} `json:"application"`
	Scopes []struct {
		Scope string `json:"scope"`
	} `json:"scopes"`
}

// ListAuthorizations lists the OAuth tokens granted to the calling user
// (needs user:admin). Tokens minted through the application-token API act as
// their minting user, so they appear here too.
func (c *Client) ListAuthorizations(ctx context.Context) ([]Authorization, error) {
	var out struct {
		Authorizations []Authorization `json:"authorizations"`
	}
	r := request{route: "listUserAuthorizations", method: http.MethodGet, path: "/api/v1/user/authorizations", idempotent: true}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return out.Authorizations, nil
}

// DeleteAuthorization revokes one of the calling user's OAuth tokens.
func (c *Client) DeleteAuthorization(ctx context.Context, uuid string) error {
	r := request{route: "deleteUserAuthorization", method: http.MethodDelete, path: "/api/v1/user/authorizations/" + escape(uuid), idempotent: true}
	return c.do(ctx, r, nil)
}

// PublicApplication is what GET /api/v1/app/{client_id} tells anyone about an
// application.
type PublicApplication struct {
	Name         string `json:"name"`
	Organization struct {
		Name string `json:"name"`
	} `json:"organization"`
}

// GetPublicApplication looks up an application's name and organization by
// client ID.
func (c *Client) GetPublicApplication(ctx context.Context, clientID string) (*PublicApplication, error) {
	var app PublicApplication
	r := request{route: "getApplicationInformation", method: http.MethodGet, path: "/api/v1/app/" + escape(clientID), idempotent: true}
	if err := c.do(ctx, r, &app); err != nil {
		return nil, err
	}
	return &app, nil
}
