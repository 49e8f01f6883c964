package nomadstub

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// NOMAD's side of the realm: how the PAT API accepts realm access tokens, and how /auth/token's
// server-side password grant reports Keycloak's refusals.

// verifyRealmAccessToken is NOMAD's check of a Keycloak JWT (nomad-pat-api.md §9, §9a): RS256
// signature by kid, iss equal to the realm issuer as this request reaches it, exp passed (no
// leeway), iat not ahead of the server clock; no aud/azp/typ check. A token ended by
// ExpireAccessTokens is refused as if expired. It returns the `sub`. Caller holds s.mu.
func (s *Server) verifyRealmAccessToken(r *http.Request, token string, now time.Time) (string, bool) {
	var ac accessClaims
	if s.keys.verifyRS256(token, &ac) != nil {
		return "", false
	}
	if ac.Iss != requestBaseURL(r)+s.realmPath() || ac.Sub == "" {
		return "", false
	}
	if !now.Before(time.Unix(ac.Exp, 0)) || time.Unix(ac.Iat, 0).After(now) {
		return "", false
	}
	if _, live := s.realm.live[ac.Jti]; !live {
		return "", false
	}
	return ac.Sub, true
}

// nomadUser is NOMAD's user lookup for an authenticated `sub`: an account NOMAD does not know
// gets 403 (written here, returning false). Caller holds s.mu.
func (s *Server) nomadUser(w http.ResponseWriter, userID string) (*caller, bool) {
	if u := s.st.usersByID[userID]; u == nil || u.realmOnly {
		writeDetail(w, http.StatusForbidden, detailUnknownUser)
		return nil, false
	}
	return &caller{userID: userID}, true // Keycloak tokens carry every scope (*:*)
}

// keycloakExceptionName is python-keycloak's exception class for a failed POST.
const keycloakExceptionName = "keycloak.exceptions.KeycloakPostError"

// writeKeycloakFailure is NOMAD's 500 for a Keycloak 400 during /auth/token's password grant:
// python-keycloak's KeycloakPostError, whose str() is "<status>: <body as Python bytes repr>".
func writeKeycloakFailure(w http.ResponseWriter, e *oauthError) {
	body, _ := json.Marshal(e.body()) // keys sorted: error, error_description, as Keycloak writes them
	writeServerError(w, strconv.Itoa(e.status)+": b'"+string(body)+"'", keycloakExceptionName)
}

// nomadClient is the client NOMAD's server-side password grant uses (keycloak.client_id). If a
// test removed it, a public client with direct grants off stands in, so Keycloak refuses.
// Caller holds s.mu.
func (s *Server) nomadClient() *RealmClient {
	if c := s.realm.clients[DefaultRealmClient]; c != nil {
		return c
	}
	return &RealmClient{ID: DefaultRealmClient}
}
