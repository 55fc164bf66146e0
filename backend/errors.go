package backend

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

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
