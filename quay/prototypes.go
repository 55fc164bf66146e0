package quay

import (
	"context"
	"net/http"
)

// Prototype is an organization's default permission: a role a delegate (user,
// robot or team) gets on every repository created in the organization.
type Prototype struct {
	ID       string        `json:"id"`
	Role     string        `json:"role"`
	Delegate PrototypeUser `json:"delegate"`
}

// PrototypeUser names a prototype delegate. Robots are delegates of kind "user".
type PrototypeUser struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	IsRobot bool   `json:"is_robot,omitempty"`
}

func prototypesPath(org string) string {
	return "/api/v1/organization/" + escape(org) + "/prototypes"
}

// ListPrototypes lists an organization's default permissions.
func (c *Client) ListPrototypes(ctx context.Context, org string) ([]Prototype, error) {
	var out struct {
		Prototypes []Prototype `json:"prototypes"`
	}
	if err := c.do(ctx, request{route: "getOrganizationPrototypePermissions", method: http.MethodGet, path: prototypesPath(org), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out.Prototypes, nil
}

// CreatePrototype gives delegate a default role on every new repository of
// the organization.
func (c *Client) CreatePrototype(ctx context.Context, org, role string, delegate PrototypeUser) (*Prototype, error) {
	body := map[string]any{"role": role, "delegate": map[string]string{"name": delegate.Name, "kind": delegate.Kind}}
	var p Prototype
	if err := c.do(ctx, request{route: "createOrganizationPrototypePermission", method: http.MethodPost, path: prototypesPath(org), body: body}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// DeletePrototype removes a default permission.
func (c *Client) DeletePrototype(ctx context.Context, org, id string) error {
	r := request{route: "deleteOrganizationPrototypePermission", method: http.MethodDelete, path: prototypesPath(org) + "/" + escape(id), idempotent: true}
	return c.do(ctx, r, nil)
}
