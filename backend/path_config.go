package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/bootstrap"
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
		Fields:         configFields(),
		ExistenceCheck: b.configExists,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathConfigRead,
				Summary:      "Read the Quay connection (never a credential).",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read", OperationSuffix: "configuration"},
				Responses:    map[int][]framework.Response{http.StatusOK: {{Description: "OK", Fields: configResponseFields}}},
			},
			logical.CreateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigWrite,
				Summary:                     "Configure the connection to Quay and how the engine gets its root credential.",
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "configure"},
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigWrite,
				Summary:                     "Configure the connection to Quay and how the engine gets its root credential.",
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
		HelpSynopsis:    "Configure the connection to Quay and the engine's root credential.",
		HelpDescription: pathConfigHelp,
	}}
}

func configFields() map[string]*framework.FieldSchema {
	sensitive := &framework.DisplayAttributes{Sensitive: true}
	return map[string]*framework.FieldSchema{
		"url": {
			Type:        framework.TypeString,
			Description: "Quay's base URL, e.g. https://quay.example.com.",
			Default:     defaultQuayURL,
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
			Description: "Check the credential against Quay (GET /api/v1/user/) before saving. Turn off only when Quay is not reachable yet (bootstrap=token only).",
			Default:     true,
		},

		"bootstrap": {
			Type:          framework.TypeString,
			Description:   `How the engine gets its credential: "token" (default: the token field), "initialize" (create Quay's first user on an empty Quay), "password" (username and password through Quay's direct OAuth) or "oidc" (OAuth2 client credentials at an identity provider; no Quay secret stored).`,
			AllowedValues: []any{bootstrap.MethodToken, bootstrap.MethodInitialize, bootstrap.MethodPassword, bootstrap.MethodOIDC},
		},
		"token": {
			Type:         framework.TypeString,
			Description:  "bootstrap=token: a Quay OAuth access token (generated in Quay's UI, or the contents of Quay's programmatic bootstrap token file). Write-only.",
			DisplayAttrs: sensitive,
		},
		"username": {
			Type:        framework.TypeString,
			Description: "bootstrap=initialize: the first user to create (list it in Quay's SUPER_USERS). bootstrap=password: the user to log in as.",
		},
		"password": {
			Type:         framework.TypeString,
			Description:  "bootstrap=password: the user's password. bootstrap=initialize generates one and never returns it. Write-only.",
			DisplayAttrs: sensitive,
		},
		"email": {
			Type:        framework.TypeString,
			Description: "bootstrap=initialize: the first user's email (Quay requires one when FEATURE_MAILING is on).",
		},
		"oauth_client_id": {
			Type:        framework.TypeString,
			Description: "bootstrap=password: client ID of an OAuth application listed in Quay's DIRECT_OAUTH_CLIENTID_WHITELIST.",
		},
		"oauth_redirect_uri": {
			Type:        framework.TypeString,
			Description: "bootstrap=password: the application's redirect URI (default <url>/oauth/localapp).",
		},
		"oidc_token_url": {
			Type:        framework.TypeString,
			Description: "bootstrap=oidc: the identity provider's token endpoint, e.g. https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token.",
		},
		"oidc_client_id": {
			Type:        framework.TypeString,
			Description: "bootstrap=oidc: the client (service principal) ID.",
		},
		"oidc_client_secret": {
			Type:         framework.TypeString,
			Description:  "bootstrap=oidc: the client secret. Write-only.",
			DisplayAttrs: sensitive,
		},
		"oidc_scopes": {
			Type:        framework.TypeCommaStringSlice,
			Description: "bootstrap=oidc: scopes to request, e.g. api://quay-api/.default.",
		},
		"revoke_bootstrap_token": {
			Type:        framework.TypeBool,
			Description: "Once the engine has minted its own root token, revoke the bootstrap token where Quay allows (default true).",
		},

		"root_organization": {
			Type:        framework.TypeString,
			Description: "Organization in which the engine mints its own root token (created if missing; needed by bootstrap=initialize). When empty the engine uses the bootstrap credential itself.",
		},
		"root_token_scopes": {
			Type:        framework.TypeCommaStringSlice,
			Description: "Scopes of the engine's own root token (default: org:admin repo:admin repo:create repo:read repo:write user:admin user:read).",
		},
		"root_token_ttl": {
			Type:        framework.TypeDurationSecond,
			Description: "Expiration of the engine's own root token in Quay (default 720h, at least 1h).",
		},
		"root_rotation_period": {
			Type:        framework.TypeDurationSecond,
			Description: "Rotate the engine's own root token this often (0: only before it expires).",
		},
		"rotate_before": {
			Type:        framework.TypeDurationSecond,
			Description: "Rotate the engine's own root token this long before it expires (default: a quarter of root_token_ttl).",
		},
	}
}

