package quay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// call is one client operation with the answer a real Quay gives on success.
type call struct {
	name       string
	idempotent bool
	// readsBody: the call decodes the answer's body (not just its status).
	readsBody bool
	ok        http.HandlerFunc
	do        func(*Client) error
}

func calls() []call {
	found := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://quay/oauth/localapp#access_token=TOKEN&token_type=Bearer&expires_in=315576000")
		w.WriteHeader(http.StatusFound)
	}
	return []call{
		{"GET user", true, true, jsonReply(200, `{"username":"quayadmin"}`), func(c *Client) error { _, err := c.GetUser(bg); return err }},
		{"GET robots", true, true, jsonReply(200, `{"robots":[]}`), func(c *Client) error {
			_, err := c.ListRobots(bg, acme, ListRobotsOptions{})
			return err
		}},
		{"DELETE robot", true, false, reply(204, "", ""), func(c *Client) error { return c.DeleteRobot(bg, acme, "ci") }},
		{"DELETE application token", true, false, reply(204, "", ""), func(c *Client) error {
			return c.DeleteApplicationToken(bg, "acme", "CID", "uuid")
		}},
		{"PUT permission (an upsert)", true, false, jsonReply(200, `{"role":"read"}`), func(c *Client) error {
			return c.SetUserPermission(bg, "acme", "app", "acme+ci", RoleRead)
		}},
		{"POST application token", false, true, jsonReply(200, `{"uuid":"u","token":"T"}`), func(c *Client) error {
			_, err := c.CreateApplicationToken(bg, "acme", "CID", newToken)
			return err
		}},
		{"PUT robot (a duplicate is a 400)", false, true, jsonReply(201, `{"name":"acme+ci","token":"T"}`), func(c *Client) error {
			_, err := c.CreateRobot(bg, acme, "ci", RobotSpec{})
			return err
		}},
		{"POST robot regenerate", false, true, jsonReply(200, `{"name":"acme+ci","token":"T"}`), func(c *Client) error {
			_, err := c.RegenerateRobotToken(bg, acme, "ci")
			return err
		}},
		{"POST organization", false, false, jsonReply(201, `"Created"`), func(c *Client) error {
			return c.CreateOrganization(bg, "acme", "")
		}},
		{"POST user initialize", false, true, jsonReply(200, `{"username":"first"}`), func(c *Client) error {
			_, err := c.InitializeUser(bg, InitializeUserRequest{Username: "first", Password: secretPassword})
			return err
		}},
		{"POST oauth authorizeapp", false, false, found, func(c *Client) error {
			_, err := c.AuthorizeApp(bg, DirectOAuthRequest{Username: "u", Password: secretPassword, ClientID: "CID", RedirectURI: "http://quay/oauth/localapp"})
			return err
		}},
	}
}

// A 429 means Quay (or nginx before it) did not act: every call retries it,
// POSTs included.
func TestRetry_RateLimitIsRetriedForEveryCall(t *testing.T) {
	for _, tc := range calls() {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeQuay(t, sequence(reply(429, "text/html", nginxPage(429)), reply(429, "text/html", nginxPage(429)), tc.ok))
			require.NoError(t, tc.do(newTestClient(t, srv.URL)))
			assert.Equal(t, 3, srv.Calls())
			reqs := srv.Requests()
			assert.Equal(t, reqs[0].Body, reqs[2].Body, "the body is sent again whole")
		})
	}
}

// Retry-After is honoured on every status the policy retries, in seconds and
// in both HTTP date formats.
func TestRetry_HonoursRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
		do         func(context.Context, *Client) error
	}{
		{"429 seconds on a POST", 429, "0", func(ctx context.Context, c *Client) error {
			_, err := c.CreateApplicationToken(ctx, "acme", "CID", newToken)
			return err
		}},
		{"429 HTTP date", 429, "Wed, 21 Oct 2015 07:28:00 GMT", func(ctx context.Context, c *Client) error {
			_, err := c.GetUser(ctx)
			return err
		}},
		{"503 on a GET", 503, "0", func(ctx context.Context, c *Client) error {
			_, err := c.GetUser(ctx)
			return err
		}},
		{"502 on a GET", 502, "0", func(ctx context.Context, c *Client) error {
			_, err := c.GetUser(ctx)
			return err
		}},
		{"504 on a DELETE", 504, "0", func(ctx context.Context, c *Client) error {
			return c.DeleteRobot(ctx, acme, "ci")
		}},
		{"429 RFC 850 date", 429, "Sunday, 06-Nov-94 08:49:37 GMT", func(ctx context.Context, c *Client) error {
			_, err := c.GetUser(ctx)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok := jsonReply(200, `{"uuid":"u","token":"T"}`)
			if strings.Contains(tc.name, "DELETE") {
				ok = reply(204, "", "")
			}
			srv := newFakeQuay(t, sequence(reply(tc.status, "text/plain", "wait", "Retry-After", tc.retryAfter), ok))
			c := newTestClient(t, srv.URL, func(c *Config) { c.RetryWaitMin, c.RetryWaitMax = time.Millisecond, time.Millisecond })
			ctx, cancel := context.WithTimeout(bg, 20*time.Second)
			defer cancel()
			require.NoError(t, tc.do(ctx, c))
			assert.Equal(t, 2, srv.Calls())
		})
	}
}

