package nomad

import (
	"slices"
	"sync"
)

// maxHeldRefreshTokens bounds how many received refresh tokens HoldsRefreshToken remembers (besides
// the starting one). The operator writes each one back at once, so only the last few can still be
// in a Secret (or in an informer cache that lags behind it).
const maxHeldRefreshTokens = 8

// refreshTokens is MethodRefreshToken's memory: the refresh token to send next, the ones received,
// and a rotation not yet written back. Sign-ins change it one at a time (the single-flight login);
// the lock is for HoldsRefreshToken and redaction, which read it from any goroutine.
type refreshTokens struct {
	mu       sync.Mutex
	first    string   // the one the client was built with
	received []string // the latest maxHeldRefreshTokens received, oldest first
	current  string   // the one to send next
	pending  *pendingRotation
}

// pendingRotation is a rotation that RefreshTokenRotated failed to store: the realm has already
// replaced previous by current, and g (signed in with previous) is kept unused until it is stored.
type pendingRotation struct {
	previous, current string
	g                 grant
}

func newRefreshTokens(first string) *refreshTokens {
	return &refreshTokens{first: first, current: first}
}

// next is the refresh token to send.
func (r *refreshTokens) next() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current
}

// receive makes rt the one to send next: at a rotating realm the previous one is dead from now on,
// whatever happens to the write-back.
func (r *refreshTokens) receive(rt string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.current = rt
	if !slices.Contains(r.received, rt) {
		r.received = append(r.received, rt)
		if len(r.received) > maxHeldRefreshTokens {
			r.received = slices.Delete(r.received, 0, len(r.received)-maxHeldRefreshTokens)
		}
	}
}

// holds reports whether rt is the first refresh token or one received since.
func (r *refreshTokens) holds(rt string) bool {
	if rt == "" {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return rt == r.first || slices.Contains(r.received, rt)
}

// all returns every refresh token known, for redaction.
func (r *refreshTokens) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string{r.first}, r.received...)
}

// setPending records a rotation whose write-back failed (nil: none); getPending returns it.
func (r *refreshTokens) setPending(p *pendingRotation) {
	r.mu.Lock()
	r.pending = p
	r.mu.Unlock()
}

func (r *refreshTokens) getPending() *pendingRotation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending
}

// pendingAccessToken is the access token held back by a pending rotation, for redaction.
func (r *refreshTokens) pendingAccessToken() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		return ""
	}
	return r.pending.g.accessToken
}

// String and GoString keep the refresh tokens out of any accidental %v or %#v.
func (r *refreshTokens) String() string   { return "nomad.refreshTokens{<redacted>}" }
func (r *refreshTokens) GoString() string { return r.String() }

// String and GoString keep the tokens of a pending rotation out of any accidental %v or %#v.
func (p *pendingRotation) String() string   { return "nomad.pendingRotation{<redacted>}" }
func (p *pendingRotation) GoString() string { return p.String() }
