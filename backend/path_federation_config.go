package backend

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// config/federation is its own path, apart from "config": the issuer is
// about how Quay reaches Vault, not how Vault reaches Quay, and it has a
// key life cycle of its own.

func pathFederationConfig(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "config/federation",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefixQuay,
			},
			Fields: map[string]*framework.FieldSchema{
				"federation_issuer": {
					Type: framework.TypeString,
					Description: "The https:// URL at which Quay reaches this mount, e.g. https://vault.example.com/v1/quay " +
						"(with the namespace in Vault Enterprise). It is the iss of the engine's tokens; Quay fetches " +
						"<federation_issuer>/.well-known/openid-configuration and trusts Vault's TLS certificate only " +
						"through its own CA bundle (REQUESTS_CA_BUNDLE).",
				},
				"audience": {
					Type:        framework.TypeString,
					Description: "The aud of the engine's tokens (default: Quay's url). Quay 3.18 does not check it.",
				},
				"token_ttl": {
					Type:        framework.TypeDurationSecond,
					Description: "Lifetime of each token the engine signs for an exchange (default 5m, between 30s and 15m).",
				},
				"key_rotation_period": {
					Type:        framework.TypeDurationSecond,
					Description: "Replace the signing key this often (default 24h, at least 1m). A replaced key stays published until every token it signed has expired.",
				},
				"signing_algorithm": {
					Type:          framework.TypeString,
					Description:   "RS256 (default) or RS384, the algorithms Quay accepts. Changing it replaces the key.",
					AllowedValues: []any{federationAlgorithms[0], federationAlgorithms[1]},
				},
			},
			ExistenceCheck: b.federationConfigExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback:     b.pathFederationConfigRead,
					Summary:      "Read the robot federation issuer (never a private key).",
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read", OperationSuffix: "federation-configuration"},
					Responses:    map[int][]framework.Response{http.StatusOK: {{Description: "OK", Fields: federationConfigResponseFields}}},
				},
				logical.CreateOperation: &framework.PathOperation{
					Callback:                    b.pathFederationConfigWrite,
					Summary:                     "Configure the engine as an OIDC issuer for Quay's robot federation.",
					DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "configure", OperationSuffix: "federation"},
					Responses:                   map[int][]framework.Response{http.StatusOK: {{Description: "OK", Fields: federationConfigResponseFields}}},
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
				logical.UpdateOperation: &framework.PathOperation{
					Callback:                    b.pathFederationConfigWrite,
					Summary:                     "Configure the engine as an OIDC issuer for Quay's robot federation.",
					DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "configure", OperationSuffix: "federation"},
					Responses:                   map[int][]framework.Response{http.StatusOK: {{Description: "OK", Fields: federationConfigResponseFields}}},
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
				logical.DeleteOperation: &framework.PathOperation{
					Callback:                    b.pathFederationConfigDelete,
					Summary:                     "Stop issuing: delete the issuer settings and its keys.",
					DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "delete", OperationSuffix: "federation-configuration"},
					Responses:                   map[int][]framework.Response{http.StatusNoContent: {{Description: "Deleted"}}},
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
			},
			HelpSynopsis: "Configure the engine as the OIDC issuer Quay's federated robots trust.",
			HelpDescription: `The engine signs short-lived JWTs (iss federation_issuer, sub the robot's
username, aud, iat, nbf, exp, jti) that Quay exchanges for one-hour robot
tokens. Quay fetches the discovery document and the keys at
<federation_issuer>/.well-known/ without a Vault token, over HTTPS only.
The signing key is generated here, rotated on key_rotation_period, and never
leaves Vault.`,
		},
		{
			Pattern: "config/federation/rotate-key",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefixQuay,
				OperationVerb:   "rotate",
				OperationSuffix: "federation-key",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{
					Callback:                    b.pathFederationRotateKey,
					Summary:                     "Replace the federation signing key now.",
					Responses:                   map[int][]framework.Response{http.StatusOK: {{Description: "OK", Fields: federationConfigResponseFields}}},
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
			},
			HelpSynopsis: "Replace the federation signing key now; the old key stays published until its tokens have expired.",
		},
	}
}

