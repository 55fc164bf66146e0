package backend

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

const roleStoragePrefix = "roles/"

// Credential types a role can issue.
const (
	// credentialTypeRobot issues a robot account (docker-ready). It is the
	// default, as in redhat-cop/vault-plugin-secrets-quay.
	credentialTypeRobot = "robot"
	// credentialTypeOAuthToken issues an OAuth access token of an
	// organization application (Quay 3.18+).
	credentialTypeOAuthToken = "oauth_token"
	// credentialTypeFederated issues Quay's one-hour robot tokens for one
	// long-lived robot that trusts this mount as its OIDC issuer
	// (federated_role.go).
	credentialTypeFederated = "federated"
)

// quayNameRule is Quay's rule for user, organization, robot and team names
// (util/validation.py).
var quayNameRule = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// roleEntry is a stored dynamic role. Field names follow
// redhat-cop/vault-plugin-secrets-quay so its roles (and vault-config-operator's
// QuaySecretEngineRole) work unchanged.
type roleEntry struct {
	Name           string `json:"name"`
	CredentialType string `json:"credential_type"`
	NamespaceType  string `json:"namespace_type"`
	NamespaceName  string `json:"namespace_name"`

	// OAuth token roles.
	// ClientID is the application named by the operator; empty when the
	// engine manages one itself (ManagedClientID).
	ClientID        string   `json:"client_id,omitempty"`
	ManagedClientID string   `json:"managed_client_id,omitempty"`
	Scopes          []string `json:"scopes,omitempty"`

	// Robot and federated roles.
	robotGrants

	// Federated roles: the robot and what the engine knows of it.
	federatedState

	TTL    time.Duration `json:"ttl"`
	MaxTTL time.Duration `json:"max_ttl"`
}

// applicationClientID is the application whose tokens the role issues.
func (r *roleEntry) applicationClientID() string {
	if r.ClientID != "" {
		return r.ClientID
	}
	return r.ManagedClientID
}

// namespace is where the role's robots live.
func (r *roleEntry) namespace() quay.Namespace {
	return quay.Namespace{Kind: quay.NamespaceKind(r.NamespaceType), Name: r.NamespaceName}
}

func getRole(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	role, err := getJSON[roleEntry](ctx, s, roleStoragePrefix+name, fmt.Sprintf("role %q", name))
	if err != nil || role == nil {
		return nil, err
	}
	if role.Name == "" {
		role.Name = name
	}
	if role.CredentialType == "" {
		role.CredentialType = credentialTypeRobot
	}
	if role.NamespaceType == "" {
		role.NamespaceType = string(quay.NamespaceOrganization)
	}
	return role, nil
}
