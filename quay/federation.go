package quay

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Robot identity federation (Quay's endpoints/api/robot.py
// and endpoints/oauth/robot_identity_federation.py): a robot trusts tokens
// of an OIDC issuer for given subjects, and such a token is exchanged for a
// short-lived robot token that Quay signs and expires by itself.

// FederatedTokenLifetime is how long Quay's exchanged robot token lives
// (data/model/user.py TMP_ROBOT_TOKEN_VALIDITY_LIFETIME_S). Quay 3.18 does
// not make it configurable.
const FederatedTokenLifetime = time.Hour

// FederationEntry is one issuer and subject a robot trusts. Quay 3.18 stores
// only these two fields, so it never checks a token's audience.
type FederationEntry struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
}

func (n Namespace) federationPath(short string) string {
	return n.robotsPath() + "/" + escape(short) + "/federation"
}

// SetRobotFederation replaces the robot's federation list and returns the
// list Quay stored. Quay wants an http(s) issuer, non-empty fields and no
// duplicate pair (400 invalid_request otherwise); a missing robot is a 400
// "Could not find robot" (see IsRobotNotFound). An empty list clears it.
func (c *Client) SetRobotFederation(ctx context.Context, ns Namespace, short string, entries []FederationEntry) ([]FederationEntry, error) {
	if entries == nil {
		entries = []FederationEntry{}
	}
	var stored []FederationEntry
	// Replacing with the same list twice is harmless: safe to retry.
	r := request{route: ns.route("create", "RobotFederation"), method: http.MethodPost, path: ns.federationPath(short), body: entries, idempotent: true}
	if err := c.do(ctx, r, &stored); err != nil {
		return nil, err
	}
	return stored, nil
}

// GetRobotFederation returns the robot's federation list (empty when none).
func (c *Client) GetRobotFederation(ctx context.Context, ns Namespace, short string) ([]FederationEntry, error) {
	var stored []FederationEntry
	r := request{route: ns.route("get", "RobotFederation"), method: http.MethodGet, path: ns.federationPath(short), idempotent: true}
	if err := c.do(ctx, r, &stored); err != nil {
		return nil, err
	}
	return stored, nil
}

// DeleteRobotFederation empties the robot's federation list. Robot tokens
// already exchanged stay valid until they expire: Quay does not revoke them.
func (c *Client) DeleteRobotFederation(ctx context.Context, ns Namespace, short string) error {
	r := request{route: ns.route("delete", "RobotFederation"), method: http.MethodDelete, path: ns.federationPath(short), idempotent: true}
	return c.do(ctx, r, nil)
}

// FederatedRobotToken is the answer of a federated exchange. Token is a
// secret: the robot's password for docker login and /v2/auth.
type FederatedRobotToken struct {
	Token string
	// ExpiresAt is the token's exp as Quay wrote it (read, not verified:
	// only Quay can verify it), or zero when the token carries none.
	ExpiresAt time.Time
}

// ExchangeFederatedRobotToken exchanges a JWT of an issuer the robot trusts
// for a robot token (GET /oauth2/federation/robot/token, Basic
// <robot username>:<JWT>); the client's own credential is not sent. Quay
// fetches the issuer's discovery document and keys over HTTPS on every
// exchange. Its refusals come as 401 {"error"} for a malformed request,
// 400 {"message"} for a token it does not accept (wrong issuer or subject,
// expired, unknown robot) and 500 when it could not reach or read the
// issuer (or the JWT's key is not published).
func (c *Client) ExchangeFederatedRobotToken(ctx context.Context, robotUsername, jwt string) (*FederatedRobotToken, error) {
	var out struct {
		Token string `json:"token"`
	}
	// A retry mints another token, which is harmless.
	r := request{route: "authFederatedRobotIdentity", method: http.MethodGet, path: "/oauth2/federation/robot/token", idempotent: true,
		basicAuth: &basicAuth{username: robotUsername, password: jwt}}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	if out.Token == "" {
		return nil, r.fail(&Error{StatusCode: http.StatusOK, Message: "Quay's answer carried no token"})
	}
	return &FederatedRobotToken{Token: out.Token, ExpiresAt: jwtExpiry(out.Token)}, nil
}

// jwtExpiry reads a JWT's exp without verifying it; zero when unreadable.
func jwtExpiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return time.Time{}
	}
	exp, err := claims.Exp.Int64()
	if err != nil || exp <= 0 {
		return time.Time{}
	}
	return time.Unix(exp, 0)
}