var federationConfigResponseFields = map[string]*framework.FieldSchema{
	"federation_issuer":   {Type: framework.TypeString, Description: "The URL Quay reaches this mount at; the iss of the engine's tokens."},
	"audience":            {Type: framework.TypeString, Description: "The aud of tokens; empty means Quay's url."},
	"token_ttl":           {Type: framework.TypeDurationSecond, Description: "Lifetime of each token the engine signs, in seconds."},
	"key_rotation_period": {Type: framework.TypeDurationSecond, Description: "How often the signing key is replaced, in seconds."},
	"signing_algorithm":   {Type: framework.TypeString, Description: "RS256 or RS384."},
	"discovery_url":       {Type: framework.TypeString, Description: "Where Quay reads the discovery document."},
	"jwks_uri":            {Type: framework.TypeString, Description: "Where Quay reads the keys."},
	"current_key_id":      {Type: framework.TypeString, Description: "The kid tokens are signed with now."},
	"published_key_ids":   {Type: framework.TypeCommaStringSlice, Description: "The kids of the published key set."},
	"last_key_rotation":   {Type: framework.TypeTime, Description: "When the current signing key was made."},
	"next_key_rotation":   {Type: framework.TypeTime, Description: "When the signing key is replaced next."},
}

func (b *backend) federationConfigExists(ctx context.Context, req *logical.Request, _ *framework.FieldData) (bool, error) {
	cfg, err := getFederationConfig(ctx, req.Storage)
	return cfg != nil, err
}

func (b *backend) pathFederationConfigRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := getFederationConfig(ctx, req.Storage)
	if err != nil || cfg == nil {
		return nil, err
	}
	ring, err := getFederationKeys(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: b.federationResponseData(cfg, ring)}, nil
}

// federationResponseData describes the issuer; key ids, never keys.
func (b *backend) federationResponseData(cfg *federationConfig, ring *federationKeyRing) map[string]any {
	data := map[string]any{
		"federation_issuer":   cfg.Issuer,
		"audience":            cfg.Audience,
		"token_ttl":           int64(cfg.TokenTTL.Seconds()),
		"key_rotation_period": int64(cfg.KeyRotationPeriod.Seconds()),
		"signing_algorithm":   cfg.SigningAlgorithm,
		"discovery_url":       cfg.Issuer + "/.well-known/openid-configuration",
		"jwks_uri":            cfg.jwksURI(),
	}
	if ring != nil && ring.Current.Key.Key != nil {
		ids := []string{}
		for _, k := range ring.published(b.now()).Keys {
			ids = append(ids, k.KeyID)
		}
		data["current_key_id"] = ring.Current.Key.KeyID
		data["published_key_ids"] = ids
		data["last_key_rotation"] = formatTime(ring.Current.CreatedAt)
		data["next_key_rotation"] = formatTime(ring.nextRotation(cfg))
	}
	return data
}

func (b *backend) pathFederationConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	stored, err := getFederationConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	cfg := &federationConfig{TokenTTL: defaultFederationTokenTTL, KeyRotationPeriod: defaultFederationKeyRotation, SigningAlgorithm: federationAlgorithms[0]}
	if stored != nil {
		copied := *stored
		cfg = &copied
	}
	if resp := applyFederationFields(cfg, d); resp != nil {
		return resp, nil
	}

	// Keys first: a crash before the config is written leaves keys that
	// nothing uses; the other order would leave an issuer without a key.
	ring, err := getFederationKeys(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if ring == nil || ring.Current.Key.Key == nil || ring.Current.Key.Algorithm != cfg.SigningAlgorithm {
		if ring, err = b.rotateFederationKey(ctx, req.Storage, cfg.SigningAlgorithm); err != nil {
			return nil, err
		}
	}
	if err := putJSON(ctx, req.Storage, federationConfigStoragePath, "robot federation config", cfg); err != nil {
		return nil, err
	}
	resp := &logical.Response{Data: b.federationResponseData(cfg, ring)}
	if stored == nil || stored.Issuer != cfg.Issuer {
		// Federated robots trust the issuer by its URL: point them at the
		// new one now rather than at the next periodic run.
		if err := b.refreshFederationEntries(ctx, req.Storage); err != nil {
			resp.AddWarning("federation_issuer changed, but not every federated role's robot trusts it yet (the engine retries every minute): " + err.Error())
		}
	}
	return resp, nil
}

