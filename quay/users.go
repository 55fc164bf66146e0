package quay

import (
	"context"
	"net/http"
)

// User is the logged-in user as GET /api/v1/user/ describes it (endpoints/api/user.py).
type User struct {
	Anonymous     bool               `json:"anonymous"`
	Username      string             `json:"username"`
	Email         string             `json:"email"`
	Verified      bool               `json:"verified"`
	SuperUser     bool               `json:"super_user"`
	CanCreateRepo bool               `json:"can_create_repo"`
	Organizations []UserOrganization `json:"organizations"`
}

// UserOrganization is one organization the user belongs to.
type UserOrganization struct {
	Name       string `json:"name"`
	IsOrgAdmin bool   `json:"is_org_admin"`
}

// GetUser returns the user the credential acts as. It needs the user:read
// scope and is the cheapest way to check that a credential works.
func (c *Client) GetUser(ctx context.Context) (*User, error) {
	var u User
	if err := c.do(ctx, request{route: "getLoggedInUser", method: http.MethodGet, path: "/api/v1/user/", idempotent: true}, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// InitializeUserRequest creates the first user of an empty Quay
// (FEATURE_USER_INITIALIZE, endpoints/web.py user_initialize).
type InitializeUserRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Email    string `json:"email,omitempty"`
	// AccessToken asks Quay for an OAuth token for the new user; it lives
	// 9000 seconds.
	AccessToken bool `json:"access_token"`
}

// InitializeUserResponse is Quay's answer to InitializeUser. AccessToken and
// EncryptedPassword are secrets.
type InitializeUserResponse struct {
	Username          string `json:"username"`
	Email             string `json:"email"`
	EncryptedPassword string `json:"encrypted_password"`
	AccessToken       string `json:"access_token"`
}

// InitializeUser creates the first user of an empty Quay. It is anonymous and
// not idempotent: a second call fails with "non-empty database".
func (c *Client) InitializeUser(ctx context.Context, in InitializeUserRequest) (*InitializeUserResponse, error) {
	var out InitializeUserResponse
	r := request{route: "initializeUser", method: http.MethodPost, path: "/api/v1/user/initialize", body: in, anonymous: true, secrets: []string{in.Password}}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ChangePassword sets the calling user's password (PUT /api/v1/user/, needs
// user:admin; Quay asks for no current password, endpoints/api/user.py). Existing
// OAuth tokens of the user stay valid.
func (c *Client) ChangePassword(ctx context.Context, password string) error {
	body := map[string]string{"password": password}
	r := request{route: "changeUserDetails", method: http.MethodPut, path: "/api/v1/user/", body: body, idempotent: true, secrets: []string{password}}
	return c.do(ctx, r, nil)
}
