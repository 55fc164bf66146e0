package backend

import (
	"crypto/rand"
	"strings"
)

// nameAlphabet is valid in every Quay object name the engine creates.
const nameAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// randomSuffix returns n characters of nameAlphabet from crypto/rand, so two
// credentials issued in the same instant never share a name.
func randomSuffix(n int) string {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	out := make([]byte, n)
	for i, v := range buf {
		// 256 is not a multiple of 36; the bias (under 1%) does not
		// matter for names that only need to be unique.
		out[i] = nameAlphabet[int(v)%len(nameAlphabet)]
	}
	return string(out)
}

// nameComponent turns a Vault role name into something Quay accepts inside a
// name (lowercase letters, digits, single separators), at most max characters.
func nameComponent(s string, max int) string {
	var b strings.Builder
	lastSep := true
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			lastSep = false
		default:
			if !lastSep {
				b.WriteByte('_')
				lastSep = true
			}
		}
		if b.Len() >= max {
			break
		}
	}
	out := strings.Trim(b.String(), "_")
	if len(out) > max {
		out = strings.Trim(out[:max], "_")
	}
	if out == "" {
		out = "role"
	}
	return out
}

// oauthTokenName names an issued OAuth token after its role, so Quay's token
// list and audit log trace each token back to Vault.
func oauthTokenName(role string) string {
	return "vault-" + nameComponent(role, 64) + "-" + randomSuffix(10)
}
