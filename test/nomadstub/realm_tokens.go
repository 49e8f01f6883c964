package nomadstub

import (
	"crypto/sha256"
	"net/http"
	"net/url"
	"time"
)

// The realm's token endpoint: POST {issuer}/protocol/openid-connect/token, form-encoded, with
// Keycloak's grant rules and error bodies ({"error","error_description"}).

// oauthError is a Keycloak token-endpoint error. Its description never holds a token.
type oauthError struct {
	status     int
	code, desc string
}

func (e *oauthError) body() map[string]string {
	return map[string]string{"error": e.code, "error_description": e.desc}
}

func badRequest(code, desc string) *oauthError {
	return &oauthError{http.StatusBadRequest, code, desc}
}

// Keycloak's answers shared by several grants.
var (
	errInvalidClient       = &oauthError{http.StatusUnauthorized, "invalid_client", "Invalid client or Invalid client credentials"}
	errBadClientSecret     = &oauthError{http.StatusUnauthorized, "unauthorized_client", "Invalid client or Invalid client credentials"}
	errMissingClientSecret = &oauthError{http.StatusUnauthorized, "unauthorized_client", "Client secret not provided in request"}
	errBadUserCredentials  = &oauthError{http.StatusUnauthorized, "invalid_grant", "Invalid user credentials"}
	errNoDirectGrants      = badRequest("unauthorized_client", "Client not allowed for direct access grants")
	errAccountNotSetUp     = badRequest("invalid_grant", "Account is not fully set up")
	errInvalidRefresh      = badRequest("invalid_grant", "Invalid refresh token")
	errTokenNotActive      = badRequest("invalid_grant", "Token is not active")
	errSessionNotActive    = badRequest("invalid_grant", "Session not active")
	errOfflineNotFound     = badRequest("invalid_grant", "Offline user session not found")
	errRefreshReused       = badRequest("invalid_grant", "Maximum allowed refresh token reuse exceeded")
	errCodeNotValid        = badRequest("invalid_grant", "Code not valid")
)

// realmTokenResponse is Keycloak's AccessTokenResponse.
type realmTokenResponse struct {
	AccessToken      string `json:"access_token"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
	RefreshToken     string `json:"refresh_token,omitempty"`
	TokenType        string `json:"token_type"`
	IDToken          string `json:"id_token,omitempty"`
	NotBeforePolicy  int    `json:"not-before-policy"`
	SessionState     string `json:"session_state,omitempty"`
	Scope            string `json:"scope"`
}

// handleRealmToken serves the token endpoint (the OpRealmToken operation).
func (s *Server) handleRealmToken(w http.ResponseWriter, r *http.Request, _ string) {
	form := readForm(r)
	issuer := requestBaseURL(r) + s.realmPath()
	clientID, secret, basic := clientCredentials(r, form)

	s.mu.Lock()
	grant := form["grant_type"]
	resp, oerr := s.realmGrant(issuer, grant, clientID, secret, basic, form)
	if oerr != nil {
		s.realm.grantFailures[grant]++
	} else {
		s.realm.grants[grant]++
	}
	s.mu.Unlock()

	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if oerr != nil {
		if oerr.status == http.StatusUnauthorized && basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+s.realmName+`"`)
		}
		writeJSON(w, oerr.status, oerr.body())
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// clientCredentials takes the client from HTTP Basic (RFC 6749 §2.3.1: form-urlencoded parts)
// or else from the form's client_id and client_secret.
func clientCredentials(r *http.Request, form map[string]string) (id, secret string, basic bool) {
	if u, p, ok := r.BasicAuth(); ok {
		if du, err := url.QueryUnescape(u); err == nil {
			u = du
		}
		if dp, err := url.QueryUnescape(p); err == nil {
			p = dp
		}
		return u, p, true
	}
	return form["client_id"], form["client_secret"], false
}

// realmGrant checks the grant type, authenticates the client, then runs the grant, in
// Keycloak's order. Caller holds s.mu.
func (s *Server) realmGrant(issuer, grant, clientID, secret string, basic bool, form map[string]string) (*realmTokenResponse, *oauthError) {
	switch grant {
	case "":
		return nil, badRequest("invalid_request", "Missing form parameter: grant_type")
	case "password", "refresh_token", "client_credentials", "authorization_code":
	default:
		return nil, badRequest("unsupported_grant_type", "Unsupported grant_type")
	}
	c, oerr := s.authenticateClient(clientID, secret)
	if oerr != nil {
		return nil, oerr
	}
	switch grant {
	case "password":
		return s.grantPassword(issuer, c, form)
	case "refresh_token":
		return s.grantRefresh(issuer, c, form["refresh_token"])
	case "client_credentials":
		return s.grantClientCredentials(issuer, c)
	default:
		return s.grantAuthorizationCode(issuer, c, form)
	}
}

// authenticateClient: a public client names itself, a confidential one proves its secret.
// Caller holds s.mu.
func (s *Server) authenticateClient(clientID, secret string) (*RealmClient, *oauthError) {
	c := s.realm.clients[clientID]
	switch {
	case c == nil:
		return nil, errInvalidClient
	case c.public():
		return c, nil
	case secret == "":
		return nil, errMissingClientSecret
	case !constantTimeEqual(secret, c.Secret):
		return nil, errBadClientSecret
	}
	return c, nil
}

