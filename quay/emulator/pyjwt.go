package emulator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// pyjwtDecode decodes a JWT the way Quay's util/security/jwtutil.decode
// (PyJWT 2.13 underneath) does, so that every refusal carries the message
// Quay shows in its 401 bodies: the segments, the alg against the allowed
// list ("The specified alg value is not allowed"), the signature ("Signature
// verification failed"), the payload, then the claims in PyJWT's order
// (required, iat, nbf, exp, iss, aud). The wording was checked against
// PyJWT's source (jwt/api_jws.py, jwt/api_jwt.py, jwt/exceptions.py at
// 2.12.x; Quay pins 2.13.0).
//
// golang-jwt is used only for the signature primitive: its own claim checks
// differ from PyJWT's (order, messages, leeway on iat).
type pyjwtOptions struct {
	algorithms []string
	// key verifies the signature; nil skips the signature (and then, as in
	// PyJWT, every claim check but require).
	key any
	// require lists claims that must be present and not null.
	require   []string
	verifyNbf bool
	leeway    time.Duration
	now       time.Time
	// issuer, when set, must equal iss.
	issuer *string
	// audiences, when non-nil, must share a member with aud; when nil, a
	// token carrying an aud is refused ("Invalid audience"), as PyJWT does.
	audiences []string
	// skipAudience disables the aud check (verify_aud False).
	skipAudience bool
	// expMaxSeconds is _StrictJWT's exp_max_s (0: none).
	expMaxSeconds int
}

// pyjwtError is a PyJWT exception: msg is str(exception).
type pyjwtError struct{ msg string }

func (e *pyjwtError) Error() string { return e.msg }

func pyErr(format string, args ...any) error { return &pyjwtError{fmt.Sprintf(format, args...)} }

// jwtSegments is PyJWS._load: three base64url segments, a JSON object header.
func jwtSegments(raw string) (header map[string]any, payload []byte, signingInput string, sig []byte, err error) {
	dot := strings.LastIndex(raw, ".")
	if dot < 0 {
		return nil, nil, "", nil, pyErr("Not enough segments")
	}
	signingInput, cryptoSegment := raw[:dot], raw[dot+1:]
	headerSegment, payloadSegment, found := strings.Cut(signingInput, ".")
	if !found {
		return nil, nil, "", nil, pyErr("Not enough segments")
	}
	headerData, err := pyB64(headerSegment)
	if err != nil {
		return nil, nil, "", nil, pyErr("Invalid header padding")
	}
	dec := json.NewDecoder(strings.NewReader(string(headerData)))
	dec.UseNumber()
	var h any
	if err := dec.Decode(&h); err != nil {
		return nil, nil, "", nil, pyErr("Invalid header string: %v", err)
	}
	header, ok := h.(map[string]any)
	if !ok {
		return nil, nil, "", nil, pyErr("Invalid header string: must be a json object")
	}
	if payload, err = pyB64(payloadSegment); err != nil {
		return nil, nil, "", nil, pyErr("Invalid payload padding")
	}
	if sig, err = pyB64(cryptoSegment); err != nil {
		return nil, nil, "", nil, pyErr("Invalid crypto padding")
	}
	return header, payload, signingInput, sig, nil
}

// pyB64 is PyJWT's base64url_decode: padding is optional.
func pyB64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// unverifiedHeader is jwt.get_unverified_header.
func unverifiedHeader(raw string) (map[string]any, error) {
	h, _, _, _, err := jwtSegments(raw)
	return h, err
}

// unverifiedClaims decodes the payload without any check (what Quay's
// get_jwt_issuer does).
func unverifiedClaims(raw string) (map[string]any, error) {
	_, payload, _, _, err := jwtSegments(raw)
	if err != nil {
		return nil, err
	}
	return decodePayload(payload)
}

func decodePayload(payload []byte) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, pyErr("Invalid payload string: %v", err)
	}
	claims, ok := v.(map[string]any)
	if !ok {
		return nil, pyErr("Invalid payload string: must be a json object")
	}
	return claims, nil
}

