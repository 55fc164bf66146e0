package backend

import (
	"context"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Vault runs a write's existence check before the write, with the same
// data: repositories and teams given as strings holding JSON (the CLI's
// and vault-config-operator's form) must pass it, as they pass the write.
func TestRoles_StringGrantsPassTheExistenceCheck(t *testing.T) {
	env := newTestEnv(t)
	for _, path := range []string{"roles/ci", "static-roles/pull"} {
		req := &logical.Request{Operation: logical.UpdateOperation, Path: path, Storage: env.storage, MountPoint: "quay/",
			Data: map[string]any{"namespace_name": testOrg, "repositories": `{"app":"write"}`, "teams": `{"t1":"member"}`}}
		found, exists, err := env.b.HandleExistenceCheck(context.Background(), req)
		require.NoError(t, err, path)
		assert.True(t, found, "%s has an existence check", path)
		assert.False(t, exists, path)

		req.Data["repositories"] = "app=write"
		found, _, err = env.b.HandleExistenceCheck(context.Background(), req)
		require.NoError(t, err, "%s: the write itself answers malformed input with a 400", path)
		assert.False(t, found)
		assert.Contains(t, errorMessage(env.request(logical.UpdateOperation, path, req.Data)), "repositories: must be a JSON object of strings")
	}
}
