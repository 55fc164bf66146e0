package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/bootstrap"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/version"
)

// configStoragePath is where the connection and root credential live. It is
// seal-wrapped (see backend.go).
const configStoragePath = "config"

// defaultQuayURL is what redhat-cop/vault-plugin-secrets-quay assumed when no
// url was given; kept so its configurations keep working unchanged.
const defaultQuayURL = "https://quay.io"

// quayConfig is the stored connection to Quay. Token is the root credential
// and never leaves storage except as a Bearer header to Quay.
type quayConfig struct {
	URL string `json:"url"`
	// URLAliases are other addresses of the same Quay (an old hostname):
	// credentials recorded under them are managed through URL.
	URLAliases []string `json:"url_aliases,omitempty"`
	// Token is the root credential in use: the engine's own root token,
	// or the token the operator wrote when the engine mints none. Empty with
	// bootstrap=oidc.
	Token string `json:"token"`
	// bootstrapToken is the token field of a config write (bootstrap=token);
	// it is only kept, as Token, when the engine does not mint its own.
	bootstrapToken string

	CACertificate          string        `json:"ca_certificate,omitempty"`
	DisableSSLVerification bool          `json:"disable_ssl_verification"`
	RequestTimeout         time.Duration `json:"request_timeout,omitempty"`
	// RegistryHostname is the registry host robots log in to, when it is
	// not the host of URL (Quay's SERVER_HOSTNAME behind another API address).
	RegistryHostname string `json:"registry_hostname,omitempty"`
	// TidyInterval runs tidy on a schedule when positive.
	TidyInterval time.Duration `json:"tidy_interval,omitempty"`

	// How the engine got its credential (bootstrap.Method names) and the
	// inputs of that method. Password and OIDCClientSecret are secrets.
	Bootstrap        string   `json:"bootstrap,omitempty"`
	Username         string   `json:"username,omitempty"`
	Password         string   `json:"password,omitempty"`
	Email            string   `json:"email,omitempty"`
	OAuthClientID    string   `json:"oauth_client_id,omitempty"`
	OAuthRedirectURI string   `json:"oauth_redirect_uri,omitempty"`
	OIDCTokenURL     string   `json:"oidc_token_url,omitempty"`
	OIDCClientID     string   `json:"oidc_client_id,omitempty"`
	OIDCClientSecret string   `json:"oidc_client_secret,omitempty"`
	OIDCScopes       []string `json:"oidc_scopes,omitempty"`
	// BootstrapInput fingerprints the token bootstrap=token started from,
	// to tell a rewrite of the same token from a new one (needsBootstrap).
	BootstrapInput string `json:"bootstrap_input,omitempty"`
	// BootstrapTokenID is Quay's UUID, among the user's authorizations, of
	// the token Token holds when the engine obtained it by logging in
	// (bootstrap=password or initialize), so that the engine can delete
	// it once it is replaced. Empty when Quay did not let it tell.
	BootstrapTokenID     string `json:"bootstrap_token_id,omitempty"`
	RevokeBootstrapToken bool   `json:"revoke_bootstrap_token"`

	// The engine's own root token (see root_token.go), when
	// RootOrganization is set.
	RootOrganization   string        `json:"root_organization,omitempty"`
	RootClientID       string        `json:"root_client_id,omitempty"`
	RootTokenID        string        `json:"root_token_id,omitempty"`
	RootTokenScopes    []string      `json:"root_token_scopes,omitempty"`
	RootTokenTTL       time.Duration `json:"root_token_ttl,omitempty"`
	RootRotationPeriod time.Duration `json:"root_rotation_period,omitempty"`
	RotateBefore       time.Duration `json:"rotate_before,omitempty"`
	LastRootRotation   time.Time     `json:"last_root_rotation,omitempty"`
	// RetiringRootTokens are root tokens the engine minted and replaced,
	// kept until they are deleted in Quay (root_retire.go).
	RetiringRootTokens []retiringRootToken `json:"retiring_root_tokens,omitempty"`

	// What Quay said about the credential when it was last verified.
	TokenOwner     string    `json:"token_owner,omitempty"`
	TokenSuperUser bool      `json:"token_super_user,omitempty"`
	TokenScopes    []string  `json:"token_scopes,omitempty"`
	TokenExpiresAt time.Time `json:"token_expires_at,omitempty"`
	VerifiedAt     time.Time `json:"verified_at,omitempty"`
}

