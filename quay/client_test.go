package quay

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAuth_BearerOnAPICalls(t *testing.T) {
	srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		jsonReply(200, `{"username":"quayadmin"}`)(w, r)
	})
	c := newTestClient(t, srv.URL)

	u, err := c.GetUser(bg)
	require.NoError(t, err)
	assert.Equal(t, "quayadmin", u.Username)
	assert.Equal(t, "Bearer "+secretToken, srv.Last(t).Auth)

	require.NoError(t, c.DeleteRobot(bg, acme, "ci"))
	assert.Equal(t, "Bearer "+secretToken, srv.Last(t).Auth, "mutations too: Quay skips CSRF only for a Bearer token")
}

func TestAuth_SendsJSONAndAUserAgent(t *testing.T) {
	var ua, accept atomic.Value
	srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
		ua.Store(r.Header.Get("User-Agent"))
		accept.Store(r.Header.Get("Accept"))
		_, _ = io.WriteString(w, `{}`)
	})
	_, err := newTestClient(t, srv.URL).GetUser(bg)
	require.NoError(t, err)
	assert.Equal(t, "vault-plugin-secrets-quay", ua.Load())
	assert.Equal(t, "application/json", accept.Load())

	_, err = newTestClient(t, srv.URL, func(c *Config) { c.UserAgent = "vault/1.2" }).GetUser(bg)
	require.NoError(t, err)
	assert.Equal(t, "vault/1.2", ua.Load())
}

func TestAuth_CredentialIsAskedPerRequest(t *testing.T) {
	srv := newFakeQuay(t, jsonReply(200, completeObject))
	var n atomic.Int32
	rotating := credentialFunc(func(context.Context) (string, error) {
		return []string{"first", "second", "third"}[n.Add(1)-1], nil
	})
	c := newTestClient(t, srv.URL, func(c *Config) { c.Credential = rotating })
	_, err := c.GetUser(bg)
	require.NoError(t, err)
	_, err = c.ListRobots(bg, acme, ListRobotsOptions{})
	require.NoError(t, err)
	_, err = c.CreateApplicationToken(bg, "acme", "CID", newToken)
	require.NoError(t, err)

	var auths []string
	for _, r := range srv.Requests() {
		auths = append(auths, r.Auth)
	}
	assert.Equal(t, []string{"Bearer first", "Bearer second", "Bearer third"}, auths, "a refreshed token is used at once")
}

func TestAuth_CredentialFailureSendsNothing(t *testing.T) {
	srv := newFakeQuay(t, jsonReply(200, `{}`))
	idpDown := errors.New("identity provider unreachable")
	c := newTestClient(t, srv.URL, func(c *Config) {
		c.Credential = credentialFunc(func(context.Context) (string, error) { return "", idpDown })
	})
	_, err := c.GetUser(bg)
	require.Error(t, err)
	assert.ErrorIs(t, err, idpDown)
	assert.True(t, IsTransient(err), "the next call may get a token")
	assert.Contains(t, err.Error(), "identity provider unreachable")
	assert.Zero(t, srv.Calls())
}

func TestAuth_NoCredential(t *testing.T) {
	srv := newFakeQuay(t, jsonReply(200, `{"username":"first","access_token":"ABCDEFGHIJ0123456789ABCDEFGHIJ0123456789"}`))
	c := newTestClient(t, srv.URL, func(c *Config) { c.Credential = nil })

	_, err := c.GetUser(bg)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrNoCredential)
	assert.Zero(t, srv.Calls(), "nothing is sent without a credential")

	resp, err := c.InitializeUser(bg, InitializeUserRequest{Username: "first", Password: secretPassword, Email: "f@example.com", AccessToken: true})
	require.NoError(t, err, "initialization needs no credential")
	assert.Equal(t, "first", resp.Username)
	assert.Len(t, resp.AccessToken, 40)
}

func TestAuth_InitializeUserIsAnonymous(t *testing.T) {
	srv := newFakeQuay(t, jsonReply(200, `{"username":"first","email":"f@example.com","encrypted_password":"ENC","access_token":"ABCDEFGHIJ0123456789ABCDEFGHIJ0123456789"}`))
	c := newTestClient(t, srv.URL)
	resp, err := c.InitializeUser(bg, InitializeUserRequest{Username: "first", Password: secretPassword, Email: "f@example.com", AccessToken: true})
	require.NoError(t, err)
	assert.Equal(t, &InitializeUserResponse{Username: "first", Email: "f@example.com", EncryptedPassword: "ENC", AccessToken: "ABCDEFGHIJ0123456789ABCDEFGHIJ0123456789"}, resp)

	got := srv.Last(t)
	assert.Empty(t, got.Auth, "no Authorization header, even with a credential configured")
	assert.Equal(t, "POST /api/v1/user/initialize", got.Method+" "+got.Path)
	assert.Equal(t, "application/json", got.ContentType)
	assert.JSONEq(t, `{"username":"first","password":"`+secretPassword+`","email":"f@example.com","access_token":true}`, got.Body)
}

