package quay

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// Repository roles Quay grants to users, robots and teams.
const (
	RoleRead  = "read"
	RoleWrite = "write"
	RoleAdmin = "admin"
)

func repoPermissionPath(namespace, repo, kind, name string) string {
	return "/api/v1/repository/" + escape(namespace) + "/" + escape(repo) + "/permissions/" + kind + "/" + escape(name)
}

// SetUserPermission grants a user or robot a role on a repository (needs
// repo:admin). It is an upsert. Robots can only be granted repositories of
// their own namespace; Quay answers 400 "Cannot add robot …" otherwise.
func (c *Client) SetUserPermission(ctx context.Context, namespace, repo, username, role string) error {
	r := request{route: "changeUserPermissions", method: http.MethodPut, path: repoPermissionPath(namespace, repo, "user", username),
		body: map[string]string{"role": role}, idempotent: true}
	return c.do(ctx, r, nil)
}

// DeleteUserPermission removes a user's or robot's role on a repository.
func (c *Client) DeleteUserPermission(ctx context.Context, namespace, repo, username string) error {
	r := request{route: "deleteUserPermissions", method: http.MethodDelete, path: repoPermissionPath(namespace, repo, "user", username), idempotent: true}
	return c.do(ctx, r, nil)
}

// IsNoPermission reports Quay's 400 "User does not have permission for
// repo." from removing a permission that is not there.
func IsNoPermission(err error) bool {
	var qe *Error
	return errors.As(err, &qe) && qe.StatusCode == http.StatusBadRequest && strings.Contains(qe.Message, "does not have permission for repo")
}

// SetTeamPermission grants a team a role on a repository.
func (c *Client) SetTeamPermission(ctx context.Context, namespace, repo, team, role string) error {
	r := request{route: "changeTeamPermissions", method: http.MethodPut, path: repoPermissionPath(namespace, repo, "team", team),
		body: map[string]string{"role": role}, idempotent: true}
	return c.do(ctx, r, nil)
}
