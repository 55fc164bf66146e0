package quay

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// NamespaceKind says whether robots live in an organization or in the calling
// user's own namespace.
type NamespaceKind string

// Namespace kinds, named as redhat-cop/vault-plugin-secrets-quay names them.
const (
	NamespaceOrganization NamespaceKind = "organization"
	NamespaceUser         NamespaceKind = "user"
)

// Namespace is where a robot lives. For NamespaceUser, Name is the user the
// credential acts as: Quay's user-robot API always addresses the caller's
// own namespace (endpoints/api/robot.py).
type Namespace struct {
	Kind NamespaceKind
	Name string
}

// RobotUsername is the robot's full name, <namespace>+<shortname>, which is
// also its registry username.
func (n Namespace) RobotUsername(short string) string { return n.Name + "+" + short }

// route is the Quay operation nickname (endpoints/api/robot.py) of a robot
// call in this namespace, e.g. route("create", "Robot") is createOrgRobot.
func (n Namespace) route(verb, object string) string {
	if n.Kind == NamespaceUser {
		return verb + "User" + object
	}
	return verb + "Org" + object
}

func (n Namespace) robotsPath() string {
	if n.Kind == NamespaceUser {
		return "/api/v1/user/robots"
	}
	return "/api/v1/organization/" + escape(n.Name) + "/robots"
}

// Robot is a robot account (endpoints/api/robot.py). Token is its password, a secret.
type Robot struct {
	Name                 string         `json:"name"`
	Created              RFC2822Time    `json:"created"`
	LastAccessed         RFC2822Time    `json:"last_accessed"`
	Description          string         `json:"description"`
	Token                string         `json:"token,omitempty"`
	UnstructuredMetadata map[string]any `json:"unstructured_metadata,omitempty"`
	Teams                []RobotTeam    `json:"teams,omitempty"`
	Repositories         []string       `json:"repositories,omitempty"`
}

// ShortName returns the part of Name after the '+'.
func (r Robot) ShortName() string {
	if i := strings.IndexByte(r.Name, '+'); i >= 0 {
		return r.Name[i+1:]
	}
	return r.Name
}

// RobotTeam is a team a robot belongs to, as listed with permissions=true.
type RobotTeam struct {
	Name string `json:"name"`
}

// RobotSpec is the optional body of CreateRobot.
type RobotSpec struct {
	// Description is truncated by Quay to 255 characters.
	Description string `json:"description,omitempty"`
	// UnstructuredMetadata is free-form JSON Quay stores with the robot.
	UnstructuredMetadata map[string]any `json:"unstructured_metadata,omitempty"`
}

// CreateRobot creates a robot and returns it with its token. It is not
// idempotent: an existing name is a 400 "Existing robot with name".
func (c *Client) CreateRobot(ctx context.Context, ns Namespace, short string, spec RobotSpec) (*Robot, error) {
	var robot Robot
	r := request{route: ns.route("create", "Robot"), method: http.MethodPut, path: ns.robotsPath() + "/" + escape(short), body: spec}
	if err := c.do(ctx, r, &robot); err != nil {
		return nil, err
	}
	if robot.Name == "" || robot.Token == "" {
		return nil, r.incomplete("the robot's name or token")
	}
	return &robot, nil
}

// GetRobot returns a robot with its token (for admins). A missing robot is a
// 400 "Could not find robot"; see IsRobotNotFound.
func (c *Client) GetRobot(ctx context.Context, ns Namespace, short string) (*Robot, error) {
	var robot Robot
	r := request{route: ns.route("get", "Robot"), method: http.MethodGet, path: ns.robotsPath() + "/" + escape(short), idempotent: true}
	if err := c.do(ctx, r, &robot); err != nil {
		return nil, err
	}
	return &robot, nil
}