// The hint is a floor under the backoff, never a replacement for it: Quay
// truncates its login throttle's hint to whole seconds.
func TestRetry_RetryAfterIsAFloorUnderTheBackoff(t *testing.T) {
	p := retryPolicy{maxRetryAfter: 15 * time.Second}
	min, max := 100*time.Millisecond, 3*time.Second
	answer := func(status int, retryAfter string) *http.Response {
		h := http.Header{}
		if retryAfter != "" {
			h.Set("Retry-After", retryAfter)
		}
		return &http.Response{StatusCode: status, Header: h}
	}
	for attempt, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		assert.Equal(t, want, p.backoff(min, max, attempt, answer(429, "0")), "hint 0, attempt %d", attempt)
		assert.Equal(t, 2*time.Second+want, p.backoff(min, max, attempt, answer(429, "2")), "hint 2, attempt %d", attempt)
		assert.Equal(t, 2*time.Second+want, p.backoff(min, max, attempt, answer(503, "2")), "503, attempt %d", attempt)
		assert.Equal(t, want, p.backoff(min, max, attempt, answer(429, "")), "no hint (nginx), attempt %d", attempt)
		assert.Equal(t, want, p.backoff(min, max, attempt, answer(500, "2")), "not a status the policy retries, attempt %d", attempt)
	}
}

// A Retry-After longer than MaxRetryAfter ends the call at once, with the
// server's hint in the error, rather than holding a Vault request open.
func TestRetry_RetryAfterAboveTheCapFailsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name          string
		status        int
		retryAfter    string
		maxRetryAfter time.Duration
		want          time.Duration
	}{
		{"429 over the default 15s", 429, "120", 0, 120 * time.Second},
		{"429 over a configured cap", 429, "3", time.Second, 3 * time.Second},
		{"503 over the default", 503, "60", 0, time.Minute},
		{"429 as a date", 429, time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), 0, 59 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeQuay(t, reply(tc.status, "text/plain", "slow down", "Retry-After", tc.retryAfter))
			c := newTestClient(t, srv.URL, func(c *Config) { c.MaxRetryAfter = tc.maxRetryAfter; c.MaxRetries = 5 })
			_, err := c.GetUser(bg)
			require.Error(t, err)
			var qe *Error
			require.ErrorAs(t, err, &qe)
			assert.Equal(t, 1, srv.Calls(), "no retry")
			assert.Equal(t, tc.status, qe.StatusCode)
			assert.GreaterOrEqual(t, qe.RetryAfter, tc.want)
			assert.LessOrEqual(t, qe.RetryAfter, tc.want+time.Minute)
			assert.True(t, IsTransient(err))
			assert.Contains(t, err.Error(), "(retry after ")
		})
	}
}

// A Retry-After the caller's deadline cannot wait out ends the call at once
// with Quay's answer and hint, instead of sleeping into a "timed out" that
// loses both.
func TestRetry_RetryAfterBeyondTheCallersDeadlineFailsAtOnce(t *testing.T) {
	for _, status := range []int{429, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			srv := newFakeQuay(t, reply(status, "text/plain", "slow down", "Retry-After", "10"))
			ctx, cancel := context.WithTimeout(bg, 5*time.Second)
			defer cancel()
			_, err := newTestClient(t, srv.URL).GetUser(ctx)
			require.Error(t, err)
			var qe *Error
			require.ErrorAs(t, err, &qe)
			assert.Equal(t, status, qe.StatusCode)
			assert.Equal(t, 10*time.Second, qe.RetryAfter)
			assert.NoError(t, ctx.Err(), "answered before the deadline")
			assert.Equal(t, 1, srv.Calls())
		})
	}

	// A hint the deadline leaves room for is waited out.
	srv := newFakeQuay(t, sequence(reply(429, "text/plain", "slow down", "Retry-After", "0"), jsonReply(200, `{"username":"quayadmin"}`)))
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	_, err := newTestClient(t, srv.URL).GetUser(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, srv.Calls())
}

