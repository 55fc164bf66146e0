package quay

import (
	"context"
	"net/http"
)

// Organization is the subset of Quay's organization view the plugin reads.
type Organization struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	IsAdmin  bool   `json:"is_admin"`
	IsMember bool   `json:"is_member"`
	// Teams are the organization's teams by name, listed to its members
	// only (endpoints/api/organization.py org_view).
	Teams map[string]Team `json:"teams,omitempty"`
}

// GetOrganization returns an organization, or a 404 *Error.
func (c *Client) GetOrganization(ctx context.Context, name string) (*Organization, error) {
	var o Organization
	r := request{route: "getOrganization", method: http.MethodGet, path: "/api/v1/organization/" + escape(name), idempotent: true}
	if err := c.do(ctx, r, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// CreateOrganization creates an organization owned by the caller (needs
// user:admin). Quay answers 201 with the JSON string "Created"; an existing
// name is a 400.
func (c *Client) CreateOrganization(ctx context.Context, name, email string) error {
	body := map[string]string{"name": name}
	if email != "" {
		body["email"] = email
	}
	return c.do(ctx, request{route: "createOrganization", method: http.MethodPost, path: "/api/v1/organization/", body: body}, nil)
}
