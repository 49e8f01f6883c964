package nomad

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
	"unicode"
)

// maxClaimsPayload bounds the JWT payload we decode: Keycloak's tokens are a few KiB.
const maxClaimsPayload = 64 << 10

// maxLabelLength bounds a claim used as a label (an account name in a status field).
const maxLabelLength = 256

// TokenClaims are the few claims read from a Keycloak token. They are read WITHOUT verifying the
// signature: they only label the account (SignIn, Account, what kubectl nomadtoken login prints),
// tell an offline refresh token (Typ "Offline") and estimate when a refresh token ends. NOMAD
// verifies every access token itself; nothing here grants anything.
type TokenClaims struct {
	Sub               string
	PreferredUsername string
	Typ               string    // Keycloak's token type: "Bearer", "Refresh", "Offline", "ID"
	Exp               time.Time // zero when absent or not a sane number
}

// UnverifiedClaims decodes the payload of a JWT. ok is false for an opaque token. Each claim is
// decoded on its own, so that one of an unexpected type does not hide the others.
func UnverifiedClaims(token string) (claims TokenClaims, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(parts[1]) > maxClaimsPayload {
		return TokenClaims{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return TokenClaims{}, false
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(payload, &raw) != nil {
		return TokenClaims{}, false
	}
	var s string
	if json.Unmarshal(raw["sub"], &s) == nil {
		claims.Sub = label(s)
	}
	s = ""
	if json.Unmarshal(raw["preferred_username"], &s) == nil {
		claims.PreferredUsername = label(s)
	}
	s = ""
	if json.Unmarshal(raw["typ"], &s) == nil {
		claims.Typ = label(s)
	}
	var exp float64
	// Year 1 to year 9999: anything else is garbage, and would overflow time.Time arithmetic.
	if json.Unmarshal(raw["exp"], &exp) == nil && exp > 0 && exp < 253402300800 {
		claims.Exp = time.Unix(int64(exp), 0).UTC()
	}
	return claims, true
}

// label keeps a claim fit to be shown: printable, one line, bounded.
func label(s string) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > maxLabelLength {
		s = strings.ToValidUTF8(s[:maxLabelLength], "")
	}
	return s
}
