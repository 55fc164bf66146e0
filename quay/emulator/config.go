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
	// Debugging is the top-level DEBUGGING. Quay's OIDC services do not
	// read it: they read DEBUGGING inside their own *_LOGIN_CONFIG block
	// (OIDCLoginConfig.Debugging; oauth/oidc.py self.config is the block).
	Debugging bool `yaml:"DEBUGGING"`
	// RegistryTitleShort appears in some of Quay's messages (default
	// "Project Quay", config.py).
	RegistryTitleShort string `yaml:"REGISTRY_TITLE_SHORT"`

	SuperUsers                  []string `yaml:"SUPER_USERS"`
	FeatureSuperUsers           *bool    `yaml:"FEATURE_SUPER_USERS"`
	FeatureSuperusersFullAccess bool     `yaml:"FEATURE_SUPERUSERS_FULL_ACCESS"`
	FeatureUserInitialize       bool     `yaml:"FEATURE_USER_INITIALIZE"`
	FeatureMailing              *bool    `yaml:"FEATURE_MAILING"`
	FeatureRequireTeamInvite    *bool    `yaml:"FEATURE_REQUIRE_TEAM_INVITE"`
	// FeatureUserCreation (default true) lets SSO logins create users.
	FeatureUserCreation *bool `yaml:"FEATURE_USER_CREATION"`

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
	// LoginConfigOrder lists LoginConfigs' keys in the document's order,
	// the order in which Quay's OAuthLoginManager tries the services. Keys
	// missing from it are tried afterwards, sorted.
	LoginConfigOrder []string `yaml:"-"`
}

// OIDCLoginConfig is one *_LOGIN_CONFIG block (oauth/loginmanager.py
// OAuthLoginManager, oauth/oidc.py OIDCLoginService).
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
	// VerifiedEmailClaimName names the claim holding a verified email;
	// without it, "email" counts only when "email_verified" is true.
	VerifiedEmailClaimName string `yaml:"VERIFIED_EMAIL_CLAIM_NAME"`
	// Debugging allows plain-HTTP discovery and skips TLS verification of
	// the provider (oauth/oidc.py reads DEBUGGING from this block).
	Debugging bool `yaml:"DEBUGGING"`
}

// defaultBootstrapScope is BOOTSTRAP_TOKEN_SCOPE's default (config.py).
const defaultBootstrapScope = "org:admin repo:admin repo:create repo:read repo:write super:user user:admin user:read"

// ParseConfig reads a Quay config.yaml.
func ParseConfig(data []byte) (Config, error) {
	var cfg Config
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return Config{}, fmt.Errorf("parsing config.yaml: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Config{}, fmt.Errorf("parsing config.yaml: %w", err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return cfg, nil
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, node := root.Content[i].Value, root.Content[i+1]
		if !strings.HasSuffix(key, "_LOGIN_CONFIG") {
			continue
		}
		prefix := strings.TrimSuffix(key, "_LOGIN_CONFIG")
		// oauth/loginmanager.py: GitHub and Google have services of their
		// own (not OIDC); ldap, jwt and keystone are reserved and make
		// Quay refuse to start.
		switch strings.ToLower(prefix) {
		case "github", "google":
			continue
		case "ldap", "jwt", "keystone":
			return Config{}, fmt.Errorf("Cannot use reserved config name %s", key)
		}
		var lc OIDCLoginConfig
		if err := node.Decode(&lc); err != nil {
			return Config{}, fmt.Errorf("parsing %s: %w", key, err)
		}
		// Quay refuses an empty or non-list value for these (_validate_multi_config).
		for _, f := range []struct {
			name string
			list []string
		}{{"OIDC_ISSUERS", lc.OIDCIssuers}, {"OIDC_AUDIENCES", lc.OIDCAudiences}, {"OIDC_ALLOWED_CLIENTS", lc.OIDCAllowedClients}} {
			if f.list != nil && len(f.list) == 0 {
				return Config{}, fmt.Errorf("%s.%s must not be empty", key, f.name)
			}
		}
		if cfg.LoginConfigs == nil {
			cfg.LoginConfigs = map[string]OIDCLoginConfig{}
		}
		if _, dup := cfg.LoginConfigs[prefix]; !dup {
			cfg.LoginConfigOrder = append(cfg.LoginConfigOrder, prefix)
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
func (c Config) userCreation() bool {
	return c.FeatureUserCreation == nil || *c.FeatureUserCreation
}
func (c Config) registryTitleShort() string {
	if c.RegistryTitleShort == "" {
		return "Project Quay"
	}
	return c.RegistryTitleShort
}
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
