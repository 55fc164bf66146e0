package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// Federated robots: a long-lived robot that trusts this mount's issuer
// (federation_issuer.go) for its own username. A creds read mints a JWT
// and exchanges it at Quay for a robot token that Quay expires within the
// hour: one Quay call, nothing created, nothing to delete at revoke, no
// robot secret stored. The role side is federated_role.go.

// secretTypeFederatedRobot is the lease type of federated credentials.
const secretTypeFederatedRobot = "quay_federated_robot"

// federatedRobot is what a federated role says about its robot.
type federatedRobot struct {
	Role          string
	NamespaceType string
	NamespaceName string
	RobotName     string
	TTL, MaxTTL   time.Duration
}

func (r federatedRobot) namespace() quay.Namespace {
	return quay.Namespace{Kind: quay.NamespaceKind(r.NamespaceType), Name: r.NamespaceName}
}

func (r federatedRobot) username() string { return r.namespace().RobotUsername(r.RobotName) }

// ensureFederationEntry makes the robot trust issuer for its own username.
// Entries for other issuers stay (the robot may also trust a Kubernetes
// cluster's issuer); the entry of previousIssuer (this mount's former
// federation_issuer) is replaced. Quay's POST replaces the whole list, so
// this reads it first: one call when the entry is in place, two otherwise.
func ensureFederationEntry(ctx context.Context, client *quay.Client, ns quay.Namespace, short, issuer, previousIssuer string) error {
	want := quay.FederationEntry{Issuer: issuer, Subject: ns.RobotUsername(short)}
	current, err := client.GetRobotFederation(ctx, ns, short)
	if err != nil {
		return upstreamError("reading the robot's federation", err)
	}
	next := make([]quay.FederationEntry, 0, len(current)+1)
	for _, e := range current {
		if previousIssuer != "" && previousIssuer != issuer && e.Issuer == previousIssuer && e.Subject == want.Subject {
			continue
		}
		next = append(next, e)
	}
	if slices.Contains(next, want) && len(next) == len(current) {
		return nil
	}
	if !slices.Contains(next, want) {
		next = append(next, want)
	}
	if _, err := client.SetRobotFederation(ctx, ns, short, next); err != nil {
		return upstreamError("setting the robot's federation", err)
	}
	return nil
}

// removeFederationEntry withdraws this mount's entry and keeps the others;
// a robot that is gone has nothing to withdraw.
func removeFederationEntry(ctx context.Context, client *quay.Client, ns quay.Namespace, short, issuer string) error {
	current, err := client.GetRobotFederation(ctx, ns, short)
	if quay.IsRobotNotFound(err) {
		return nil
	}
	if err != nil {
		return upstreamError("reading the robot's federation", err)
	}
	subject := ns.RobotUsername(short)
	kept := slices.DeleteFunc(slices.Clone(current), func(e quay.FederationEntry) bool {
		return e.Issuer == issuer && e.Subject == subject
	})
	switch {
	case len(kept) == len(current):
		return nil
	case len(kept) == 0:
		err = client.DeleteRobotFederation(ctx, ns, short)
	default:
		_, err = client.SetRobotFederation(ctx, ns, short, kept)
	}
	if err != nil && !quay.IsRobotNotFound(err) {
		return upstreamError("withdrawing the robot's federation", err)
	}
	return nil
}

func secretFederatedRobot(b *backend) *framework.Secret {
	return &framework.Secret{
		Type:   secretTypeFederatedRobot,
		Fields: federatedCredsFields(),
		Renew:  b.renewFederatedRobot,
		Revoke: b.revokeFederatedRobot,
	}
}

// federatedCredsFields document a federated read's answer: a robot's
// docker-ready login whose password is Quay's one-hour token.
func federatedCredsFields() map[string]*framework.FieldSchema {
	return withFields(dockerCredentialFields(), map[string]*framework.FieldSchema{
		"password":   {Type: framework.TypeString, Description: "The robot's password: its token, or for a federated role Quay's one-hour robot token (a JWT Quay signed); a secret."},
		"expires_at": {Type: framework.TypeTime, Description: "When Quay stops accepting the token; revoking the lease does not change it."},
	})
}

// federatedLease is a federated lease's InternalData: identifiers and the
// token's expiry, never the token.
type federatedLease struct {
	Role      string
	Username  string
	ExpiresAt time.Time
}