func TestAuth_BasicOnlyForAuthorizeApp(t *testing.T) {
	var user, pass atomic.Value
	srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		assert.True(t, ok)
		user.Store(u)
		pass.Store(p)
		w.Header().Set("Location", "http://quay/oauth/localapp#access_token=TOKEN&token_type=Bearer&expires_in=315576000")
		w.WriteHeader(http.StatusFound)
	})
	c := newTestClient(t, srv.URL)
	_, err := c.AuthorizeApp(bg, DirectOAuthRequest{Username: "svc", Password: secretPassword, ClientID: "CID", RedirectURI: "http://quay/oauth/localapp"})
	require.NoError(t, err)
	assert.Equal(t, "svc", user.Load())
	assert.Equal(t, secretPassword, pass.Load())
	assert.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("svc:"+secretPassword)), srv.Last(t).Auth, "Basic replaces the Bearer credential")
}

// A client from WithCredential authenticates with its own credential but
// reuses the original's connections.
func TestWithCredential_SharesThePool(t *testing.T) {
	var conns atomic.Int32
	var mu sync.Mutex
	var auths []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = io.WriteString(w, `{"username":"quayadmin"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c := newTestClient(t, srv.URL)
	other := c.WithCredential(StaticToken("other-token"))
	for range 2 {
		_, err := c.GetUser(bg)
		require.NoError(t, err)
		_, err = other.GetUser(bg)
		require.NoError(t, err)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"Bearer " + secretToken, "Bearer other-token", "Bearer " + secretToken, "Bearer other-token"}, auths)
	assert.EqualValues(t, 1, conns.Load(), "both clients share one keep-alive connection")
	assert.Equal(t, c.BaseURL(), other.BaseURL())
}

func TestNew_NormalizesTheBaseURL(t *testing.T) {
	srv := newFakeQuay(t, jsonReply(200, `{}`))
	c := newTestClient(t, "  "+srv.URL+"/quay/?x=1#frag  ")
	assert.Equal(t, srv.URL+"/quay", c.BaseURL(), "trailing slash, query and fragment dropped; path prefix kept")
	_, err := c.GetUser(bg)
	require.NoError(t, err)
	got := srv.Last(t)
	assert.Equal(t, "/quay/api/v1/user/", got.Path)
	assert.Empty(t, got.Query)
}

func TestNew_RejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"empty", Config{BaseURL: "  "}, "url is empty"},
		{"no scheme", Config{BaseURL: "quay.example.com"}, "must start with https:// or http://"},
		{"other scheme", Config{BaseURL: "ftp://quay.example.com"}, "must start with https:// or http://"},
		{"no host", Config{BaseURL: "https:///api"}, "has no host"},
		{"unparseable", Config{BaseURL: "https://quay.example.com:port/"}, "not a valid URL"},
		{"credentials", Config{BaseURL: "https://admin:" + secretPassword + "@quay.example.com"}, "must not carry credentials"},
		{"credentials and bad scheme", Config{BaseURL: "ftp://admin:" + secretPassword + "@quay.example.com"}, ""},
		{"credentials and bad port", Config{BaseURL: "https://admin:" + secretPassword + "@quay.example.com:port"}, ""},
		{"credentials without scheme", Config{BaseURL: "admin:" + secretPassword + "@quay.example.com"}, ""},
		{"CA bundle without a certificate", Config{BaseURL: "https://quay.example.com", CACertificate: "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"}, "ca_certificate holds no valid PEM certificate"},
		{"CA bundle that is not PEM", Config{BaseURL: "https://quay.example.com", CACertificate: "hello"}, "ca_certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), tc.want)
			assertNoSecretIn(t, err.Error(), secretPassword)
		})
	}
}

func TestTLS(t *testing.T) {
	var handshakes atomic.Int32
	srv := httptest.NewUnstartedServer(jsonReply(200, `{"username":"quayadmin"}`))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			handshakes.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the rejected handshakes
	srv.StartTLS()
	defer srv.Close()
	serverPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))

	t.Run("verified by default", func(t *testing.T) {
		handshakes.Store(0)
		_, err := newTestClient(t, srv.URL).GetUser(bg)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "certificate not trusted")
		assert.Contains(t, err.Error(), "ca_certificate", "the error says how to fix it")
		assert.False(t, IsTransient(err), "a certificate problem does not heal by retrying")
		assert.Zero(t, StatusOf(err))
		assert.EqualValues(t, 1, handshakes.Load(), "not retried")
	})
	t.Run("a CA bundle of another authority", func(t *testing.T) {
		handshakes.Store(0)
		_, err := newTestClient(t, srv.URL, func(c *Config) { c.CACertificate = selfSignedPEM(t) }).GetUser(bg)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "certificate not trusted", "the bundle replaces the system roots")
		assert.EqualValues(t, 1, handshakes.Load(), "not retried")
	})
	t.Run("trusted through CACertificate", func(t *testing.T) {
		u, err := newTestClient(t, srv.URL, func(c *Config) { c.CACertificate = serverPEM }).GetUser(bg)
		require.NoError(t, err)
		assert.Equal(t, "quayadmin", u.Username)
	})
	t.Run("InsecureSkipVerify", func(t *testing.T) {
		u, err := newTestClient(t, srv.URL, func(c *Config) { c.InsecureSkipVerify = true }).GetUser(bg)
		require.NoError(t, err)
		assert.Equal(t, "quayadmin", u.Username)
	})
}

// Quay's nginx allows ten times the request rate over HTTP/2
// (conf/nginx/rate-limiting.conf.jnj, the *_http2 zones): with its own TLS
// settings the client must still offer h2.
func TestTLS_SpeaksHTTP2(t *testing.T) {
	var proto atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(r.Proto)
		jsonReply(200, `{"username":"quayadmin"}`)(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	serverPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))

	for name, opt := range map[string]func(*Config){
		"CACertificate":      func(c *Config) { c.CACertificate = serverPEM },
		"InsecureSkipVerify": func(c *Config) { c.InsecureSkipVerify = true },
	} {
		t.Run(name, func(t *testing.T) {
			proto.Store("")
			u, err := newTestClient(t, srv.URL, opt).GetUser(bg)
			require.NoError(t, err)
			assert.Equal(t, "quayadmin", u.Username)
			assert.Equal(t, "HTTP/2.0", proto.Load())
		})
	}
}

// One client serves many concurrent Vault requests, some through clients
// from WithCredential; each call carries its own credential and gets its
// own answer (run with -race).
func TestClient_ConcurrentCalls(t *testing.T) {
	srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
		who := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		jsonReply(200, `{"username": "`+who+`"}`)(w, r)
	})
	c := newTestClient(t, srv.URL)
	const workers, rounds = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client, want := c, secretToken
			if i%2 == 1 {
				want = "worker-" + strconv.Itoa(i)
				client = c.WithCredential(StaticToken(want))
			}
			for range rounds {
				u, err := client.GetUser(bg)
				if err == nil && u.Username != want {
					err = fmt.Errorf("worker %d got the answer for %q", i, u.Username)
				}
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, workers*rounds, srv.Calls())
}

func TestRequestTimeout_IsPerAttempt(t *testing.T) {
	assertTimesOutPerAttempt(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // Quay never answers; the client gives up
	})
}

// Quay sends its status line and part of the body, then stalls: the
// per-attempt timeout covers reading the answer too.
func TestRequestTimeout_CoversTheBody(t *testing.T) {
	assertTimesOutPerAttempt(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"username": "quay`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
}

// assertTimesOutPerAttempt runs a GET and a POST against a Quay that stalls
// as stall does: each attempt times out; only the idempotent GET tries
// again, since Quay may already have acted on the POST.
func assertTimesOutPerAttempt(t *testing.T, stall http.HandlerFunc) {
	t.Helper()
	srv := newFakeQuay(t, stall)
	for _, tc := range []struct {
		name     string
		call     func(*Client) error
		attempts int
	}{
		{"GET is retried", func(c *Client) error { _, err := c.GetUser(bg); return err }, 3},
		{"POST is not: Quay may have acted", func(c *Client) error {
			_, err := c.CreateApplicationToken(bg, "acme", "CID", newToken)
			return err
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newCountingTransport()
			c := newTestClient(t, srv.URL, func(c *Config) { c.RequestTimeout = 50 * time.Millisecond; c.Transport = rt })
			err := tc.call(c)
			require.Error(t, err)
			var qe *Error
			require.ErrorAs(t, err, &qe)
			assert.True(t, IsTransient(err))
			assert.Contains(t, err.Error(), "timed out")
			assert.Equal(t, tc.attempts, rt.Attempts())
		})
	}
}

func TestCallerDeadline_IsATransientTimeout(t *testing.T) {
	srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	_, err := newTestClient(t, srv.URL).GetUser(ctx)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, IsTransient(err))
	assert.Contains(t, err.Error(), "timed out")
}

