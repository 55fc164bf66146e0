package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/helper/testhelpers/schema"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/stretchr/testify/require"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
	"github.com/quay-vault/vault-plugin-secrets-quay/quay/emulator"
)

const (
	testAdmin    = "quayadmin"
	testPassword = "correct-horse-battery"
	testOrg      = "acme"
	testMountID  = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
)

// testEnv is one mount of the engine wired to an in-memory Quay: the
// in-process counterpart of the e2e suite's real Vault and emulator process.
type testEnv struct {
	t       testing.TB
	b       *backend
	storage logical.Storage
	quay    *emulator.Emulator
	server  *httptest.Server
	// admin is the superuser's token from Quay's first-user initialization,
	// with every scope; adminClient acts with it.
	admin       string
	adminClient *quay.Client
	// logs receives everything the backend logs.
	logs *syncBuffer
	// clock is shared by the backend and the emulator, so schedules and
	// expiries can be tested without waiting.
	clock *fakeClock
}

// fakeClock starts at the real time and moves only when told to.
type fakeClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// ownMark is the marker the engine puts on the robots it creates.
func (e *testEnv) ownMark() robotMark {
	e.t.Helper()
	cluster, err := e.b.clusterID(context.Background(), e.storage)
	require.NoError(e.t, err)
	return robotMark{mount: testMountID, cluster: cluster}
}

// advance moves the shared clock forward.
func (e *testEnv) advance(d time.Duration) { e.clock.Advance(d) }

// periodic runs the engine's periodic function once, as Vault's rollback
// manager does every minute.
func (e *testEnv) periodic() {
	e.t.Helper()
	require.NoError(e.t, e.b.periodic(context.Background(), &logical.Request{Storage: e.storage}))
}

// emulatorConfig is a Quay config.yaml for an empty registry whose first
// user is created through the API, as a zero-touch deployment would.
const emulatorConfig = `
SERVER_HOSTNAME: quay.test
SUPER_USERS: [quayadmin]
FEATURE_USER_INITIALIZE: true
FEATURE_MAILING: false
`

type envOption func(*envOptions)

type envOptions struct {
	tls             bool
	noConfig        bool
	noBootstrapUser bool
	emulatorConfig  string
	sysDefault      time.Duration
	sysMax          time.Duration
	emulatorOptions []emulator.Option
}

func withTLS() envOption       { return func(o *envOptions) { o.tls = true } }
func withoutConfig() envOption { return func(o *envOptions) { o.noConfig = true } }

// withEmulatorOptions passes options to the emulator (e.g. the CAs it trusts).
func withEmulatorOptions(opts ...emulator.Option) envOption {
	return func(o *envOptions) { o.emulatorOptions = append(o.emulatorOptions, opts...) }
}

// withEmptyQuay leaves Quay without users and the engine unconfigured, for
// bootstrap tests; cfg is the emulator's config.yaml.
func withEmptyQuay(cfg string) envOption {
	return func(o *envOptions) { o.noBootstrapUser, o.noConfig, o.emulatorConfig = true, true, cfg }
}

func newTestEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	o := envOptions{sysDefault: time.Hour, sysMax: 24 * time.Hour, emulatorConfig: emulatorConfig}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := emulator.ParseConfig([]byte(o.emulatorConfig))
	require.NoError(t, err)
	clock := &fakeClock{}
	emu, err := emulator.New(cfg, append([]emulator.Option{emulator.WithClock(clock.Now)}, o.emulatorOptions...)...)
	require.NoError(t, err)
	var srv *httptest.Server
	if o.tls {
		srv = httptest.NewTLSServer(emu)
	} else {
		srv = httptest.NewServer(emu)
	}
	t.Cleanup(srv.Close)

	env := &testEnv{t: t, quay: emu, server: srv, logs: &syncBuffer{}, clock: clock}
	env.b, env.storage = newTestBackend(t, env.logs, o.sysDefault, o.sysMax)
	env.b.now = clock.Now
	if o.noBootstrapUser {
		return env
	}

	// Bootstrap Quay the way an operator would: create the first user
	// through the API, then the organization the roles use.
	anon := env.quayClient("")
	if o.tls {
		anon = env.quayClientTLS("")
	}
	init, err := anon.InitializeUser(context.Background(), quay.InitializeUserRequest{
		Username: testAdmin, Password: testPassword, Email: "admin@example.com", AccessToken: true,
	})
	require.NoError(t, err)
	require.NotEmpty(t, init.AccessToken)
	env.admin = init.AccessToken
	env.adminClient = anon.WithCredential(quay.StaticToken(env.admin))
	require.NoError(t, env.adminClient.CreateOrganization(context.Background(), testOrg, ""))

	if !o.noConfig && !o.tls {
		env.writeConfig(map[string]any{"url": srv.URL, "token": env.admin})
	}
	return env
}

func newTestBackend(t testing.TB, logs *syncBuffer, sysDefault, sysMax time.Duration) (*backend, logical.Storage) {
	t.Helper()
	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{}
	conf.BackendUUID = testMountID
	conf.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: logs})
	conf.System = &logical.StaticSystemView{DefaultLeaseTTLVal: sysDefault, MaxLeaseTTLVal: sysMax,
		PluginEnvironment: &logical.PluginEnvironment{VaultVersion: "1.21.0"}}
	lb, err := Factory(context.Background(), conf)
	require.NoError(t, err)
	b := lb.(*backend)
	t.Cleanup(func() { b.Cleanup(context.Background()) })
	return b, conf.StorageView
}

