package nomadstub

import (
	"errors"
	"strings"
	"time"
)

// NOMAD's Keycloak realm, served by the same Server under /keycloak/auth/realms/{realm} (the
// docker-compose Oasis layout, nomad-pat-api.md §9a). It knows the same accounts as NOMAD (plus
// realm-only ones), a set of clients, sessions behind refresh tokens, and authorization codes.
// Everything here is guarded by Server.mu, like the rest of the store.

// Realm defaults: a stock Oasis realm (docker-compose template) and Keycloak's own defaults.
const (
	DefaultRealm       = "nomad"
	DefaultRealmClient = "nomad_public" // NOMAD's keycloak.client_id: public, direct grants on
	DefaultSSOIdle     = 30 * time.Minute
	DefaultOfflineIdle = 30 * 24 * time.Hour
)

const (
	realmPathPrefix    = "/keycloak/auth/realms/"
	authCodeLifespan   = 60 * time.Second // Keycloak's "Client login timeout"
	realmDefaultScopes = "profile email"  // default client scopes Keycloak always grants
	scopeOpenID        = "openid"
	scopeOfflineAccess = "offline_access"
)

// RealmClient is a Keycloak client of the realm.
type RealmClient struct {
	ID     string
	Secret string // "" = a public client (sends client_id only)
	// ServiceAccountUser is the username of the client's service-account user; non-empty enables
	// client_credentials. The user is created (without a password) when missing, and is a NOMAD
	// user like any other, so its tokens manage PATs.
	ServiceAccountUser string
	DirectGrants       bool // the password grant ("Direct access grants")
}

func (c *RealmClient) public() bool { return c.Secret == "" }

// realmSession is a Keycloak user session (online) or offline session: what a refresh token
// stands for. A revoked or timed-out session is deleted, as Keycloak does.
type realmSession struct {
	id, userID, clientID string
	offline              bool
	scope                string    // granted scope, carried into refreshed tokens
	started, lastUse     time.Time // stand-in clock
	spent                map[string]bool
}

// authCode is an issued, not yet exchanged authorization code.
type authCode struct {
	clientID, redirectURI, challenge, userID, scope, nonce string
	expires                                                time.Time
}

// realm is the realm's mutable state (Server.mu).
type realm struct {
	clients       map[string]*RealmClient
	rotate        bool
	ssoIdle       time.Duration
	offlineIdle   time.Duration
	offlineMax    time.Duration // 0 = no offline max lifespan
	sessions      map[string]*realmSession
	codes         map[string]*authCode
	authorizeUser string
	lastIDPHint   string
	grants        map[string]int
	grantFailures map[string]int
	// live holds the access tokens (by jti) NOMAD still accepts: ExpireAccessTokens empties it.
	live map[string]time.Time
	// issuedTo maps every access-token jti ever issued to its user, for the request log.
	issuedTo map[string]string
}

func newRealm() realm {
	return realm{
		clients: map[string]*RealmClient{
			DefaultRealmClient: {ID: DefaultRealmClient, DirectGrants: true},
		},
		ssoIdle:       DefaultSSOIdle,
		offlineIdle:   DefaultOfflineIdle,
		sessions:      map[string]*realmSession{},
		codes:         map[string]*authCode{},
		grants:        map[string]int{},
		grantFailures: map[string]int{},
		live:          map[string]time.Time{},
		issuedTo:      map[string]string{},
	}
}

// IssuerURL is the realm's issuer for a server at serverURL ("http://127.0.0.1:port"): what a
// NomadConnection's spec.credentials.oidc.issuerURL would hold.
func (s *Server) IssuerURL(serverURL string) string {
	return strings.TrimRight(serverURL, "/") + s.realmPath()
}

// Realm is the realm's name.
func (s *Server) Realm() string { return s.realmName }

func (s *Server) realmPath() string { return realmPathPrefix + s.realmName }