func pyjwtDecode(raw string, o pyjwtOptions) (map[string]any, error) {
	header, payload, signingInput, sig, err := jwtSegments(raw)
	if err != nil {
		return nil, err
	}
	verify := o.key != nil
	if verify {
		alg, present := header["alg"]
		if !present {
			return nil, pyErr("Algorithm not specified")
		}
		algName, _ := alg.(string)
		if algName == "" || !contains(o.algorithms, algName) {
			return nil, pyErr("The specified alg value is not allowed")
		}
		method := jwt.GetSigningMethod(algName)
		if method == nil {
			return nil, pyErr("Algorithm not supported")
		}
		if err := method.Verify(signingInput, sig, o.key); err != nil {
			return nil, pyErr("Signature verification failed")
		}
	}
	claims, err := decodePayload(payload)
	if err != nil {
		return nil, err
	}
	for _, c := range o.require {
		if v, ok := claims[c]; !ok || v == nil {
			return nil, pyErr("Token is missing the %q claim", c)
		}
	}
	if !verify {
		return claims, nil
	}
	now := float64(o.now.UnixNano()) / 1e9
	leeway := o.leeway.Seconds()
	if _, ok := claims["iat"]; ok {
		iat, ok := pyInt(claims["iat"])
		if !ok {
			return nil, pyErr("Issued At claim (iat) must be an integer.")
		}
		if float64(iat) > now+leeway {
			return nil, pyErr("The token is not yet valid (iat)")
		}
	}
	if _, ok := claims["nbf"]; ok && o.verifyNbf {
		nbf, ok := pyInt(claims["nbf"])
		if !ok {
			return nil, pyErr("Not Before claim (nbf) must be an integer.")
		}
		if float64(nbf) > now+leeway {
			return nil, pyErr("The token is not yet valid (nbf)")
		}
	}
	if _, ok := claims["exp"]; ok {
		exp, ok := pyInt(claims["exp"])
		if !ok {
			return nil, pyErr("Expiration Time claim (exp) must be an integer.")
		}
		if float64(exp) <= now-leeway {
			return nil, pyErr("Signature has expired")
		}
	}
	if o.issuer != nil {
		iss, present := claims["iss"]
		if !present {
			return nil, pyErr("Token is missing the %q claim", "iss")
		}
		s, ok := iss.(string)
		if !ok {
			return nil, pyErr("Payload Issuer (iss) must be a string")
		}
		if s != *o.issuer {
			return nil, pyErr("Invalid issuer")
		}
	}
	if !o.skipAudience {
		if err := pyAudience(claims, o.audiences); err != nil {
			return nil, err
		}
	}
	if sub, ok := claims["sub"]; ok {
		if _, isString := sub.(string); !isString {
			return nil, pyErr("Subject must be a string")
		}
	}
	if jti, ok := claims["jti"]; ok {
		if _, isString := jti.(string); !isString {
			return nil, pyErr("JWT ID must be a string")
		}
	}
	// _StrictJWT: iat not in the future (already implied by PyJWT's own
	// check), and a bounded signed lifetime.
	if o.expMaxSeconds > 0 {
		exp, _ := pyInt(claims["exp"])
		start := now
		if iat, ok := pyInt(claims["iat"]); ok {
			start = float64(iat)
		}
		if float64(exp) > start+float64(o.expMaxSeconds) {
			// InvalidTokenError(msg, max, start): str() of a multi-argument
			// exception is the tuple (unverified: the datetime's repr).
			return nil, pyErr("('Token was signed for more than %%s seconds from %%s', %d, %s)", o.expMaxSeconds, pyDatetimeRepr(start))
		}
	}
	return claims, nil
}

// pyAudience is PyJWT's _validate_aud (non-strict).
func pyAudience(claims map[string]any, audiences []string) error {
	aud, present := claims["aud"]
	empty := !present || !pyTruthy(aud)
	if audiences == nil {
		if empty {
			return nil
		}
		return pyErr("Invalid audience")
	}
	if empty {
		return pyErr("Token is missing the %q claim", "aud")
	}
	var list []string
	switch t := aud.(type) {
	case string:
		list = []string{t}
	case []any:
		for _, x := range t {
			s, ok := x.(string)
			if !ok {
				return pyErr("Invalid claim format in token")
			}
			list = append(list, s)
		}
	default:
		return pyErr("Invalid claim format in token")
	}
	for _, want := range audiences {
		if contains(list, want) {
			return nil
		}
	}
	return pyErr("Audience doesn't match")
}

// pyInt is Python's int() of a decoded JSON value, as PyJWT applies it to
// time claims: numbers truncate, numeric strings parse, booleans are 0/1.
func pyInt(v any) (int64, bool) {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i, true
		}
		f, err := t.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, false
		}
		return int64(f), true
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
		return i, err == nil
	case bool:
		if t {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// pyDatetimeRepr is repr() of a naive UTC datetime.
func pyDatetimeRepr(ts float64) string {
	t := time.Unix(0, int64(ts*1e9)).UTC()
	s := fmt.Sprintf("datetime.datetime(%d, %d, %d, %d, %d", t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute())
	if t.Second() != 0 || t.Nanosecond() != 0 {
		s += fmt.Sprintf(", %d", t.Second())
	}
	return s + ")"
}
