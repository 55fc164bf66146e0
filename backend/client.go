package backend

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// clientCache holds the Quay client built from the stored config, so the hot
// paths (creds, revoke) reuse one connection pool and read no storage for it.
// Readers take no lock; building is serialised so a burst of first requests
// builds one client, and reset waits for a build in progress so a stale
// config can never be cached after a config write.
type clientCache struct {
	build   sync.Mutex
	current atomic.Pointer[cachedClient]
}

type cachedClient struct {
	client *quay.Client
	config *quayConfig
}

func (c *clientCache) reset() {
	c.build.Lock()
	defer c.build.Unlock()
	if old := c.current.Swap(nil); old != nil {
		old.client.Close()
	}
}

// client returns the cached Quay client and the config it was built from,
// building it on first use. The config is shared: callers must not modify it.
func (b *backend) client(ctx context.Context, s logical.Storage) (*quay.Client, *quayConfig, error) {
	if cached := b.clients.current.Load(); cached != nil {
		return cached.client, cached.config, nil
	}
	b.clients.build.Lock()
	defer b.clients.build.Unlock()
	if cached := b.clients.current.Load(); cached != nil {
		return cached.client, cached.config, nil
	}
	cfg, err := getConfig(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	if cfg == nil {
		return nil, nil, errNotConfigured
	}
	client, err := cfg.newClient(b.logger)
	if err != nil {
		return nil, nil, err
	}
	b.clients.current.Store(&cachedClient{client: client, config: cfg})
	return client, cfg, nil
}

// clientFor returns a client for the Quay at url, where a lease's credential
// was issued: the cached client when config still points there (always, on
// the hot path), else a short-lived client for that address with the
// current credential and TLS settings, which the caller closes with done.
// Revoking through the configured Quay after config moved to another one
// would find nothing, take Quay's "not found" for "already revoked" and
// leave the credential alive where it was issued.
func (b *backend) clientFor(ctx context.Context, s logical.Storage, url string) (client *quay.Client, cfg *quayConfig, done func(), err error) {
	client, cfg, err = b.client(ctx, s)
	if err != nil {
		return nil, nil, nil, err
	}
	if url == "" || sameQuay(url, cfg.URL) {
		return client, cfg, func() {}, nil
	}
	moved := *cfg
	moved.URL = url
	other, err := moved.newClient(b.logger)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("the credential was issued by Quay at %s: %w", url, err)
	}
	return other, cfg, other.Close, nil
}

// sameQuay compares two configured Quay addresses, ignoring a trailing slash.
func sameQuay(a, b string) bool {
	return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}
