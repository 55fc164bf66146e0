package backend

import (
	"net/http"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
)

// Declared responses (OpenAPI, and the schema tests that hold answers to
// them).

// okWith is a 200 answer with fields.
func okWith(fields map[string]*framework.FieldSchema) map[int][]framework.Response {
	return map[int][]framework.Response{http.StatusOK: {{Description: "OK", Fields: fields}}}
}

// doneOrWarnings is an answer without data: 204, or 200 when it carries
// warnings.
var doneOrWarnings = map[int][]framework.Response{
	http.StatusNoContent: {{Description: "Done."}},
	http.StatusOK:        {{Description: "Done, with warnings and no data."}},
}

// dockerCredentialFields describe the docker-ready login every robot answer
// carries (dockerCredentials).
func dockerCredentialFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"username":           {Type: framework.TypeString, Description: "The robot's registry username, <namespace>+<name>."},
		"password":           {Type: framework.TypeString, Description: "The robot's token (a secret)."},
		"registry":           {Type: framework.TypeString, Description: "The registry host to log in to."},
		"auth":               {Type: framework.TypeString, Description: "base64(username:password), the auth of a docker config.json entry (a secret)."},
		"docker_config_json": {Type: framework.TypeString, Description: "A complete ~/.docker/config.json (also DOCKER_AUTH_CONFIG and a kubernetes.io/dockerconfigjson Secret's .dockerconfigjson; a secret)."},
		"namespace_type":     {Type: framework.TypeString, Description: `Where the robot lives: "organization" or "user".`},
		"namespace_name":     {Type: framework.TypeString, Description: "The organization (or user) of the robot."},
	}
}

// withFields returns base with extra added (base is not modified).
func withFields(base map[string]*framework.FieldSchema, extra map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
	out := make(map[string]*framework.FieldSchema, len(base)+len(extra))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// setTime puts a time into answer data as RFC 3339, leaving it out when it is
// not known (zero).
func setTime(data map[string]any, key string, t time.Time) {
	if !t.IsZero() {
		data[key] = formatTime(t)
	}
}

// listKeys documents a list answer.
func listKeys(what string) map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{"keys": {Type: framework.TypeStringSlice, Description: what}}
}
