// Package nomad is the operator's client for NOMAD's Personal Access Token (PAT) API
// (the FAIR materials-science data platform, not HashiCorp Nomad).
//
// Only a Keycloak access token of NOMAD's realm may manage PATs, so every client signs in and caches
// the access token it gets, in one of three ways (Config.Method): a bot account's username and
// password through NOMAD's own /auth/token endpoint, or directly at the realm's token endpoint
// (found by OpenID discovery) with a refresh token or as a confidential client's service account.
// A refresh token the realm rotates is handed back (OIDCConfig.RefreshTokenRotated) before the
// access token obtained with it is used.
// The raw PAT returned by Create and Rotate is held only in IssuedToken.RawToken; it never appears in
// an error string, a log line or a String() method of this package.
package nomad

import (
	"context"
	"time"
)

// Client is the small, task-level view of NOMAD's PAT API that the controllers use.
// The HTTP implementation is HTTPClient; tests use the fake package or the stand-in server.
type Client interface {
	// Create mints a new PAT. The raw token is in the result and nowhere else, ever.
	Create(ctx context.Context, req CreateRequest) (*IssuedToken, error)
	// Get inspects one PAT by id. A missing, pruned or foreign id is an *Error with Code NotFound.
	Get(ctx context.Context, id string) (*PAT, error)
	// List returns every PAT matching opts, following pages until the last one.
	List(ctx context.Context, opts ListOptions) ([]PAT, error)
	// Revoke revokes a PAT. Revoking an already revoked or pruned (404) PAT is success.
	Revoke(ctx context.Context, id string) error
	// Rotate calls NOMAD's rotate endpoint, which revokes the old PAT *before* it validates and creates
	// the new one (see nomad-pat-api.md §5: a 400 may leave the user with no token at all).
	Rotate(ctx context.Context, id string) (*IssuedToken, error)
	// Check signs in and resolves the PAT path prefix; it is what NomadConnection readiness reports.
	Check(ctx context.Context) (PATPath, error)
	// ResolvedPATPath is the PAT path in use now ("" while none is known): after a PAT route
	// answered 404 and the path was detected again, it is the new one.
	ResolvedPATPath() PATPath
	// SignInState is what the last successful sign-in showed (false before any): the account, when,
	// and when the refresh token ends. It makes no call.
	SignInState() (SignIn, bool)
	// HoldsRefreshToken reports whether rt is the refresh token the client started from or one it
	// received since (and handed to OIDCConfig.RefreshTokenRotated): a Secret holding it was written
	// by the operator itself, so it is no new credential and the client must not be replaced.
	HoldsRefreshToken(rt string) bool
	// LiveRefreshToken is the refresh token the client sends next ("" for other methods). It differs
	// from the Secret's while a rotated one is not stored yet; the realm takes only the live one.
	LiveRefreshToken() string
	// Account identifies the NOMAD user the client acts as, without naming it (a hash of the API root
	// and the username, the user's sub, or the OIDC client: see HTTPClient.Account). PATs belong to
	// one user: any other gets 404 for them, as for a pruned PAT.
	Account() string
	// ClockOffset is how far NOMAD's clock is ahead of the client's (negative: behind), as NOMAD's
	// last answer showed it, estimated low; ok is false before any answer showed it. It makes no call.
	ClockOffset() (offset time.Duration, ok bool)
}

// PATPath is where the PAT routes live under the API root: NOMAD's docs say /v1/pats,
// every published source version serves /v1/auth/pats.
type PATPath string

const (
	PATPathAuto     PATPath = "Auto"     // detect from openapi.json, else by a 404 probe
	PATPathPats     PATPath = "Pats"     // {api}/v1/pats (the documented form)
	PATPathAuthPats PATPath = "AuthPats" // {api}/v1/auth/pats (the published source)
)

// PATPrefix starts every raw PAT; NOMAD routes a bearer value to PAT authentication by it.
const PATPrefix = "nomad_pat_"

// PAT is NOMAD's PATResponse. Times are UTC; a nil ExpiresAt means the PAT never expires.
type PAT struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Scopes      []string   `json:"scopes"`
	Revoked     bool       `json:"revoked"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expired_at,omitempty"`
	LastUsedAt  *time.Time `json:"last_used_at,omitempty"`
}

// Active reports whether the PAT can authenticate at now: not revoked, and not past its expiry.
func (p *PAT) Active(now time.Time) bool {
	if p.Revoked {
		return false
	}
	return p.ExpiresAt == nil || !now.After(*p.ExpiresAt)
}

// IssuedToken is what Create and Rotate return: the PAT and its raw secret, shown this one time only.
type IssuedToken struct {
	PAT      PAT
	RawToken string
}

// String never shows the raw token, so an accidental %v in a log line cannot leak it.
func (t IssuedToken) String() string { return "IssuedToken{id=" + t.PAT.ID + ", raw=<redacted>}" }

// GoString keeps %#v from printing the raw token as well.
func (t IssuedToken) GoString() string { return t.String() }

// CreateRequest is the body of POST {pats}. ExpiresInDays nil means "never expires", which NOMAD
// refuses unless its max lifetime is unset; the operator always sends a number.
type CreateRequest struct {
	Name          string
	Description   string
	Scopes        []string
	ExpiresInDays *int
}

// ListOptions are the list filters the operator needs (nomad-pat-api.md §4.2). Zero values are omitted.
type ListOptions struct {
	Search        string    // case-insensitive substring of the name
	State         string    // "active" or "inactive"
	CreatedAfter  time.Time // inclusive
	CreatedBefore time.Time // inclusive
	PageSize      int       // 0 means the client's default (100)
}
