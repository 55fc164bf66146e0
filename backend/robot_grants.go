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
			Description:   "read, write or admin on every repository of the organization: those it has when a robot is issued (or a static robot granted) and, through a default permission, those created later. repositories overrides it per repository. Each existing repository costs a Quay call per robot issued.",
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
// time: at most 1 + 64 + 17 + 1 = 83 calls. A default permission adds what
// the organization holds, which no role bounds: one call per 100 of its
// repositories to list them and one per repository to grant it (see
// grantRobot; docs/robot-roles.md says so).
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

// grantOutcome is what granting found beyond the plan.
type grantOutcome struct {
	// warnings name repositories the role lists that Quay does not have.
	warnings []string
	// restored says what a long-lived robot lacked and was given again
	// (empty for a fresh robot, which lacks everything by definition).
	restored []string
}

// grantRobot gives the robot short in ns what its grants say: the role of
// each repository the grants name, and, with a default permission, that role
// on every other repository the organization has now (as redhat-cop's plugin
// did) and, through a default permission (prototype), on those created later;
// its teams; the default permission itself. A repository the grants name that
// does not exist yet is skipped with a warning: the robot may be the one to
// create it (create_repositories).
//
// fresh says the robot was just created and holds nothing yet. A robot that
// lived before has its repository permissions read first (one call), so that
// only what differs is set, and what it lacked is reported in restored.
//
// Quay calls: one per 100 repositories of the organization to list them
// (only with a default permission), one to read a living robot's permissions,
// one per repository to set, one per team, and for the default permission
// one to create it (a living robot: one more to list the organization's).
func grantRobot(ctx context.Context, client *quay.Client, ns quay.Namespace, short string, g robotGrants, fresh bool) (grantOutcome, error) {
	var out grantOutcome
	username := ns.RobotUsername(short)
	want, err := wantedRepositoryRoles(ctx, client, ns.Name, g)
	if err != nil {
		return out, upstreamError("listing the repositories of "+ns.Name+" for default_permission", err)
	}
	held, known := map[string]string{}, fresh
	if !fresh && len(want) > 0 {
		if held, known, err = heldRepositoryRoles(ctx, client, ns, short); err != nil {
			return out, err
		}
	}
	for _, repo := range slices.Sorted(maps.Keys(want)) {
		role := want[repo]
		if known && held[repo] == role {
			continue
		}
		err := client.SetUserPermission(ctx, ns.Name, repo, username, role)
		if err != nil {
			if missing, checkErr := repositoryMissing(ctx, client, ns.Name, repo, err); checkErr == nil && missing {
				if _, named := g.Repositories[repo]; named {
					out.warnings = append(out.warnings, fmt.Sprintf("repository %s/%s does not exist; no permission was granted on it", ns.Name, repo))
				}
				// Otherwise a repository deleted since it was listed:
				// there is nothing to grant on it.
				continue
			}
			return out, upstreamError(fmt.Sprintf("granting %s on %s/%s", role, ns.Name, repo), err)
		}
		if !fresh && known {
			restored := fmt.Sprintf("%s on %s/%s", role, ns.Name, repo)
			if was := held[repo]; was != "" {
				restored += " (it held " + was + ")"
			}
			out.restored = append(out.restored, restored)
		}
	}
	for _, team := range g.teams() {
		added, err := addTeamMember(ctx, client, ns.Name, team, g.teamRole(team), username)
		if err != nil {
			return out, upstreamError(fmt.Sprintf("adding the robot to team %s", team), err)
		}
		if added && !fresh {
			out.restored = append(out.restored, "membership of team "+team)
		}
	}
	if g.DefaultPermission != "" {
		created, err := ensureDefaultPermission(ctx, client, ns.Name, g.DefaultPermission, username, fresh)
		if err != nil {
			return out, upstreamError("creating the robot's default permission", err)
		}
		if created && !fresh {
			out.restored = append(out.restored, "default permission "+g.DefaultPermission+" on new repositories of "+ns.Name)
		}
	}
	return out, nil
}

// wantedRepositoryRoles is the role the robot should hold on each
// repository: the grants' own, and, with a default permission, that role on
// every other repository the organization has now (an explicit role wins, as
// it did in redhat-cop's plugin). Listing the organization's repositories is
// one Quay call per 100 (endpoints/api/repository.py pages them).
func wantedRepositoryRoles(ctx context.Context, client *quay.Client, org string, g robotGrants) (map[string]string, error) {
	want := make(map[string]string, len(g.Repositories))
	maps.Copy(want, g.Repositories)
	if g.DefaultPermission == "" {
		return want, nil
	}
	repos, err := client.ListRepositories(ctx, org)
	if err != nil {
		return nil, err
	}
	for _, r := range repos {
		if _, named := want[r.Name]; !named && r.Namespace == org {
			want[r.Name] = g.DefaultPermission
		}
	}
	return want, nil
}

