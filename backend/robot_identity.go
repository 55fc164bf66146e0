package backend

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// Robots the engine creates carry three marks, so that tidy recognises them
// (and only them: only this mount's, and only those this cluster issued) even
// when every other record is lost: the name prefix, a marker at the start of
// the description (Quay lists descriptions but not metadata), and
// unstructured_metadata for humans and tools reading a single robot.
const (
	robotNamePrefix   = "vault_"
	robotMarkerPrefix = "[vault-plugin-secrets-quay mount="
	teamDescription   = "Managed by HashiCorp Vault (vault-plugin-secrets-quay)."
	// quayMaxDescription is the longest robot description Quay accepts: the
	// CreateRobot schema's maxLength (endpoints/api/robot.py). Quay refuses
	// a longer one with a 400; it does not truncate.
	quayMaxDescription = 255
)

// robotShortName is a fresh robot name for role: vault_<role>_<10 random>.
// Quay's rule (lowercase alphanumerics with single . _ - between) holds by
// construction; the random part makes every issued robot distinct.
func robotShortName(role string) string {
	return robotNamePrefix + nameComponent(role, 40) + "_" + randomSuffix(10)
}

// robotMark says who created a robot: the mount and the cluster. Markers
// written before clusters were recorded have no cluster.
type robotMark struct{ mount, cluster string }

// String is the marker as it starts a robot's description.
func (m robotMark) String() string {
	return robotMarkerPrefix + m.mount + " cluster=" + m.cluster + "]"
}

// parseRobotMark reads the marker at the start of a description.
func parseRobotMark(description string) (robotMark, bool) {
	rest, ok := strings.CutPrefix(description, robotMarkerPrefix)
	if !ok {
		return robotMark{}, false
	}
	inside, _, ok := strings.Cut(rest, "]")
	if !ok {
		return robotMark{}, false
	}
	mount, cluster, _ := strings.Cut(inside, " cluster=")
	return robotMark{mount: mount, cluster: cluster}, mount != ""
}

// robotDescription is the description of a robot for role ("static role="
// for static roles): the marker first, then the role, then the role's own
// description.
func robotDescription(mark robotMark, kind, role, extra string) string {
	d := mark.String() + " " + kind + "=" + role
	if extra != "" {
		d += ": " + extra
	}
	return d
}

// describedRole reads the kind and role a marked description names.
func describedRole(description string) (kind, role string, ok bool) {
	if _, ok := parseRobotMark(description); !ok {
		return "", "", false
	}
	_, rest, _ := strings.Cut(description, "] ")
	for _, k := range []string{robotKindStatic, robotKindFederated, robotKindDynamic} {
		if after, found := strings.CutPrefix(rest, k+"="); found {
			role, _, _ = strings.Cut(after, ": ")
			return k, role, true
		}
	}
	return "", "", false
}

// Kinds of robots in a description.
const (
	robotKindDynamic = "role"
	robotKindStatic  = "static role"
)

// robotDescriptionFits checks, when a role is written, that every robot it
// will create has a description Quay accepts. The cluster ID is not known
// yet on a fresh mount, but its length is.
func robotDescriptionFits(mountID, kind, role, extra string) bool {
	mark := robotMark{mount: mountID, cluster: strings.Repeat("0", clusterIDLength)}
	return utf8.RuneCountInString(robotDescription(mark, kind, role, extra)) <= quayMaxDescription
}

// maxRobotDescription is how long a role's own description may be.
func maxRobotDescription(mountID, kind, role string) int {
	mark := robotMark{mount: mountID, cluster: strings.Repeat("0", clusterIDLength)}
	return quayMaxDescription - utf8.RuneCountInString(robotDescription(mark, kind, role, "")) - len(": ")
}

// robotOwner is what a robot's marker says about who created it.
type robotOwner int

const (
	// ownerNone: no marker of this mount. The engine never deletes it.
	ownerNone robotOwner = iota
	// ownerThisCluster: this mount created it on this cluster.
	ownerThisCluster
	// ownerOtherCluster: this mount's marker, from another cluster of a
	// performance replication set (or one that cannot tell which). Its
	// lease, if any, lives on that cluster: never touched here.
	ownerOtherCluster
)

// ownerOf classifies a robot by its description's marker. legacyIsOurs says
// what a marker without a cluster (written before clusters were recorded)
// means where other clusters share the mount: the robot a write-ahead entry
// names is this cluster's (entries are local), one tidy merely finds in
// Quay could be any cluster's. Without replication there is no other cluster.
func (b *backend) ownerOf(clusterID, description string, legacyIsOurs bool) robotOwner {
	mark, ok := parseRobotMark(description)
	switch {
	case !ok || mark.mount != b.mountID:
		return ownerNone
	case mark.cluster == clusterID:
		return ownerThisCluster
	case mark.cluster == "" && (legacyIsOurs || !b.inPerformanceReplication()):
		return ownerThisCluster
	}
	return ownerOtherCluster
}

func robotMetadata(mark robotMark, roleKey, role string, expires time.Time) map[string]any {
	md := map[string]any{
		"managed_by":    "vault-plugin-secrets-quay",
		"vault_mount":   mark.mount,
		"vault_cluster": mark.cluster,
		roleKey:         role,
	}
	if !expires.IsZero() {
		md["expires_at"] = expires.UTC().Format(time.RFC3339)
	}
	return md
}

// dockerCredentials is the docker-ready form of a registry login: username,
// password, the registry host, the "auth" of a config.json entry, and a
// complete config.json usable as ~/.docker/config.json, DOCKER_AUTH_CONFIG or
// the .dockerconfigjson of a kubernetes.io/dockerconfigjson Secret.
func dockerCredentials(registry, username, password string) map[string]any {
	auth := base64.StdEncoding.EncodeToString([]byte(username + ":" + password))
	config, _ := json.Marshal(map[string]any{
		"auths": map[string]any{registry: map[string]string{"auth": auth}},
	})
	return map[string]any{
		"username":           username,
		"password":           password,
		"registry":           registry,
		"auth":               auth,
		"docker_config_json": string(config),
	}
}
