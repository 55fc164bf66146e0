package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// badField is the 400 answer to invalid input: it names the field and the reason.
func badField(field, format string, args ...any) *logical.Response {
	return logical.ErrorResponse(field + ": " + fmt.Sprintf(format, args...))
}

// quayReason is a Quay error without the "quay: " prefix, for messages that
// already say Quay is the one talking. It never contains a credential: the
// client builds errors from method, path, status and Quay's own message.
func quayReason(err error) string {
	return strings.TrimPrefix(err.Error(), "quay: ")
}

// upstreamError turns a failed Quay call into the error a Vault caller sees:
// 502 Bad Gateway with what was being done and what Quay said. Failures that
// are neither Quay's answer nor a transport problem (storage, encoding) stay
// plain errors (500).
func upstreamError(doing string, err error) error {
	var qe *quay.Error
	if !errors.As(err, &qe) {
		return fmt.Errorf("%s: %w", doing, err)
	}
	msg := fmt.Sprintf("%s: %s", doing, quayReason(err))
	switch {
	case quay.IsRateLimited(err):
		msg += " (Quay is rate limiting the engine; retry later)"
	case quay.IsUnauthorized(err):
		msg += " (Quay no longer accepts the engine's root credential; check or rewrite config)"
	case quay.IsForbidden(err):
		msg += " (the engine's root credential lacks the rights or scopes for this)"
	}
	return logical.CodedError(http.StatusBadGateway, msg)
}

// errNotConfigured answers every path that needs Quay while "config" is
// unset: a 400, since writing config is the operator's fix.
var errNotConfigured = logical.CodedError(http.StatusBadRequest, `the Quay secrets engine is not configured: write "config" first`)

// vaultSentinels are errors Vault acts on by identity (forwarding a write
// from a standby, refusing a request), so they reach Vault unchanged.
var vaultSentinels = []error{
	logical.ErrReadOnly, logical.ErrPermissionDenied, logical.ErrUnsupportedOperation, logical.ErrUnsupportedPath,
	logical.ErrInvalidRequest, logical.ErrPerfStandbyPleaseForward, logical.ErrMultiAuthzPending, logical.ErrNotFound,
	logical.ErrUnrecoverable, logical.ErrUpstreamRateLimited, logical.ErrLeaseCountQuotaExceeded, logical.ErrRateLimitQuotaExceeded,
}

// answerErrors wraps an operation so that its errors reach the caller as
// they are written. Vault wraps an error a handler returns in its
// multi-error type, which the CLI and API show as "1 error occurred: *
// <message>"; an answer with the error's status (400 for input, 409, 502 for
// Quay, 500 for the rest) and a plain "errors" list does not get wrapped.
// Errors Vault acts on by identity pass through. Lease renewals and
// revocations are not operations of a path and keep returning errors: Vault
// must see those fail.
func answerErrors(op framework.OperationFunc) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		resp, err := op(ctx, req, d)
		if err == nil {
			return resp, nil
		}
		for _, sentinel := range vaultSentinels {
			if errors.Is(err, sentinel) {
				return resp, err
			}
		}
		status := http.StatusInternalServerError
		var coded logical.HTTPCodedError
		if errors.As(err, &coded) {
			status = coded.Code()
		}
		body, jsonErr := json.Marshal(map[string][]string{"errors": {err.Error()}})
		if jsonErr != nil {
			return resp, err
		}
		return &logical.Response{Data: map[string]any{
			logical.HTTPContentType: "application/json",
			logical.HTTPStatusCode:  status,
			logical.HTTPRawBody:     string(body),
		}}, nil
	}
}

// wrapOperations applies answerErrors to every operation of paths.
func wrapOperations(paths []*framework.Path) []*framework.Path {
	for _, p := range paths {
		for _, h := range p.Operations {
			if op, ok := h.(*framework.PathOperation); ok {
				op.Callback = answerErrors(op.Callback)
			}
		}
	}
	return paths
}