func TestClose_KeepsTheClientUsable(t *testing.T) {
	srv := newFakeQuay(t, jsonReply(200, `{}`))
	c := newTestClient(t, srv.URL)
	_, err := c.GetUser(bg)
	require.NoError(t, err)
	c.Close()
	_, err = c.GetUser(bg)
	require.NoError(t, err, "Close only drops idle connections")
	assert.Equal(t, 2, srv.Calls())
}

func TestDo_UndecodableSuccessIsAnError(t *testing.T) {
	srv := newFakeQuay(t, reply(200, "text/html", "<html><body>Log in</body></html>"))
	_, err := newTestClient(t, srv.URL).GetUser(bg)
	require.Error(t, err)
	var qe *Error
	require.ErrorAs(t, err, &qe)
	assert.Equal(t, 200, qe.StatusCode)
	assert.Contains(t, err.Error(), "unexpected response body")
	assert.False(t, IsTransient(err))
	assert.False(t, strings.Contains(err.Error(), "Log in"), "the body is not echoed")
}

// selfSignedPEM returns a CA certificate that signed nothing the tests serve.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// swappable is a ReplaceableCredential the test replaces between calls.
type swappable struct{ token atomic.Value }

func (s *swappable) BearerToken(context.Context) (string, error) { return s.token.Load().(string), nil }
func (s *swappable) Replaced(_ context.Context, token string) bool {
	return s.token.Load().(string) != token
}