// method is the bootstrap method, "token" for configs written before the
// field existed.
func (c *quayConfig) method() string {
	if c.Bootstrap == "" {
		return bootstrap.MethodToken
	}
	return c.Bootstrap
}

// bootstrapMethod builds the configured bootstrap method.
func (c *quayConfig) bootstrapMethod(now func() time.Time) (bootstrap.Method, error) {
	switch c.method() {
	case bootstrap.MethodToken:
		return bootstrap.Token{Value: c.bootstrapToken}, nil
	case bootstrap.MethodInitialize:
		return bootstrap.Initialize{Username: c.Username, Password: c.Password, Email: c.Email, Now: now}, nil
	case bootstrap.MethodPassword:
		return bootstrap.Password{Username: c.Username, Password: c.Password, ClientID: c.OAuthClientID,
			RedirectURI: c.OAuthRedirectURI, Scopes: c.rootScopes(), Now: now}, nil
	case bootstrap.MethodOIDC:
		return c.oidc(), nil
	}
	return nil, fmt.Errorf("unknown bootstrap method %q", c.Bootstrap)
}

func (c *quayConfig) oidc() bootstrap.OIDC {
	return bootstrap.OIDC{TokenURL: c.OIDCTokenURL, ClientID: c.OIDCClientID, ClientSecret: c.OIDCClientSecret, Scopes: c.OIDCScopes}
}

// needsBootstrap says whether a config write must run the bootstrap method
// again: a new Quay, a new method, or new inputs. Writing the same inputs
// again (vault-config-operator does on every reconcile) must not, since the
// bootstrap credential may have expired or been revoked meanwhile.
func needsBootstrap(stored, cfg *quayConfig, tokenGiven bool) bool {
	if stored == nil || stored.method() != cfg.method() || stored.URL != cfg.URL {
		return true
	}
	switch cfg.method() {
	case bootstrap.MethodToken:
		return tokenGiven && fingerprint(cfg.bootstrapToken) != stored.BootstrapInput
	case bootstrap.MethodInitialize:
		return cfg.Username != stored.Username
	case bootstrap.MethodPassword:
		return cfg.Username != stored.Username || cfg.Password != stored.Password || cfg.OAuthClientID != stored.OAuthClientID
	case bootstrap.MethodOIDC:
		return cfg.OIDCTokenURL != stored.OIDCTokenURL || cfg.OIDCClientID != stored.OIDCClientID ||
			cfg.OIDCClientSecret != stored.OIDCClientSecret || strings.Join(cfg.OIDCScopes, " ") != strings.Join(stored.OIDCScopes, " ")
	}
	return false
}

// ownsRootToken says the engine minted its root token, and so can rotate it.
func (c *quayConfig) ownsRootToken() bool {
	return c.method() != bootstrap.MethodOIDC && c.RootOrganization != "" && c.RootTokenID != ""
}

func (c *quayConfig) rootScopes() []string {
	if len(c.RootTokenScopes) > 0 {
		return c.RootTokenScopes
	}
	return defaultRootTokenScopes()
}

func (c *quayConfig) rootTokenTTL() time.Duration {
	if c.RootTokenTTL > 0 {
		return c.RootTokenTTL
	}
	return defaultRootTokenTTL
}

// rotateBefore is how long before its expiry the root token is replaced:
// rotate_before, or a quarter of its lifetime.
func (c *quayConfig) rotateBefore() time.Duration {
	if c.RotateBefore > 0 {
		return c.RotateBefore
	}
	return c.rootTokenTTL() / 4
}

// nextRootRotation is when the schedule rotates the root token next: after
// root_rotation_period, and in any case rotate_before its expiry. Zero when
// the engine does not own its root token.
func (c *quayConfig) nextRootRotation() time.Time {
	if !c.ownsRootToken() {
		return time.Time{}
	}
	var next time.Time
	if c.RootRotationPeriod > 0 && !c.LastRootRotation.IsZero() {
		next = c.LastRootRotation.Add(c.RootRotationPeriod)
	}
	if !c.TokenExpiresAt.IsZero() {
		byExpiry := c.TokenExpiresAt.Add(-c.rotateBefore())
		if next.IsZero() || byExpiry.Before(next) {
			next = byExpiry
		}
	}
	return next
}

