package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// issuedRobotPrefix indexes the robots whose leases are live. Vault does not
// tell a plugin which leases exist, and a Quay robot never expires by itself,
// so this index is how tidy tells a leased robot from an orphan. An entry is
// written before the creds response leaves the plugin and removed by revoke;
// one that outlives ExpiresAt (the lease's max TTL) belongs to a lease Vault
// never registered or already ended.
const issuedRobotPrefix = "issued/robots/"

type issuedRobot struct {
	Role          string    `json:"role"`
	NamespaceType string    `json:"namespace_type"`
	NamespaceName string    `json:"namespace_name"`
	ShortName     string    `json:"short_name"`
	IssuedAt      time.Time `json:"issued_at"`
	ExpiresAt     time.Time `json:"expires_at"`
}

func issuedRobotKey(nsType, nsName, short string) string {
	return issuedRobotPrefix + nsType + "/" + nsName + "/" + short
}

func putIssuedRobot(ctx context.Context, s logical.Storage, r issuedRobot) error {
	return putJSON(ctx, s, issuedRobotKey(r.NamespaceType, r.NamespaceName, r.ShortName), "index of issued robots", r)
}

func deleteIssuedRobot(ctx context.Context, s logical.Storage, nsType, nsName, short string) error {
	return s.Delete(ctx, issuedRobotKey(nsType, nsName, short))
}

// listIssuedRobots reads the whole index, keyed by storage key.
func listIssuedRobots(ctx context.Context, s logical.Storage) (map[string]issuedRobot, error) {
	out := map[string]issuedRobot{}
	nsTypes, err := s.List(ctx, issuedRobotPrefix)
	if err != nil {
		return nil, err
	}
	for _, nsType := range nsTypes {
		namespaces, err := s.List(ctx, issuedRobotPrefix+nsType)
		if err != nil {
			return nil, err
		}
		for _, ns := range namespaces {
			shorts, err := s.List(ctx, issuedRobotPrefix+nsType+ns)
			if err != nil {
				return nil, err
			}
			for _, short := range shorts {
				key := issuedRobotPrefix + nsType + ns + short
				r, err := getJSON[issuedRobot](ctx, s, key, key)
				if err != nil {
					return nil, err
				}
				if r != nil {
					out[key] = *r
				}
			}
		}
	}
	return out, nil
}
