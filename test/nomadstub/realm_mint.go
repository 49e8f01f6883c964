package nomadstub

import (
	"encoding/hex"
	"time"
)

// Minting the realm's tokens: the one place that decides their claims and lifetimes.

// accessClaims are a realm access token's claims (a subset of Keycloak's).
type accessClaims struct {
	Iss               string `json:"iss"`
	Sub               string `json:"sub"`
	Exp               int64  `json:"exp"`
	Iat               int64  `json:"iat"`
	Jti               string `json:"jti"`
	Typ               string `json:"typ"`
	Azp               string `json:"azp"`
	PreferredUsername string `json:"preferred_username"`
	Scope             string `json:"scope"`
	Sid               string `json:"sid,omitempty"`
}

// idClaims are an ID token's claims.
type idClaims struct {
	Iss               string `json:"iss"`
	Sub               string `json:"sub"`
	Aud               string `json:"aud"`
	Exp               int64  `json:"exp"`
	Iat               int64  `json:"iat"`
	Jti               string `json:"jti"`
	Typ               string `json:"typ"`
	Azp               string `json:"azp"`
	PreferredUsername string `json:"preferred_username"`
	Nonce             string `json:"nonce,omitempty"`
	Sid               string `json:"sid,omitempty"`
}

func newJTI() string {
	var b [16]byte
	fillRandom(b[:])
	return hex.EncodeToString(b[:])
}

// mintTokens answers a successful grant: an access token, a refresh token when there is a
// session (not for client_credentials), and an ID token when openid was granted. The access
// token is registered as live for NOMAD. Caller holds s.mu.
func (s *Server) mintTokens(issuer string, sess *realmSession, u *user, clientID, scope, nonce string) *realmTokenResponse {
	now := s.clock.Now()
	exp := now.Add(s.accessTokenTTL)
	ac := accessClaims{
		Iss: issuer, Sub: u.id, Exp: exp.Unix(), Iat: now.Unix(), Jti: newJTI(), Typ: "Bearer",
		Azp: clientID, PreferredUsername: u.name, Scope: scope,
	}
	resp := &realmTokenResponse{
		ExpiresIn: int(s.accessTokenTTL.Seconds()), TokenType: "Bearer", Scope: scope,
	}
	if sess != nil {
		ac.Sid = sess.id
		resp.SessionState = sess.id
		resp.RefreshToken = s.mintRefreshToken(issuer, sess)
		if end, ok := s.refreshTokenEnd(sess); ok {
			resp.RefreshExpiresIn = int(end.Sub(now).Seconds())
		}
	}
	resp.AccessToken = s.keys.signRS256(ac)
	s.realm.live[ac.Jti] = exp
	s.sweepLive(now)
	s.realm.issuedTo[ac.Jti] = u.id
	if hasScope(scope, scopeOpenID) {
		resp.IDToken = s.keys.signRS256(idClaims{
			Iss: issuer, Sub: u.id, Aud: clientID, Exp: ac.Exp, Iat: ac.Iat, Jti: newJTI(), Typ: "ID",
			Azp: clientID, PreferredUsername: u.name, Nonce: nonce, Sid: ac.Sid,
		})
	}
	return resp
}

// refreshTokenEnd is the `exp` of a refresh token minted now for the session: the SSO idle
// timeout for an online session; for an offline one, only when an offline max lifespan is set
// (then the sooner of idle and max), as Keycloak does. Caller holds s.mu.
func (s *Server) refreshTokenEnd(sess *realmSession) (time.Time, bool) {
	if sess.offline && s.realm.offlineMax <= 0 {
		return time.Time{}, false
	}
	return s.sessionEnd(sess), true
}

// mintRefreshToken signs a new refresh token for the session. Caller holds s.mu.
func (s *Server) mintRefreshToken(issuer string, sess *realmSession) string {
	now := s.clock.Now()
	typ := "Refresh"
	if sess.offline {
		typ = "Offline"
	}
	rc := refreshClaims{
		Iss: issuer, Aud: issuer, Sub: sess.userID, Typ: typ, Azp: sess.clientID, Sid: sess.id,
		Jti: newJTI(), Iat: now.Unix(), Scope: sess.scope,
	}
	if end, ok := s.refreshTokenEnd(sess); ok {
		e := end.Unix()
		rc.Exp = &e
	}
	return s.keys.signHS256(rc)
}

// issuerHint is the issuer for tokens minted outside a request (IssueRefreshToken): built from the
// host of the last request the Server saw, or just the realm path before any request.
func (s *Server) issuerHint() string {
	if b := s.lastBase.Load(); b != nil {
		return *b + s.realmPath()
	}
	return s.realmPath()
}

// liveSweepAt bounds the live-token set of a long-running stand-in: beyond it, expired entries go.
const liveSweepAt = 1 << 12

// sweepLive drops expired tokens from the live set once it has grown. Caller holds s.mu.
func (s *Server) sweepLive(now time.Time) {
	if len(s.realm.live) < liveSweepAt {
		return
	}
	for jti, exp := range s.realm.live {
		if !now.Before(exp) {
			delete(s.realm.live, jti)
		}
	}
}