// A Retry-After too large for a time.Duration (a broken proxy, a bogus
// header) is a very long wait, not an overflow into a negative one that
// would retry at once.
func TestRetry_EnormousRetryAfterFailsAtOnce(t *testing.T) {
	for _, v := range []string{"9300000000", "99999999999999", "99999999999999999999999"} {
		t.Run(v, func(t *testing.T) {
			srv := newFakeQuay(t, reply(429, "text/plain", "slow down", "Retry-After", v))
			_, err := newTestClient(t, srv.URL).CreateApplicationToken(bg, "acme", "CID", newToken)
			require.Error(t, err)
			var qe *Error
			require.ErrorAs(t, err, &qe)
			assert.Equal(t, 1, srv.Calls(), "not retried")
			assert.Equal(t, 429, qe.StatusCode)
			assert.Greater(t, qe.RetryAfter, 24*time.Hour)
			assert.Contains(t, err.Error(), "(retry after ")
		})
	}
}

// A 502/503/504 may come after Quay acted (nginx timed out waiting for it):
// only idempotent calls retry it.
func TestRetry_GatewayErrorsOnlyForIdempotentCalls(t *testing.T) {
	for _, status := range []int{502, 503, 504} {
		for _, tc := range calls() {
			t.Run(fmt.Sprintf("%d %s", status, tc.name), func(t *testing.T) {
				srv := newFakeQuay(t, reply(status, "text/html", nginxPage(status)))
				err := tc.do(newTestClient(t, srv.URL))
				require.Error(t, err)
				assert.Equal(t, status, StatusOf(err))
				assert.True(t, IsTransient(err))
				if tc.idempotent {
					assert.Equal(t, 3, srv.Calls(), "first attempt and two retries")
				} else {
					assert.Equal(t, 1, srv.Calls(), "Quay may have acted: not retried")
				}
			})
		}
	}
}

func TestRetry_GatewayErrorThenSuccess(t *testing.T) {
	srv := newFakeQuay(t, sequence(reply(502, "text/html", nginxPage(502)), reply(504, "text/html", nginxPage(504)), jsonReply(200, `{"username":"quayadmin"}`)))
	u, err := newTestClient(t, srv.URL).GetUser(bg)
	require.NoError(t, err)
	assert.Equal(t, "quayadmin", u.Username)
	assert.Equal(t, 3, srv.Calls())
}

// When retries run out the caller sees the last answer as an *Error, not a
// generic "giving up".
func TestRetry_ExhaustionReturnsTheLastAnswer(t *testing.T) {
	var n atomic.Int32
	srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(503)
		_, _ = fmt.Fprintf(w, `{"message": "attempt %d"}`, n.Add(1))
	})
	_, err := newTestClient(t, srv.URL).GetUser(bg)
	require.Error(t, err)
	var qe *Error
	require.ErrorAs(t, err, &qe)
	assert.Equal(t, 503, qe.StatusCode)
	assert.Equal(t, "attempt 3", qe.Message)
	assert.NotContains(t, err.Error(), "giving up")

	srv = newFakeQuay(t, reply(429, "text/html", nginxPage(429)))
	_, err = newTestClient(t, srv.URL).CreateApplicationToken(bg, "acme", "CID", newToken)
	require.Error(t, err)
	assert.True(t, IsRateLimited(err))
	assert.Equal(t, 3, srv.Calls())

	srv = newFakeQuay(t, reply(429, "text/html", nginxPage(429)))
	_, err = newTestClient(t, srv.URL, func(c *Config) { c.MaxRetries = 0 }).GetUser(bg)
	require.Error(t, err)
	assert.Equal(t, 1+DefaultMaxRetries, srv.Calls(), "zero means the default")

	srv = newFakeQuay(t, reply(429, "text/html", nginxPage(429)))
	_, err = newTestClient(t, srv.URL, noRetries).GetUser(bg)
	require.Error(t, err)
	assert.Equal(t, 1, srv.Calls(), "negative disables retries")
}

