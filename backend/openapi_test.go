package backend

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every operation declares its answers, and every field (asked or answered)
// says what it is: the OpenAPI document of a mount is the engine's
// reference, and `vault path-help` shows "<no description>" otherwise.
func TestOpenAPI_EveryOperationAndFieldIsDescribed(t *testing.T) {
	env := newTestEnv(t, withoutConfig())
	for _, p := range env.b.Paths {
		for name, f := range p.Fields {
			assert.NotEmpty(t, strings.TrimSpace(f.Description), "%s: request field %q", p.Pattern, name)
		}
		for op, h := range p.Operations {
			props := h.Properties()
			assert.NotEmpty(t, props.Summary, "%s %s: summary", op, p.Pattern)
			require.NotEmpty(t, props.Responses, "%s %s: declared responses", op, p.Pattern)
			for status, responses := range props.Responses {
				for _, r := range responses {
					assert.NotEmpty(t, r.Description, "%s %s %d: description", op, p.Pattern, status)
					for name, f := range r.Fields {
						assert.NotEmpty(t, strings.TrimSpace(f.Description), "%s %s %d: response field %q", op, p.Pattern, status, name)
					}
				}
			}
		}
		assert.NotEmpty(t, p.HelpSynopsis, "%s: help synopsis", p.Pattern)
	}
}

// The mount's OpenAPI document has one operation ID per operation (tidy's
// read and write used to share one) and no undescribed schema.
func TestOpenAPI_DocumentHasUniqueOperationIDs(t *testing.T) {
	env := newTestEnv(t, withoutConfig())
	resp, err := env.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.HelpOperation, Path: "", Storage: env.storage})
	require.NoError(t, err)
	raw, err := json.Marshal(resp.Data["openapi"])
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "<no description>")
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	seen := map[string]string{}
	for path, item := range doc.Paths {
		for method, opRaw := range item {
			switch method {
			case "get", "post", "delete", "put", "patch":
			default:
				continue
			}
			var op struct {
				OperationID string                     `json:"operationId"`
				Responses   map[string]json.RawMessage `json:"responses"`
			}
			require.NoError(t, json.Unmarshal(opRaw, &op))
			key := method + " " + path
			require.NotEmpty(t, op.OperationID, key)
			if other, dup := seen[op.OperationID]; dup {
				t.Errorf("operation ID %q is both %s and %s", op.OperationID, other, key)
			}
			seen[op.OperationID] = key
			assert.NotEmpty(t, op.Responses, key)
		}
	}
	assert.Contains(t, seen, "quay-tidy-robots")
	assert.Contains(t, seen, "quay-read-tidy-report")
}

var (
	_ = framework.TypeString
	_ = http.StatusOK
)
