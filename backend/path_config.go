package backend

import (
	"context"
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
				Responses:    okWith(configResponseFields),
			},
			logical.CreateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigWrite,
				Summary:                     "Configure the connection to Quay and how the engine gets its root credential.",
				Responses:                   okWith(configResponseFields),
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "configure"},
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigWrite,
				Summary:                     "Configure the connection to Quay and how the engine gets its root credential.",
				Responses:                   okWith(configResponseFields),
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "configure"},
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
			logical.DeleteOperation: &framework.PathOperation{
				Callback:                    b.pathConfigDelete,
				Summary:                     "Delete the configuration. Leases issued before can no longer be revoked in Quay until it is written again.",
				Responses:                   doneOrWarnings,
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
		"url_aliases": {
			Type:        framework.TypeCommaStringSlice,
			Description: "Other addresses of the same Quay (e.g. its old hostname after a rename). Leases record the Quay that issued them; those recorded under an alias are revoked through url. A lease of any other Quay is never revoked with this config's credential.",
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
			Description: "bootstrap=password: the application's redirect URI (default: Quay's local handler at its SERVER_HOSTNAME, read from Quay's GET /config).",
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
			Description: "Organization in which the engine mints its own root token (created if missing; needed by bootstrap=initialize). When empty the engine uses the bootstrap credential itself; clearing it needs that credential again (token=..., or the bootstrap method's inputs) and deletes the engine's own root token.",
		},
		"root_token_scopes": {
			Type:        framework.TypeCommaStringSlice,
			Description: "Scopes of the engine's own root token (default: org:admin repo:admin repo:create repo:read repo:write user:admin user:read). A change mints a new root token at once, with the current credential: Quay only mints scopes that credential holds.",
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

// configResponseFields documents the config read and write answers.
var configResponseFields = map[string]*framework.FieldSchema{
	"url":                      {Type: framework.TypeString, Description: "Quay's base URL."},
	"url_aliases":              {Type: framework.TypeCommaStringSlice, Description: "Other addresses of the same Quay."},
	"ca_certificate":           {Type: framework.TypeString, Description: "PEM CA bundle trusted for Quay's certificate (empty: the system roots)."},
	"disable_ssl_verification": {Type: framework.TypeBool, Description: "Whether Quay's TLS certificate is not checked."},
	"request_timeout":          {Type: framework.TypeDurationSecond, Description: "Timeout of each HTTP request to Quay, in seconds."},
	"registry_hostname":        {Type: framework.TypeString, Description: "The registry host robot credentials log in to."},
	"tidy_interval":            {Type: framework.TypeDurationSecond, Description: "Schedule of tidy in seconds; 0 when off."},
	"bootstrap":                {Type: framework.TypeString, Description: "How the engine got its credential: token, initialize, password or oidc."},
	"username":                 {Type: framework.TypeString, Description: "bootstrap=initialize or password: the Quay user."},
	"password_set":             {Type: framework.TypeBool, Description: "bootstrap=initialize or password: whether a password is stored (it is never shown)."},
	"email":                    {Type: framework.TypeString, Description: "bootstrap=initialize: the first user's email."},
	"oauth_client_id":          {Type: framework.TypeString, Description: "bootstrap=password: the whitelisted application's client ID."},
	"oauth_redirect_uri":       {Type: framework.TypeString, Description: "bootstrap=password: the redirect URI sent to Quay."},
	"oidc_token_url":           {Type: framework.TypeString, Description: "bootstrap=oidc: the identity provider's token endpoint."},
	"oidc_client_id":           {Type: framework.TypeString, Description: "bootstrap=oidc: the client ID."},
	"oidc_scopes":              {Type: framework.TypeCommaStringSlice, Description: "bootstrap=oidc: the scopes requested."},
	"revoke_bootstrap_token":   {Type: framework.TypeBool, Description: "Whether the bootstrap credential is revoked once the engine has its own root token."},
	"root_organization":        {Type: framework.TypeString, Description: "Organization of the engine's own root token."},
	"root_token_owner":         {Type: framework.TypeString, Description: "The Quay user the root credential acts as."},
	"root_token_super_user":    {Type: framework.TypeBool, Description: "Whether Quay grants the root credential superuser rights."},
	"root_token_fingerprint":   {Type: framework.TypeString, Description: "sha256: and the first 16 hex digits of the credential's SHA-256."},
	"root_token_id":            {Type: framework.TypeString, Description: "Quay's UUID of the engine's own root token."},
	"root_token_scopes":        {Type: framework.TypeCommaStringSlice, Description: "The credential's scopes, where known."},
	"root_token_ttl":           {Type: framework.TypeDurationSecond, Description: "Expiration given to the engine's own root token, in seconds."},
	"root_token_expires_at":    {Type: framework.TypeTime, Description: "When the credential expires in Quay, where known."},
	"root_token_verified_at":   {Type: framework.TypeTime, Description: "When Quay last confirmed the credential."},
	"root_rotation_period":     {Type: framework.TypeDurationSecond, Description: "Rotation period of the engine's own root token in seconds; 0: only before it expires."},
	"rotate_before":            {Type: framework.TypeDurationSecond, Description: "How long before its expiry the root token is rotated, in seconds."},
	"last_root_rotation":       {Type: framework.TypeTime, Description: "When the engine last minted its root token."},
	"next_root_rotation":       {Type: framework.TypeTime, Description: "When the schedule rotates the root token next."},
	"retiring_root_tokens":     {Type: framework.TypeSlice, Description: "Root tokens the engine replaced and deletes in Quay (id, organization, delete_after); kept here until Quay no longer holds them."},
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
		"url_aliases":              nonNilSlice(cfg.URLAliases),
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
		setTime(data, "last_root_rotation", cfg.LastRootRotation)
		setTime(data, "next_root_rotation", cfg.nextRootRotation())
	}
	if len(cfg.RetiringRootTokens) > 0 {
		retiring := make([]map[string]any, 0, len(cfg.RetiringRootTokens))
		for _, r := range cfg.RetiringRootTokens {
			retiring = append(retiring, map[string]any{"id": r.ID, "organization": r.Organization, "delete_after": formatTime(r.DeleteAfter)})
		}
		data["retiring_root_tokens"] = retiring
	}
	if len(cfg.TokenScopes) > 0 {
		data["root_token_scopes"] = cfg.TokenScopes
	}
	setTime(data, "root_token_expires_at", cfg.TokenExpiresAt)
	setTime(data, "root_token_verified_at", cfg.VerifiedAt)
	return data
}

func effectiveRequestTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return quay.DefaultRequestTimeout
	}
	return d
}

