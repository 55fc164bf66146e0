package emulator

import (
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config holds the Quay config.yaml keys the emulator honours, with Quay's
// own names and defaults (config.py). Unknown keys are ignored, as Quay does.
type Config struct {
	ServerHostname     string `yaml:"SERVER_HOSTNAME"`
	PreferredURLScheme string `yaml:"PREFERRED_URL_SCHEME"`
	AuthenticationType string `yaml:"AUTHENTICATION_TYPE"`
	Debugging          bool   `yaml:"DEBUGGING"`

	SuperUsers                  []string `yaml:"SUPER_USERS"`
	FeatureSuperUsers           *bool    `yaml:"FEATURE_SUPER_USERS"`
	FeatureSuperusersFullAccess bool     `yaml:"FEATURE_SUPERUSERS_FULL_ACCESS"`
	FeatureUserInitialize       bool     `yaml:"FEATURE_USER_INITIALIZE"`
	FeatureMailing              *bool    `yaml:"FEATURE_MAILING"`
	FeatureRequireTeamInvite    *bool    `yaml:"FEATURE_REQUIRE_TEAM_INVITE"`

	FeatureProgrammaticBootstrap bool   `yaml:"FEATURE_PROGRAMMATIC_BOOTSTRAP"`
	BootstrapTokenOwner          string `yaml:"BOOTSTRAP_TOKEN_OWNER"`
	BootstrapTokenPath           string `yaml:"BOOTSTRAP_TOKEN_PATH"`
	BootstrapTokenExpiration     int    `yaml:"BOOTSTRAP_TOKEN_EXPIRATION"`
	BootstrapTokenScope          string `yaml:"BOOTSTRAP_TOKEN_SCOPE"`

	FeatureAppSpecificTokens   *bool  `yaml:"FEATURE_APP_SPECIFIC_TOKENS"`
	AppSpecificTokenExpiration string `yaml:"APP_SPECIFIC_TOKEN_EXPIRATION"`

	OAuthApplicationMaximumTokenCount *int     `yaml:"OAUTH_APPLICATION_MAXIMUM_TOKEN_COUNT"`
	DirectOAuthClientIDWhitelist      []string `yaml:"DIRECT_OAUTH_CLIENTID_WHITELIST"`
	CreatePrivateRepoOnPush           *bool    `yaml:"CREATE_PRIVATE_REPO_ON_PUSH"`

	// LoginConfigs are the *_LOGIN_CONFIG blocks (OIDC providers), keyed by
	// the key's prefix (e.g. "AZURE" for AZURE_LOGIN_CONFIG).
	LoginConfigs map[string]OIDCLoginConfig `yaml:"-"`
}

// OIDCLoginConfig is one *_LOGIN_CONFIG block (reference §9).
type OIDCLoginConfig struct {
	ClientID                   string   `yaml:"CLIENT_ID"`
	ClientSecret               string   `yaml:"CLIENT_SECRET"`
	OIDCServer                 string   `yaml:"OIDC_SERVER"`
	ServiceName                string   `yaml:"SERVICE_NAME"`
	OIDCIssuer                 string   `yaml:"OIDC_ISSUER"`
	OIDCIssuers                []string `yaml:"OIDC_ISSUERS"`
	OIDCAudiences              []string `yaml:"OIDC_AUDIENCES"`
	OIDCAllowedClients         []string `yaml:"OIDC_ALLOWED_CLIENTS"`
	PreferredUsernameClaimName string   `yaml:"PREFERRED_USERNAME_CLAIM_NAME"`
}

// defaultBootstrapScope is BOOTSTRAP_TOKEN_SCOPE's default (reference §2.4).
const defaultBootstrapScope = "org:admin repo:admin repo:create repo:read repo:write super:user user:admin user:read"

// ParseConfig reads a Quay config.yaml.
func ParseConfig(data []byte) (Config, error) {
	var cfg Config
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return Config{}, fmt.Errorf("parsing config.yaml: %w", err)
	}
	var raw map[string]yaml.Node
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return Config{}, fmt.Errorf("parsing config.yaml: %w", err)
	}
	for key, node := range raw {
		if !strings.HasSuffix(key, "_LOGIN_CONFIG") {
			continue
		}
		prefix := strings.TrimSuffix(key, "_LOGIN_CONFIG")
		// GITHUB_ and GOOGLE_ are not OIDC services; these are reserved.
		switch strings.ToLower(prefix) {
		case "github", "google", "ldap", "jwt", "keystone":
			continue
		}
		var lc OIDCLoginConfig
		if err := node.Decode(&lc); err != nil {
			return Config{}, fmt.Errorf("parsing %s: %w", key, err)
		}
		// Quay refuses an empty or non-list value for these (_validate_multi_config).
		for name, list := range map[string][]string{"OIDC_ISSUERS": lc.OIDCIssuers, "OIDC_AUDIENCES": lc.OIDCAudiences, "OIDC_ALLOWED_CLIENTS": lc.OIDCAllowedClients} {
			if list != nil && len(list) == 0 {
				return Config{}, fmt.Errorf("%s.%s must be a non-empty list", key, name)
			}
		}
		if cfg.LoginConfigs == nil {
			cfg.LoginConfigs = map[string]OIDCLoginConfig{}
		}
		cfg.LoginConfigs[prefix] = lc
	}
	return cfg, nil
}

// LoadConfig reads a config.yaml file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(data)
}

func (c Config) createPrivateRepoOnPush() bool {
	return c.CreatePrivateRepoOnPush == nil || *c.CreatePrivateRepoOnPush
}
func (c Config) superUsersEnabled() bool { return c.FeatureSuperUsers == nil || *c.FeatureSuperUsers }
func (c Config) appSpecificTokens() bool {
	return c.FeatureAppSpecificTokens == nil || *c.FeatureAppSpecificTokens
}
func (c Config) mailing() bool { return c.FeatureMailing == nil || *c.FeatureMailing }
func (c Config) databaseAuth() bool {
	// user_initialize compares AUTHENTICATION_TYPE with "Database" exactly.
	return c.AuthenticationType == "" || c.AuthenticationType == "Database"
}
func (c Config) scheme() string {
	if c.PreferredURLScheme == "" {
		return "http"
	}
	return c.PreferredURLScheme
}
