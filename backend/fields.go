package backend

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
)

// unknownFieldWarnings mirrors the warning Vault gives on paths without
// TakesArbitraryInput, so typos do not pass silently.
func unknownFieldWarnings(d *framework.FieldData, alsoKnown ...string) []string {
	var unknown []string
	for k := range d.Raw {
		if _, known := d.Schema[k]; !known && !slices.Contains(alsoKnown, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return []string{fmt.Sprintf("Endpoint ignored these unrecognized parameters: [%s]", strings.Join(unknown, " "))}
}

// parseStringMap accepts a JSON object of strings, or a string holding one
// (vault-config-operator and the CLI send the latter). An empty string clears.
func parseStringMap(raw any) (map[string]string, error) {
	switch v := raw.(type) {
	case nil:
		return nil, nil
	case map[string]string:
		return v, nil
	case map[string]any:
		out := make(map[string]string, len(v))
		for k, val := range v {
			s, ok := val.(string)
			if !ok {
				return nil, fmt.Errorf("value of %q must be a string, got %T", k, val)
			}
			out[k] = s
		}
		return out, nil
	case string:
		s := strings.TrimSpace(v)
		if s == "" || s == "null" {
			return nil, nil
		}
		var out map[string]string
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			return nil, errors.New(`must be a JSON object of strings, e.g. {"name": "read"}`)
		}
		return out, nil
	default:
		return nil, fmt.Errorf(`must be a JSON object of strings, e.g. {"name": "read"}, got %T`, raw)
	}
}

// roleNameOf returns a role's canonical name from the path: role names are
// lower case (redhat-cop/vault-plugin-secrets-quay lower-cased them too, and
// they become part of Quay object names). asked is the name as the request
// spelled it, which differs when it had capitals.
func roleNameOf(d *framework.FieldData) (name, asked string) {
	name = d.Get("name").(string)
	asked, _ = d.Raw["name"].(string)
	if asked == "" {
		asked = name
	}
	return name, asked
}

// caseWarning is the warning for a role name written with capitals.
func caseWarning(kind, asked, name string) []string {
	if asked == name {
		return nil
	}
	return []string{fmt.Sprintf("%s names are lower case: %q is stored as %q", kind, asked, name)}
}
