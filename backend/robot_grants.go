package backend

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// Robot grants: what a robot of a role gets in Quay (repository permissions,
// team memberships, a default permission), how a role's grants are read and
// checked, prepared when the role is written, given to a robot and withdrawn
// from it.

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

// grantMapFields arrive as JSON objects from the API and as strings holding
// JSON from vault-config-operator and the CLI. No framework field type takes
// both, so the backend turns the strings into objects before the framework
// validates the request (normalizeGrantMaps), and the schema declares
// objects.
var grantMapFields = []string{"repositories", "teams"}

// normalizeGrantMaps rewrites repositories and teams given as strings into
// the objects they hold, on writes of roles and static roles. A string that
// holds no JSON object of strings is a 400 naming the field.
func normalizeGrantMaps(req *logical.Request) *logical.Response {
	if req.Operation != logical.CreateOperation && req.Operation != logical.UpdateOperation ||
		!strings.HasPrefix(req.Path, roleStoragePrefix) && !strings.HasPrefix(req.Path, staticRoleStoragePrefix) {
		return nil
	}
	var data map[string]any
	for _, field := range grantMapFields {
		raw, ok := req.Data[field].(string)
		if !ok {
			continue
		}
		m, err := parseStringMap(raw)
		if err != nil {
			return badField(field, "%s", err)
		}
		if data == nil {
			data = maps.Clone(req.Data)
		}
		object := make(map[string]any, len(m))
		for k, v := range m {
			object[k] = v
		}
		data[field] = object
	}
	if data != nil {
		req.Data = data
	}
	return nil
}

func robotGrantFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"repositories": {
			Type:        framework.TypeMap,
			Description: `repository name -> read, write or admin, e.g. {"app": "write"}: a JSON object, or a string holding one (as vault-config-operator and the CLI send it). At most 64.`,
		},
		"teams": {
			Type:        framework.TypeMap,
			Description: `team name -> member, creator or admin: the robot joins each team, which is created (or its role set) when the role is written. A JSON object, or a string holding one. Organizations only; at most 16.`,
		},
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

