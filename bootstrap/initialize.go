package bootstrap

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/quay-vault/vault-plugin-secrets-quay/quay"
)

// InitializeTokenLifetime is how long the token of Quay's first-user
// initialization lives (data/model/oauth.py create_user_access_token,
// endpoints/web.py user_initialize): 2.5 hours, so the engine replaces it at once.
const InitializeTokenLifetime = 9000 * time.Second

// initializeScopes are the scopes Quay gives the initialization token.
var initializeScopes = []string{"org:admin", "repo:admin", "repo:create", "repo:read", "repo:write", "super:user", "user:admin", "user:read"}

// Initialize creates Quay's first user through POST /api/v1/user/initialize.
// It only works on an empty Quay with FEATURE_USER_INITIALIZE and database
// authentication; the user is a superuser if listed in SUPER_USERS.
type Initialize struct {
	Username string
	// Password is the user's new password; use GeneratePassword. The
	// engine keeps it sealed and never returns it.
	Password string
	// Email is required by Quay when FEATURE_MAILING is on.
	Email string
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Name implements Method.
func (Initialize) Name() string { return MethodInitialize }

// Obtain implements Method.
func (m Initialize) Obtain(ctx context.Context, q *quay.Client) (*Grant, error) {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	issued := now()
	resp, err := q.InitializeUser(ctx, quay.InitializeUserRequest{
		Username: m.Username, Password: m.Password, Email: m.Email, AccessToken: true,
	})
	if err != nil {
		return nil, err
	}
	if resp.AccessToken == "" {
		return nil, fmt.Errorf("quay initialized user %q but returned no access token", m.Username)
	}
	return &Grant{
		Credential: quay.StaticToken(resp.AccessToken),
		Token:      resp.AccessToken,
		ExpiresAt:  issued.Add(InitializeTokenLifetime),
		Scopes:     initializeScopes,
		// Quay names the initialization app after the user (client_id = username).
		ClientID: m.Username,
	}, nil
}

// passwordAlphabet avoids whitespace (Quay refuses it) and characters that
// need quoting in shells and URLs. It has exactly 64 characters so that
// byte%64 maps random bytes onto it without bias.
const passwordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// GeneratePassword returns a 32-character password from crypto/rand
// (192 bits), well above Quay's minimum of 8 characters.
func GeneratePassword() (string, error) {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	for i, v := range buf {
		// 256 = 4*64: no bias.
		buf[i] = passwordAlphabet[int(v)%len(passwordAlphabet)]
	}
	return string(buf), nil
}
