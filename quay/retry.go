package quay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-retryablehttp"
)

// retryPolicy decides which failures are retried. Quay sits behind nginx,
// whose rate limiter answers 429 with no Retry-After (conf/nginx/rate-limiting.conf.jnj), while
// Quay's own password throttle sends one. A 429 means Quay did not act, so
// every call may retry it; a 5xx or a broken connection may have happened
// after Quay acted, so only idempotent calls retry those.
type retryPolicy struct {
	maxRetryAfter time.Duration
}

type idempotencyKey struct{}

func withIdempotency(ctx context.Context, idempotent bool) context.Context {
	return context.WithValue(ctx, idempotencyKey{}, idempotent)
}

func isIdempotent(ctx context.Context) bool {
	v, _ := ctx.Value(idempotencyKey{}).(bool)
	return v
}

// checkRetry implements retryablehttp.CheckRetry.
func (p retryPolicy) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		return retryableTransportError(err, isIdempotent(ctx)), nil
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		// A hint longer than we are willing to hold a Vault request for
		// ends the call now; the error carries the hint.
		return !p.waitTooLong(ctx, resp), nil
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return !p.waitTooLong(ctx, resp) && isIdempotent(ctx), nil
	}
	return false, nil
}

// waitTooLong reports a Retry-After above MaxRetryAfter, or beyond the
// caller's deadline: sleeping into that deadline would only trade Quay's
// answer and hint for a "timed out".
func (p retryPolicy) waitTooLong(ctx context.Context, resp *http.Response) bool {
	ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"))
	if !ok {
		return false
	}
	if deadline, has := ctx.Deadline(); has && time.Until(deadline) < ra {
		return true
	}
	return ra > p.maxRetryAfter
}

// backoff implements retryablehttp.Backoff. A Retry-After on any answer the
// policy retries is a floor under the exponential backoff: Quay's login
// throttle sends int(retry_after), so "0" means "in under a second" and "2"
// "in under three", and retrying on the hint alone would spend every retry
// inside the throttle window. Waiting the hint plus the usual backoff (100 ms,
// 200 ms, 400 ms by default) outlasts the truncated fraction. retryablehttp's
// own DefaultBackoff reads the header only on 429 and 503, and only in one of
// the three HTTP date formats. checkRetry has already ended the call when the
// hint is above MaxRetryAfter.
func (p retryPolicy) backoff(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
	wait := retryablehttp.DefaultBackoff(min, max, attempt, nil)
	if resp != nil {
		switch resp.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After")); ok {
				return ra + wait
			}
		}
	}
	return wait
}

// retryableTransportError: a connection that was never established is safe to
// retry for any call; other transport failures only for idempotent calls.
// Certificate problems never heal by retrying.
func retryableTransportError(err error, idempotent bool) bool {
	var certErr *x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var verifyErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) || errors.As(err, &hostErr) || errors.As(err, &verifyErr) {
		return false
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	return idempotent
}

// logRetry is the debug line of an attempt that will be retried: what
// failed and how (a status, or a redacted transport error), never a secret.
func logRetry(logger hclog.Logger, ctx context.Context, resp *http.Response, err error) {
	r, _ := ctx.Value(requestKey{}).(*request)
	if r == nil {
		return
	}
	if err != nil {
		logger.Debug("quay call will be retried", "route", r.route, "attempt", r.attempts, "error", r.redact(rootCause(err).Error()))
		return
	}
	logger.Debug("quay call will be retried", "route", r.route, "attempt", r.attempts, "status", resp.StatusCode,
		"retry_after", resp.Header.Get("Retry-After"))
}

// attemptOf is the number of the attempt a retry decision is about.
func attemptOf(ctx context.Context) int {
	if r, ok := ctx.Value(requestKey{}).(*request); ok {
		return r.attempts
	}
	return 0
}
