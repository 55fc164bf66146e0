package backend

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// leaseTTLs resolves a role's ttl and max_ttl against the mount: zero means
// the mount's default (ttl) or maximum (max_ttl), and neither may exceed the
// mount's maximum. The max TTL is also the expiry the engine gives the
// credential in Quay where Quay supports one.
func (b *backend) leaseTTLs(roleTTL, roleMaxTTL time.Duration) (ttl, maxTTL time.Duration) {
	sysMax := b.System().MaxLeaseTTL()
	maxTTL = roleMaxTTL
	if maxTTL <= 0 || maxTTL > sysMax {
		maxTTL = sysMax
	}
	ttl = roleTTL
	if ttl <= 0 {
		ttl = b.System().DefaultLeaseTTL()
	}
	if ttl > maxTTL {
		ttl = maxTTL
	}
	return ttl, maxTTL
}

// leaseTTLsWhile is leaseTTLs computed while work runs. In an external
// plugin every System() call is a round trip to Vault, as long as a storage
// call: a creds read overlaps it with its write-ahead put rather than paying
// one after the other. Both always run to the end; work's error is
// returned.
func (b *backend) leaseTTLsWhile(roleTTL, roleMaxTTL time.Duration, work func() error) (ttl, maxTTL time.Duration, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ttl, maxTTL = b.leaseTTLs(roleTTL, roleMaxTTL)
	}()
	err = work()
	<-done
	return ttl, maxTTL, err
}

// renewLease extends a lease up to its max TTL. The role's current ttl
// applies when the role still exists and still issues this credential type;
// otherwise the ttl the lease was issued with. Leases issued by
// redhat-cop/vault-plugin-secrets-quay carry no max TTL: the role's (or the
// mount's) applies.
//
// The answer holds the lease and nothing else. Vault returns it to whoever
// called sys/leases/renew (the default policy lets every token do that, for
// any lease ID it knows, and lease IDs are not secret), so echoing req.Data,
// the stored credential, would hand it out. Revoke reads only the lease's
// internal data, so the data Vault drops with this answer is not needed.
func (b *backend) renewLease(ctx context.Context, req *logical.Request, roleName, credentialType string, ttl, maxTTL time.Duration) (*logical.Response, error) {
	if role, err := getRole(ctx, req.Storage, roleName); err == nil && role != nil && role.CredentialType == credentialType {
		if maxTTL == 0 {
			_, maxTTL = b.leaseTTLs(0, role.MaxTTL)
		}
		ttl, _ = b.leaseTTLs(role.TTL, maxTTL)
	}
	resp := &logical.Response{Secret: req.Secret}
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = maxTTL
	return resp, nil
}

// internalString reads a string from lease InternalData.
func internalString(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// internalSeconds reads a duration stored as seconds in lease InternalData.
// Vault hands InternalData back decoded from JSON, so numbers may arrive as
// float64 or json.Number.
func internalSeconds(m map[string]any, key string) time.Duration {
	switch v := m[key].(type) {
	case int64:
		return time.Duration(v) * time.Second
	case int:
		return time.Duration(v) * time.Second
	case float64:
		return time.Duration(v) * time.Second
	case json.Number:
		n, _ := v.Int64()
		return time.Duration(n) * time.Second
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return time.Duration(n) * time.Second
	}
	return 0
}