// configResponseFields documents the config read (OpenAPI).
var configResponseFields = map[string]*framework.FieldSchema{
	"url":                      {Type: framework.TypeString},
	"ca_certificate":           {Type: framework.TypeString},
	"disable_ssl_verification": {Type: framework.TypeBool},
	"request_timeout":          {Type: framework.TypeDurationSecond},
	"registry_hostname":        {Type: framework.TypeString, Description: "The registry host robot credentials log in to."},
	"tidy_interval":            {Type: framework.TypeDurationSecond, Description: "Schedule of tidy; 0 when off."},
	"bootstrap":                {Type: framework.TypeString, Description: "How the engine got its credential."},
	"root_token_owner":         {Type: framework.TypeString, Description: "The Quay user the root credential acts as."},
	"root_token_super_user":    {Type: framework.TypeBool, Description: "Whether Quay grants the root credential superuser rights."},
	"root_token_fingerprint":   {Type: framework.TypeString, Description: "sha256: and the first 16 hex digits of the credential's SHA-256."},
	"root_token_id":            {Type: framework.TypeString, Description: "Quay's UUID of the engine's own root token."},
	"root_token_scopes":        {Type: framework.TypeCommaStringSlice, Description: "The credential's scopes, where known."},
	"root_token_expires_at":    {Type: framework.TypeTime, Description: "When the credential expires in Quay, where known."},
	"root_token_verified_at":   {Type: framework.TypeTime, Description: "When Quay last confirmed the credential."},
	"last_root_rotation":       {Type: framework.TypeTime},
	"next_root_rotation":       {Type: framework.TypeTime},
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
		"bootstrap":                cfg.method(),
		"root_token_owner":         cfg.TokenOwner,
		"root_token_super_user":    cfg.TokenSuperUser,
	}
	if cfg.Token != "" {
		data["root_token_fingerprint"] = fingerprint(cfg.Token)
	}
	switch cfg.method() {
	case bootstrap.MethodInitialize, bootstrap.MethodPassword:
		data["username"] = cfg.Username
		data["password_set"] = cfg.Password != ""
		if cfg.Email != "" {
			data["email"] = cfg.Email
		}
		if cfg.method() == bootstrap.MethodPassword {
			data["oauth_client_id"] = cfg.OAuthClientID
			data["oauth_redirect_uri"] = cfg.OAuthRedirectURI
		}
	case bootstrap.MethodOIDC:
		data["oidc_token_url"] = cfg.OIDCTokenURL
		data["oidc_client_id"] = cfg.OIDCClientID
		data["oidc_scopes"] = cfg.OIDCScopes
	}
	if cfg.RootOrganization != "" {
		data["root_organization"] = cfg.RootOrganization
		data["root_token_id"] = cfg.RootTokenID
		data["root_token_ttl"] = int64(cfg.rootTokenTTL().Seconds())
		data["root_rotation_period"] = int64(cfg.RootRotationPeriod.Seconds())
		data["rotate_before"] = int64(cfg.rotateBefore().Seconds())
		data["revoke_bootstrap_token"] = cfg.RevokeBootstrapToken
		data["last_root_rotation"] = formatTime(cfg.LastRootRotation)
		data["next_root_rotation"] = formatTime(cfg.nextRootRotation())
	}
	if len(cfg.TokenScopes) > 0 {
		data["root_token_scopes"] = cfg.TokenScopes
	}
	if !cfg.TokenExpiresAt.IsZero() {
		data["root_token_expires_at"] = formatTime(cfg.TokenExpiresAt)
	}
	if !cfg.VerifiedAt.IsZero() {
		data["root_token_verified_at"] = formatTime(cfg.VerifiedAt)
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
	b.rootLock.Lock()
	defer b.rootLock.Unlock()

	stored, err := getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	cfg := &quayConfig{URL: defaultQuayURL, RevokeBootstrapToken: true}
	if stored != nil {
		copied := *stored
		cfg = &copied
	}
	if resp := applyConfigFields(cfg, d); resp != nil {
		return resp, nil
	}
	if resp := cfg.validate(); resp != nil {
		return resp, nil
	}
	// A client with the connection settings but no credential: it checks
	// url and ca_certificate, and bootstraps.
	anon, err := quay.New(quay.Config{BaseURL: cfg.URL, CACertificate: cfg.CACertificate,
		InsecureSkipVerify: cfg.DisableSSLVerification, RequestTimeout: cfg.RequestTimeout, Logger: b.logger.Named("quay")})
	if err != nil {
		if strings.Contains(err.Error(), "ca_certificate") {
			return badField("ca_certificate", "holds no valid PEM certificate"), nil
		}
		return badField("url", "%s", strings.TrimPrefix(err.Error(), "quay: ")), nil
	}
	defer anon.Close()

	var warnings []string
	if cfg.DisableSSLVerification {
		warnings = append(warnings, "disable_ssl_verification is on: Quay's TLS certificate is not checked; use ca_certificate outside of tests")
	}

	_, tokenGiven := d.GetOk("token")
	rebootstrap := needsBootstrap(stored, cfg, tokenGiven)
	if rebootstrap && cfg.method() == bootstrap.MethodToken && cfg.bootstrapToken == "" {
		return badField("token", "is required: the engine must bootstrap again (new url or method) and does not keep the token it started from"), nil
	}
	// The engine's own root token, if any, and where it lives: replaced
	// (and deleted) when the engine mints a new one below.
	var old rootTokenRef
	if stored != nil && stored.ownsRootToken() {
		old = rootTokenRef{org: stored.RootOrganization, clientID: stored.RootClientID, id: stored.RootTokenID}
	}

	var grant *bootstrap.Grant
	current := anon.WithCredential(cfg.credential())
	switch {
	case rebootstrap:
		var resp *logical.Response
		grant, resp = b.bootstrap(ctx, cfg, anon)
		if resp != nil {
			return resp, nil
		}
		current = anon.WithCredential(grant.Credential)
		// A pasted token may be saved unverified (Quay not reachable
		// yet); every other method talks to Quay anyway.
		if cfg.method() != bootstrap.MethodToken || d.Get("verify_connection").(bool) || cfg.RootOrganization != "" {
			user, err := current.GetUser(ctx)
			if err != nil {
				return credentialRejected(cfg.method(), err), nil
			}
			cfg.TokenOwner, cfg.TokenSuperUser, cfg.VerifiedAt = user.Username, user.SuperUser, b.now().UTC()
		} else {
			cfg.TokenOwner, cfg.TokenSuperUser, cfg.VerifiedAt = "", false, time.Time{}
			warnings = append(warnings, "verify_connection=false: the credential was saved without asking Quay whether it works")
		}
		cfg.Token, cfg.TokenExpiresAt, cfg.TokenScopes = grant.Token, grant.ExpiresAt, grant.Scopes
		cfg.RootTokenID = ""
		cfg.BootstrapInput = ""
		if cfg.method() == bootstrap.MethodToken {
			cfg.BootstrapInput = fingerprint(cfg.bootstrapToken)
		}
		if cfg.RootOrganization != "" && cfg.method() != bootstrap.MethodOIDC {
			// Save what bootstrapping produced before minting, so a
			// failure below loses nothing (initialize cannot run twice).
			if err := putConfig(ctx, req.Storage, cfg); err != nil {
				return nil, err
			}
			b.clients.reset()
		}
	case d.Get("verify_connection").(bool):
		user, err := current.GetUser(ctx)
		if err != nil {
			return credentialRejected(cfg.method(), err), nil
		}
		cfg.TokenOwner, cfg.TokenSuperUser, cfg.VerifiedAt = user.Username, user.SuperUser, b.now().UTC()
	default:
		warnings = append(warnings, "verify_connection=false: the credential was saved without asking Quay whether it works")
	}

	mint := cfg.RootOrganization != "" && cfg.method() != bootstrap.MethodOIDC &&
		(cfg.RootTokenID == "" || stored == nil || stored.RootOrganization != cfg.RootOrganization)
	if mint {
		if stored != nil && stored.RootOrganization != cfg.RootOrganization {
			cfg.RootClientID, cfg.RootTokenID = "", ""
		}
		walID, err := b.mintRootToken(ctx, req.Storage, current, cfg)
		if err != nil {
			return rootMintFailed(cfg, err), nil
		}
		if err := putConfig(ctx, req.Storage, cfg); err != nil {
			return nil, err
		}
		warnings = append(warnings, b.finishRootSwitch(ctx, req.Storage, cfg, "", walID)...)
		warnings = append(warnings, b.deleteOldRootToken(ctx, req.Storage, old, cfg)...)
		if grant != nil && cfg.RevokeBootstrapToken {
			client, _, err := b.client(ctx, req.Storage)
			if err == nil {
				warnings = append(warnings, b.revokeBootstrapToken(ctx, client, cfg.method(), grant, cfg.TokenOwner)...)
			}
		}
	} else {
		if cfg.RootOrganization == "" {
			cfg.RootClientID, cfg.RootTokenID, cfg.LastRootRotation = "", "", time.Time{}
		}
		if err := putConfig(ctx, req.Storage, cfg); err != nil {
			return nil, err
		}
		if rebootstrap {
			warnings = append(warnings, b.deleteOldRootToken(ctx, req.Storage, old, cfg)...)
		}
	}
	b.clients.reset()
	b.logger.Info("config written", "url", cfg.URL, "bootstrap", cfg.method(), "root_token_owner", cfg.TokenOwner,
		"root_token_fingerprint", fingerprint(cfg.Token), "root_token_id", cfg.RootTokenID)
	return &logical.Response{Data: configResponseData(cfg), Warnings: warnings}, nil
}

