//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// versionedPlugins caches plugin binaries stamped with other versions.
var versionedPlugins struct {
	sync.Mutex
	built map[string]string
}

// buildPluginVersion builds the plugin stamped with version (once per test
// binary) and returns its path and SHA-256.
func buildPluginVersion(t testing.TB, version string) (path, sha string) {
	t.Helper()
	versionedPlugins.Lock()
	defer versionedPlugins.Unlock()
	if versionedPlugins.built == nil {
		versionedPlugins.built = map[string]string{}
	}
	path, ok := versionedPlugins.built[version]
	if !ok {
		path = filepath.Join(suite.workDir, "versions", version, pluginName)
		must(t, os.MkdirAll(filepath.Dir(path), 0o755))
		must(t, goBuild(path, "./cmd/"+pluginName, "-ldflags", "-X "+modulePath+"/version.Version="+version))
		versionedPlugins.built[version] = path
	}
	sha, err := sha256File(path)
	must(t, err)
	return path, sha
}

// installPlugin puts a binary into every node's plugin_directory under name.
func (c *Cluster) installPlugin(t testing.TB, binary, name string) {
	t.Helper()
	for _, v := range c.Nodes {
		must(t, copyFile(binary, filepath.Join(v.dir, "plugins", name), 0o755))
	}
}

// runningVersion is the plugin version the quay/ mount runs, as node v says.
func runningVersion(t testing.TB, v *Vault) string {
	t.Helper()
	var mounts map[string]struct {
		RunningPluginVersion string `json:"running_plugin_version"`
		PluginVersion        string `json:"plugin_version"`
	}
	v.CLIJSON(t, &mounts, []string{"secrets", "list"}, "-detailed")
	return mounts[mount+"/"].RunningPluginVersion
}

// An operator upgrades the plugin on a live cluster the documented way:
// the new binary in every node's plugin directory, `vault plugin register
// -version`, `vault secrets tune -plugin-version`, `vault plugin reload`.
// Leases issued by the old version renew and revoke under the new one, on
// the leader and after a failover.
func TestClusterPluginUpgradeKeepsLeases(t *testing.T) {
	const oldVersion, newVersion = "v0.1.0", "v0.2.0"
	oldBin, oldSHA := buildPluginVersion(t, oldVersion)
	newBin, newSHA := buildPluginVersion(t, newVersion)
	c := StartCluster(t, ClusterOptions{SkipPlugin: true})
	c.installPlugin(t, oldBin, pluginName+"-"+oldVersion)
	c.installPlugin(t, newBin, pluginName+"-"+newVersion)
	q := StartQuay(t, QuayOptions{})
	cs := &clusterStack{C: c, Quay: q, Org: q.Name("acme"), RootOrg: q.Name("vault-root")}
	q.CreateOrganization(t, cs.Org)
	cs.insp = q.inspector(t, q.BootstrapOwner)

	leader := cs.on(c.Leader(t))
	leader.seedRepo(t, "app")
	leader.Vault.MustCLI(t, "plugin", "register", "-sha256="+oldSHA, "-version="+oldVersion, "-command="+pluginName+"-"+oldVersion, "secret", pluginName)
	leader.Vault.MustCLI(t, "secrets", "enable", "-path="+mount, "-plugin-version="+oldVersion, pluginName)
	leader.Vault.MustCLI(t, "write", mount+"/config", "url="+q.URL, "token="+q.BootstrapToken, "root_organization="+cs.RootOrg)
	leader.writeOAuthRole(t, "oauth")
	leader.Vault.MustCLI(t, "write", mount+"/roles/robot", "namespace_name="+cs.Org, `repositories={"app":"read"}`, "ttl=1h")
	if got := runningVersion(t, leader.Vault); got != oldVersion {
		t.Fatalf("mount runs %q before the upgrade, want %s", got, oldVersion)
	}
	oldOAuth, oldRobot := leader.readCreds(t, "oauth"), leader.readCreds(t, "robot")

	// The upgrade, through a standby (forwarded, as any operator's CLI
	// pointed at a load balancer would be).
	standby := cs.on(c.Standby(t))
	standby.Vault.MustCLI(t, "plugin", "register", "-sha256="+newSHA, "-version="+newVersion, "-command="+pluginName+"-"+newVersion, "secret", pluginName)
	standby.Vault.MustCLI(t, "secrets", "tune", "-plugin-version="+newVersion, mount+"/")
	standby.Vault.MustCLI(t, "plugin", "reload", "-plugin="+pluginName)
	eventually(t, 30*time.Second, "the mount runs the new version", func() error {
		if got := runningVersion(t, leader.Vault); got != newVersion {
			return fmt.Errorf("running %q", got)
		}
		return nil
	})

	// The old version's leases renew and revoke under the new one.
	for _, sec := range []cliSecret{oldOAuth, oldRobot} {
		var renewed cliSecret
		leader.Vault.CLIJSON(t, &renewed, []string{"lease", "renew"}, sec.LeaseID)
		if renewed.LeaseID != sec.LeaseID || renewed.LeaseDuration <= 0 {
			t.Errorf("renewing %s after the upgrade: %+v", sec.LeaseID, renewed)
		}
	}
	leader.Vault.MustCLI(t, "lease", "revoke", "-sync", oldOAuth.LeaseID)
	if code, _ := q.WhoAmI(t, oldOAuth.str(t, "token")); code != http.StatusUnauthorized {
		t.Errorf("an OAuth token of the old version works after its lease was revoked under the new one: %d", code)
	}

	// A failover: the new leader starts the tuned version, and the old
	// version's remaining lease still renews and revokes there.
	c.KillLeader(t)
	newLeader := cs.on(c.Leader(t))
	if got := runningVersion(t, newLeader.Vault); got != newVersion {
		t.Fatalf("after a failover the mount runs %q, want %s", got, newVersion)
	}
	var renewed cliSecret
	newLeader.Vault.CLIJSON(t, &renewed, []string{"lease", "renew"}, oldRobot.LeaseID)
	if renewed.LeaseDuration <= 0 {
		t.Errorf("renewing the old version's robot lease on the new leader: %+v", renewed)
	}
	newLeader.Vault.MustCLI(t, "lease", "revoke", "-sync", oldRobot.LeaseID)
	if code := q.robotLogin(t, oldRobot.str(t, "username"), oldRobot.str(t, "password")); code != http.StatusUnauthorized {
		t.Errorf("a robot of the old version logs in after its lease was revoked under the new one: %d", code)
	}
	fresh := newLeader.readCreds(t, "robot")
	if code := q.robotLogin(t, fresh.str(t, "username"), fresh.str(t, "password")); code != http.StatusOK {
		t.Errorf("a robot issued by the new version cannot log in: %d", code)
	}
	newLeader.Vault.MustCLI(t, "lease", "revoke", "-sync", fresh.LeaseID)
	inv := cs.inventory(t)
	own := newOwnership()
	own.RootToken = cs.rootTokenID(t, newLeader.Vault)
	if orphans, missing := inv.orphans(own); len(orphans)+len(missing) > 0 {
		t.Errorf("after the upgrade and every revocation: orphans %v, missing %v", orphans, missing)
	}
}
