package nomadstub

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// patPrefix routes a bearer value to PAT authentication (nomad-pat-api.md §6).
const patPrefix = "nomad_pat_"

// user is a Keycloak account: username and password for the password grant, and the `sub` that
// NOMAD uses as user_id.
type user struct {
	id, name, password string
	realmOnly          bool // known to Keycloak, not to NOMAD (see AddRealmOnlyUser)
	requiredAction     bool // a pending Keycloak required action: password grants fail
}

// patRecord is one PAT document. The raw token is never kept, only its SHA-256 digest, so like NOMAD
// the stand-in cannot show a secret twice. Times are stored with millisecond precision (MongoDB).
type patRecord struct {
	id          string
	userID      string
	name        string
	description *string
	scopes      []string
	digest      string
	createdAt   time.Time
	expiredAt   *time.Time
	revoked     bool
	revokedAt   *time.Time
	lastUsedAt  *time.Time
	seq         int64 // insertion order: the deterministic tie-breaker for equal sort keys
}

// activeAt is NOMAD's V-C rule: not revoked, and no expiry or now <= expired_at.
func (p *patRecord) activeAt(now time.Time) bool {
	return !p.revoked && (p.expiredAt == nil || !now.After(*p.expiredAt))
}

// accessToken is an issued "Keycloak" access token: opaque, bound to a user, valid until expires.
type accessToken struct {
	userID  string
	expires time.Time
}

type store struct {
	usersByName map[string]*user
	usersByID   map[string]*user
	pats        map[string]*patRecord // by id
	byDigest    map[string]*patRecord
	tokens      map[string]accessToken
	// issuedTo maps every access token ever issued to its user; ExpireAccessTokens keeps it, so a
	// request with a dropped token is still attributed in the request log.
	issuedTo   map[string]string
	seq        int64
	oidProcess [5]byte // ObjectId's per-process random part
	oidCounter uint32
}

func newStore() store {
	st := store{
		usersByName: map[string]*user{},
		usersByID:   map[string]*user{},
		pats:        map[string]*patRecord{},
		byDigest:    map[string]*patRecord{},
		tokens:      map[string]accessToken{},
		issuedTo:    map[string]string{},
	}
	fillRandom(st.oidProcess[:])
	var c [4]byte
	fillRandom(c[:])
	st.oidCounter = binary.BigEndian.Uint32(c[:]) & 0xffffff
	return st
}

func fillRandom(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("nomadstub: crypto/rand failed: %v", err))
	}
}

// newObjectID builds a MongoDB-style ObjectId (4-byte seconds, 5 random bytes, 3-byte counter),
// so ids sort roughly by creation like NOMAD's and are exactly 24 lowercase hex characters.
func (st *store) newObjectID(now time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:4], uint32(now.Unix()))
	copy(b[4:9], st.oidProcess[:])
	st.oidCounter = (st.oidCounter + 1) & 0xffffff
	b[9], b[10], b[11] = byte(st.oidCounter>>16), byte(st.oidCounter>>8), byte(st.oidCounter)
	return hex.EncodeToString(b[:])
}

// canonicalObjectID mirrors bson's ObjectId(str): exactly 24 hex digits, either case; anything
// else is not an id at all (NOMAD then answers the same 404 as for a missing id).
func canonicalObjectID(id string) (string, bool) {
	if len(id) != 24 {
		return "", false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", false
	}
	return strings.ToLower(id), true
}

// newRawToken is "nomad_pat_" + base64url(32 random bytes) without padding: 53 characters.
func newRawToken() string {
	var b [32]byte
	fillRandom(b[:])
	return patPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// newAccessToken is an opaque bearer that can never be mistaken for a PAT.
func newAccessToken() string {
	var b [32]byte
	fillRandom(b[:])
	return "stub-kc." + base64.RawURLEncoding.EncodeToString(b[:])
}

// newUserID is a UUID v4, the shape of a Keycloak `sub`.
func newUserID() string {
	var b [16]byte
	fillRandom(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func digestOf(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// owned returns the caller's PAT with that id, or nil for a malformed, missing or foreign id:
// NOMAD makes these three indistinguishable on purpose.
func (st *store) owned(userID, id string) *patRecord {
	p := st.byID(id)
	if p == nil || p.userID != userID {
		return nil
	}
	return p
}

// byID returns the PAT with that id, whoever owns it, or nil for a malformed or missing id.
func (st *store) byID(id string) *patRecord {
	oid, ok := canonicalObjectID(id)
	if !ok {
		return nil
	}
	return st.pats[oid]
}

// userPATs returns a user's records, newest first (ties: last inserted first).
func (st *store) userPATs(userID string) []*patRecord {
	var out []*patRecord
	for _, p := range st.pats {
		if p.userID == userID {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].createdAt.Equal(out[j].createdAt) {
			return out[i].createdAt.After(out[j].createdAt)
		}
		return out[i].seq > out[j].seq
	})
	return out
}

func (st *store) countActive(userID string, now time.Time) int {
	n := 0
	for _, p := range st.pats {
		if p.userID == userID && p.activeAt(now) {
			n++
		}
	}
	return n
}

// revoke flags a PAT as NOMAD V-B/C do: revoked_at is set once, expired_at is left alone, and a
// second revoke changes nothing.
func (p *patRecord) revoke(now time.Time) {
	if p.revoked {
		return
	}
	p.revoked = true
	t := storedTime(now)
	p.revokedAt = &t
}
