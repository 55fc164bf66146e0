package backend

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

const (
	// minTidyInterval keeps scheduled tidy from listing every robot of
	// every namespace more often than is useful.
	minTidyInterval   = 10 * time.Minute
	minRequestTimeout = time.Second
	maxRequestTimeout = 5 * time.Minute
)

func pathConfig(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "config",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefixQuay,
		},
		Fields: map[string]*framework.FieldSchema{
			"url": {
				Type:        framework.TypeString,
				Description: "Quay's base URL, e.g. https://quay.example.com.",
				Default:     defaultQuayURL,
			},
			"token": {
				Type:         framework.TypeString,
				Description:  "A Quay OAuth access token the engine uses as its root credential (a token generated in Quay's UI, or the contents of Quay's programmatic bootstrap token file). Never returned.",
				DisplayAttrs: &framework.DisplayAttributes{Sensitive: true},
			},
			"ca_certificate": {
				Type:        framework.TypeString,
				Description: "PEM-encoded CA bundle to trust for Quay's TLS certificate instead of the system roots.",
			},
			"disable_ssl_verification": {
				Type:        framework.TypeBool,
				Description: "Skip verification of Quay's TLS certificate. For test setups only.",
				Default:     false,
			},
			"request_timeout": {
				Type:        framework.TypeDurationSecond,
				Description: "Timeout of each HTTP request to Quay (default 30s, between 1s and 5m).",
			},
			"registry_hostname": {
				Type:        framework.TypeString,
				Description: "Registry host that robot credentials log in to (docker login, config.json). Defaults to the host of url; set it when Quay's SERVER_HOSTNAME differs.",
			},
			"tidy_interval": {
				Type:        framework.TypeDurationSecond,
				Description: "Run tidy (delete orphaned robots) on this schedule; 0 (default) only on demand. At least 10m.",
			},
			"verify_connection": {
				Type:        framework.TypeBool,
				Description: "Check the token against Quay (GET /api/v1/user/) before saving. Turn off only when Quay is not reachable yet.",
				Default:     true,
			},
		},
		ExistenceCheck: b.configExists,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathConfigRead,
				Summary:      "Read the Quay connection (never the credential itself).",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read", OperationSuffix: "configuration"},
				Responses:    map[int][]framework.Response{http.StatusOK: {{Description: "OK", Fields: configResponseFields}}},
			},
			logical.CreateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigWrite,
				Summary:                     "Configure the connection to Quay and its root credential.",
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "configure"},
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigWrite,
				Summary:                     "Configure the connection to Quay and its root credential.",
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "configure"},
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
			logical.DeleteOperation: &framework.PathOperation{
				Callback:                    b.pathConfigDelete,
				Summary:                     "Delete the configuration. Leases issued before can no longer be revoked in Quay until it is written again.",
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "delete", OperationSuffix: "configuration"},
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
		},
		HelpSynopsis:    "Configure the connection to Quay.",
		HelpDescription: pathConfigHelp,
	}}
}

// configResponseFields documents the config read (OpenAPI).
var configResponseFields = map[string]*framework.FieldSchema{
	"url":                      {Type: framework.TypeString},
	"ca_certificate":           {Type: framework.TypeString},
	"disable_ssl_verification": {Type: framework.TypeBool},
	"request_timeout":          {Type: framework.TypeDurationSecond},
	"registry_hostname":        {Type: framework.TypeString, Description: "The registry host robot credentials log in to."},
	"tidy_interval":            {Type: framework.TypeDurationSecond, Description: "Schedule of tidy; 0 when off."},
	"root_token_owner":         {Type: framework.TypeString, Description: "The Quay user the root credential acts as."},
	"root_token_super_user":    {Type: framework.TypeBool, Description: "Whether Quay grants the root credential superuser rights."},
	"root_token_fingerprint":   {Type: framework.TypeString, Description: "sha256: and the first 16 hex digits of the credential's SHA-256."},
	"root_token_scopes":        {Type: framework.TypeCommaStringSlice, Description: "The credential's scopes, where known."},
	"root_token_expires_at":    {Type: framework.TypeTime, Description: "When the credential expires in Quay, where known."},
	"root_token_verified_at":   {Type: framework.TypeTime, Description: "When Quay last confirmed the credential."},
}

func (b *backend) configExists(ctx context.Context, req *logical.Request, _ *framework.FieldData) (bool, error) {
	cfg, err := getConfig(ctx, req.Storage)
	return cfg != nil, err
}

func (b *backend) pathConfigRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := getConfig(ctx, req.Storage)
	if err != nil || cfg == nil {
		return nil, err
	}
	return &logical.Response{Data: configResponseData(cfg)}, nil
}

// configResponseData is everything about the config that is not a secret.
func configResponseData(cfg *quayConfig) map[string]any {
	data := map[string]any{
		"url":                      cfg.URL,
		"ca_certificate":           cfg.CACertificate,
		"disable_ssl_verification": cfg.DisableSSLVerification,
		"request_timeout":          int64(effectiveRequestTimeout(cfg.RequestTimeout).Seconds()),
		"registry_hostname":        cfg.registryHost(),
		"tidy_interval":            int64(cfg.TidyInterval.Seconds()),
		"root_token_owner":         cfg.TokenOwner,
		"root_token_super_user":    cfg.TokenSuperUser,
		"root_token_fingerprint":   fingerprint(cfg.Token),
	}
	if len(cfg.TokenScopes) > 0 {
		data["root_token_scopes"] = cfg.TokenScopes
	}
	if !cfg.TokenExpiresAt.IsZero() {
		data["root_token_expires_at"] = cfg.TokenExpiresAt.UTC().Format(time.RFC3339)
	}
	if !cfg.VerifiedAt.IsZero() {
		data["root_token_verified_at"] = cfg.VerifiedAt.UTC().Format(time.RFC3339)
	}
	return data
}

func effectiveRequestTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return quay.DefaultRequestTimeout
	}
	return d
}

func (b *backend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	stored, err := getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	cfg := &quayConfig{URL: defaultQuayURL}
	if stored != nil {
		copied := *stored
		cfg = &copied
	}

	if v, ok := d.GetOk("url"); ok {
		cfg.URL = strings.TrimSpace(v.(string))
	}
	if v, ok := d.GetOk("token"); ok {
		token := strings.TrimSpace(v.(string))
		if token != cfg.Token {
			// What we knew about the old credential says nothing about
			// the new one.
			cfg.TokenOwner, cfg.TokenSuperUser, cfg.TokenScopes = "", false, nil
			cfg.TokenExpiresAt, cfg.VerifiedAt = time.Time{}, time.Time{}
		}
		cfg.Token = token
	}
	if v, ok := d.GetOk("ca_certificate"); ok {
		cfg.CACertificate = strings.TrimSpace(v.(string))
	}
	if v, ok := d.GetOk("disable_ssl_verification"); ok {
		cfg.DisableSSLVerification = v.(bool)
	}
	if v, ok := d.GetOk("registry_hostname"); ok {
		host := strings.TrimSpace(v.(string))
		if strings.Contains(host, "/") || strings.ContainsAny(host, " \t") {
			return badField("registry_hostname", "must be a host[:port] without scheme or path, got %q", host), nil
		}
		cfg.RegistryHostname = host
	}
	if v, ok := d.GetOk("tidy_interval"); ok {
		cfg.TidyInterval = time.Duration(v.(int)) * time.Second
		if cfg.TidyInterval != 0 && cfg.TidyInterval < minTidyInterval {
			return badField("tidy_interval", "must be 0 (off) or at least %s, got %s", minTidyInterval, cfg.TidyInterval), nil
		}
	}
	if v, ok := d.GetOk("request_timeout"); ok {
		cfg.RequestTimeout = time.Duration(v.(int)) * time.Second
		if cfg.RequestTimeout != 0 && (cfg.RequestTimeout < minRequestTimeout || cfg.RequestTimeout > maxRequestTimeout) {
			return badField("request_timeout", "must be between %s and %s, got %s", minRequestTimeout, maxRequestTimeout, cfg.RequestTimeout), nil
		}
	}

	if cfg.Token == "" {
		return badField("token", "is required: a Quay OAuth access token for the engine to act with"), nil
	}
	if strings.ContainsAny(cfg.Token, " \t\r\n") {
		return badField("token", "must not contain whitespace"), nil
	}
	client, err := cfg.newClient(b.logger)
	if err != nil {
		if strings.Contains(err.Error(), "ca_certificate") {
			return badField("ca_certificate", "holds no valid PEM certificate"), nil
		}
		return badField("url", "%s", strings.TrimPrefix(err.Error(), "quay: ")), nil
	}
	defer client.Close()

	var warnings []string
	if cfg.DisableSSLVerification {
		warnings = append(warnings, "disable_ssl_verification is on: Quay's TLS certificate is not checked; use ca_certificate outside of tests")
	}
	if d.Get("verify_connection").(bool) {
		user, err := client.GetUser(ctx)
		if err != nil {
			return credentialRejected(err), nil
		}
		cfg.TokenOwner, cfg.TokenSuperUser, cfg.VerifiedAt = user.Username, user.SuperUser, b.now().UTC()
	} else {
		warnings = append(warnings, "verify_connection=false: the token was saved without asking Quay whether it works")
	}

	if err := putConfig(ctx, req.Storage, cfg); err != nil {
		return nil, err
	}
	b.clients.reset()
	b.logger.Info("config written", "url", cfg.URL, "root_token_owner", cfg.TokenOwner, "root_token_fingerprint", fingerprint(cfg.Token))
	return &logical.Response{Data: configResponseData(cfg), Warnings: warnings}, nil
}

// credentialRejected explains why checking the credential against Quay failed,
// naming the field the operator should fix.
func credentialRejected(err error) *logical.Response {
	switch {
	case quay.IsUnauthorized(err):
		return badField("token", "Quay did not accept it (%s); it may be expired, revoked or mistyped", quayReason(err))
	case quay.IsForbidden(err):
		return badField("token", "Quay accepted it but refused GET /api/v1/user/ (%s): the token needs the user:read scope", quayReason(err))
	case quay.IsTransient(err):
		return badField("url", "could not verify the token: %s", quayReason(err))
	default:
		return badField("url", "could not verify the token: %s", quayReason(err))
	}
}

func (b *backend) pathConfigDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	if err := req.Storage.Delete(ctx, configStoragePath); err != nil {
		return nil, err
	}
	b.clients.reset()
	return nil, nil
}

const pathConfigHelp = `
Configures how the engine reaches Quay and the credential it acts with.

  url                       Quay's base URL (default https://quay.io).
  token                     A Quay OAuth access token; the engine's root
                            credential. Write-only.
  ca_certificate            PEM CA bundle for Quay's TLS certificate.
  disable_ssl_verification  Skip TLS verification (tests only).
  request_timeout           Per-request timeout (default 30s).
  registry_hostname         Registry host for robot logins (default: url's host).
  tidy_interval             Run tidy on this schedule (default 0: off).
  verify_connection         Check the token with Quay before saving (default true).

Writing the config checks the token with GET /api/v1/user/ and reports whose
it is. Reading it never returns the token: it shows the owner and a short
fingerprint instead.
`