func (e *testEnv) quayClient(token string) *quay.Client {
	e.t.Helper()
	cfg := quay.Config{BaseURL: e.server.URL, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond}
	if token != "" {
		cfg.Credential = quay.StaticToken(token)
	}
	c, err := quay.New(cfg)
	require.NoError(e.t, err)
	return c
}

func (e *testEnv) quayClientTLS(token string) *quay.Client {
	e.t.Helper()
	cfg := quay.Config{BaseURL: e.server.URL, Transport: e.server.Client().Transport}
	if token != "" {
		cfg.Credential = quay.StaticToken(token)
	}
	c, err := quay.New(cfg)
	require.NoError(e.t, err)
	return c
}

// request sends one request to the backend and fails the test on a Go error
// (not on an error response, which tests assert).
func (e *testEnv) request(op logical.Operation, path string, data map[string]any) *logical.Response {
	e.t.Helper()
	resp, err := e.requestErr(op, path, data)
	if err != nil {
		// Coded errors (e.g. 502 from Quay failures) are part of the
		// behaviour tests assert; return them as a response.
		return logical.ErrorResponse(err.Error())
	}
	return resp
}

// requestErr is request for callers that assert the Go error itself.
func (e *testEnv) requestErr(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	e.t.Helper()
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: op, Path: path, Data: data, Storage: e.storage, MountPoint: "quay/",
	})
	if answered := errorAnswer(resp); answered != nil {
		return nil, answered
	}
	if t, ok := e.t.(*testing.T); ok && err == nil && resp != nil && !failed(resp) {
		// Every answer matches what its operation declares (OpenAPI).
		schema.ValidateResponse(t, schema.GetResponseSchema(t, e.b.Route(path), op), resp, true)
	}
	return resp, err
}

// errorAnswer is what a Vault client sees of the engine's error answers
// (answerErrors): an error with the answer's status and message.
func errorAnswer(resp *logical.Response) error {
	if resp == nil || resp.Data == nil {
		return nil
	}
	status, ok := resp.Data[logical.HTTPStatusCode].(int)
	if !ok || status < 400 {
		return nil
	}
	var body struct {
		Errors []string `json:"errors"`
	}
	var raw string
	switch body := resp.Data[logical.HTTPRawBody].(type) {
	case string:
		raw = body
	case []byte:
		raw = string(body)
	}
	if err := json.Unmarshal([]byte(raw), &body); err != nil || len(body.Errors) != 1 {
		return fmt.Errorf("malformed error answer %d: %q", status, raw)
	}
	return logical.CodedError(status, body.Errors[0])
}

func (e *testEnv) mustOK(op logical.Operation, path string, data map[string]any) *logical.Response {
	e.t.Helper()
	resp, err := e.requestErr(op, path, data)
	require.NoError(e.t, err, "%s %s", op, path)
	if resp != nil && resp.IsError() {
		e.t.Fatalf("%s %s: %v", op, path, resp.Error())
	}
	return resp
}

func (e *testEnv) writeConfig(data map[string]any) *logical.Response {
	e.t.Helper()
	return e.mustOK(logical.UpdateOperation, "config", data)
}

func (e *testEnv) writeOAuthRole(name string, extra map[string]any) {
	e.t.Helper()
	data := map[string]any{
		"credential_type": "oauth_token",
		"namespace_name":  testOrg,
		"scopes":          "repo:read,user:read",
		"ttl":             "1h",
		"max_ttl":         "2h",
	}
	for k, v := range extra {
		data[k] = v
	}
	e.mustOK(logical.CreateOperation, "roles/"+name, data)
}

// assertNoSecretLogged fails if any of the secrets reached the backend's log.
func (e *testEnv) assertNoSecretLogged(secrets ...string) {
	e.t.Helper()
	logged := e.logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(logged, s) {
			e.t.Fatalf("a secret (%s…) appears in the backend's log", s[:4])
		}
	}
}

// errorMessage returns the error text of a response, or "".
func errorMessage(resp *logical.Response) string {
	if resp == nil || !resp.IsError() {
		return ""
	}
	return resp.Error().Error()
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Secret-safe assertions: on failure they say what differs, never the
// secret itself, so that no test output carries a credential.

// assertSameSecret fails when got is not want.
func assertSameSecret(t testing.TB, want, got any, what string) {
	t.Helper()
	if want != got {
		t.Errorf("%s: the secrets differ (values not shown)", what)
	}
}

// assertDifferentSecret fails when got is want.
func assertDifferentSecret(t testing.TB, old, got any, what string) {
	t.Helper()
	if old == got {
		t.Errorf("%s: the secret did not change (value not shown)", what)
	}
}

// assertNoKey fails when data has key, naming the keys only (never a value).
func assertNoKey(t testing.TB, data map[string]any, key string) {
	t.Helper()
	if _, ok := data[key]; ok {
		t.Errorf("the answer has a %q field", key)
	}
}

// assertNoSecretIn fails when any secret appears in text.
func assertNoSecretIn(t testing.TB, text string, what string, secrets ...string) {
	t.Helper()
	for i, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s: secret #%d (%d characters) appears in it (not shown)", what, i+1, len(s))
		}
	}
}

// failed reports an answer a Vault client sees as an error: an error
// response (400) or one of the engine's error answers (answerErrors).
func failed(resp *logical.Response) bool {
	return resp != nil && (resp.IsError() || errorAnswer(resp) != nil)
}
