package quay

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// Team roles in an organization.
const (
	TeamRoleMember  = "member"
	TeamRoleCreator = "creator"
	TeamRoleAdmin   = "admin"
)

// Team is the subset of Quay's team view the plugin reads.
type Team struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Role        string `json:"role"`
}

func teamPath(org, team string) string {
	return "/api/v1/organization/" + escape(org) + "/team/" + escape(team)
}

// UpdateTeam creates a team or updates its role (needs org:admin).
func (c *Client) UpdateTeam(ctx context.Context, org, team, role, description string) (*Team, error) {
	body := map[string]string{"role": role}
	if description != "" {
		body["description"] = description
	}
	var t Team
	if err := c.do(ctx, request{route: "updateOrganizationTeam", method: http.MethodPut, path: teamPath(org, team), body: body, idempotent: true}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// AddTeamMember adds a user or robot to a team. Quay answers 400 when the
// member already belongs to it; see IsAlreadyTeamMember.
func (c *Client) AddTeamMember(ctx context.Context, org, team, member string) error {
	r := request{route: "updateOrganizationTeamMember", method: http.MethodPut, path: teamPath(org, team) + "/members/" + escape(member), idempotent: true}
	return c.do(ctx, r, nil)
}

// RemoveTeamMember removes a user or robot from a team.
func (c *Client) RemoveTeamMember(ctx context.Context, org, team, member string) error {
	r := request{route: "deleteOrganizationTeamMember", method: http.MethodDelete, path: teamPath(org, team) + "/members/" + escape(member), idempotent: true}
	return c.do(ctx, r, nil)
}

// IsNotTeamMember reports Quay's 400 "User X does not belong to team Y"
// from removing someone who is not a member.
func IsNotTeamMember(err error) bool {
	var qe *Error
	return errors.As(err, &qe) && qe.StatusCode == http.StatusBadRequest && strings.Contains(qe.Message, "does not belong to team")
}

// IsAlreadyTeamMember reports Quay's 400 "User X is already a member of team Y".
func IsAlreadyTeamMember(err error) bool {
	var qe *Error
	return errors.As(err, &qe) && qe.StatusCode == http.StatusBadRequest && strings.Contains(qe.Message, "is already a member of team")
}
