package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/mitchellh/mapstructure"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// tidyGrace keeps an index entry authoritative for a while past its lease's
// max TTL, so that clock skew between Vault's expiry and ours never lets tidy
// delete a robot whose lease Vault is about to revoke itself.
const tidyGrace = 5 * time.Minute

// tidyReport is what a tidy run found and did.
type tidyReport struct {
	DryRun         bool     `json:"dry_run"`
	Namespaces     []string `json:"namespaces_scanned"`
	RobotsScanned  int      `json:"robots_scanned"`
	RobotsOwned    int      `json:"robots_owned"`
	RobotsInFlight []string `json:"robots_in_flight"`
	// RobotsOtherClusters are robots of this mount that another cluster
	// of a performance replication set issued; their leases live there.
	RobotsOtherClusters []string `json:"robots_of_other_clusters"`
	OrphansFound        []string `json:"orphans_found"`
	OrphansDeleted      []string `json:"orphans_deleted"`
	WALEntriesCleared   int      `json:"write_ahead_entries_cleared"`
	StaleIndexRemoved   int      `json:"stale_index_entries_removed"`
	Errors              []string `json:"errors"`
}

func (r *tidyReport) data() map[string]any {
	return map[string]any{
		"dry_run":                     r.DryRun,
		"namespaces_scanned":          nonNilSlice(r.Namespaces),
		"robots_scanned":              r.RobotsScanned,
		"robots_owned":                r.RobotsOwned,
		"robots_in_flight":            nonNilSlice(r.RobotsInFlight),
		"robots_of_other_clusters":    nonNilSlice(r.RobotsOtherClusters),
		"orphans_found":               nonNilSlice(r.OrphansFound),
		"orphans_deleted":             nonNilSlice(r.OrphansDeleted),
		"write_ahead_entries_cleared": r.WALEntriesCleared,
		"stale_index_entries_removed": r.StaleIndexRemoved,
		"errors":                      nonNilSlice(r.Errors),
	}
}

func nonNilSlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// tidyGuard lets one tidy run at a time per mount.
type tidyGuard struct{ running atomic.Bool }

// errTidyRunning is returned when a tidy is already in progress: a 409.
var errTidyRunning = logical.CodedError(http.StatusConflict, "a tidy is already running on this mount; read quay/tidy for the last report")

