package emulator

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every declared route resolves to its own nickname, so the proxy and the
// conformance table name requests exactly as the emulator counts them.
func TestRoutes_RouteOfNamesEveryRoute(t *testing.T) {
	emu, err := New(Config{FeatureProgrammaticBootstrap: true, BootstrapTokenOwner: "o", SuperUsers: []string{"o"}})
	require.NoError(t, err)
	routes := emu.Routes()
	require.Greater(t, len(routes), 50)
	param := regexp.MustCompile(`\{([a-z_]+)(\.\.\.)?\}`)
	seen := map[string]bool{}
	for _, rt := range routes {
		assert.False(t, seen[rt.Method+" "+rt.Path], "declared twice: %s %s", rt.Method, rt.Path)
		seen[rt.Method+" "+rt.Path] = true
		path := param.ReplaceAllStringFunc(rt.Path, func(m string) string {
			switch m {
			case "{repository...}":
				return "team/app"
			case "{rest...}":
				return "acme/app/manifests/latest"
			}
			return "x"
		})
		method := rt.Method
		if method == "" {
			method = http.MethodGet
		}
		assert.Equal(t, rt.Nickname, emu.RouteOf(httptest.NewRequest(method, path, nil)), "%s %s", method, path)
	}
	assert.Equal(t, "", emu.RouteOf(httptest.NewRequest(http.MethodGet, "/api/v1/nothing", nil)), "Quay's 404")
	assert.Equal(t, "", emu.RouteOf(httptest.NewRequest(http.MethodPost, "/api/v1/repository/acme/app", nil)), "no such method")
}
