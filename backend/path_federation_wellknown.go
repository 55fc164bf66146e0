package backend

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// The issuer's public documents, served without a Vault token
// (PathsSpecial.Unauthenticated) because Quay fetches them anonymously:
// <federation_issuer>/.well-known/openid-configuration and the key set it
// points to. Both are plain JSON, not Vault's {"data": ...} envelope.

const (
	federationDiscoveryPath = ".well-known/openid-configuration"
	federationKeysPath      = ".well-known/keys"
)

// federationUnauthenticatedPaths are the paths Quay reads anonymously.
var federationUnauthenticatedPaths = []string{federationDiscoveryPath, federationKeysPath}

func pathFederationWellKnown(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: `\.well-known/openid-configuration`,
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefixQuay,
				OperationVerb:   "read",
				OperationSuffix: "federation-discovery",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback:  b.pathFederationDiscovery,
					Summary:   "The OpenID discovery document of the robot federation issuer (no token needed).",
					Responses: map[int][]framework.Response{http.StatusOK: {{Description: "OK", MediaType: "application/json"}}},
				},
			},
			HelpSynopsis: "The OpenID discovery document Quay reads for federated robots.",
		},
		{
			Pattern: `\.well-known/keys`,
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefixQuay,
				OperationVerb:   "read",
				OperationSuffix: "federation-keys",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback:  b.pathFederationKeys,
					Summary:   "The public keys of the robot federation issuer (no token needed).",
					Responses: map[int][]framework.Response{http.StatusOK: {{Description: "OK", MediaType: "application/json"}}},
				},
			},
			HelpSynopsis: "The key set (JWKS) Quay verifies the engine's tokens with.",
		},
	}
}

func (b *backend) pathFederationDiscovery(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := getFederationConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return rawJSON(http.StatusNotFound, map[string]any{"errors": []string{errFederationNotConfigured.Error()}})
	}
	return rawJSON(http.StatusOK, map[string]any{
		"issuer":                                cfg.Issuer,
		"jwks_uri":                              cfg.jwksURI(),
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": federationAlgorithms,
	})
}

func (b *backend) pathFederationKeys(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := getFederationConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	ring, err := getFederationKeys(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil || ring == nil || ring.Current.Key.Key == nil {
		return rawJSON(http.StatusNotFound, map[string]any{"errors": []string{errFederationNotConfigured.Error()}})
	}
	return rawJSON(http.StatusOK, ring.published(b.now()))
}

// rawJSON is a response Vault's HTTP layer writes as it is, with this
// status. Vault's default Cache-Control: no-store stays: a cached key set
// would hide a new key from Quay after a rotation.
func rawJSON(status int, v any) (*logical.Response, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		logical.HTTPStatusCode:  status,
		logical.HTTPContentType: "application/json",
		logical.HTTPRawBody:     body,
	}}, nil
}
