package backend

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"
)

// One way to read and write the engine's JSON storage entries. what names
// the entry in errors ("config", "role \"ci\"").

// getJSON reads and decodes one storage entry; nil when absent.
func getJSON[T any](ctx context.Context, s logical.Storage, key, what string) (*T, error) {
	entry, err := s.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if entry == nil {
		return nil, nil
	}
	v := new(T)
	if err := entry.DecodeJSON(v); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", what, err)
	}
	return v, nil
}

// putJSON encodes and writes one storage entry.
func putJSON(ctx context.Context, s logical.Storage, key, what string, v any) error {
	entry, err := logical.StorageEntryJSON(key, v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", what, err)
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("writing %s: %w", what, err)
	}
	return nil
}