func TestRetry_ClientErrorsAreNotRetried(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404, 409, 500} {
		srv := newFakeQuay(t, jsonReply(status, `{"message": "no"}`))
		_, err := newTestClient(t, srv.URL).GetUser(bg)
		require.Error(t, err)
		assert.Equal(t, 1, srv.Calls(), "%d", status)
	}
}

// A connection that was never established: Quay did not act, so every call
// retries it; in the end the error is a transient "Quay unreachable".
func TestRetry_RefusedConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	for _, tc := range calls() {
		t.Run(tc.name, func(t *testing.T) {
			rt := newCountingTransport()
			err := tc.do(newTestClient(t, "http://"+addr, func(c *Config) { c.Transport = rt }))
			require.Error(t, err)
			assert.Equal(t, 3, rt.Attempts(), "retried whatever the method")
			assert.True(t, IsTransient(err))
			assert.Zero(t, StatusOf(err))
			assert.Contains(t, err.Error(), "Quay unreachable")
			assert.Contains(t, err.Error(), "connection refused")
			var opErr *net.OpError
			assert.ErrorAs(t, err, &opErr, "the transport error is kept")
		})
	}
}

// hijack takes the connection from the server and lets write run on it
// before closing it.
func hijack(write func(*bufio.ReadWriter)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		write(buf)
		_ = buf.Flush()
	}
}

// A connection dropped after the request went out, before or in the middle
// of the answer: Quay may have acted, so only idempotent calls retry.
func TestRetry_DroppedConnection(t *testing.T) {
	drops := map[string]http.HandlerFunc{
		"before the answer": hijack(func(*bufio.ReadWriter) {}),
		"mid-headers": hijack(func(b *bufio.ReadWriter) {
			_, _ = b.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
		}),
	}
	for dropName, drop := range drops {
		for _, tc := range calls() {
			t.Run(dropName+"/"+tc.name, func(t *testing.T) {
				srv := newFakeQuay(t, drop)
				err := tc.do(newTestClient(t, srv.URL))
				require.Error(t, err)
				assert.True(t, IsTransient(err), "%v", err)
				assert.Zero(t, StatusOf(err))
				if tc.idempotent {
					assert.Equal(t, 3, srv.Calls(), "retried")
				} else {
					assert.Equal(t, 1, srv.Calls(), "not retried")
				}
			})
		}
	}
}

// A connection dropped after Quay's 2xx status line but before its body was
// whole: a call that decodes the body has no answer (an idempotent one tries
// again); a call that needs only the status has Quay's answer.
func TestRetry_DroppedMidBody(t *testing.T) {
	drop := hijack(func(b *bufio.ReadWriter) {
		_, _ = b.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"name\": \"acme+ci\", \"tok")
	})
	for _, tc := range calls() {
		if tc.name == "POST oauth authorizeapp" {
			continue // answers with a redirect, never a 200
		}
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeQuay(t, drop)
			err := tc.do(newTestClient(t, srv.URL))
			switch {
			case strings.HasPrefix(tc.name, "DELETE"):
				// Quay answers a delete with 204 and no body; a 200 is
				// something else's answer, and no deletion.
				require.Error(t, err)
				assert.False(t, IsNotFound(err))
			case !tc.readsBody:
				require.NoError(t, err, "Quay said 200: it acted")
				assert.Equal(t, 1, srv.Calls())
			case tc.idempotent:
				require.Error(t, err)
				assert.True(t, IsTransient(err))
				assert.Contains(t, err.Error(), "dropped mid-answer")
				assert.Equal(t, 3, srv.Calls(), "retried")
			default:
				require.Error(t, err)
				assert.True(t, IsTransient(err))
				assert.Contains(t, err.Error(), "dropped mid-answer")
				assert.Equal(t, 1, srv.Calls(), "not retried: Quay acted and the answer is lost")
			}
		})
	}
}

func TestRetry_DroppedConnectionThenSuccess(t *testing.T) {
	srv := newFakeQuay(t, sequence(
		hijack(func(b *bufio.ReadWriter) {
			_, _ = b.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"robots\": [")
		}),
		jsonReply(200, `{"robots":[{"name":"acme+ci"}]}`)))
	robots, err := newTestClient(t, srv.URL).ListRobots(bg, acme, ListRobotsOptions{})
	require.NoError(t, err)
	require.Len(t, robots, 1)
	assert.Equal(t, "acme+ci", robots[0].Name)
	assert.Equal(t, 2, srv.Calls())
}

