package backend

import (
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// repositoryNameRule accepts Quay repository names, nested ones included.
var repositoryNameRule = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$`)

// creatorTeam is the team redhat-cop/vault-plugin-secrets-quay joins robots to
// for create_repositories; kept so its roles behave the same.
const creatorTeam = "vault-creator"

// robotGrants is what a robot gets, for dynamic and static roles alike. The
// field names are redhat-cop/vault-plugin-secrets-quay's.
type robotGrants struct {
	Repositories       map[string]string `json:"repositories,omitempty"`
	Teams              map[string]string `json:"teams,omitempty"`
	DefaultPermission  string            `json:"default_permission,omitempty"`
	CreateRepositories bool              `json:"create_repositories,omitempty"`
	Description        string            `json:"description,omitempty"`
}

// rawGrantFields are read from the raw request: they arrive as JSON objects
// from the API and as strings holding JSON from vault-config-operator and the
// CLI, and no framework field type accepts both (the framework validates
// every declared field before the handler runs). They are therefore not
// declared in the schema; the paths set TakesArbitraryInput and warn about
// unknown fields themselves.
var rawGrantFields = []string{"repositories", "teams"}

func robotGrantFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"default_permission": {
			Type:          framework.TypeString,
			Description:   "a default permission (read, write, admin) the robot gets on every repository created in the organization from now on.",
			AllowedValues: []any{"", quay.RoleRead, quay.RoleWrite, quay.RoleAdmin},
		},
		"create_repositories": {
			Type:        framework.TypeBool,
			Description: `let the robot create repositories in the organization (it joins the team "vault-creator" with the creator role).`,
		},
		"description": {
			Type:        framework.TypeString,
			Description: "text added to each robot's description in Quay, after the engine's marker and the role's name (Quay keeps at most 255 characters in all; a write says how many are left).",
		},
	}
}

// apply merges the grant fields present in the request. teams and
// repositories are read raw: they arrive as JSON objects from the API and as
// strings holding JSON from vault-config-operator and the CLI.
func (g *robotGrants) apply(d *framework.FieldData) *logical.Response {
	for _, field := range rawGrantFields {
		raw, ok := d.Raw[field]
		if !ok {
			continue
		}
		m, err := parseStringMap(raw)
		if err != nil {
			return badField(field, "%s", err)
		}
		if field == "repositories" {
			g.Repositories = m
		} else {
			g.Teams = m
		}
	}
	if v, ok := d.GetOk("default_permission"); ok {
		g.DefaultPermission = strings.TrimSpace(v.(string))
	}
	if v, ok := d.GetOk("create_repositories"); ok {
		g.CreateRepositories = v.(bool)
	}
	if v, ok := d.GetOk("description"); ok {
		g.Description = strings.TrimSpace(v.(string))
	}
	return nil
}

// set reports which grant fields hold a value, for roles that take none.
func (g robotGrants) set() []string {
	var fields []string
	if len(g.Repositories) > 0 {
		fields = append(fields, "repositories")
	}
	if len(g.Teams) > 0 {
		fields = append(fields, "teams")
	}
	if g.DefaultPermission != "" {
		fields = append(fields, "default_permission")
	}
	if g.CreateRepositories {
		fields = append(fields, "create_repositories")
	}
	if g.Description != "" {
		fields = append(fields, "description")
	}
	return fields
}

// Bounds on what one role grants. Each grant is one Quay call when a robot
// is issued (one to create it, one per repository, one per team, one for
// the default permission), so they bound a creds read's Quay calls and
// time: at most 1 + 64 + 17 + 1 = 83 calls.
const (
	maxRoleRepositories = 64
	maxRoleTeams        = 16
)

// validate checks the grants for a robot in a namespace of type nsType.
func (g robotGrants) validate(nsType string) *logical.Response {
	if len(g.Repositories) > maxRoleRepositories {
		return badField("repositories", "at most %d per role (each is a Quay call when a robot is issued), got %d; grant a team's repository permissions and list the team instead", maxRoleRepositories, len(g.Repositories))
	}
	if len(g.Teams) > maxRoleTeams {
		return badField("teams", "at most %d per role (each is a Quay call when a robot is issued), got %d", maxRoleTeams, len(g.Teams))
	}
	for _, repo := range slices.Sorted(maps.Keys(g.Repositories)) {
		perm := g.Repositories[repo]
		if !repositoryNameRule.MatchString(repo) || len(repo) > 255 {
			return badField("repositories", "%q is not a valid Quay repository name", repo)
		}
		if !slices.Contains([]string{quay.RoleRead, quay.RoleWrite, quay.RoleAdmin}, perm) {
			return badField("repositories", "repository %q: permission must be read, write or admin, got %q", repo, perm)
		}
	}
	for _, team := range slices.Sorted(maps.Keys(g.Teams)) {
		if !validQuayName(team) {
			return badField("teams", "%q is not a valid Quay team name", team)
		}
		if !slices.Contains([]string{quay.TeamRoleMember, quay.TeamRoleCreator, quay.TeamRoleAdmin}, g.Teams[team]) {
			return badField("teams", "team %q: role must be member, creator or admin, got %q", team, g.Teams[team])
		}
	}
	if g.DefaultPermission != "" && !slices.Contains([]string{quay.RoleRead, quay.RoleWrite, quay.RoleAdmin}, g.DefaultPermission) {
		return badField("default_permission", "must be read, write or admin, got %q", g.DefaultPermission)
	}
	if nsType == string(quay.NamespaceUser) {
		switch {
		case len(g.Teams) > 0:
			return badField("teams", "teams exist only in organizations; namespace_type is \"user\"")
		case g.DefaultPermission != "":
			return badField("default_permission", "default permissions exist only in organizations; namespace_type is \"user\"")
		case g.CreateRepositories:
			return badField("create_repositories", "needs an organization team; namespace_type is \"user\"")
		}
	}
	return nil
}

// validateDescription checks that every robot a role of kind creates will
// have a description Quay accepts: the engine's marker and the role's name
// come first, and Quay refuses (does not truncate) more than 255 characters.
func (g robotGrants) validateDescription(mountID, kind, role string) *logical.Response {
	if robotDescriptionFits(mountID, kind, role, g.Description) {
		return nil
	}
	room := maxRobotDescription(mountID, kind, role)
	if room < 0 {
		return badField("name", "is too long: robots carry the role's name in their description, which Quay limits to %d characters", quayMaxDescription)
	}
	return badField("description", "must be at most %d characters for this role: Quay limits robot descriptions to %d, and the engine's marker and the role's name take the rest", room, quayMaxDescription)
}

// teams lists the teams the robot joins, creatorTeam included.
func (g robotGrants) teams() []string {
	teams := slices.Sorted(maps.Keys(g.Teams))
	if g.CreateRepositories && g.Teams[creatorTeam] == "" {
		teams = append(teams, creatorTeam)
	}
	return teams
}

// teamRole is the role a team the robot joins should have.
func (g robotGrants) teamRole(team string) string {
	if role, ok := g.Teams[team]; ok {
		return role
	}
	return quay.TeamRoleCreator // creatorTeam
}