func getConfig(ctx context.Context, s logical.Storage) (*quayConfig, error) {
	return getJSON[quayConfig](ctx, s, configStoragePath, "config")
}

func putConfig(ctx context.Context, s logical.Storage, cfg *quayConfig) error {
	return putJSON(ctx, s, configStoragePath, "config", cfg)
}

// newClient builds a Quay client for this config.
func (c *quayConfig) newClient(logger hclog.Logger) (*quay.Client, error) {
	return c.newClientWith(logger, c.credential())
}

// newClientWith is newClient calling Quay with cred.
func (c *quayConfig) newClientWith(logger hclog.Logger, cred quay.Credential) (*quay.Client, error) {
	return quay.New(quay.Config{
		BaseURL:            c.URL,
		Credential:         cred,
		CACertificate:      c.CACertificate,
		InsecureSkipVerify: c.DisableSSLVerification,
		RequestTimeout:     c.RequestTimeout,
		UserAgent:          version.UserAgent(),
		Logger:             logger.Named("quay"),
	})
}

// credential is what the engine calls Quay with.
func (c *quayConfig) credential() quay.Credential {
	if c.method() == bootstrap.MethodOIDC {
		return c.oidc().Credential()
	}
	return quay.StaticToken(c.Token)
}

// registryHost is the host docker clients log in to with issued robots.
func (c *quayConfig) registryHost() string {
	if c.RegistryHostname != "" {
		return c.RegistryHostname
	}
	if u, err := url.Parse(c.URL); err == nil && u.Host != "" {
		return u.Host
	}
	return c.URL
}

// fingerprint identifies a secret without revealing it: the first 16 hex
// digits of its SHA-256. Enough to tell two tokens apart in a config read or
// an audit trail; useless for recovering the token.
func fingerprint(secret string) string {
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:8])
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
	if v, ok := d.GetOk("url_aliases"); ok {
		cfg.URLAliases = nil
		for _, alias := range v.([]string) {
			alias = strings.TrimSpace(alias)
			if alias == "" {
				continue
			}
			if hasUserinfo(alias) || !(strings.HasPrefix(alias, "https://") || strings.HasPrefix(alias, "http://")) {
				return badField("url_aliases", "each must be an http(s) URL without credentials, like url")
			}
			cfg.URLAliases = append(cfg.URLAliases, alias)
		}
	}
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
	durations := []struct {
		field string
		dst   *time.Duration
	}{
		{"tidy_interval", &cfg.TidyInterval}, {"request_timeout", &cfg.RequestTimeout},
		{"root_token_ttl", &cfg.RootTokenTTL}, {"root_rotation_period", &cfg.RootRotationPeriod}, {"rotate_before", &cfg.RotateBefore},
	}
	for _, f := range durations {
		v, ok, resp := secondsField(d, f.field)
		if resp != nil {
			return resp
		}
		if ok {
			*f.dst = v
		}
	}
	if cfg.TidyInterval != 0 && cfg.TidyInterval < minTidyInterval {
		return badField("tidy_interval", "must be 0 (off) or at least %s, got %s", minTidyInterval, cfg.TidyInterval)
	}
	if cfg.RequestTimeout != 0 && (cfg.RequestTimeout < minRequestTimeout || cfg.RequestTimeout > maxRequestTimeout) {
		return badField("request_timeout", "must be between %s and %s, got %s", minRequestTimeout, maxRequestTimeout, cfg.RequestTimeout)
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
		case hasUserinfo(c.OIDCTokenURL):
			// Never echoed: it may hold a password.
			return badField("oidc_token_url", "must not carry credentials (user:password@); the client authenticates with oidc_client_id and oidc_client_secret")
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

// hasUserinfo reports a URL that carries credentials (user:password@host).
func hasUserinfo(raw string) bool {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return strings.Contains(raw, "@")
	}
	return u.User != nil
}

// isQuay says whether url (recorded with a credential; empty for records
// older than that) is the Quay config points at: its url or an alias.
func (c *quayConfig) isQuay(url string) bool {
	if url == "" {
		return true
	}
	for _, known := range append([]string{c.URL}, c.URLAliases...) {
		if strings.TrimRight(url, "/") == strings.TrimRight(known, "/") {
			return true
		}
	}
	return false
}
