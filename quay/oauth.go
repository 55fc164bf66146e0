package quay

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DirectOAuthRequest exchanges a username and password for an OAuth token
// through Quay's "direct OAuth" flow (endpoints/web.py): POST /oauth/authorizeapp
// with Basic credentials. Quay skips its CSRF check only when ClientID is in
// DIRECT_OAUTH_CLIENTID_WHITELIST, and the user must administer the
// application's organization.
type DirectOAuthRequest struct {
	Username, Password string
	ClientID           string
	// RedirectURI must match the application's redirect URI (or Quay's local
	// handler <app>/oauth/localapp).
	RedirectURI string
	Scopes      []string
}

// DirectOAuthToken is the outcome of AuthorizeApp. AccessToken is a secret.
type DirectOAuthToken struct {
	AccessToken string
	ExpiresIn   time.Duration
}

// AuthorizeApp performs the direct OAuth flow. Quay answers 302 with the token
// in the Location fragment; the redirect is never followed.
func (c *Client) AuthorizeApp(ctx context.Context, in DirectOAuthRequest) (*DirectOAuthToken, error) {
	form := url.Values{
		"client_id":     {in.ClientID},
		"redirect_uri":  {in.RedirectURI},
		"scope":         {strings.Join(in.Scopes, " ")},
		"response_type": {"token"},
	}
	r := request{route: "authorizeApplication", method: http.MethodPost, path: "/oauth/authorizeapp", body: form,
		basicAuth: &basicAuth{username: in.Username, password: in.Password}}
	resp, err := c.send(ctx, &r)
	if err != nil {
		return nil, err
	}
	defer drain(resp.Body)
	switch {
	case resp.StatusCode == http.StatusFound:
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		return nil, r.fail(&Error{StatusCode: resp.StatusCode, Message: "Quay answered without the redirect that carries the token"})
	default:
		return nil, newErrorFromResponse(&r, resp)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return nil, r.fail(&Error{StatusCode: resp.StatusCode, Message: "unparseable redirect"})
	}
	// The fragment is form-encoded like a query: parse it as sent, not
	// after url.Parse has already decoded it once.
	frag, _ := url.ParseQuery(loc.EscapedFragment())
	// Quay's OAuth provider reports a refusal (unauthorized_client,
	// invalid_scope, ...) in the redirect's query; the fragment is where
	// the implicit flow puts both tokens and errors.
	for _, params := range []url.Values{frag, loc.Query()} {
		if e := params.Get("error"); e != "" {
			msg := firstNonEmpty(params.Get("error_description"), "Quay refused to issue a token")
			return nil, r.fail(&Error{StatusCode: resp.StatusCode, Type: e, Message: msg})
		}
	}
	token := frag.Get("access_token")
	if token == "" {
		// The redirect target and its query are not secret, but say as
		// little as possible about it.
		return nil, r.fail(&Error{StatusCode: resp.StatusCode, Message: "redirect carried no access_token"})
	}
	out := &DirectOAuthToken{AccessToken: token}
	if secs, err := strconv.Atoi(frag.Get("expires_in")); err == nil {
		out.ExpiresIn = time.Duration(secs) * time.Second
	}
	return out, nil
}

// ErrNoCredential is returned by calls that need a credential when none is set.
var ErrNoCredential = errors.New("quay: no credential configured")

// LocalOAuthRedirect is the redirect URI Quay accepts for its own local
// OAuth handler: PREFERRED_URL_SCHEME://SERVER_HOSTNAME/oauth/localapp
// (data/model/oauth.py validate_redirect_uri), whatever address the client
// reaches Quay at. It reads both from Quay's anonymous GET /config
// (endpoints/web.py config).
func (c *Client) LocalOAuthRedirect(ctx context.Context) (string, error) {
	var pub struct {
		Config struct {
			ServerHostname     string `json:"SERVER_HOSTNAME"`
			PreferredURLScheme string `json:"PREFERRED_URL_SCHEME"`
		} `json:"config"`
	}
	if err := c.do(ctx, request{route: "config", method: http.MethodGet, path: "/config", idempotent: true, anonymous: true}, &pub); err != nil {
		return "", err
	}
	if pub.Config.ServerHostname == "" {
		return "", errors.New("quay: GET /config names no SERVER_HOSTNAME")
	}
	scheme := pub.Config.PreferredURLScheme
	if scheme == "" {
		scheme = "http" // config.py's default
	}
	return scheme + "://" + pub.Config.ServerHostname + "/oauth/localapp", nil
}