func (l federatedLease) internalData() map[string]any {
	return map[string]any{"role": l.Role, "username": l.Username, "expires_at": l.ExpiresAt.UTC().Format(time.RFC3339)}
}

func federatedLeaseFrom(internal map[string]any) (federatedLease, error) {
	l := federatedLease{Role: internalString(internal, "role"), Username: internalString(internal, "username")}
	exp, err := time.Parse(time.RFC3339, internalString(internal, "expires_at"))
	if err != nil {
		return l, errors.New("lease data has no expiry")
	}
	l.ExpiresAt = exp
	return l, nil
}

// issueFederatedRobot mints a JWT for the role's robot and exchanges it at
// Quay: one Quay call, during which Quay reads the issuer's discovery
// document and keys from Vault. The lease ends no later than Quay's token.
func (b *backend) issueFederatedRobot(ctx context.Context, req *logical.Request, robot federatedRobot) (*logical.Response, error) {
	client, cfg, err := b.client(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	username := robot.username()
	minted, err := b.mintFederationToken(ctx, req.Storage, username, cfg.URL)
	if err != nil {
		return nil, err
	}
	got, err := client.ExchangeFederatedRobotToken(ctx, username, minted.Token)
	if err != nil {
		return nil, federationExchangeError(robot.Role, username, err)
	}
	now := b.now()
	expires := got.ExpiresAt
	if expires.IsZero() {
		// Quay 3.18 always writes exp; count its lifetime from now if not.
		expires = now.Add(quay.FederatedTokenLifetime)
	}
	remaining := expires.Sub(now)
	if remaining <= 0 {
		return nil, fmt.Errorf("role %q: Quay answered with a token that has already expired; check the clocks of Vault and Quay", robot.Role)
	}
	ttl, maxTTL := b.leaseTTLs(robot.TTL, robot.MaxTTL)
	maxTTL = min(maxTTL, remaining)
	ttl = min(ttl, maxTTL)

	data := dockerCredentials(cfg.registryHost(), username, got.Token)
	data["namespace_type"] = robot.NamespaceType
	data["namespace_name"] = robot.NamespaceName
	data["expires_at"] = formatTime(expires)
	lease := federatedLease{Role: robot.Role, Username: username, ExpiresAt: expires}
	resp := b.Secret(secretTypeFederatedRobot).Response(data, lease.internalData())
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = maxTTL
	resp.Warnings = []string{fmt.Sprintf("Quay expires this token at %s; revoking the lease does not end it sooner", formatTime(expires))}
	return resp, nil
}

// federationExchangeError explains Quay's refusal of the engine's token.
func federationExchangeError(role, username string, err error) error {
	hint := ""
	switch quay.StatusOf(err) {
	case 400:
		hint = fmt.Sprintf(" (write roles/%s again to restore the robot's federation entry, and check that its issuer is config/federation's federation_issuer)", role)
	case 500:
		hint = " (Quay could not read the issuer: check that Quay reaches federation_issuer over HTTPS and trusts Vault's certificate, e.g. through REQUESTS_CA_BUNDLE)"
	}
	return fmt.Errorf("%w%s", upstreamError(fmt.Sprintf("exchanging a federation token for robot %s", username), err), hint)
}

// renewFederatedRobot extends the lease up to the token's expiry in Quay,
// never past it.
func (b *backend) renewFederatedRobot(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	lease, err := federatedLeaseFrom(req.Secret.InternalData)
	if err != nil {
		return nil, err
	}
	remaining := lease.ExpiresAt.Sub(b.now())
	if remaining <= 0 {
		return nil, fmt.Errorf("the token expired in Quay at %s; read creds again", formatTime(lease.ExpiresAt))
	}
	// The lease's max TTL (counted from its issue) already ends with the
	// token; the renewal grants the lease's ttl, or what is left.
	resp := &logical.Response{Secret: req.Secret}
	resp.Secret.TTL = min(req.Secret.TTL, remaining)
	if resp.Secret.TTL <= 0 {
		resp.Secret.TTL = remaining
	}
	return resp, nil
}

// revokeFederatedRobot has nothing to delete: Quay offers no way to revoke
// an exchanged robot token, and the robot belongs to the role.
func (b *backend) revokeFederatedRobot(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
	return nil, nil
}
