package nomadstub

import (
	"crypto/sha256"
	"net/http"
	"net/url"
	"regexp"
)

// The authorization-code flow with PKCE, for tests: the authorize endpoint has no login form and
// signs in the configured "authorize user" (SetAuthorizeUser) straight away.

// handleAuthorize is GET {issuer}/protocol/openid-connect/auth. Problems Keycloak cannot send
// back to the client (unknown client, bad redirect_uri, nobody to sign in) get a 400 page; the
// others redirect with error=... as RFC 6749 §4.1.2.1 says.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.realm.lastIDPHint = q.Get("kc_idp_hint")
	c := s.realm.clients[q.Get("client_id")]
	if c == nil {
		writeErrorPage(w, "Client not found.")
		return
	}
	redirect := q.Get("redirect_uri")
	target, err := url.Parse(redirect)
	if err != nil || !loopbackRedirect(target) {
		writeErrorPage(w, "Invalid parameter: redirect_uri")
		return
	}
	state := q.Get("state")
	fail := func(code, desc string) {
		redirectWith(w, target, url.Values{"error": {code}, "error_description": {desc}, "state": {state}})
	}
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "Client is not allowed to initiate browser login with given response_type.")
		return
	case q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "Missing parameter: code_challenge_method")
		return
	case !pkceValue.MatchString(q.Get("code_challenge")):
		fail("invalid_request", "Invalid parameter: code_challenge")
		return
	}
	u := s.st.usersByName[s.realm.authorizeUser]
	if u == nil {
		writeErrorPage(w, "No user to sign in (the stand-in's authorize user is not set).")
		return
	}
	code := newJTI()
	s.realm.codes[code] = &authCode{
		clientID: c.ID, redirectURI: redirect, challenge: q.Get("code_challenge"), userID: u.id,
		scope: grantedScope(q.Get("scope")), nonce: q.Get("nonce"),
		expires: s.clock.Now().Add(authCodeLifespan),
	}
	redirectWith(w, target, url.Values{
		"code": {code}, "state": {state}, "iss": {requestBaseURL(r) + s.realmPath()},
	})
}

// pkceValue is RFC 7636's code_verifier (and, base64url of SHA-256, code_challenge) alphabet.
var pkceValue = regexp.MustCompile(`^[A-Za-z0-9\-._~]{43,128}$`)

// loopbackRedirect is the redirect_uri rule of nomad_public for native clients (the stand-in
// applies it to every client): plain http to
// 127.0.0.1 or localhost with an explicit port.
func loopbackRedirect(u *url.URL) bool {
	host := u.Hostname()
	return u.Scheme == "http" && u.Port() != "" && (host == "127.0.0.1" || host == "localhost")
}

// redirectWith answers 302 to target with params added to its query (an empty state is left out).
func redirectWith(w http.ResponseWriter, target *url.URL, params url.Values) {
	u := *target
	q := u.Query()
	for k, vs := range params {
		if k == "state" && vs[0] == "" {
			continue
		}
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
}

func writeErrorPage(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte("<!DOCTYPE html><html><body><p>" + msg + "</p></body></html>\n"))
}

// grantAuthorizationCode exchanges a code once, for the client and redirect_uri it was issued
// to, after PKCE S256 verification. Caller holds s.mu.
func (s *Server) grantAuthorizationCode(issuer string, c *RealmClient, form map[string]string) (*realmTokenResponse, *oauthError) {
	raw := form["code"]
	if raw == "" {
		return nil, badRequest("invalid_request", "Missing parameter: code")
	}
	code := s.realm.codes[raw]
	delete(s.realm.codes, raw) // single use, whatever happens next
	switch {
	case code == nil:
		return nil, errCodeNotValid
	case !s.clock.Now().Before(code.expires):
		return nil, badRequest("invalid_grant", "Code is expired")
	case code.clientID != c.ID:
		return nil, badRequest("invalid_grant", "Auth error")
	case form["redirect_uri"] != code.redirectURI:
		return nil, badRequest("invalid_grant", "Incorrect redirect_uri")
	case form["code_verifier"] == "":
		return nil, badRequest("invalid_grant", "PKCE code verifier not specified")
	case !pkceValue.MatchString(form["code_verifier"]) || s256(form["code_verifier"]) != code.challenge:
		return nil, badRequest("invalid_grant", "PKCE verification failed: Invalid code verifier")
	}
	u := s.st.usersByID[code.userID]
	if u == nil {
		return nil, errCodeNotValid
	}
	sess := s.openSession(u.id, c.ID, code.scope, hasScope(code.scope, scopeOfflineAccess))
	return s.mintTokens(issuer, sess, u, c.ID, code.scope, code.nonce), nil
}

// s256 is PKCE's code_challenge for a verifier.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return b64.EncodeToString(sum[:])
}
