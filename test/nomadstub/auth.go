package nomadstub

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Scopes the PAT endpoints require (nomad-pat-api.md §2).
const (
	scopeTokensCreate = "tokens:create"
	scopeTokensRead   = "tokens:read"
	scopeTokensDelete = "tokens:delete"
)

// caller is an authenticated principal. A nil scopes set means every scope (a Keycloak token).
type caller struct {
	userID string
	scopes map[string]bool
}

func (c *caller) has(scope string) bool { return c.scopes == nil || c.scopes[scope] }

// AddUser registers a Keycloak account for the password grant and returns its user_id (the `sub`).
// Adding an existing username changes its password and keeps its id and tokens.
func (s *Server) AddUser(username, password string) (userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.st.usersByName[username]; ok {
		u.password = password
		return u.id
	}
	return s.addUserLocked(username, password, false).id
}

// addUserLocked registers a new account. Caller holds s.mu.
func (s *Server) addUserLocked(username, password string, realmOnly bool) *user {
	u := &user{id: newUserID(), name: username, password: password, realmOnly: realmOnly}
	s.st.usersByName[username] = u
	s.st.usersByID[u.id] = u
	return u
}

// SetPassword changes the password of an existing account, as a Keycloak admin would; it reports
// false (and adds no one) for an unknown username. Access tokens issued before stay valid until they
// expire, as Keycloak's do; ExpireAccessTokens ends them.
func (s *Server) SetPassword(username, password string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.usersByName[username]
	if ok {
		u.password = password
	}
	return ok
}

// ExpireAccessTokens invalidates every access token issued so far, as if they had all passed their
// `exp`; tokens issued afterwards are valid again. It exercises a client's retry-once-on-401.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.tokens = map[string]accessToken{}
	s.realm.live = map[string]time.Time{}
}

// issueAccessToken performs the "Keycloak" side of the password grant. Caller holds s.mu.
func (s *Server) issueAccessToken(userID string) (string, time.Duration) {
	tok := newAccessToken()
	s.st.tokens[tok] = accessToken{userID: userID, expires: s.clock.Now().Add(s.accessTokenTTL)}
	s.st.issuedTo[tok] = userID
	return tok, s.accessTokenTTL
}

// bearerCredential extracts the token the way NOMAD's dependencies do: the Authorization header
// (scheme case-insensitive; anything but Bearer is no credential), else, for Keycloak tokens only,
// the `Authorization=Bearer%20<jwt>` cookie the GUI sets.
func bearerCredential(r *http.Request) (token string, fromHeader bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, param, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "bearer") {
			return strings.TrimSpace(param), true
		}
		return "", false
	}
	if c, err := r.Cookie("Authorization"); err == nil {
		v, err := url.QueryUnescape(c.Value)
		if err != nil {
			v = c.Value
		}
		return strings.TrimPrefix(v, "Bearer "), false
	}
	return "", false
}

// authenticate resolves the caller (nomad-pat-api.md §2). It returns (nil, true) for an anonymous
// caller and writes the 401 itself (returning false) for an unknown, forged or expired Keycloak
// token (the stand-in's opaque ones from /auth/token, or the realm's RS256 JWTs), and the 403 for
// a token whose user NOMAD does not know.
// A good PAT gets its stored scopes and its last_used_at is set, exactly as NOMAD does even when
// the request then fails its scope check. Caller holds s.mu.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*caller, bool) {
	token, fromHeader := bearerCredential(r)
	if token == "" {
		return nil, true
	}
	now := s.clock.Now()
	if strings.HasPrefix(token, patPrefix) {
		// V-B/C skip the Keycloak path for PATs, and read PATs from the header only. A bad PAT
		// is no error of its own: the caller is just anonymous.
		if !fromHeader {
			return nil, true
		}
		p := s.st.byDigest[digestOf(token)]
		if p == nil || !p.activeAt(now) || s.st.usersByID[p.userID] == nil {
			return nil, true
		}
		used := storedTime(now)
		p.lastUsedAt = &used
		scopes := make(map[string]bool, len(p.scopes))
		for _, sc := range p.scopes {
			scopes[sc] = true
		}
		return &caller{userID: p.userID, scopes: scopes}, true
	}
	userID, ok := "", false
	if looksLikeJWT(token) {
		userID, ok = s.verifyRealmAccessToken(r, token, now)
	} else if at, known := s.st.tokens[token]; known && now.Before(at.expires) {
		userID, ok = at.userID, true
	}
	if !ok {
		writeUnauthorized(w, detailInvalidKeycloak, "Bearer")
		return nil, false
	}
	return s.nomadUser(w, userID)
}

// authorize is NOMAD's get_current_user(required, allow_anonymous=False): 401 for anonymous
// callers, then 403 naming the missing scopes as a sorted Python list. Caller holds s.mu.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, required ...string) (*caller, bool) {
	c, ok := s.authenticate(w, r)
	if !ok {
		return nil, false
	}
	if c == nil {
		writeUnauthorized(w, detailAuthRequired, "Bearer")
		return nil, false
	}
	var missing []string
	for _, sc := range required {
		if !c.has(sc) {
			missing = append(missing, sc)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		writeDetail(w, http.StatusForbidden, "Missing scopes: "+pyList(missing))
		return nil, false
	}
	return c, true
}
