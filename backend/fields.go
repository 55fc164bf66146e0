package backend

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

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

// secondsField reads a duration field (framework.TypeDurationSecond). Vault
// truncates a duration to whole seconds, so "500ms" would silently become 0,
// which means "default" or "off" to most fields: a positive value below one
// second is refused instead, naming the field.
func secondsField(d *framework.FieldData, field string) (time.Duration, bool, *logical.Response) {
	v, ok := d.GetOk(field)
	if !ok {
		return 0, false, nil
	}
	dur := time.Duration(v.(int)) * time.Second
	if dur == 0 && subSecond(d.Raw[field]) {
		return 0, true, badField(field, "must be whole seconds (e.g. 1s, 30s, 5m), got %v: Vault would read it as 0", d.Raw[field])
	}
	return dur, true, nil
}

// subSecond reports a raw duration that is positive but under one second.
func subSecond(raw any) bool {
	switch v := raw.(type) {
	case string:
		if d, err := time.ParseDuration(strings.TrimSpace(v)); err == nil {
			return d > 0 && d < time.Second
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			return f > 0 && f < 1
		}
	case float64:
		return v > 0 && v < 1
	case json.Number:
		f, err := v.Float64()
		return err == nil && f > 0 && f < 1
	}
	return false
}
