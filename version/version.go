// Package version holds the plugin's version, stamped at build time with
//
//	go build -ldflags "-X github.com/quay-vault/vault-plugin-secrets-quay/version.Version=v1.2.3"
//
// Vault asks the binary for it at registration: `vault plugin register
// -version=v1.2.3` succeeds only when the two agree exactly, leading "v" included.
package version

// Version is the plugin's semantic version with a leading "v". Development
// builds report a pre-release version, which Vault accepts as valid semver.
var Version = "v0.0.0-dev"

// UserAgent is sent to Quay on every request.
func UserAgent() string { return "vault-plugin-secrets-quay/" + Version }
