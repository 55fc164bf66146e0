package backend

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// prepareRobotGrants runs when a robot role or static role is written: it checks the namespace
// against the root credential and creates or updates the role's teams, so
// that issuing a robot only adds it to them. Teams that go missing later are
// recreated at issue time. Without a config yet (vault-config-operator may
// write roles first) the checks wait for the first creds read.
func (b *backend) prepareRobotGrants(ctx context.Context, req *logical.Request, nsType, nsName string, g robotGrants) ([]string, *logical.Response, error) {
	client, cfg, err := b.client(ctx, req.Storage)
	if err == errNotConfigured {
		return []string{"config is not written yet: teams are created at the first creds read"}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if nsType == string(quay.NamespaceUser) && cfg.TokenOwner != "" && nsName != cfg.TokenOwner {
		return nil, badField("namespace_name", "user robots live in the namespace of the user the root credential acts as (%q), not %q", cfg.TokenOwner, nsName), nil
	}
	if nsType == string(quay.NamespaceOrganization) {
		if resp, err := organizationMustExist(ctx, client, nsName); resp != nil || err != nil {
			return nil, resp, err
		}
	}
	for _, team := range g.teams() {
		if _, err := client.UpdateTeam(ctx, nsName, team, g.teamRole(team), teamDescription); err != nil {
			switch {
			case quay.IsNotFound(err):
				return nil, badField("namespace_name", "Quay has no organization %q", nsName), nil
			case quay.IsForbidden(err):
				return nil, badField("teams", "the root credential may not manage teams of %q (%s): it needs org:admin", nsName, quayReason(err)), nil
			case quay.StatusOf(err) == 400:
				return nil, badField("teams", "Quay refused team %q: %s", team, quayReason(err)), nil
			default:
				return nil, nil, upstreamError(fmt.Sprintf("creating team %s", team), err)
			}
		}
	}
	var warnings []string
	if len(g.Repositories) > 0 {
		for repo := range g.Repositories {
			if _, err := client.GetRepository(ctx, nsName, repo); quay.IsNotFound(err) {
				warnings = append(warnings, fmt.Sprintf("repository %s/%s does not exist yet; robots get no permission on it until it does", nsName, repo))
			}
		}
	}
	if len(warnings) > 1 {
		warnings = []string{strings.Join(warnings, "; ")}
	}
	return warnings, nil, nil
}

// addTeamMember adds a member, creating the team when it went missing since
// the role was written; "already a member" is success.
func addTeamMember(ctx context.Context, client *quay.Client, org, team, teamRole, member string) error {
	err := client.AddTeamMember(ctx, org, team, member)
	if quay.IsNotFound(err) {
		if _, err := client.UpdateTeam(ctx, org, team, teamRole, teamDescription); err != nil {
			return err
		}
		err = client.AddTeamMember(ctx, org, team, member)
	}
	if err == nil || quay.IsAlreadyTeamMember(err) {
		return nil
	}
	return err
}

// organizationMustExist answers a role naming an organization Quay does not
// have with a 400 that says so. Without it a typo passes: Quay answers the
// later calls for a missing organization with 403 insufficient_scope
// (its permission checks run first), which reads as a rights problem.
func organizationMustExist(ctx context.Context, client *quay.Client, org string) (*logical.Response, error) {
	_, err := client.GetOrganization(ctx, org)
	switch {
	case err == nil:
		return nil, nil
	case quay.IsNotFound(err):
		return badField("namespace_name", "Quay has no organization %q: create it first (the engine does not)", org), nil
	default:
		return nil, upstreamError("looking up organization "+org, err)
	}
}
