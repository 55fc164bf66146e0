package backend

import (
	"context"
	"fmt"
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

// clientFor returns the cached client for work on a credential issued by
// the Quay at url (recorded in its lease or write-ahead entry): only while
// config points at that Quay (url, or one of url_aliases). Otherwise it
// refuses: revoking through whichever Quay config points at now would find
// nothing there and take that for "already revoked", and sending the current
// root credential to the old address would hand it to another registry.
func (b *backend) clientFor(ctx context.Context, s logical.Storage, url string) (*quay.Client, *quayConfig, error) {
	client, cfg, err := b.client(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	if !cfg.isQuay(url) {
		return nil, nil, &quayMovedError{issuedBy: url, configured: cfg.URL}
	}
	return client, cfg, nil
}

// quayMovedError says a credential lives in another Quay than config names.
type quayMovedError struct{ issuedBy, configured string }

func (e *quayMovedError) Error() string {
	return fmt.Sprintf("the credential was issued by the Quay at %s, but config now points at %s; the engine sends a Quay's "+
		"credential only to that Quay: if both are the same Quay, add %s to config's url_aliases; otherwise write config "+
		"url=%s (with its credential) to clean up, or delete the credential there yourself and force-revoke its lease",
		e.issuedBy, e.configured, e.issuedBy, e.issuedBy)
}