// rootTokenRef locates a root token the engine minted.
type rootTokenRef struct{ org, clientID, id string }

// deleteOldRootToken deletes the engine's previous root token after a new
// credential replaced it (a new bootstrap or root organization).
func (b *backend) deleteOldRootToken(ctx context.Context, s logical.Storage, old rootTokenRef, cfg *quayConfig) []string {
	if old.id == "" || old.id == cfg.RootTokenID {
		return nil
	}
	client, _, err := b.client(ctx, s)
	if err == nil {
		err = deleteOAuthToken(ctx, client, old.org, old.clientID, old.id)
	}
	if err != nil {
		return []string{fmt.Sprintf("could not delete the engine's previous root token %s in %s: %s; it expires by itself", old.id, old.org, reasonOf(err))}
	}
	return nil
}

// bootstrap runs the configured method. It answers 400 naming the field for
// failures the operator can fix.
func (b *backend) bootstrap(ctx context.Context, cfg *quayConfig, anon *quay.Client) (*bootstrap.Grant, *logical.Response) {
	if cfg.method() == bootstrap.MethodInitialize && cfg.Password == "" {
		pw, err := bootstrap.GeneratePassword()
		if err != nil {
			return nil, logical.ErrorResponse("generating a password: %s", err)
		}
		cfg.Password = pw
	}
	method, err := cfg.bootstrapMethod(b.now)
	if err != nil {
		return nil, badField("bootstrap", "%s", err)
	}
	grant, err := method.Obtain(ctx, anon)
	if err == nil {
		return grant, nil
	}
	switch cfg.method() {
	case bootstrap.MethodInitialize:
		switch {
		case quay.IsNotFound(err):
			return nil, badField("bootstrap", "Quay does not offer user initialization (404): set FEATURE_USER_INITIALIZE: true in its config.yaml")
		case quay.StatusOf(err) == http.StatusBadRequest:
			return nil, badField("bootstrap", "Quay refused to initialize %q: %s (initialize only works on an empty Quay with database authentication)", cfg.Username, quayReason(err))
		}
	case bootstrap.MethodPassword:
		switch {
		case quay.StatusOf(err) == http.StatusForbidden, quay.StatusOf(err) == http.StatusUnauthorized:
			return nil, badField("password", "Quay refused the login or the direct OAuth request (%s): check the username and password, that oauth_client_id is in DIRECT_OAUTH_CLIENTID_WHITELIST, and that the user administers the application's organization", quayReason(err))
		case quay.StatusOf(err) == http.StatusTooManyRequests:
			return nil, badField("password", "Quay is throttling logins for this user after failed attempts (%s)", quayReason(err))
		case quay.StatusOf(err) >= 300 && quay.StatusOf(err) < 500:
			return nil, badField("oauth_client_id", "Quay did not issue a token (%s): check oauth_client_id and oauth_redirect_uri", quayReason(err))
		}
	case bootstrap.MethodOIDC:
		if errors.Is(err, bootstrap.ErrProviderUnreachable) {
			return nil, badField("oidc_token_url", "could not reach the identity provider: %s", err)
		}
		return nil, badField("oidc_client_secret", "could not get an access token from %s: %s", cfg.OIDCTokenURL, err)
	}
	return nil, badField("url", "bootstrapping with %s failed: %s", cfg.method(), reasonOf(err))
}