// A call in flight when the engine rotated its root token reaches Quay
// with the old one, which Quay rejects (401, or the CSRF 403 for a
// mutation) before acting. The call is sent once more with the current
// token, so requests in flight survive a rotate-root; a credential not
// replaced, or one that cannot be, is not retried.
func TestAuth_ACallRefusedForAReplacedCredentialIsSentAgain(t *testing.T) {
	const oldToken, newToken = "OLDOLDOLDOLDOLDOLDOLDOLDOLDOLDOLDOLDOLD0", "NEWNEWNEWNEWNEWNEWNEWNEWNEWNEWNEWNEWNEW0"
	acme := Namespace{Kind: NamespaceOrganization, Name: "acme"}
	for name, refusal := range map[string]http.HandlerFunc{
		"401 invalid_token": jsonReply(401, apiException(401, "invalid_token", "Invalid token")),
		"403 CSRF":          reply(403, "text/html; charset=utf-8", `{"error": "CSRF token was invalid or missing."}`),
	} {
		t.Run(name, func(t *testing.T) {
			cred := &swappable{}
			cred.token.Store(oldToken)
			var keep atomic.Bool
			srv := newFakeQuay(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") == "Bearer "+oldToken {
					if !keep.Load() {
						cred.token.Store(newToken) // rotated while the call was on its way
					}
					refusal(w, r)
					return
				}
				jsonReply(201, `{"name": "acme+ci", "token": "ROBOTTOKEN0000000000000000000000000000000000000000000000000000000"}`)(w, r)
			})
			c := newTestClient(t, srv.URL, func(cfg *Config) { cfg.Credential = cred })
			_, err := c.CreateRobot(bg, acme, "ci", RobotSpec{})
			require.NoError(t, err)
			reqs := srv.Requests()
			require.Len(t, reqs, 2)
			assert.Equal(t, "Bearer "+oldToken, reqs[0].Auth)
			assert.Equal(t, "Bearer "+newToken, reqs[1].Auth)

			// Not replaced: Quay's refusal stands, sent once.
			cred.token.Store(oldToken)
			keep.Store(true)
			_, err = c.CreateRobot(bg, acme, "ci", RobotSpec{})
			require.Error(t, err)
			assert.True(t, IsTokenRejected(err))
			assert.Len(t, srv.Requests(), 3)

			// A credential that cannot be replaced: sent once.
			static := newTestClient(t, srv.URL, func(cfg *Config) { cfg.Credential = StaticToken(oldToken) })
			_, err = static.CreateRobot(bg, acme, "ci", RobotSpec{})
			require.Error(t, err)
			assert.Len(t, srv.Requests(), 4)
		})
	}
}
