package nomadstub

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
)

// JWT encoding, written out by hand so the stand-in needs no JOSE dependency: access and ID
// tokens are RS256 (what NOMAD verifies against the realm's JWKS), refresh tokens HS256 with a
// realm secret (Keycloak signs them with a realm HMAC key; clients must treat them as opaque).

var b64 = base64.RawURLEncoding

// realmKeys is the realm's signing material. It is made on first use rather than in New: a 2048-bit
// RSA key costs tens of milliseconds, and most Servers (fuzz inputs, PAT-only tests) never sign.
type realmKeys struct {
	once   sync.Once
	rsa    *rsa.PrivateKey
	kid    string
	hmac   []byte // refresh-token key
	jwkSet []byte // the JWKS document, fixed once the key exists
}

func (k *realmKeys) init() {
	k.once.Do(func() {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic("nomadstub: rsa.GenerateKey: " + err.Error())
		}
		k.rsa = key
		n := b64.EncodeToString(key.N.Bytes())
		e := b64.EncodeToString(big.NewInt(int64(key.E)).Bytes())
		sum := sha256.Sum256([]byte(n))
		k.kid = b64.EncodeToString(sum[:16]) // stable for the key's life, like Keycloak's key id
		k.hmac = make([]byte, 32)
		fillRandom(k.hmac)
		k.jwkSet, _ = json.Marshal(map[string]any{"keys": []map[string]string{{
			"kid": k.kid, "kty": "RSA", "alg": "RS256", "use": "sig", "n": n, "e": e,
		}}})
	})
}

// jwks is the JSON Web Key Set served at .../protocol/openid-connect/certs.
func (k *realmKeys) jwks() []byte { k.init(); return k.jwkSet }

// signRS256 encodes claims as a compact JWS with the realm's RSA key.
func (k *realmKeys) signRS256(claims any) string {
	k.init()
	input := encodeSegments(map[string]string{"alg": "RS256", "typ": "JWT", "kid": k.kid}, claims)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.rsa, crypto.SHA256, sum[:])
	if err != nil {
		panic("nomadstub: rsa.SignPKCS1v15: " + err.Error())
	}
	return input + "." + b64.EncodeToString(sig)
}

// signHS256 encodes claims as a compact JWS with the realm's HMAC key.
func (k *realmKeys) signHS256(claims any) string {
	k.init()
	input := encodeSegments(map[string]string{"alg": "HS256", "typ": "JWT"}, claims)
	return input + "." + b64.EncodeToString(k.mac(input))
}

func (k *realmKeys) mac(input string) []byte {
	m := hmac.New(sha256.New, k.hmac)
	m.Write([]byte(input))
	return m.Sum(nil)
}

func encodeSegments(header map[string]string, claims any) string {
	h, _ := json.Marshal(header)
	c, err := json.Marshal(claims)
	if err != nil {
		panic("nomadstub: marshal claims: " + err.Error())
	}
	return b64.EncodeToString(h) + "." + b64.EncodeToString(c)
}

var errBadJWT = errors.New("invalid token")

// jwtHeader is the part of a JOSE header the stand-in looks at.
type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// splitJWT decodes a compact JWS without verifying it: header, claims into dst, signing input and
// signature. dst may be nil.
func splitJWT(token string, dst any) (h jwtHeader, input string, sig []byte, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return h, "", nil, errBadJWT
	}
	hb, err1 := b64.DecodeString(parts[0])
	cb, err2 := b64.DecodeString(parts[1])
	sig, err3 := b64.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &h) != nil {
		return h, "", nil, errBadJWT
	}
	if dst != nil && json.Unmarshal(cb, dst) != nil {
		return h, "", nil, errBadJWT
	}
	return h, parts[0] + "." + parts[1], sig, nil
}

// verifyRS256 checks a token's alg, kid and signature against the realm's key and decodes its
// claims into dst: what NOMAD does with the JWKS it fetched (expiry and issuer are the caller's).
func (k *realmKeys) verifyRS256(token string, dst any) error {
	k.init()
	h, input, sig, err := splitJWT(token, dst)
	if err != nil || h.Alg != "RS256" || h.Kid != k.kid {
		return errBadJWT
	}
	sum := sha256.Sum256([]byte(input))
	if rsa.VerifyPKCS1v15(&k.rsa.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		return errBadJWT
	}
	return nil
}

// verifyHS256 checks a refresh token's signature and decodes its claims into dst.
func (k *realmKeys) verifyHS256(token string, dst any) error {
	k.init()
	h, input, sig, err := splitJWT(token, dst)
	if err != nil || h.Alg != "HS256" || !hmac.Equal(sig, k.mac(input)) {
		return errBadJWT
	}
	return nil
}

// looksLikeJWT routes a bearer value to JWT validation: three base64url segments, the first a
// JSON object ("eyJ" is base64 of `{"`). The stand-in's opaque tokens never look like this.
func looksLikeJWT(token string) bool {
	return strings.HasPrefix(token, "eyJ") && strings.Count(token, ".") == 2
}
