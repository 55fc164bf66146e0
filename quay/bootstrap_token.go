package quay

import (
	"context"
	"net/http"
)

// RenewBootstrapToken is POST /api/v1/bootstrap/renew with the client's
// credential (endpoints/api/bootstrap.py, FEATURE_PROGRAMMATIC_BOOTSTRAP).
// Quay answers 200 only when that credential is its current programmatic
// bootstrap token: it then creates a new bootstrap token, writes it to its
// own token file (the answer does not carry it) and invalidates the old one
// at once. A valid token that is not the bootstrap token gets 403, an
// invalid one 401, and a Quay without the feature 404.
//
// Only Quay's own answer, 200 {"status": "rotated"}, is a renewal: anything
// else (a proxy's or firewall's 200 page) is an error, since callers take a
// renewal as proof of which token they hold.
func (c *Client) RenewBootstrapToken(ctx context.Context) error {
	// Not idempotent: a retry after Quay acted would present a token it
	// had just invalidated.
	r := request{route: "renewBootstrapToken", method: http.MethodPost, path: "/api/v1/bootstrap/renew"}
	var answer struct {
		Status string `json:"status"`
	}
	if err := c.do(ctx, r, &answer); err != nil {
		return err
	}
	if answer.Status != "rotated" {
		return r.incomplete(`"status": "rotated"`)
	}
	return nil
}
