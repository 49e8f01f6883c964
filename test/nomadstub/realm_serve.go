package nomadstub

import (
	"net/http"
	"strconv"
	"strings"
)

// Routing below the realm's issuer path, and the two documents a client discovers it by.

// Paths below the issuer.
const (
	wellKnownPath = "/.well-known/openid-configuration"
	certsPath     = "/protocol/openid-connect/certs"
	tokenPath     = "/protocol/openid-connect/token"
	authPath      = "/protocol/openid-connect/auth"
)

// serveRealm dispatches rel, the path below the issuer. Only the token endpoint is an operation
// (counted by Calls, open to faults, in the request log): it is what the operator calls.
func (s *Server) serveRealm(w http.ResponseWriter, r *http.Request, rel string) {
	type route struct {
		method string
		handle func(http.ResponseWriter, *http.Request)
	}
	routes := map[string]route{
		wellKnownPath: {http.MethodGet, s.handleDiscovery},
		certsPath:     {http.MethodGet, s.handleCerts},
		authPath:      {http.MethodGet, s.handleAuthorize},
		tokenPath: {http.MethodPost, func(w http.ResponseWriter, r *http.Request) {
			s.serveOp(w, r, OpRealmToken, s.handleRealmToken, "")
		}},
	}
	rt, ok := routes[rel]
	switch {
	case !ok:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Unable to find matching target resource method"})
	case rt.method != r.Method:
		w.Header().Set("Allow", rt.method)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "HTTP 405 Method Not Allowed"})
	default:
		rt.handle(w, r)
	}
}

// handleDiscovery is the OpenID Provider metadata, with absolute URLs built from the request's
// host, so the issuer equals IssuerURL(serverURL) for a client that uses serverURL.
func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	issuer := requestBaseURL(r) + s.realmPath()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                issuer,
		"authorization_endpoint":                issuer + authPath,
		"token_endpoint":                        issuer + tokenPath,
		"jwks_uri":                              issuer + certsPath,
		"grant_types_supported":                 []string{"authorization_code", "refresh_token", "password", "client_credentials"},
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":      []string{"S256"},
		"scopes_supported":                      []string{scopeOpenID, scopeOfflineAccess, "profile", "email"},
	})
}

func (s *Server) handleCerts(w http.ResponseWriter, _ *http.Request) {
	body := s.keys.jwks()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// realmRel reports whether path is below the realm's issuer path, and the rest of it.
func (s *Server) realmRel(path string) (string, bool) {
	p := s.realmPath()
	if path != p && !strings.HasPrefix(path, p+"/") {
		return "", false
	}
	return strings.TrimPrefix(path, p), true
}