// withdrawDroppedGrants takes from a long-lived robot what its role granted
// before and no longer lists: repository permissions, team memberships and
// the default permission, together with the permissions it gave on the
// organization's repositories. grantRobot has already given what the role
// grants now. What is already gone in Quay (a permission removed by hand, a
// deleted repository or team) counts as withdrawn. Dynamic robots never need
// this: each lives with the grants it was created with.
func withdrawDroppedGrants(ctx context.Context, client *quay.Client, ns quay.Namespace, short string, before, after robotGrants) error {
	username := ns.RobotUsername(short)
	var dropped []string
	switch {
	case after.DefaultPermission != "":
		// Every repository of the organization is granted now.
	case before.DefaultPermission != "":
		// The default permission covered every repository: all the
		// robot holds beyond the role's own repositories goes.
		held, known, err := heldRepositoryRoles(ctx, client, ns, short)
		if err != nil {
			return err
		}
		if !known {
			// Every repository of the organization, then.
			if held, err = wantedRepositoryRoles(ctx, client, ns.Name, before); err != nil {
				return upstreamError("listing the repositories of "+ns.Name, err)
			}
		}
		for repo := range held {
			if _, kept := after.Repositories[repo]; !kept {
				dropped = append(dropped, repo)
			}
		}
	default:
		for repo := range before.Repositories {
			if _, kept := after.Repositories[repo]; !kept {
				dropped = append(dropped, repo)
			}
		}
	}
	slices.Sort(dropped)
	for _, repo := range dropped {
		err := client.DeleteUserPermission(ctx, ns.Name, repo, username)
		if err != nil && !quay.IsNoPermission(err) && !quay.IsNotFound(err) {
			return upstreamError(fmt.Sprintf("removing the robot's permission on %s/%s", ns.Name, repo), err)
		}
	}
	kept := after.teams()
	for _, team := range before.teams() {
		if slices.Contains(kept, team) {
			continue
		}
		err := client.RemoveTeamMember(ctx, ns.Name, team, username)
		if err != nil && !quay.IsNotTeamMember(err) && !quay.IsNotFound(err) {
			return upstreamError(fmt.Sprintf("removing the robot from team %s", team), err)
		}
	}
	if before.DefaultPermission != "" && after.DefaultPermission == "" {
		protos, err := client.ListPrototypes(ctx, ns.Name)
		if err != nil {
			return upstreamError("listing default permissions", err)
		}
		for _, p := range protos {
			if p.Delegate.Name != username {
				continue
			}
			if err := client.DeletePrototype(ctx, ns.Name, p.ID); err != nil && !quay.IsNotFound(err) {
				return upstreamError("removing the robot's default permission", err)
			}
		}
	}
	return nil
}

// heldRepositoryRoles reads the repository permissions a robot holds
// directly. Quay lists them only to a credential with user:admin
// (endpoints/api/robot.py, require_user_admin); without it, known is false and
// the caller sets (or removes) every permission instead of only what differs.
func heldRepositoryRoles(ctx context.Context, client *quay.Client, ns quay.Namespace, short string) (held map[string]string, known bool, err error) {
	perms, err := client.GetRobotPermissions(ctx, ns, short)
	switch {
	case quay.IsForbidden(err):
		return map[string]string{}, false, nil
	case err != nil:
		return nil, false, upstreamError("reading the repository permissions of robot "+ns.RobotUsername(short), err)
	}
	held = make(map[string]string, len(perms))
	for _, p := range perms {
		held[p.Repository.Name] = p.Role
	}
	return held, true, nil
}

// ensureDefaultPermission gives the robot a default permission (prototype)
// with the given role in the organization, and reports whether it created
// one. A fresh robot cannot have one yet; for any other, an existing one is
// kept or corrected rather than duplicated.
func ensureDefaultPermission(ctx context.Context, client *quay.Client, org, role, username string, fresh bool) (bool, error) {
	if !fresh {
		protos, err := client.ListPrototypes(ctx, org)
		if err != nil {
			return false, err
		}
		for _, p := range protos {
			if p.Delegate.Name != username {
				continue
			}
			if p.Role == role {
				return false, nil
			}
			if err := client.DeletePrototype(ctx, org, p.ID); err != nil && !quay.IsNotFound(err) {
				return false, err
			}
		}
	}
	_, err := client.CreatePrototype(ctx, org, role, quay.PrototypeUser{Name: username, Kind: "user"})
	return err == nil, err
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
// the role was written, and reports whether the member was added; "already
// a member" is success.
func addTeamMember(ctx context.Context, client *quay.Client, org, team, teamRole, member string) (bool, error) {
	err := client.AddTeamMember(ctx, org, team, member)
	if quay.IsNotFound(err) {
		if _, err := client.UpdateTeam(ctx, org, team, teamRole, teamDescription); err != nil {
			return false, err
		}
		err = client.AddTeamMember(ctx, org, team, member)
	}
	switch {
	case err == nil:
		return true, nil
	case quay.IsAlreadyTeamMember(err):
		return false, nil
	}
	return false, err
}
