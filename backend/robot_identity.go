package backend

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// Robots the engine creates carry three marks, so that tidy recognises them
// (and only them, and only this mount's) even when every other record is lost:
// the name prefix, a marker at the start of the description (Quay lists
// descriptions but not metadata), and unstructured_metadata for humans and
// tools reading a single robot.
const (
	robotNamePrefix   = "vault_"
	robotMarkerPrefix = "[vault-plugin-secrets-quay mount="
	teamDescription   = "Managed by HashiCorp Vault (vault-plugin-secrets-quay)."
)

// robotShortName is a fresh robot name for role: vault_<role>_<10 random>.
// Quay's rule (lowercase alphanumerics with single . _ - between) holds by
// construction; the random part makes every issued robot distinct.
func robotShortName(role string) string {
	return robotNamePrefix + nameComponent(role, 40) + "_" + randomSuffix(10)
}

// robotMarker is the description prefix that ties a robot to this mount.
func robotMarker(mountID string) string {
	return robotMarkerPrefix + mountID + "]"
}

// robotDescription puts the marker first: Quay truncates descriptions to 255
// characters, and the marker must survive that.
func robotDescription(mountID, role, extra string) string {
	d := robotMarker(mountID) + " role=" + role
	if extra != "" {
		d += ": " + extra
	}
	return d
}

func robotMetadata(mountID, role string, expires time.Time) map[string]any {
	return map[string]any{
		"managed_by":  "vault-plugin-secrets-quay",
		"vault_mount": mountID,
		"vault_role":  role,
		"expires_at":  expires.UTC().Format(time.RFC3339),
	}
}

// isOwnRobot reports whether a robot carries this mount's marks.
func isOwnRobot(mountID, shortName, description string) bool {
	return strings.HasPrefix(shortName, robotNamePrefix) && strings.HasPrefix(description, robotMarker(mountID))
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
