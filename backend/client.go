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
// config can never be cached after a config write. The clients it builds
// call Quay with a rootCredential, which follows the newest cached
// credential for the same Quay.
type clientCache struct {
	build   sync.Mutex
	current atomic.Pointer[cachedClient]
}

type cachedClient struct {
	client *quay.Client
	config *quayConfig
	// credential is the config's credential, which client calls Quay with.
	credential quay.Credential
}

// rootCredential is the credential of the clients the cache builds. It
// follows the cache: once a config write or root rotation has built the
// client of the new credential (resetClient), a client built before, still
// held by a request in flight, calls with the new credential as well, and a
// call Quay refused for the old one is sent again (quay.ReplaceableCredential).
// config/rotate-root deletes the old token at once; requests in flight
// survive it. Only while config points at the same Quay, with the same TLS
// settings, and the new credential is the same Quay user's: a credential is
// never sent to another address, or over a connection checked less strictly,
// than the one it was configured for, and a request that checked
// whose namespace it acts in (reachUserRobot: Quay's /user/ routes act on
// the caller's own) never goes on as another user. An owner the engine does
// not know is never taken for the same.
type rootCredential struct {
	cache *clientCache
	// config is the one the client was built from.
	config *quayConfig
	own    quay.Credential
}

func (r *rootCredential) current() quay.Credential {
	if c := r.cache.current.Load(); c != nil && sameConnection(c.config, r.config) {
		return c.credential
	}
	return r.own
}

// sameConnection: a and b reach the same Quay as the same known user, over
// connections checked alike.
func sameConnection(a, b *quayConfig) bool {
	return a.URL == b.URL && a.TokenOwner != "" && a.TokenOwner == b.TokenOwner &&
		a.CACertificate == b.CACertificate && a.DisableSSLVerification == b.DisableSSLVerification
}

// BearerToken implements quay.Credential.
func (r *rootCredential) BearerToken(ctx context.Context) (string, error) {
	return r.current().BearerToken(ctx)
}

// Replaced implements quay.ReplaceableCredential.
func (r *rootCredential) Replaced(ctx context.Context, token string) bool {
	current, err := r.current().BearerToken(ctx)
	return err == nil && current != token
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
	cred := cfg.credential()
	client, err := cfg.newClientWith(b.logger, &rootCredential{cache: &b.clients, config: cfg, own: cred})
	if err != nil {
		return nil, nil, err
	}
	b.clients.current.Store(&cachedClient{client: client, config: cfg, credential: cred})
	return client, cfg, nil
}

// resetClient drops the cached client after the stored credential changed
// and builds the new one at once, so that requests in flight with the old
// client call with the new credential from then on (rootCredential). A
// failure to build is left to the next request.
func (b *backend) resetClient(ctx context.Context, s logical.Storage) {
	b.clients.reset()
	if _, _, err := b.client(ctx, s); err != nil {
		b.logger.Debug("could not build the Quay client for the new config yet", "error", err)
	}
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