// AddClient adds or replaces a realm client. A service-account user that does not exist yet is
// created without a password.
func (s *Server) AddClient(c RealmClient) error {
	if c.ID == "" {
		return errors.New("client id required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.ServiceAccountUser != "" && s.st.usersByName[c.ServiceAccountUser] == nil {
		s.addUserLocked(c.ServiceAccountUser, "", false)
	}
	cp := c
	s.realm.clients[c.ID] = &cp
	return nil
}

// SetDirectGrants switches the password grant on or off for a client; false for an unknown client.
func (s *Server) SetDirectGrants(clientID string, on bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.realm.clients[clientID]
	if c != nil {
		c.DirectGrants = on
	}
	return c != nil
}

// SetRefreshTokenRotation is Keycloak's "Revoke Refresh Token" with max reuse 0: every refresh
// answers a new refresh token and the one it used is refused from then on.
func (s *Server) SetRefreshTokenRotation(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.realm.rotate = on
}

// SetSessionTimeouts sets the SSO session idle timeout, the offline session idle timeout and the
// offline session max lifespan (0 = none). Zero idle values restore the defaults (30 min, 30 days).
func (s *Server) SetSessionTimeouts(ssoIdle, offlineIdle, offlineMax time.Duration) {
	if ssoIdle <= 0 {
		ssoIdle = DefaultSSOIdle
	}
	if offlineIdle <= 0 {
		offlineIdle = DefaultOfflineIdle
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.realm.ssoIdle, s.realm.offlineIdle, s.realm.offlineMax = ssoIdle, offlineIdle, max(offlineMax, 0)
}

// IssueRefreshToken opens a session for the user at the client, as if the user had signed in in a
// browser, and returns its refresh token (an offline token when offline).
func (s *Server) IssueRefreshToken(username, clientID string, offline bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.usersByName[username]
	if u == nil {
		return "", errors.New("unknown user")
	}
	if s.realm.clients[clientID] == nil {
		return "", errors.New("unknown client")
	}
	scope := scopeOpenID + " " + realmDefaultScopes
	if offline {
		scope += " " + scopeOfflineAccess
	}
	sess := s.openSession(u.id, clientID, scope, offline)
	return s.mintRefreshToken(s.issuerHint(), sess), nil
}

// RevokeSessions ends every session of the user, online and offline (Keycloak's admin "Sign
// out"): their refresh tokens are refused from then on. Access tokens already issued stay valid
// until they expire, as NOMAD checks them without asking Keycloak.
func (s *Server) RevokeSessions(username string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.usersByName[username]
	if u == nil {
		return false
	}
	for id, sess := range s.realm.sessions {
		if sess.userID == u.id {
			delete(s.realm.sessions, id)
		}
	}
	return true
}

// SetRequiredAction marks a pending required action (an invited user who has not finished
// setting up the account): the password grant then fails with Keycloak's 400.
func (s *Server) SetRequiredAction(username string, on bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.usersByName[username]
	if u != nil {
		u.requiredAction = on
	}
	return u != nil
}

// SetAuthorizeUser is who the authorize endpoint signs in (it has no login form); "" makes it
// answer 400.
func (s *Server) SetAuthorizeUser(username string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.realm.authorizeUser = username
}

// LastIDPHint is the kc_idp_hint of the last authorize request ("" if it had none).
func (s *Server) LastIDPHint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.realm.lastIDPHint
}

// AddRealmOnlyUser adds an account that Keycloak knows and NOMAD does not (its tokens get 403
// "You are logged in with an unknown user" at the PAT API) and returns its `sub`.
func (s *Server) AddRealmOnlyUser(username, password string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.st.usersByName[username]; u != nil {
		u.password, u.realmOnly = password, true
		return u.id
	}
	return s.addUserLocked(username, password, true).id
}

// Grants counts the successful exchanges at the realm's token endpoint per grant_type since the
// start or the last ResetCalls. NOMAD's own /auth/token is not among them (see Logins).
func (s *Server) Grants() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyCounts(s.realm.grants)
}

// GrantFailures counts the refused requests at the realm's token endpoint per grant_type as sent
// ("" when missing).
func (s *Server) GrantFailures() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyCounts(s.realm.grantFailures)
}

func copyCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// openSession starts a session now. Caller holds s.mu.
func (s *Server) openSession(userID, clientID, scope string, offline bool) *realmSession {
	now := s.clock.Now()
	sess := &realmSession{
		id: newUserID(), userID: userID, clientID: clientID, offline: offline, scope: scope,
		started: now, lastUse: now, spent: map[string]bool{},
	}
	s.realm.sessions[sess.id] = sess
	return sess
}

// sessionEnd is when the session times out if not used again, on the stand-in's clock. Offline
// sessions also end at their max lifespan when one is set. Caller holds s.mu.
func (s *Server) sessionEnd(sess *realmSession) time.Time {
	if !sess.offline {
		return sess.lastUse.Add(s.realm.ssoIdle)
	}
	end := sess.lastUse.Add(s.realm.offlineIdle)
	if s.realm.offlineMax > 0 {
		if m := sess.started.Add(s.realm.offlineMax); m.Before(end) {
			end = m
		}
	}
	return end
}

// grantedScope is what Keycloak grants: the default client scopes, plus openid and offline_access
// when asked for. Other requested scopes are dropped (the realm defines no optional ones).
func grantedScope(requested string) string {
	out := realmDefaultScopes
	if hasScope(requested, scopeOpenID) {
		out = scopeOpenID + " " + out
	}
	if hasScope(requested, scopeOfflineAccess) {
		out += " " + scopeOfflineAccess
	}
	return out
}

func hasScope(scope, want string) bool {
	for _, f := range strings.Fields(scope) {
		if f == want {
			return true
		}
	}
	return false
}