// apply merges the grant fields present in the request.
func (g *robotGrants) apply(d *framework.FieldData) *logical.Response {
	for _, field := range grantMapFields {
		raw, ok := d.GetOk(field)
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
	if nsType == string(quay.NamespaceUser) {
		owner, err := credentialOwner(ctx, client, cfg)
		if err != nil {
			return nil, nil, err
		}
		if nsName != owner {
			return nil, badField("namespace_name", "user robots live in the namespace of the user the root credential acts as (%q), not %q", owner, nsName), nil
		}
	}
	var existing map[string]quay.Team
	if nsType == string(quay.NamespaceOrganization) {
		org, resp, err := lookupOrganization(ctx, client, nsName)
		if resp != nil || err != nil {
			return nil, resp, err
		}
		existing = org.Teams
	}
	for _, team := range g.teams() {
		role := g.teamRole(team)
		if t, ok := existing[team]; ok {
			if t.Role == role {
				continue // robots may join any team; its role already fits
			}
			if t.Description != teamDescription {
				// A team of people: changing its role would change
				// theirs (an admin team makes every member an
				// organization admin). The engine changes only teams
				// it created.
				return nil, badField("teams", "team %q exists in Quay with role %q and was not created by the engine, which never changes it: ask for role %q, or name another team", team, t.Role, t.Role), nil
			}
		}
		if _, err := client.UpdateTeam(ctx, nsName, team, role, teamDescription); err != nil {
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

// grantRobot gives a robot what its grants say. A repository that does not
// exist yet is skipped with a warning, as redhat-cop's plugin did: the robot
// may be the one to create it (create_repositories). fresh says the robot was
// just created, so it cannot hold a default permission yet; otherwise an
// existing one is kept or corrected rather than duplicated.
func grantRobot(ctx context.Context, client *quay.Client, ns string, g robotGrants, username string, fresh bool) ([]string, error) {
	var warnings []string
	for _, repo := range slices.Sorted(maps.Keys(g.Repositories)) {
		err := client.SetUserPermission(ctx, ns, repo, username, g.Repositories[repo])
		if err == nil {
			continue
		}
		if missing, checkErr := repositoryMissing(ctx, client, ns, repo, err); checkErr == nil && missing {
			warnings = append(warnings, fmt.Sprintf("repository %s/%s does not exist; no permission was granted on it", ns, repo))
			continue
		}
		return nil, upstreamError(fmt.Sprintf("granting %s on %s/%s", g.Repositories[repo], ns, repo), err)
	}
	for _, team := range g.teams() {
		if err := addTeamMember(ctx, client, ns, team, g.teamRole(team), username); err != nil {
			return nil, upstreamError(fmt.Sprintf("adding the robot to team %s", team), err)
		}
	}
	if g.DefaultPermission != "" {
		if err := ensureDefaultPermission(ctx, client, ns, g.DefaultPermission, username, fresh); err != nil {
			return nil, upstreamError("creating the robot's default permission", err)
		}
	}
	return warnings, nil
}

// withdrawDroppedGrants takes from a long-lived robot what its role granted
// before and no longer lists: repository permissions, team memberships and
// the default permission. What is already gone in Quay (a permission removed
// by hand, a deleted repository or team) counts as withdrawn. Dynamic robots
// never need this: each lives with the grants it was created with.
func withdrawDroppedGrants(ctx context.Context, client *quay.Client, ns string, before, after robotGrants, username string) error {
	for _, repo := range slices.Sorted(maps.Keys(before.Repositories)) {
		if _, kept := after.Repositories[repo]; kept {
			continue
		}
		err := client.DeleteUserPermission(ctx, ns, repo, username)
		if err != nil && !quay.IsNoPermission(err) && !quay.IsNotFound(err) {
			return upstreamError(fmt.Sprintf("removing the robot's permission on %s/%s", ns, repo), err)
		}
	}
	kept := after.teams()
	for _, team := range before.teams() {
		if slices.Contains(kept, team) {
			continue
		}
		err := client.RemoveTeamMember(ctx, ns, team, username)
		if err != nil && !quay.IsNotTeamMember(err) && !quay.IsNotFound(err) {
			return upstreamError(fmt.Sprintf("removing the robot from team %s", team), err)
		}
	}
	if before.DefaultPermission != "" && after.DefaultPermission == "" {
		protos, err := client.ListPrototypes(ctx, ns)
		if err != nil {
			return upstreamError("listing default permissions", err)
		}
		for _, p := range protos {
			if p.Delegate.Name != username {
				continue
			}
			if err := client.DeletePrototype(ctx, ns, p.ID); err != nil && !quay.IsNotFound(err) {
				return upstreamError("removing the robot's default permission", err)
			}
		}
	}
	return nil
}

// ensureDefaultPermission gives the robot a default permission (prototype)
// with the given role in the organization.
func ensureDefaultPermission(ctx context.Context, client *quay.Client, org, role, username string, fresh bool) error {
	if !fresh {
		protos, err := client.ListPrototypes(ctx, org)
		if err != nil {
			return err
		}
		for _, p := range protos {
			if p.Delegate.Name != username {
				continue
			}
			if p.Role == role {
				return nil
			}
			if err := client.DeletePrototype(ctx, org, p.ID); err != nil && !quay.IsNotFound(err) {
				return err
			}
		}
	}
	_, err := client.CreatePrototype(ctx, org, role, quay.PrototypeUser{Name: username, Kind: "user"})
	return err
}

// repositoryMissing tells a permission failure caused by a missing repository
// (Quay answers those with a 400, 404 or even a 500, endpoints/api/permission.py) from any
// other. It asks Quay only on that failure path.
func repositoryMissing(ctx context.Context, client *quay.Client, ns, repo string, grantErr error) (bool, error) {
	switch quay.StatusOf(grantErr) {
	case 400, 404, 500:
	default:
		return false, nil
	}
	_, err := client.GetRepository(ctx, ns, repo)
	if quay.IsNotFound(err) {
		return true, nil
	}
	return false, err
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