// applyFederationFields sets the fields given in d on cfg and checks the
// result; a non-nil answer is the 400 that names the field.
func applyFederationFields(cfg *federationConfig, d *framework.FieldData) *logical.Response {
	if v, ok := d.GetOk("federation_issuer"); ok {
		issuer, reason := normalizeFederationIssuer(v.(string))
		if reason != "" {
			return badField("federation_issuer", "%s", reason)
		}
		cfg.Issuer = issuer
	}
	if cfg.Issuer == "" {
		return badField("federation_issuer", "is required: the https:// URL at which Quay reaches this mount, e.g. https://vault.example.com/v1/quay")
	}
	if v, ok := d.GetOk("audience"); ok {
		cfg.Audience = strings.TrimSpace(v.(string))
	}
	if v, ok, resp := secondsField(d, "token_ttl"); resp != nil {
		return resp
	} else if ok {
		cfg.TokenTTL = v
		if cfg.TokenTTL == 0 {
			cfg.TokenTTL = defaultFederationTokenTTL
		}
		if cfg.TokenTTL < minFederationTokenTTL || cfg.TokenTTL > maxFederationTokenTTL {
			return badField("token_ttl", "must be between %s and %s, got %s", minFederationTokenTTL, maxFederationTokenTTL, cfg.TokenTTL)
		}
	}
	if v, ok, resp := secondsField(d, "key_rotation_period"); resp != nil {
		return resp
	} else if ok {
		cfg.KeyRotationPeriod = v
		if cfg.KeyRotationPeriod == 0 {
			cfg.KeyRotationPeriod = defaultFederationKeyRotation
		}
		if cfg.KeyRotationPeriod < minRotationPeriod {
			return badField("key_rotation_period", "must be at least %s (the engine's periodic function runs once a minute), got %s", minRotationPeriod, cfg.KeyRotationPeriod)
		}
	}
	if v, ok := d.GetOk("signing_algorithm"); ok {
		alg := strings.ToUpper(strings.TrimSpace(v.(string)))
		if !slices.Contains(federationAlgorithms, alg) {
			return badField("signing_algorithm", "must be RS256 or RS384 (what Quay accepts), got %q", v)
		}
		cfg.SigningAlgorithm = alg
	}
	return nil
}

// normalizeFederationIssuer checks an issuer URL the way Quay will use it:
// https only (Quay refuses plain-HTTP discovery), no credentials, query or
// fragment (the token's iss must equal the robot's configured issuer
// character for character, and the discovery URL is built by appending
// to it). A trailing slash is dropped.
func normalizeFederationIssuer(raw string) (string, string) {
	s := strings.TrimRight(strings.TrimSpace(raw), "/")
	u, err := url.Parse(s)
	switch {
	case s == "":
		return "", "is required: the https:// URL at which Quay reaches this mount"
	case err != nil:
		return "", "is not a valid URL"
	case u.Scheme != "https":
		return "", "must start with https://: Quay fetches the issuer's keys over HTTPS only, got " + strings.SplitN(s, "://", 2)[0] + "://"
	case u.Host == "":
		return "", "has no host"
	case u.User != nil:
		return "", "must not carry credentials"
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(s, "?") || strings.HasSuffix(s, "#"):
		return "", "must not have a query or fragment"
	}
	return s, ""
}

func (b *backend) pathFederationConfigDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	b.federation.keys.Lock()
	defer b.federation.keys.Unlock()
	// The config first: without it nothing signs or publishes, whatever
	// happens to the keys.
	if err := req.Storage.Delete(ctx, federationConfigStoragePath); err != nil {
		return nil, err
	}
	if err := req.Storage.Delete(ctx, federationKeysStoragePath); err != nil {
		return nil, err
	}
	b.federation.signer.Store(nil)
	return nil, nil
}

func (b *backend) pathFederationRotateKey(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := getFederationConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return logical.ErrorResponse(errFederationNotConfigured.Error()), nil
	}
	ring, err := b.rotateFederationKey(ctx, req.Storage, cfg.SigningAlgorithm)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: b.federationResponseData(cfg, ring)}, nil
}
