package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

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
	URL                    string        `json:"url"`
	Token                  string        `json:"token"`
	CACertificate          string        `json:"ca_certificate,omitempty"`
	DisableSSLVerification bool          `json:"disable_ssl_verification"`
	RequestTimeout         time.Duration `json:"request_timeout,omitempty"`
	// RegistryHostname is the registry host robots log in to, when it is
	// not the host of URL (Quay's SERVER_HOSTNAME behind another API address).
	RegistryHostname string `json:"registry_hostname,omitempty"`
	// TidyInterval runs tidy on a schedule when positive.
	TidyInterval time.Duration `json:"tidy_interval,omitempty"`

	// What Quay said about the credential when it was last verified.
	TokenOwner     string    `json:"token_owner,omitempty"`
	TokenSuperUser bool      `json:"token_super_user,omitempty"`
	TokenScopes    []string  `json:"token_scopes,omitempty"`
	TokenExpiresAt time.Time `json:"token_expires_at,omitempty"`
	VerifiedAt     time.Time `json:"verified_at,omitempty"`
}

func getConfig(ctx context.Context, s logical.Storage) (*quayConfig, error) {
	entry, err := s.Get(ctx, configStoragePath)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if entry == nil {
		return nil, nil
	}
	cfg := new(quayConfig)
	if err := entry.DecodeJSON(cfg); err != nil {
		return nil, fmt.Errorf("decoding config: %w", err)
	}
	return cfg, nil
}

func putConfig(ctx context.Context, s logical.Storage, cfg *quayConfig) error {
	entry, err := logical.StorageEntryJSON(configStoragePath, cfg)
	if err != nil {
		return fmt.Errorf("encoding config: %w", err)
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	return nil
}

// newClient builds a Quay client for this config.
func (c *quayConfig) newClient(logger hclog.Logger) (*quay.Client, error) {
	return quay.New(quay.Config{
		BaseURL:            c.URL,
		Credential:         quay.StaticToken(c.Token),
		CACertificate:      c.CACertificate,
		InsecureSkipVerify: c.DisableSSLVerification,
		RequestTimeout:     c.RequestTimeout,
		UserAgent:          version.UserAgent(),
		Logger:             logger.Named("quay"),
	})
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