// tidyRobots deletes robots this mount created that no live lease,
// write-ahead entry, static role or federated role owns.
//
// Ownership is read in the order that makes a concurrent creds request safe:
// Quay's robot list first, then the write-ahead entries, then the index. A
// robot in the list had its entry written before it was created, and its
// index entry is written before that entry is deleted, so whichever of the
// two tidy reads second still shows it owned.
func (b *backend) tidyRobots(ctx context.Context, s logical.Storage, dryRun bool, extraOrgs []string) (*tidyReport, error) {
	if !b.tidy.running.CompareAndSwap(false, true) {
		return nil, errTidyRunning
	}
	defer b.tidy.running.Store(false)

	client, cfg, err := b.client(ctx, s)
	if err != nil {
		return nil, err
	}
	report := &tidyReport{DryRun: dryRun}

	namespaces, err := b.tidyNamespaces(ctx, s, client, cfg, extraOrgs)
	if err != nil {
		return nil, err
	}
	cluster, err := b.clusterID(ctx, s)
	if err != nil {
		return nil, err
	}
	type candidate struct {
		ns    quay.Namespace
		short string
	}
	var candidates []candidate
	for _, ns := range namespaces {
		report.Namespaces = append(report.Namespaces, string(ns.Kind)+"/"+ns.Name)
		robots, err := client.ListRobots(ctx, ns, quay.ListRobotsOptions{})
		if err != nil {
			if quay.IsNotFound(err) || organizationGone(ctx, client, ns, err) {
				continue // the organization is gone, and its robots with it
			}
			report.Errors = append(report.Errors, fmt.Sprintf("listing robots of %s: %s", ns.Name, quayReason(err)))
			continue
		}
		for _, r := range robots {
			report.RobotsScanned++
			if !strings.HasPrefix(r.ShortName(), robotNamePrefix) {
				continue
			}
			switch b.ownerOf(cluster, r.Description, false) {
			case ownerThisCluster:
				candidates = append(candidates, candidate{ns: ns, short: r.ShortName()})
			case ownerOtherCluster:
				report.RobotsOtherClusters = append(report.RobotsOtherClusters, r.Name)
			}
		}
	}

	wals, err := b.robotWALs(ctx, s)
	if err != nil {
		return nil, err
	}
	index, err := listIssuedRobots(ctx, s)
	if err != nil {
		return nil, err
	}
	statics, err := listStaticRoles(ctx, s)
	if err != nil {
		return nil, err
	}
	federated, err := listFederatedRoles(ctx, s)
	if err != nil {
		return nil, err
	}
	now := b.now()

	for _, c := range candidates {
		nsType, username := string(c.ns.Kind), c.ns.RobotUsername(c.short)
		if staticRoleOwning(statics, nsType, c.ns.Name, c.short) != nil || federatedRoleOwning(federated, nsType, c.ns.Name, c.short) != nil {
			report.RobotsOwned++
			continue
		}
		if entry, ok := index[issuedRobotKey(nsType, c.ns.Name, c.short)]; ok && now.Before(entry.ExpiresAt.Add(tidyGrace)) {
			report.RobotsOwned++
			continue
		}
		walIDs := wals.naming(nsType, c.ns.Name, c.short)
		if wals.anyInFlight(walIDs, b.instanceID, now) {
			report.RobotsInFlight = append(report.RobotsInFlight, username)
			continue
		}
		report.OrphansFound = append(report.OrphansFound, username)
		if dryRun {
			continue
		}
		if err := b.deleteOrphanRobot(ctx, s, client, c.ns, c.short); errors.Is(err, errRobotClaimed) {
			report.OrphansFound = report.OrphansFound[:len(report.OrphansFound)-1]
			report.RobotsOwned++
			continue
		} else if err != nil {
			report.Errors = append(report.Errors, fmt.Sprintf("deleting %s: %s", username, quayReason(err)))
			continue
		}
		report.OrphansDeleted = append(report.OrphansDeleted, username)
		b.logger.Info("tidy deleted an orphaned robot", "robot", username)
		for _, id := range walIDs {
			if err := framework.DeleteWAL(ctx, s, id); err == nil {
				report.WALEntriesCleared++
			}
		}
		if err := deleteIssuedRobot(ctx, s, nsType, c.ns.Name, c.short); err != nil {
			report.Errors = append(report.Errors, fmt.Sprintf("removing index entry of %s: %s", username, err))
		}
	}

	// Index entries long past their lease whose robot is gone (deleted by
	// hand, or by the lines above) are only clutter.
	if !dryRun {
		present := map[string]bool{}
		for _, c := range candidates {
			present[issuedRobotKey(string(c.ns.Kind), c.ns.Name, c.short)] = true
		}
		for key, entry := range index {
			if now.After(entry.ExpiresAt.Add(tidyGrace)) && !present[key] {
				if err := s.Delete(ctx, key); err == nil {
					report.StaleIndexRemoved++
				}
			}
		}
	}
	sort.Strings(report.OrphansFound)
	sort.Strings(report.OrphansDeleted)
	sort.Strings(report.RobotsOtherClusters)
	return report, nil
}

