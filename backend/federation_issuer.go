package backend

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/hashicorp/vault/sdk/logical"
)

// The engine as an OIDC issuer for Quay's robot identity federation: a
// robot that trusts this mount's issuer and a subject accepts a JWT the
// engine signs, and Quay exchanges it for a robot token that Quay itself
// expires within the hour (Quay's util/security/federated_robot_auth.py).
//
// Quay's side, which shapes this one (Quay 3.18, checked against its
// source and a running instance):
//   - it reads <iss>/.well-known/openid-configuration over HTTPS only,
//     with TLS verification, on every exchange (oauth/oidc.py
//     _load_oidc_config_via_discovery; no cache across requests), and the
//     keys from the document's jwks_uri;
//   - the token's iss must equal the robot's configured issuer exactly,
//     and the document's issuer up to a trailing slash;
//   - RS256 or RS384, the kid must be published (an unknown kid is a 500),
//     iat and exp are required, 30 s of clock skew are allowed, and an iat
//     in the future is refused;
//   - sub must be a configured subject; aud is not checked (3.18 stores no
//     audiences), nbf is not checked.

const (
	// federationConfigStoragePath holds the issuer settings (no secret).
	federationConfigStoragePath = "config/federation"
	// federationKeysStoragePath holds the signing keys, private halves
	// included; it is seal-wrapped (see backend.go).
	federationKeysStoragePath = "federation/keys"

	defaultFederationTokenTTL = 5 * time.Minute
	minFederationTokenTTL     = 30 * time.Second
	// maxFederationTokenTTL bounds the JWTs, and so how long a retired key
	// must stay published: the engine exchanges a JWT right after minting
	// it, so minutes are plenty.
	maxFederationTokenTTL = 15 * time.Minute
	// quayClockSkew is Quay's JWT_CLOCK_SKEW_SECONDS (oauth/oidc.py): Quay
	// still accepts a token this long after its exp.
	quayClockSkew = 30 * time.Second

	defaultFederationKeyRotation = 24 * time.Hour
	federationKeyBits            = 2048
)

// federationAlgorithms are the algorithms Quay accepts
// (oauth/oidc.py ALLOWED_ALGORITHMS), with RSA keys only.
var federationAlgorithms = []string{string(jose.RS256), string(jose.RS384)}

// errFederationNotConfigured: a path needs the issuer but config/federation
// is unset. A 400: writing it is the operator's fix.
var errFederationNotConfigured = logical.CodedError(http.StatusBadRequest, `robot federation is not configured: write "config/federation" first`)

// errFederationNoKey: the issuer is configured but its key entry is gone.
var errFederationNoKey = logical.CodedError(http.StatusBadRequest, `robot federation has no signing key: write "config/federation/rotate-key"`)

// federationConfig is the stored issuer configuration.
type federationConfig struct {
	// Issuer is the URL Quay reaches this mount at, e.g.
	// https://vault.example.com/v1/quay: the iss of every token, and the
	// base of the discovery document. Stored without a trailing slash.
	Issuer string `json:"federation_issuer"`
	// Audience is the aud of tokens; empty means Quay's URL.
	Audience          string        `json:"audience,omitempty"`
	TokenTTL          time.Duration `json:"token_ttl"`
	KeyRotationPeriod time.Duration `json:"key_rotation_period"`
	SigningAlgorithm  string        `json:"signing_algorithm"`
}

func (c *federationConfig) jwksURI() string { return c.Issuer + "/.well-known/keys" }

// federationKeyRing is the signing key in use and the retired keys still
// published. One storage entry, so a rotation is atomic.
type federationKeyRing struct {
	Current federationSigningKey   `json:"current"`
	Retired []retiredFederationKey `json:"retired,omitempty"`
}

type federationSigningKey struct {
	// Key is the private JWK (KeyID and Algorithm set).
	Key       jose.JSONWebKey `json:"key"`
	CreatedAt time.Time       `json:"created_at"`
}

// retiredFederationKey is a former signing key's public half, published
// until every token it signed has expired in Quay's eyes.
type retiredFederationKey struct {
	Key      jose.JSONWebKey `json:"key"`
	NotAfter time.Time       `json:"not_after"`
}

// federationIssuer is the mount's in-memory issuer state: a lock that
// serialises key changes (config writes, rotations; never the minting) and
// the parsed signer of the current key.
type federationIssuer struct {
	keys   sync.Mutex
	signer atomic.Pointer[cachedFederationSigner]
}

// cachedFederationSigner is the signer of a key ring, with the ring's
// stored bytes: while they are unchanged, minting decodes no private key
// (decoding and checking one costs about as much as a signature).
type cachedFederationSigner struct {
	stored []byte
	kid    string
	signer jose.Signer
}

func getFederationConfig(ctx context.Context, s logical.Storage) (*federationConfig, error) {
	return getJSON[federationConfig](ctx, s, federationConfigStoragePath, "robot federation config")
}

func getFederationKeys(ctx context.Context, s logical.Storage) (*federationKeyRing, error) {
	return getJSON[federationKeyRing](ctx, s, federationKeysStoragePath, "robot federation keys")
}

// newFederationSigningKey generates an RSA key for alg.
func newFederationSigningKey(alg string, now time.Time) (federationSigningKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, federationKeyBits)
	if err != nil {
		return federationSigningKey{}, fmt.Errorf("generating a signing key: %w", err)
	}
	return federationSigningKey{
		Key:       jose.JSONWebKey{Key: priv, KeyID: randomHex(16), Algorithm: alg, Use: "sig"},
		CreatedAt: now,
	}, nil
}

