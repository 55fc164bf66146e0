//go:build e2e

package e2e

import (
	"regexp"
	"testing"
)

// The fields whose values are credentials, in the engine's requests and
// responses and in Vault's own output.
const secretFields = `token|password|oidc_client_secret|auth|docker_config_json|access_token|client_secret`

var secretPatterns = []struct {
	re   *regexp.Regexp
	with string
}{
	// Command-line arguments: token=…, password=@file stays readable.
	{regexp.MustCompile(`\b(` + secretFields + `)=([^@\s][^\s]*)`), `$1=<redacted>`},
	// JSON output and bodies.
	{regexp.MustCompile(`"(` + secretFields + `)"(\s*:\s*)"(?:[^"\\]|\\.)*"`), `"$1"$2"<redacted>"`},
	// The CLI's table output: a key, spaces, the value.
	{regexp.MustCompile(`(?m)^(` + secretFields + `)(\s{2,})\S.*$`), `$1$2<redacted>`},
	// Vault's dev-server banner.
	{regexp.MustCompile(`(Root Token|Unseal Key): \S+`), `$1: <redacted>`},
}

// redactSecrets removes credentials from text a failing test prints.
func redactSecrets(s string) string {
	for _, p := range secretPatterns {
		s = p.re.ReplaceAllString(s, p.with)
	}
	return s
}

func TestRedactSecrets(t *testing.T) {
	for in, want := range map[string]string{
		"write quay/config url=http://q token=abc123 bootstrap=token":                                  "write quay/config url=http://q token=<redacted> bootstrap=token",
		"write quay/config password=pw oidc_client_secret=s3cret oauth_client_id=CID":                  "write quay/config password=<redacted> oidc_client_secret=<redacted> oauth_client_id=CID",
		"write quay/config token=@token.txt":                                                           "write quay/config token=@token.txt",
		`{"token": "abc", "token_id": "u-1", "password":"p\"q", "username": "acme+ci"}`:                `{"token": "<redacted>", "token_id": "u-1", "password":"<redacted>", "username": "acme+ci"}`,
		"Key         Value\ntoken       abc123\ntoken_id    u-1\npassword    xyz\nusername    acme+ci": "Key         Value\ntoken       <redacted>\ntoken_id    u-1\npassword    <redacted>\nusername    acme+ci",
		"Root Token: e2e-abc\nUnseal Key: AAA=":                                                        "Root Token: <redacted>\nUnseal Key: <redacted>",
		"lease_id    quay/creds/ci/abc":                                                                "lease_id    quay/creds/ci/abc",
	} {
		if got := redactSecrets(in); got != want {
			t.Errorf("redactSecrets(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}
