package quay

import (
	"context"
	"fmt"
)

// maxPages bounds how many pages a list call follows: 10 000 × 50 tokens is
// far beyond any real application, and a server that keeps answering with a
// cursor must not hold a Vault request until its deadline.
const maxPages = 10000

// eachPage calls fetch with Quay's opaque next_page cursor ("" first) until
// Quay answers without one. A cursor seen before ends the walk: Quay's
// cursors only move forward, so a repeat means the server is looping.
func eachPage(ctx context.Context, fetch func(cursor string) (next string, err error)) error {
	seen := map[string]bool{}
	cursor := ""
	for page := 0; page < maxPages; page++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		next, err := fetch(cursor)
		if err != nil {
			return err
		}
		if next == "" || seen[next] {
			return nil
		}
		seen[next] = true
		cursor = next
	}
	return fmt.Errorf("quay: gave up after %d pages", maxPages)
}
