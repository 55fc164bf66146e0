// Package backend is the Vault secrets engine for Project Quay: it keeps the
// registry's root credential and issues short-lived Quay credentials as
// leased dynamic secrets, deleting them in Quay when the lease ends.
//
// Layout: path_*.go hold the HTTP surface (one file per path family),
// secret_*.go the leased secret types with their renew and revoke, and the
// remaining files the pieces they share (stored config and roles, the cached
// Quay client, write-ahead-log rollback).
package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/version"
)

const backendHelp = `
The Quay secrets engine issues short-lived Project Quay credentials: OAuth
access tokens of an organization application, and robot accounts ready for
docker login. Each credential is a Vault lease; when the lease expires or is
revoked, the engine deletes the credential in Quay.

Configure the connection at "config", define roles at "roles/<name>", then
read credentials at "creds/<name>".
`

// operationPrefixQuay prefixes the OpenAPI operation IDs of every path.
const operationPrefixQuay = "quay"

// walRollbackMinAge is how old a write-ahead entry must be before Vault's
// rollback manager undoes it (and before tidy takes this instance's entries
// for dead).
const walRollbackMinAge = 5 * time.Minute

// createBudget bounds every request that creates something in Quay under a
// write-ahead entry (creds, static role writes), whatever deadline Vault
// gives it: an operator may raise max_request_duration past the rollback
// age, and a request still running when its entry's rollback starts would
// hand out a credential the rollback deletes. Past the budget the request
// fails and leaves its entry to the rollback.
const createBudget = 4 * time.Minute

// backend is one mount of the engine. The plugin process is multiplexed, so
// everything here belongs to this mount only; durable state lives in the
// mount's storage.
type backend struct {
	*framework.Backend

	logger hclog.Logger
	// mountID identifies this mount in the markers the engine leaves on the
	// objects it creates in Quay, so tidy never touches another mount's.
	mountID string
	// instanceID identifies this backend instance. A write-ahead entry
	// written by another instance belongs to a request that can no longer be
	// running (the plugin restarted, the leader changed), so recovery and
	// tidy may undo it at once.
	instanceID string

	clients clientCache
	// roles caches the dynamic roles creds reads use (role_cache.go).
	roles roleCache
	// cluster caches this cluster's identity (cluster.go).
	cluster struct {
		mu sync.Mutex
		id atomic.Pointer[string]
	}
	// staticLocks serialise work on one static role at a time (see
	// staticRoleLock); there is no lock across roles.
	staticLocks []*locksutil.LockEntry
	// roleLocks serialise writes and deletes of one role (see roleLock).
	roleLocks []*locksutil.LockEntry
	// robotLocks serialise adopting a robot against deleting it (see
	// robotLock).
	robotLocks []*locksutil.LockEntry
	tidy       tidyGuard
	// rootLock serialises changes of the root credential (config writes,
	// rotations, recovery). The hot paths never take it.
	rootLock sync.Mutex
	// federation is the robot federation issuer's key lock and signer.
	federation federationIssuer
	// recovery settles what an earlier instance left (recovery.go).
	recovery recovery
	// now is the clock; tests replace it.
	now func() time.Time
	// createBudget is createBudget; tests shorten it.
	createBudget time.Duration
}

// Factory returns the backend for one mount. Vault also calls it with an
// empty config when it probes the binary at registration, so it must not
// need storage, System() or network access.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend(conf)
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

func newBackend(conf *logical.BackendConfig) *backend {
	b := &backend{
		mountID:      conf.BackendUUID,
		instanceID:   randomHex(8),
		staticLocks:  locksutil.CreateLocks(),
		roleLocks:    locksutil.CreateLocks(),
		robotLocks:   locksutil.CreateLocks(),
		now:          time.Now,
		createBudget: createBudget,
	}
	if conf.Logger != nil {
		b.logger = conf.Logger
	} else {
		b.logger = hclog.NewNullLogger()
	}
	b.Backend = &framework.Backend{
		Help:        strings.TrimSpace(backendHelp),
		BackendType: logical.TypeLogical,
		// Vault compares this with `vault plugin register -version`.
		RunningVersion: version.Version,
		PathsSpecial: &logical.Paths{
			// Seal-wrap (Enterprise) everything that holds a secret.
			SealWrapStorage: []string{configStoragePath, staticRoleStoragePrefix, federationKeysStoragePath},
			// The issuer's discovery document and keys, which Quay reads
			// without a token (path_federation_wellknown.go).
			Unauthenticated: federationUnauthenticatedPaths,
			// Write-ahead entries, the index of issued robots and the
			// cluster's identity describe work and leases of this cluster
			// only.
			LocalStorage: []string{framework.WALPrefix, issuedRobotPrefix, localStoragePrefix},
		},
		Paths: wrapOperations(framework.PathAppend(
			pathConfig(b),
			pathConfigRotateRoot(b),
			pathRoles(b),
			pathCreds(b),
			pathStaticRoles(b),
			pathStaticCreds(b),
			pathRotateRole(b),
			pathTidy(b),
			pathFederationConfig(b),
			pathFederationWellKnown(b),
		)),
		Secrets: []*framework.Secret{
			secretOAuthToken(b),
			secretRobot(b),
			secretFederatedRobot(b),
		},
		InitializeFunc:    b.initialize,
		PeriodicFunc:      b.periodic,
		WALRollback:       b.walRollback,
		WALRollbackMinAge: walRollbackMinAge,
		Invalidate:        b.invalidate,
		Clean:             b.clean,
	}
	return b
}

// HandleRequest normalises requests before the framework validates them
// against the paths' schemas (see normalizeGrantMaps).
func (b *backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if resp := normalizeGrantMaps(req); resp != nil {
		return resp, nil
	}
	return b.Backend.HandleRequest(ctx, req)
}

// HandleExistenceCheck normalises the request as HandleRequest does: Vault
// runs the existence check of a write first, and the framework validates
// the fields there too, so a string holding JSON failed it with a 500
// before HandleRequest could turn it into an object. A request
// normalizeGrantMaps refuses reports no existence check, so that it goes on
// to HandleRequest, which answers it with the 400 naming the field.
func (b *backend) HandleExistenceCheck(ctx context.Context, req *logical.Request) (bool, bool, error) {
	if resp := normalizeGrantMaps(req); resp != nil {
		return false, false, nil
	}
	return b.Backend.HandleExistenceCheck(ctx, req)
}

// initialize runs after the mount is set up, after every unseal and after a
// plugin reload. What an earlier process left half done (root rotations,
// credentials, static rotations) is settled in the background (recovery.go).
func (b *backend) initialize(ctx context.Context, req *logical.InitializationRequest) error {
	if !b.WriteSafeReplicationState() {
		return nil
	}
	b.startRecovery(ctx, req.Storage)
	return nil
}

// invalidate drops cached state when another node changes it (performance
// standbys and replication; Vault CE never calls this).
func (b *backend) invalidate(_ context.Context, key string) {
	if key == configStoragePath {
		b.clients.reset()
	}
	b.roles.invalidate(key)
}

// clean runs on unmount, seal and plugin reload.
func (b *backend) clean(context.Context) {
	b.stopRecovery()
	b.clients.reset()
	b.roles.drop()
}

func randomHex(n int) string {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ panics
		// internally instead); keep the signature simple.
		panic(err)
	}
	return hex.EncodeToString(buf)
}