// rootMintFailed explains a failure to mint the engine's own root token.
func rootMintFailed(cfg *quayConfig, err error) *logical.Response {
	msg := fmt.Sprintf("could not mint the engine's own root token in organization %q: %s", cfg.RootOrganization, reasonOf(err))
	if cfg.Token != "" && !cfg.TokenExpiresAt.IsZero() {
		msg += fmt.Sprintf("; the bootstrap credential was saved and expires at %s, write config again once fixed", formatTime(cfg.TokenExpiresAt))
	}
	switch {
	case quay.IsForbidden(err):
		return badField("root_token_scopes", "%s (the bootstrap credential must hold every scope in root_token_scopes and administer the organization)", msg)
	case quay.StatusOf(err) == http.StatusBadRequest, quay.IsNotFound(err):
		return badField("root_organization", "%s", msg)
	}
	return logical.ErrorResponse(msg)
}

// applyConfigFields merges the request into cfg and answers 400 for a value
// that is wrong on its own.
func applyConfigFields(cfg *quayConfig, d *framework.FieldData) *logical.Response {
	str := func(field string, dst *string) {
		if v, ok := d.GetOk(field); ok {
			*dst = strings.TrimSpace(v.(string))
		}
	}
	str("url", &cfg.URL)
	str("ca_certificate", &cfg.CACertificate)
	if v, ok := d.GetOk("disable_ssl_verification"); ok {
		cfg.DisableSSLVerification = v.(bool)
	}
	if v, ok := d.GetOk("registry_hostname"); ok {
		host := strings.TrimSpace(v.(string))
		if strings.Contains(host, "/") || strings.ContainsAny(host, " \t") {
			return badField("registry_hostname", "must be a host[:port] without scheme or path, got %q", host)
		}
		cfg.RegistryHostname = host
	}
	if v, ok := d.GetOk("tidy_interval"); ok {
		cfg.TidyInterval = time.Duration(v.(int)) * time.Second
		if cfg.TidyInterval != 0 && cfg.TidyInterval < minTidyInterval {
			return badField("tidy_interval", "must be 0 (off) or at least %s, got %s", minTidyInterval, cfg.TidyInterval)
		}
	}
	if v, ok := d.GetOk("request_timeout"); ok {
		cfg.RequestTimeout = time.Duration(v.(int)) * time.Second
		if cfg.RequestTimeout != 0 && (cfg.RequestTimeout < minRequestTimeout || cfg.RequestTimeout > maxRequestTimeout) {
			return badField("request_timeout", "must be between %s and %s, got %s", minRequestTimeout, maxRequestTimeout, cfg.RequestTimeout)
		}
	}

	if v, ok := d.GetOk("bootstrap"); ok {
		m := strings.TrimSpace(v.(string))
		if m == "" {
			m = bootstrap.MethodToken
		}
		if !slices.Contains(bootstrap.Methods(), m) {
			return badField("bootstrap", "must be one of %s, got %q", strings.Join(bootstrap.Methods(), ", "), m)
		}
		if m != cfg.method() {
			// Another method's inputs say nothing about this one.
			cfg.Username, cfg.Password, cfg.Email = "", "", ""
			cfg.OAuthClientID, cfg.OAuthRedirectURI = "", ""
			cfg.OIDCTokenURL, cfg.OIDCClientID, cfg.OIDCClientSecret, cfg.OIDCScopes = "", "", "", nil
		}
		cfg.Bootstrap = m
	}
	if v, ok := d.GetOk("token"); ok {
		cfg.bootstrapToken = strings.TrimSpace(v.(string))
	} else if cfg.method() == bootstrap.MethodToken && cfg.RootTokenID == "" {
		cfg.bootstrapToken = cfg.Token
	}
	str("username", &cfg.Username)
	str("password", &cfg.Password)
	str("email", &cfg.Email)
	str("oauth_client_id", &cfg.OAuthClientID)
	str("oauth_redirect_uri", &cfg.OAuthRedirectURI)
	str("oidc_token_url", &cfg.OIDCTokenURL)
	str("oidc_client_id", &cfg.OIDCClientID)
	str("oidc_client_secret", &cfg.OIDCClientSecret)
	if v, ok := d.GetOk("oidc_scopes"); ok {
		cfg.OIDCScopes = v.([]string)
	}
	if v, ok := d.GetOk("revoke_bootstrap_token"); ok {
		cfg.RevokeBootstrapToken = v.(bool)
	}

	str("root_organization", &cfg.RootOrganization)
	if v, ok := d.GetOk("root_token_scopes"); ok {
		var scopes []string
		for _, s := range v.([]string) {
			scopes = append(scopes, quay.SplitScopes(s)...)
		}
		normalized, err := quay.NormalizeScopes(scopes)
		if err != nil {
			return badField("root_token_scopes", "%s", err)
		}
		cfg.RootTokenScopes = normalized
	}
	durations := map[string]*time.Duration{"root_token_ttl": &cfg.RootTokenTTL, "root_rotation_period": &cfg.RootRotationPeriod, "rotate_before": &cfg.RotateBefore}
	for field, dst := range durations {
		if v, ok := d.GetOk(field); ok {
			*dst = time.Duration(v.(int)) * time.Second
		}
	}
	return nil
}

