package backend

import (
	"context"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Vault runs a create-or-update path's existence check, with the request's
// data, before the request itself. The CLI sends repositories and teams as
// JSON strings (vault write quay/roles/x repositories='{"app":"read"}'), so
// the check must take them as HandleRequest does; otherwise every such
// write fails with "error converting input for field repositories".
func TestExistenceCheck_TakesGrantMapsAsJSONStrings(t *testing.T) {
	env := newTestEnv(t)
	for _, path := range []string{"roles/pull", "static-roles/pull"} {
		req := &logical.Request{Operation: logical.UpdateOperation, Path: path, Storage: env.storage, MountPoint: "quay/",
			Data: map[string]any{"namespace_name": testOrg, "repositories": `{"app":"read"}`, "teams": `{"readers":"member"}`}}
		checkFound, exists, err := env.b.HandleExistenceCheck(context.Background(), req)
		require.NoError(t, err, path)
		assert.True(t, checkFound, path)
		assert.False(t, exists, path)

		req.Data = map[string]any{"namespace_name": testOrg, "repositories": `{"app":`}
		_, _, err = env.b.HandleExistenceCheck(context.Background(), req)
		require.Error(t, err, path)
		assert.Contains(t, err.Error(), "repositories", "a malformed map is refused naming the field")
	}
}
