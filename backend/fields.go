package backend

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// validateFieldTypes checks every known field of a request against its schema
// type and answers 400 naming the first that does not parse. Paths that set
// TakesArbitraryInput need it because the framework then skips its own
// validation (and FieldData.Get panics on a bad value). Fields in skip are
// parsed by the handler.
func validateFieldTypes(d *framework.FieldData, skip ...string) *logical.Response {
	names := make([]string, 0, len(d.Raw))
	for k := range d.Raw {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, known := d.Schema[k]; !known || slices.Contains(skip, k) {
			continue
		}
		if _, _, err := d.GetOkErr(k); err != nil {
			return badField(k, "%s", err)
		}
	}
	return nil
}

// unknownFieldWarnings mirrors the warning Vault gives on paths without
// TakesArbitraryInput, so typos do not pass silently.
func unknownFieldWarnings(d *framework.FieldData) []string {
	var unknown []string
	for k := range d.Raw {
		if _, known := d.Schema[k]; !known {
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