// Cancelling the caller's context stops the call, whether it happens during
// an attempt or during the wait before the next one.
func TestRetry_CancellationStopsRetries(t *testing.T) {
	t.Run("during an attempt", func(t *testing.T) {
		ctx, cancel := context.WithCancel(bg)
		defer cancel()
		srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
			cancel()
			w.WriteHeader(503)
		})
		_, err := newTestClient(t, srv.URL).GetUser(ctx)
		require.Error(t, err)
		assert.ErrorIs(t, err, context.Canceled)
		assert.False(t, IsTransient(err), "the caller gave up; nothing to retry")
		assert.Equal(t, 1, srv.Calls())
	})
	t.Run("during the backoff", func(t *testing.T) {
		ctx, cancel := context.WithCancel(bg)
		defer cancel()
		answered := make(chan struct{}, 1)
		srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(503)
			answered <- struct{}{}
		})
		c := newTestClient(t, srv.URL, func(c *Config) { c.RetryWaitMin, c.RetryWaitMax = time.Hour, time.Hour })
		done := make(chan error, 1)
		go func() { _, err := c.GetUser(ctx); done <- err }()
		<-answered
		cancel()
		err := <-done
		require.Error(t, err)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, 1, srv.Calls())
	})
}

// closeTracker is a response body that records whether it was closed.
type closeTracker struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeTracker) Close() error { c.closed.Store(true); return nil }

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A response that arrives as the caller cancels is still closed: a leaked
// body would pin a connection.
func TestRetry_ResponseBodyClosedWhenTheCallerCancels(t *testing.T) {
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	body := &closeTracker{Reader: strings.NewReader(`{"username":"quayadmin"}`)}
	c := newTestClient(t, "http://quay.invalid", func(c *Config) {
		c.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			cancel()
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: body, Request: r}, nil
		})
	})
	_, err := c.GetUser(ctx)
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled))
	assert.True(t, body.closed.Load())
}

// A retried attempt is not an error of the plugin: the retry loop's lines go
// to Debug and Trace, so a logger at Vault's default Info level stays quiet
// however a call fails.
// At debug the client logs one line per call (Quay's operation nickname,
// status or error, attempts, duration) and one per retry; nothing at info,
// and never at warn or error: a retried attempt is not the engine's failure.
func TestRetry_LogsBelowInfo(t *testing.T) {
	for _, level := range []hclog.Level{hclog.Info, hclog.Debug, hclog.Trace} {
		t.Run(level.String(), func(t *testing.T) {
			var logs bytes.Buffer
			srv := newFakeQuay(t, hijack(func(*bufio.ReadWriter) {}))
			c := newTestClient(t, srv.URL, func(c *Config) {
				c.Logger = hclog.New(&hclog.LoggerOptions{Level: level, Output: &logs})
			})
			_, err := c.GetUser(bg)
			require.Error(t, err)
			assert.Equal(t, 3, srv.Calls())
			if level == hclog.Info {
				assert.Empty(t, logs.String())
				return
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			require.Len(t, lines, 3, "two retries and the call: %s", logs.String())
			assert.Contains(t, lines[0], "[DEBUG] quay call will be retried: route=getLoggedInUser attempt=1 error=EOF")
			assert.Contains(t, lines[1], "attempt=2")
			assert.Contains(t, lines[2], `[DEBUG] quay call: route=getLoggedInUser method=GET path=/api/v1/user/ error="Quay unreachable: EOF" attempts=3 duration=`)
		})
	}
}

// A successful call is one debug line with its status.
func TestLogs_OneLinePerCall(t *testing.T) {
	var logs bytes.Buffer
	srv := newFakeQuay(t, sequence(jsonReply(503, `{"message":"read-only"}`), reply(204, "", "")))
	c := newTestClient(t, srv.URL, func(c *Config) {
		c.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: &logs})
	})
	require.NoError(t, c.DeleteRobot(bg, acme, "ci"))
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 2, logs.String())
	assert.Contains(t, lines[0], "quay call will be retried: route=deleteOrgRobot attempt=1 status=503")
	assert.Contains(t, lines[1], "quay call: route=deleteOrgRobot method=DELETE path=/api/v1/organization/acme/robots/ci status=204 attempts=2")
	assertNoSecretIn(t, logs.String(), secretToken)
}