// DeleteRobot deletes a robot. A missing robot is a 400 "Could not find
// robot"; see IsRobotNotFound.
func (c *Client) DeleteRobot(ctx context.Context, ns Namespace, short string) error {
	r := request{route: ns.route("delete", "Robot"), method: http.MethodDelete, path: ns.robotsPath() + "/" + escape(short), idempotent: true}
	return c.do(ctx, r, nil)
}

// RegenerateRobotToken replaces the robot's token; the old one stops working
// at once. The answer carries the new token.
func (c *Client) RegenerateRobotToken(ctx context.Context, ns Namespace, short string) (*Robot, error) {
	var robot Robot
	// Not idempotent: a retry after Quay acted would rotate twice, which is
	// harmless for the result but wasteful, so only 429s and refused
	// connections are retried.
	r := request{route: ns.route("regenerate", "RobotToken"), method: http.MethodPost, path: ns.robotsPath() + "/" + escape(short) + "/regenerate"}
	if err := c.do(ctx, r, &robot); err != nil {
		return nil, err
	}
	if robot.Token == "" {
		return nil, r.incomplete("the robot's new token")
	}
	return &robot, nil
}

// RobotPermission is one repository permission a robot holds directly (not
// through a team), as getOrgRobotPermissions lists it (endpoints/api/robot.py).
type RobotPermission struct {
	Repository struct {
		Name     string `json:"name"`
		IsPublic bool   `json:"is_public"`
	} `json:"repository"`
	Role string `json:"role"`
}

// GetRobotPermissions lists the repository permissions a robot holds
// directly. A missing robot is a 400 "Could not find robot"; see
// IsRobotNotFound.
func (c *Client) GetRobotPermissions(ctx context.Context, ns Namespace, short string) ([]RobotPermission, error) {
	var out struct {
		Permissions []RobotPermission `json:"permissions"`
	}
	r := request{route: ns.route("get", "RobotPermissions"), method: http.MethodGet, path: ns.robotsPath() + "/" + escape(short) + "/permissions", idempotent: true}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return out.Permissions, nil
}

// ListRobotsOptions selects what ListRobots returns.
type ListRobotsOptions struct {
	// Permissions adds each robot's teams and repositories.
	Permissions bool
	// Token includes robot tokens (Quay's default is true; the plugin asks
	// for false so that listing never moves secrets).
	Token bool
	// Limit truncates the list when positive.
	Limit int
}

// ListRobots lists the robots of a namespace. Quay does not paginate robots.
func (c *Client) ListRobots(ctx context.Context, ns Namespace, opts ListRobotsOptions) ([]Robot, error) {
	q := url.Values{
		"permissions": {strconv.FormatBool(opts.Permissions)},
		"token":       {strconv.FormatBool(opts.Token)},
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	var out struct {
		Robots []Robot `json:"robots"`
	}
	if err := c.do(ctx, request{route: ns.route("get", "Robots"), method: http.MethodGet, path: ns.robotsPath(), query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out.Robots, nil
}

// robotNotFound is Quay's data-model message for a missing robot; Quay sends
// it with status 400, not 404 (endpoints/api/robot.py).
const robotNotFound = "Could not find robot with specified username"

// IsRobotNotFound reports that a robot does not exist, by Quay's own answer:
// its 400 "Could not find robot with specified username"
// (endpoints/api/robot.py), or its 404 for a missing namespace (see
// IsNotFound: a bare 404 from something in front of Quay does not count).
func IsRobotNotFound(err error) bool {
	var qe *Error
	if !errors.As(err, &qe) {
		return false
	}
	return IsNotFound(err) ||
		(qe.StatusCode == http.StatusBadRequest && strings.Contains(qe.Message, robotNotFound))
}

// IsRobotExists reports Quay's 400 for a robot name that is already taken.
func IsRobotExists(err error) bool {
	var qe *Error
	return errors.As(err, &qe) && qe.StatusCode == http.StatusBadRequest &&
		strings.HasPrefix(qe.Message, "Existing robot with name")
}