// configWritePlan is what a config write will do, decided from the request
// and the stored config before anything leaves the engine.
type configWritePlan struct {
	// rebootstrap runs the bootstrap method again.
	rebootstrap bool
	// mint gives the engine a new root token of its own.
	mint bool
	// replaced is the stored config's engine-minted root token when the
	// write replaces it; it is recorded as retiring with the new config
	// and deleted in Quay after.
	replaced *quayConfig
}

// pathConfigWrite runs in four steps, so that a refused write changes
// nothing and a failure halfway leaves nothing behind: merge and validate
// (no Quay call), obtain or verify the credential, mint the engine's own
// root token, then persist once and clean up.
func (b *backend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.rootLock.Lock()
	defer b.rootLock.Unlock()

	stored, err := getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	cfg, plan, resp := planConfigWrite(stored, d)
	if resp != nil {
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

	grant, current, more, resp, err := b.obtainCredential(ctx, req.Storage, stored, cfg, plan, anon, d)
	if resp != nil || err != nil {
		return resp, err
	}
	warnings = append(warnings, more...)

	walID := ""
	if plan.mint {
		walID, err = b.mintRootToken(ctx, req.Storage, current, cfg, replacedID(plan))
		if err != nil {
			return b.mintFailed(ctx, cfg, grant, current, err), nil
		}
	}

	// What the engine created and no longer acts with is recorded for
	// deletion in the same write that stops using it: its own root token
	// or a token it obtained by logging in, and the token this write
	// obtained when the engine minted its own instead.
	now := b.now()
	if stored != nil && stored.Token != cfg.Token {
		cfg.retire(stored, now)
	}
	revokeGrant := grant != nil && plan.mint && cfg.RevokeBootstrapToken
	if revokeGrant && cfg.BootstrapTokenID != "" {
		cfg.retireGrant(cfg.BootstrapTokenID, grant.Token, now)
		revokeGrant = false
	}
	if plan.mint {
		cfg.BootstrapTokenID = ""
	}
	if err := putConfig(ctx, req.Storage, cfg); err != nil {
		// A minted token's entry stays: the rollback deletes it.
		return nil, err
	}
	if walID != "" {
		b.deleteWAL(ctx, req.Storage, walID)
	}
	b.resetClient(ctx, req.Storage)
	warnings = append(warnings, b.finishRootSwitch(ctx, req.Storage, cfg)...)
	if revokeGrant {
		warnings = append(warnings, b.revokeBootstrapToken(ctx, current.WithCredential(cfg.credential()), cfg, grant)...)
	}
	b.logger.Info("config written", "url", cfg.URL, "bootstrap", cfg.method(), "root_token_owner", cfg.TokenOwner,
		"root_token_fingerprint", fingerprint(cfg.Token), "root_token_id", cfg.RootTokenID)
	return &logical.Response{Data: configResponseData(cfg), Warnings: warnings}, nil
}

func replacedID(plan configWritePlan) string {
	if plan.replaced == nil {
		return ""
	}
	return plan.replaced.RootTokenID
}

// planConfigWrite merges the request into a copy of the stored config,
// validates it and decides what the write must do. It calls nothing.
func planConfigWrite(stored *quayConfig, d *framework.FieldData) (*quayConfig, configWritePlan, *logical.Response) {
	cfg := &quayConfig{URL: defaultQuayURL, RevokeBootstrapToken: true}
	if stored != nil {
		copied := *stored
		copied.RetiringRootTokens = slices.Clone(stored.RetiringRootTokens)
		cfg = &copied
	}
	var plan configWritePlan
	if resp := applyConfigFields(cfg, d); resp != nil {
		return nil, plan, resp
	}
	if resp := cfg.validate(); resp != nil {
		return nil, plan, resp
	}
	_, tokenGiven := d.GetOk("token")
	owned := stored != nil && stored.ownsRootToken()
	keepsOwn := cfg.RootOrganization != "" && cfg.method() != bootstrap.MethodOIDC
	_, scopesGiven := d.GetOk("root_token_scopes")
	scopesChanged := stored != nil && scopesGiven && !slices.Equal(cfg.rootScopes(), stored.rootScopes())

	plan.rebootstrap = needsBootstrap(stored, cfg, tokenGiven)
	if owned && !keepsOwn {
		// The engine stops using its own root token and needs the
		// credential to use instead.
		if cfg.method() == bootstrap.MethodToken && !tokenGiven {
			return nil, plan, badField("token", "is required when root_organization is cleared: the engine stops using (and deletes) its own root token and needs the credential to use instead")
		}
		plan.rebootstrap = true
	}
	if scopesChanged && !keepsOwn {
		if cfg.method() != bootstrap.MethodPassword {
			return nil, plan, badField("root_token_scopes", "applies only when the engine mints its own root token (root_organization) or logs in with bootstrap=password")
		}
		plan.rebootstrap = true
	}
	if plan.rebootstrap && cfg.method() == bootstrap.MethodToken && cfg.bootstrapToken == "" {
		return nil, plan, badField("token", "is required: the engine must bootstrap again (new url or method) and does not keep the token it started from")
	}
	plan.mint = keepsOwn && (plan.rebootstrap || !owned || stored.RootOrganization != cfg.RootOrganization || scopesChanged)
	if owned && (plan.mint || !keepsOwn) {
		plan.replaced = stored
	}
	if stored != nil && stored.RootOrganization != cfg.RootOrganization {
		cfg.RootClientID = ""
	}
	if !keepsOwn {
		cfg.RootClientID, cfg.RootTokenID, cfg.LastRootRotation = "", "", time.Time{}
	}
	return cfg, plan, nil
}

// obtainCredential runs the bootstrap method when the plan says so, or
// verifies the stored credential, and returns the client to mint with. Only
// bootstrap=initialize changes Quay irreversibly (its first user exists from
// then on): its result is saved at once, so that a failure later in the
// write loses nothing (Quay would refuse a second initialization).
func (b *backend) obtainCredential(ctx context.Context, s logical.Storage, stored, cfg *quayConfig, plan configWritePlan, anon *quay.Client, d *framework.FieldData) (*bootstrap.Grant, *quay.Client, []string, *logical.Response, error) {
	verify := d.Get("verify_connection").(bool)
	if !plan.rebootstrap {
		current := anon.WithCredential(cfg.credential())
		if !verify {
			return nil, current, []string{"verify_connection=false: the credential was saved without asking Quay whether it works"}, nil, nil
		}
		user, err := current.GetUser(ctx)
		if err != nil {
			return nil, nil, nil, credentialRejected(cfg.method(), err), nil
		}
		cfg.TokenOwner, cfg.TokenSuperUser, cfg.VerifiedAt = user.Username, user.SuperUser, b.now().UTC()
		return nil, current, nil, nil, nil
	}

	grant, resp := b.bootstrap(ctx, cfg, anon)
	if resp != nil {
		return nil, nil, nil, resp, nil
	}
	cfg.Token, cfg.TokenExpiresAt, cfg.TokenScopes = grant.Token, grant.ExpiresAt, grant.Scopes
	cfg.TokenOwner, cfg.TokenSuperUser, cfg.VerifiedAt = "", false, time.Time{}
	cfg.RootTokenID, cfg.BootstrapInput = "", ""
	if cfg.method() == bootstrap.MethodToken {
		cfg.BootstrapInput = fingerprint(cfg.bootstrapToken)
	}
	current := anon.WithCredential(grant.Credential)
	var warnings []string
	cfg.BootstrapTokenID = ""
	if cfg.method() == bootstrap.MethodPassword || cfg.method() == bootstrap.MethodInitialize {
		id, warning := b.identifyObtainedToken(ctx, current, cfg, stored)
		cfg.BootstrapTokenID = id
		if warning != "" && !plan.mint {
			// With a mint, revoking the obtained token says it instead.
			warnings = append(warnings, warning)
		}
	}
	if cfg.method() == bootstrap.MethodInitialize {
		saved := *cfg
		saved.retire(plan.replaced, b.now())
		if err := putConfig(ctx, s, &saved); err != nil {
			return nil, nil, nil, nil, err
		}
		b.clients.reset()
	}
	// A pasted token may be saved unverified (Quay not reachable yet);
	// every other method talks to Quay anyway.
	if cfg.method() != bootstrap.MethodToken || verify || plan.mint {
		user, err := current.GetUser(ctx)
		if err != nil {
			resp := credentialRejected(cfg.method(), err)
			for _, w := range b.dropGrant(ctx, current, cfg, grant) {
				resp.AddWarning(w)
			}
			return nil, nil, nil, resp, nil
		}
		cfg.TokenOwner, cfg.TokenSuperUser, cfg.VerifiedAt = user.Username, user.SuperUser, b.now().UTC()
	} else {
		warnings = append(warnings, "verify_connection=false: the credential was saved without asking Quay whether it works")
	}
	return grant, current, warnings, nil, nil
}

// mintFailed answers a write whose root token could not be minted. Nothing
// of the write is kept, except what bootstrap=initialize saved (Quay's
// first user exists now, whatever happens), and the credential a password
// login obtained for this write is revoked again.
func (b *backend) mintFailed(ctx context.Context, cfg *quayConfig, grant *bootstrap.Grant, current *quay.Client, err error) *logical.Response {
	resp := rootMintFailed(cfg, err)
	for _, w := range b.dropGrant(ctx, current, cfg, grant) {
		resp.AddWarning(w)
	}
	return resp
}

// dropGrant revokes the token a refused write obtained by logging in with
// bootstrap=password: nothing will record it. (bootstrap=initialize keeps its
// result: Quay's first user exists either way.)
func (b *backend) dropGrant(ctx context.Context, client *quay.Client, cfg *quayConfig, grant *bootstrap.Grant) []string {
	if grant == nil || cfg.method() != bootstrap.MethodPassword {
		return nil
	}
	if cfg.BootstrapTokenID != "" {
		if err := client.DeleteAuthorization(ctx, cfg.BootstrapTokenID); err != nil && !quay.IsNotFound(err) {
			return []string{"could not revoke the token the login obtained: " + reasonOf(err)}
		}
		return nil
	}
	return b.revokeBootstrapToken(ctx, client, cfg, grant)
}

// pathConfigDelete deletes in Quay what the engine created and still
// holds (root tokens retiring, then the credential it acts with, when it
// created it), then the config. Anything Quay still holds refuses the
// delete and keeps the config, which is all that tracks it.
func (b *backend) pathConfigDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	b.rootLock.Lock()
	defer b.rootLock.Unlock()
	cfg, err := getConfig(ctx, req.Storage)
	if err != nil || cfg == nil {
		return nil, err
	}
	now := b.now()
	for i := range cfg.RetiringRootTokens {
		cfg.RetiringRootTokens[i].DeleteAfter = now
	}
	changed, warnings := b.deleteRetiredRootTokens(ctx, cfg)
	if len(cfg.RetiringRootTokens) > 0 {
		if changed {
			if err := putConfig(ctx, req.Storage, cfg); err != nil {
				return nil, err
			}
		}
		return nil, logical.CodedError(http.StatusBadGateway, "config kept: "+strings.Join(warnings, "; "))
	}
	own := &quayConfig{}
	own.retire(cfg, now)
	if _, warnings := b.deleteRetiredRootTokens(ctx, own); len(own.RetiringRootTokens) > 0 {
		if changed {
			if err := putConfig(ctx, req.Storage, cfg); err != nil {
				return nil, err
			}
		}
		return nil, logical.CodedError(http.StatusBadGateway, "config kept: could not delete the engine's own credential in Quay: "+strings.Join(warnings, "; "))
	}
	if err := req.Storage.Delete(ctx, configStoragePath); err != nil {
		return nil, err
	}
	b.clients.reset()
	b.logger.Info("config deleted, and the credentials the engine created for itself with it")
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
