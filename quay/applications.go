package quay

import (
	"context"
	"net/http"
)

// Application is an OAuth application of an organization (app_view,
// endpoints/api/organization.py). ClientSecret is a secret and is only filled for org admins.
type Application struct {
	Name           string `json:"name"`
	Description    string `json:"description"`
	ApplicationURI string `json:"application_uri"`
	ClientID       string `json:"client_id"`
	ClientSecret   string `json:"client_secret"`
	RedirectURI    string `json:"redirect_uri"`
	AvatarEmail    string `json:"avatar_email"`
}

// NewApplication is the body of CreateApplication.
type NewApplication struct {
	Name           string `json:"name"`
	Description    string `json:"description,omitempty"`
	ApplicationURI string `json:"application_uri,omitempty"`
	RedirectURI    string `json:"redirect_uri,omitempty"`
}

func applicationsPath(org string) string {
	return "/api/v1/organization/" + escape(org) + "/applications"
}

// ListApplications lists the organization's OAuth applications.
func (c *Client) ListApplications(ctx context.Context, org string) ([]Application, error) {
	var out struct {
		Applications []Application `json:"applications"`
	}
	if err := c.do(ctx, request{route: "getOrganizationApplications", method: http.MethodGet, path: applicationsPath(org), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out.Applications, nil
}

// CreateApplication creates an OAuth application in the organization.
func (c *Client) CreateApplication(ctx context.Context, org string, in NewApplication) (*Application, error) {
	var app Application
	if err := c.do(ctx, request{route: "createOrganizationApplication", method: http.MethodPost, path: applicationsPath(org), body: in}, &app); err != nil {
		return nil, err
	}
	return &app, nil
}

// GetApplication returns one application, or a 404 *Error.
func (c *Client) GetApplication(ctx context.Context, org, clientID string) (*Application, error) {
	var app Application
	r := request{route: "getOrganizationApplication", method: http.MethodGet, path: applicationsPath(org) + "/" + escape(clientID), idempotent: true}
	if err := c.do(ctx, r, &app); err != nil {
		return nil, err
	}
	return &app, nil
}

// DeleteApplication deletes an application and, in Quay, all its tokens.
func (c *Client) DeleteApplication(ctx context.Context, org, clientID string) error {
	r := request{route: "deleteOrganizationApplication", method: http.MethodDelete, path: applicationsPath(org) + "/" + escape(clientID), idempotent: true}
	return c.do(ctx, r, nil)
}