// validate checks the merged config: each method's required inputs, and
// the root token's settings.
func (c *quayConfig) validate() *logical.Response {
	switch c.method() {
	case bootstrap.MethodToken:
		if c.bootstrapToken == "" && c.Token == "" {
			return badField("token", "is required with bootstrap=token: a Quay OAuth access token for the engine to act with")
		}
		if strings.ContainsAny(c.bootstrapToken, " \t\r\n") {
			return badField("token", "must not contain whitespace")
		}
	case bootstrap.MethodInitialize:
		if c.Username == "" {
			return badField("username", "is required with bootstrap=initialize: the first user to create (list it in Quay's SUPER_USERS)")
		}
		if !validQuayName(c.Username) {
			return badField("username", "%q is not a valid Quay username", c.Username)
		}
		if c.RootOrganization == "" {
			return badField("root_organization", "is required with bootstrap=initialize: Quay's initialization token expires after 9000 seconds, so the engine must mint its own")
		}
	case bootstrap.MethodPassword:
		switch {
		case c.Username == "":
			return badField("username", "is required with bootstrap=password")
		case c.Password == "":
			return badField("password", "is required with bootstrap=password")
		case c.OAuthClientID == "":
			return badField("oauth_client_id", "is required with bootstrap=password: an application in Quay's DIRECT_OAUTH_CLIENTID_WHITELIST")
		}
	case bootstrap.MethodOIDC:
		switch {
		case c.OIDCTokenURL == "" || !(strings.HasPrefix(c.OIDCTokenURL, "https://") || strings.HasPrefix(c.OIDCTokenURL, "http://")):
			return badField("oidc_token_url", "must be the identity provider's token endpoint URL, got %q", c.OIDCTokenURL)
		case c.OIDCClientID == "":
			return badField("oidc_client_id", "is required with bootstrap=oidc")
		case c.OIDCClientSecret == "":
			return badField("oidc_client_secret", "is required with bootstrap=oidc")
		}
		if c.RootOrganization != "" {
			return badField("root_organization", "does not apply to bootstrap=oidc: the engine uses short-lived identity-provider tokens and stores no Quay token")
		}
	}
	if c.RootOrganization != "" && !validQuayName(c.RootOrganization) {
		return badField("root_organization", "%q is not a valid Quay organization name", c.RootOrganization)
	}
	if c.RootTokenTTL != 0 && c.RootTokenTTL < minRootTokenTTL {
		return badField("root_token_ttl", "must be at least %s, got %s", minRootTokenTTL, c.RootTokenTTL)
	}
	if c.RootTokenTTL > quay.MaxTokenExpiration {
		return badField("root_token_ttl", "must be at most Quay's ten years, got %s", c.RootTokenTTL)
	}
	if c.RotateBefore != 0 && c.RotateBefore >= c.rootTokenTTL() {
		return badField("rotate_before", "(%s) must be shorter than root_token_ttl (%s)", c.RotateBefore, c.rootTokenTTL())
	}
	if c.RootRotationPeriod != 0 && c.RootRotationPeriod < minRotationPeriod {
		return badField("root_rotation_period", "must be 0 or at least %s, got %s", minRotationPeriod, c.RootRotationPeriod)
	}
	if len(c.RootTokenScopes) > 0 {
		if ok, missing := quay.ScopesCover(c.RootTokenScopes, []string{quay.ScopeUserRead, quay.ScopeOrgAdmin}); !ok {
			return badField("root_token_scopes", "must include %s: the engine verifies itself with user:read and manages applications, robots and teams with org:admin", strings.Join(missing, " "))
		}
	}
	return nil
}

