package nomad

import (
	"crypto/sha256"
	"encoding/hex"
)

// Account identifies the NOMAD user the client acts as, without naming it: a short hash, stable
// for one user of one NOMAD and different for another. PATs belong to one user, so the controllers
// compare it to tell a pruned PAT from one that belongs to someone else (both give 404).
//
//   - MethodPassword: the API root and the username. Unchanged since before the other methods:
//     stored values (status, intents) depend on it.
//   - MethodRefreshToken: the API root and the user's sub. Keycloak refresh tokens are JWTs whose
//     sub is the user, so it is known before any call and survives rotation (every rotated token
//     has the same sub). For a refresh token that is not a decodable JWT: the sub of the last
//     access token, and before any sign-in the API root, issuer and client (a placeholder that a
//     sign-in replaces).
//   - MethodClientCredentials: the API root, issuer and client: one confidential client signs in
//     as exactly one service-account user.
func (c *HTTPClient) Account() string {
	switch c.method {
	case MethodRefreshToken:
		if c.refreshSub != "" {
			return accountHash(c.root + "\nsub:" + c.refreshSub)
		}
		if st, ok := c.tokens.signInState(); ok && st.UserID != "" {
			return accountHash(c.root + "\nsub:" + st.UserID)
		}
		return accountHash(c.root + "\nissuer:" + c.issuer + "\n" + c.clientID)
	case MethodClientCredentials:
		return accountHash(c.root + "\nclient:" + c.issuer + "\n" + c.clientID)
	}
	return accountHash(c.root + "\n" + c.username)
}

func accountHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// SignInState is what the last successful sign-in showed (false before any). It makes no call.
func (c *HTTPClient) SignInState() (SignIn, bool) { return c.tokens.signInState() }

// HoldsRefreshToken reports whether rt is the refresh token the client started from or one it
// received since (MethodRefreshToken; always false for the other methods).
func (c *HTTPClient) HoldsRefreshToken(rt string) bool {
	return c.refresh != nil && c.refresh.holds(rt)
}

// LiveRefreshToken is the refresh token the client sends at its next refresh ("" for other methods):
// after a rotation whose write-back failed, the only one the realm still takes.
func (c *HTTPClient) LiveRefreshToken() string {
	if c.refresh == nil {
		return ""
	}
	return c.refresh.next()
}