func constantTimeEqual(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return ha == hb
}

// checkPassword is Keycloak's direct access grant, shared by the realm's token endpoint and
// NOMAD's /auth/token (which performs it server-side with nomad_public). Caller holds s.mu.
func (s *Server) checkPassword(c *RealmClient, username, password string) (*user, *oauthError) {
	if !c.DirectGrants {
		return nil, errNoDirectGrants
	}
	u := s.st.usersByName[username]
	// A service-account user has no password and cannot sign in with one.
	if u == nil || u.password == "" || !constantTimeEqual(u.password, password) {
		return nil, errBadUserCredentials
	}
	if u.requiredAction {
		return nil, errAccountNotSetUp
	}
	return u, nil
}

func (s *Server) grantPassword(issuer string, c *RealmClient, form map[string]string) (*realmTokenResponse, *oauthError) {
	u, oerr := s.checkPassword(c, form["username"], form["password"])
	if oerr != nil {
		return nil, oerr
	}
	scope := grantedScope(form["scope"])
	sess := s.openSession(u.id, c.ID, scope, hasScope(scope, scopeOfflineAccess))
	return s.mintTokens(issuer, sess, u, c.ID, scope, ""), nil
}

// refreshClaims are a refresh token's claims. Exp is absent for a token without an end (an
// offline token when no offline max lifespan is set).
type refreshClaims struct {
	Iss   string `json:"iss"`
	Aud   string `json:"aud"`
	Sub   string `json:"sub"`
	Typ   string `json:"typ"`
	Azp   string `json:"azp"`
	Sid   string `json:"sid"`
	Jti   string `json:"jti"`
	Iat   int64  `json:"iat"`
	Exp   *int64 `json:"exp,omitempty"`
	Scope string `json:"scope"`
}

// grantRefresh is Keycloak's refresh: token signature and type, client, expiry, session, reuse.
// Caller holds s.mu.
func (s *Server) grantRefresh(issuer string, c *RealmClient, token string) (*realmTokenResponse, *oauthError) {
	if token == "" {
		return nil, badRequest("invalid_request", "Missing parameter: refresh_token")
	}
	var rc refreshClaims
	if s.keys.verifyHS256(token, &rc) != nil || (rc.Typ != "Refresh" && rc.Typ != "Offline") {
		return nil, errInvalidRefresh
	}
	if rc.Azp != c.ID {
		return nil, badRequest("invalid_grant", "Unmatching clients")
	}
	now := s.clock.Now()
	if rc.Exp != nil && !now.Before(time.Unix(*rc.Exp, 0)) {
		return nil, errTokenNotActive
	}
	sess := s.realm.sessions[rc.Sid]
	if sess != nil && !now.Before(s.sessionEnd(sess)) {
		delete(s.realm.sessions, sess.id) // timed out: Keycloak removes it
		sess = nil
	}
	if sess == nil || sess.userID != rc.Sub {
		if rc.Typ == "Offline" {
			return nil, errOfflineNotFound
		}
		return nil, errSessionNotActive
	}
	if sess.spent[rc.Jti] {
		return nil, errRefreshReused
	}
	u := s.st.usersByID[sess.userID]
	if u == nil {
		return nil, errSessionNotActive
	}
	if s.realm.rotate {
		sess.spent[rc.Jti] = true
	}
	sess.lastUse = now
	return s.mintTokens(issuer, sess, u, c.ID, sess.scope, ""), nil
}

// grantClientCredentials signs in the client's service-account user. Keycloak opens no
// refreshable session for it (no refresh token by default). Caller holds s.mu.
func (s *Server) grantClientCredentials(issuer string, c *RealmClient) (*realmTokenResponse, *oauthError) {
	if c.public() {
		return nil, badRequest("unauthorized_client", "Public client not allowed to retrieve service account")
	}
	u := s.st.usersByName[c.ServiceAccountUser]
	if c.ServiceAccountUser == "" || u == nil {
		return nil, badRequest("unauthorized_client", "Client not enabled to retrieve service account")
	}
	return s.mintTokens(issuer, nil, u, c.ID, realmDefaultScopes, ""), nil
}

// realmRequestUser says whom a token-endpoint request acts as, for the request log, without
// side effects (a code is looked at, not used up).
func (s *Server) realmRequestUser(r *http.Request, form map[string]string) string {
	clientID, _, _ := clientCredentials(r, form)
	s.mu.Lock()
	defer s.mu.Unlock()
	var userID string
	switch form["grant_type"] {
	case "password":
		return form["username"]
	case "refresh_token":
		var rc refreshClaims
		if _, _, _, err := splitJWT(form["refresh_token"], &rc); err == nil {
			userID = rc.Sub
		}
	case "authorization_code":
		if c := s.realm.codes[form["code"]]; c != nil {
			userID = c.userID
		}
	case "client_credentials":
		if c := s.realm.clients[clientID]; c != nil {
			return c.ServiceAccountUser
		}
	}
	if u := s.st.usersByID[userID]; u != nil {
		return u.name
	}
	return ""
}