// credentialRejected explains why checking the credential against Quay failed,
// naming the field the operator should fix.
func credentialRejected(method string, err error) *logical.Response {
	field := "token"
	switch method {
	case bootstrap.MethodOIDC:
		field = "oidc_client_id"
	case bootstrap.MethodInitialize, bootstrap.MethodPassword:
		field = "username"
	}
	switch {
	case quay.IsUnauthorized(err):
		// Quay answers GET /api/v1/user/ with 401 invalid_token also for a
		// valid token without user:read (endpoints/api/user.py).
		hint := "it may be expired, revoked or mistyped, or lack the user:read scope the engine needs to verify it"
		if method == bootstrap.MethodOIDC {
			hint = "check Quay's OIDC_ISSUERS, OIDC_AUDIENCES and OIDC_ALLOWED_CLIENTS against the token's iss, aud and azp"
		}
		return badField(field, "Quay did not accept the credential (%s); %s", quayReason(err), hint)
	case quay.IsForbidden(err):
		return badField(field, "Quay accepted the credential but refused GET /api/v1/user/ (%s): it needs the user:read scope", quayReason(err))
	default:
		return badField("url", "could not verify the credential: %s", reasonOf(err))
	}
}

func (b *backend) pathConfigDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	b.rootLock.Lock()
	defer b.rootLock.Unlock()
	if err := req.Storage.Delete(ctx, configStoragePath); err != nil {
		return nil, err
	}
	b.clients.reset()
	return nil, nil
}

const pathConfigHelp = `
Configures how the engine reaches Quay and how it gets the credential it acts
with. Writing the config checks that credential with GET /api/v1/user/ and
reports whose it is. Reading it never returns a credential: it shows the
owner, a short fingerprint, the expiry and the rotation schedule instead.

Bootstrap methods (bootstrap=...):
  token       a Quay OAuth token (token=...), e.g. from Quay's UI or its
              programmatic bootstrap token file. The default.
  initialize  create Quay's first user on an empty Quay (username, email);
              the engine generates and keeps the password.
  password    username and password through Quay's direct OAuth
              (oauth_client_id of a whitelisted application).
  oidc        OAuth2 client credentials at an identity provider
              (oidc_token_url, oidc_client_id, oidc_client_secret,
              oidc_scopes); Quay validates the JWT; no Quay secret stored.

With root_organization set, the engine then mints its own root token there
(root_token_scopes, root_token_ttl), stops depending on the bootstrap
credential (revoking it where Quay allows), and rotates it every
root_rotation_period and rotate_before its expiry, or on config/rotate-root.
`