// tidyNamespaces is every namespace the mount may have robots in: those of
// its roles, static roles, issued robots and write-ahead entries, plus any
// organization the caller names (for robots of roles deleted long ago).
func (b *backend) tidyNamespaces(ctx context.Context, s logical.Storage, client *quay.Client, cfg *quayConfig, extraOrgs []string) ([]quay.Namespace, error) {
	seen := map[quay.Namespace]bool{}
	add := func(nsType, name string) {
		if nsType == "" {
			nsType = string(quay.NamespaceOrganization)
		}
		if name == "" {
			return
		}
		seen[quay.Namespace{Kind: quay.NamespaceKind(nsType), Name: name}] = true
	}
	for _, org := range extraOrgs {
		add(string(quay.NamespaceOrganization), strings.TrimSpace(org))
	}
	roleNames, err := s.List(ctx, roleStoragePrefix)
	if err != nil {
		return nil, err
	}
	for _, name := range roleNames {
		role, err := getRole(ctx, s, name)
		if err != nil {
			return nil, err
		}
		if role != nil && (role.CredentialType == credentialTypeRobot || role.CredentialType == credentialTypeFederated) {
			add(role.NamespaceType, role.NamespaceName)
		}
	}
	statics, err := listStaticRoles(ctx, s)
	if err != nil {
		return nil, err
	}
	for _, r := range statics {
		add(r.NamespaceType, r.NamespaceName)
	}
	index, err := listIssuedRobots(ctx, s)
	if err != nil {
		return nil, err
	}
	for _, r := range index {
		add(r.NamespaceType, r.NamespaceName)
	}
	wals, err := b.robotWALs(ctx, s)
	if err != nil {
		return nil, err
	}
	for _, w := range wals {
		add(w.entry.NamespaceType, w.entry.NamespaceName)
	}
	out := make([]quay.Namespace, 0, len(seen))
	owner := ""
	for ns := range seen {
		// The user-robot API only reaches the root credential's own
		// namespace: listing another user's through it would list the
		// caller's robots under the other user's name, and delete them.
		if ns.Kind == quay.NamespaceUser {
			if owner == "" {
				if owner, err = credentialOwner(ctx, client, cfg); err != nil {
					return nil, err
				}
			}
			if ns.Name != owner {
				continue
			}
		}
		out = append(out, ns)
	}
	slices.SortFunc(out, func(a, b quay.Namespace) int {
		return strings.Compare(string(a.Kind)+"/"+a.Name, string(b.Kind)+"/"+b.Name)
	})
	return out, nil
}

// robotWALEntry is a robot write-ahead entry with its ID and age.
type robotWALEntry struct {
	id      string
	created time.Time
	entry   robotWAL
}

type robotWALs map[string]robotWALEntry

func (b *backend) robotWALs(ctx context.Context, s logical.Storage) (robotWALs, error) {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return nil, err
	}
	out := robotWALs{}
	for _, id := range ids {
		w, err := framework.GetWAL(ctx, s, id)
		if err != nil || w == nil || w.Kind != walKindRobot {
			continue
		}
		var entry robotWAL
		if err := mapstructure.Decode(w.Data, &entry); err != nil {
			continue
		}
		out[id] = robotWALEntry{id: id, created: time.Unix(w.CreatedAt, 0), entry: entry}
	}
	return out, nil
}

func (w robotWALs) naming(nsType, nsName, short string) []string {
	var ids []string
	for id, e := range w {
		if e.entry.NamespaceType == nsType && e.entry.NamespaceName == nsName && e.entry.ShortName == short {
			ids = append(ids, id)
		}
	}
	return ids
}

// anyInFlight reports whether one of the entries may belong to a request
// still running: written by this very backend instance, and younger than the
// rollback's minimum age. An entry of another instance belongs to a process
// that has since restarted, so its request is certainly dead.
func (w robotWALs) anyInFlight(ids []string, instanceID string, now time.Time) bool {
	for _, id := range ids {
		e := w[id]
		if e.entry.InstanceID == instanceID && now.Sub(e.created) < walRollbackMinAge {
			return true
		}
	}
	return false
}

// organizationGone tells a missing organization from a rights problem after
// Quay refused to list its robots: for a missing organization its permission
// check answers 403 before anything else (endpoints/api/robot.py).
func organizationGone(ctx context.Context, client *quay.Client, ns quay.Namespace, listErr error) bool {
	if ns.Kind != quay.NamespaceOrganization || !quay.IsForbidden(listErr) {
		return false
	}
	_, err := client.GetOrganization(ctx, ns.Name)
	return quay.IsNotFound(err)
}

// errRobotClaimed: a role written while tidy ran owns the robot now.
var errRobotClaimed = errors.New("a role claimed the robot meanwhile")

// deleteOrphanRobot deletes a robot tidy found no owner for, unless a role
// written since claimed it: under the robot's lock, so that no role write
// stores its role between this look and the delete.
func (b *backend) deleteOrphanRobot(ctx context.Context, s logical.Storage, client *quay.Client, ns quay.Namespace, short string) error {
	lock := b.robotLock(string(ns.Kind), ns.Name, short)
	lock.Lock()
	defer lock.Unlock()
	owner, err := roleOwningRobot(ctx, s, string(ns.Kind), ns.Name, short, "", "")
	if err != nil {
		return err
	}
	if owner != "" {
		return errRobotClaimed
	}
	return deleteRobot(ctx, client, ns, short)
}
