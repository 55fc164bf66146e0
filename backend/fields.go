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
