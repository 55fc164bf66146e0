// Command vault-plugin-secrets-quay is the Vault secrets engine for Project
// Quay. Vault starts it; it is not meant to be run by hand.
package main

import (
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/plugin"

	"github.com/quay-vault/vault-plugin-secrets-quay/backend"
)

func main() {
	// The TLS flags only matter for Vault 1.11 and older, which predate
	// plugin AutoMTLS; parsing them keeps the binary accepting them when an
	// operator passes them through `-args`.
	meta := &api.PluginAPIClientMeta{}
	flags := meta.FlagSet()
	if err := flags.Parse(os.Args[1:]); err != nil {
		fatal(err)
	}
	tlsProvider := api.VaultPluginTLSProvider(meta.GetTLSConfig())

	if err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: backend.Factory,
		TLSProviderFunc:    tlsProvider,
	}); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	hclog.New(&hclog.LoggerOptions{}).Error("plugin shutting down", "error", err)
	os.Exit(1)
}