// rotate makes a fresh key current and keeps the old one's public half
// published for as long as a token it signed can still be exchanged.
func (r *federationKeyRing) rotate(alg string, now time.Time) error {
	next, err := newFederationSigningKey(alg, now)
	if err != nil {
		return err
	}
	if r.Current.Key.Key != nil {
		r.Retired = append(r.Retired, retiredFederationKey{
			Key:      r.Current.Key.Public(),
			NotAfter: now.Add(maxFederationTokenTTL + quayClockSkew),
		})
	}
	r.Current = next
	return nil
}

// prune drops retired keys whose tokens have all expired; it reports
// whether anything was dropped.
func (r *federationKeyRing) prune(now time.Time) bool {
	kept := r.Retired[:0]
	for _, k := range r.Retired {
		if now.Before(k.NotAfter) {
			kept = append(kept, k)
		}
	}
	dropped := len(kept) != len(r.Retired)
	r.Retired = kept
	return dropped
}

// published is the key set Quay verifies tokens with: the current key and
// the retired ones still in their window, public halves only.
func (r *federationKeyRing) published(now time.Time) jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{r.Current.Key.Public()}}
	for _, k := range r.Retired {
		if now.Before(k.NotAfter) {
			set.Keys = append(set.Keys, k.Key)
		}
	}
	return set
}

// nextRotation is when the schedule replaces the current key.
func (r *federationKeyRing) nextRotation(cfg *federationConfig) time.Time {
	return r.Current.CreatedAt.Add(cfg.KeyRotationPeriod)
}

// rotateFederationKey replaces the signing key now (config/federation/
// rotate-key, and an algorithm change).
func (b *backend) rotateFederationKey(ctx context.Context, s logical.Storage, alg string) (*federationKeyRing, error) {
	b.federation.keys.Lock()
	defer b.federation.keys.Unlock()
	ring, err := getFederationKeys(ctx, s)
	if err != nil {
		return nil, err
	}
	if ring == nil {
		ring = &federationKeyRing{}
	}
	now := b.now()
	ring.prune(now)
	if err := ring.rotate(alg, now); err != nil {
		return nil, err
	}
	if err := putJSON(ctx, s, federationKeysStoragePath, "robot federation keys", ring); err != nil {
		return nil, err
	}
	return ring, nil
}

// rotateFederationKeyIfDue is the periodic part: a key past its rotation
// period is replaced, retired keys past their window are dropped, and a
// configuration without keys (a write interrupted between its two entries)
// gets one.
func (b *backend) rotateFederationKeyIfDue(ctx context.Context, s logical.Storage) error {
	cfg, err := getFederationConfig(ctx, s)
	if err != nil || cfg == nil {
		return err
	}
	b.federation.keys.Lock()
	defer b.federation.keys.Unlock()
	ring, err := getFederationKeys(ctx, s)
	if err != nil {
		return err
	}
	now := b.now()
	changed := false
	if ring == nil {
		ring, changed = &federationKeyRing{}, true
	}
	if ring.prune(now) {
		changed = true
	}
	if ring.Current.Key.Key == nil || due(ring.nextRotation(cfg), now) {
		if err := ring.rotate(cfg.SigningAlgorithm, now); err != nil {
			return err
		}
		changed = true
	}
	if !changed {
		return nil
	}
	return putJSON(ctx, s, federationKeysStoragePath, "robot federation keys", ring)
}

// federationToken is a minted JWT. Token is a credential: it never goes to
// a log line, an error, lease data or a response.
type federationToken struct {
	Token     string
	KeyID     string
	ExpiresAt time.Time
}

// mintFederationToken signs a short-lived JWT for subject (a robot's
// username): iss the configured issuer, aud the configured audience or
// defaultAudience (Quay's URL), iat, nbf, exp, a random jti. It reads
// storage only; no lock is taken.
func (b *backend) mintFederationToken(ctx context.Context, s logical.Storage, subject, defaultAudience string) (*federationToken, error) {
	cfg, err := getFederationConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, errFederationNotConfigured
	}
	signer, err := b.federationSigner(ctx, s)
	if err != nil {
		return nil, err
	}
	audience := cfg.Audience
	if audience == "" {
		audience = defaultAudience
	}
	now := b.now()
	expires := now.Add(cfg.TokenTTL)
	token, err := jwt.Signed(signer.signer).Claims(jwt.Claims{
		Issuer:    cfg.Issuer,
		Subject:   subject,
		Audience:  jwt.Audience{audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(expires),
		ID:        randomHex(16),
	}).Serialize()
	if err != nil {
		return nil, fmt.Errorf("signing a federation token: %w", err)
	}
	return &federationToken{Token: token, KeyID: signer.kid, ExpiresAt: expires.Truncate(time.Second)}, nil
}

// federationSigner returns the signer of the stored current key.
func (b *backend) federationSigner(ctx context.Context, s logical.Storage) (*cachedFederationSigner, error) {
	entry, err := s.Get(ctx, federationKeysStoragePath)
	if err != nil {
		return nil, fmt.Errorf("reading robot federation keys: %w", err)
	}
	if entry == nil {
		return nil, errFederationNoKey
	}
	if cached := b.federation.signer.Load(); cached != nil && bytes.Equal(cached.stored, entry.Value) {
		return cached, nil
	}
	var ring federationKeyRing
	if err := entry.DecodeJSON(&ring); err != nil {
		return nil, fmt.Errorf("decoding robot federation keys: %w", err)
	}
	key := ring.Current.Key
	if key.Key == nil {
		return nil, errFederationNoKey
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("loading the federation signing key: %w", err)
	}
	cached := &cachedFederationSigner{stored: entry.Value, kid: key.KeyID, signer: signer}
	b.federation.signer.Store(cached)
	return cached, nil
}
