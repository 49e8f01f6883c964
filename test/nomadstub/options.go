package nomadstub

import (
	"strings"
	"time"

	"k8s.io/utils/clock"
)

// Defaults of a stock NOMAD Oasis (config `auth.*` and the docker-compose Keycloak realm).
const (
	DefaultBasePath         = "/nomad-oasis/api"
	DefaultMaxLifetimeDays  = 365
	DefaultMaxActivePerUser = 100
	DefaultAccessTokenTTL   = 300 * time.Second
)

// Options configures a Server. The zero value is usable and means: default base path, real clock,
// infinite tokens allowed (MaxLifetimeDays nil), 100 active PATs per user, 300 s access tokens, both
// PAT prefixes served, V-B/C list envelope. DefaultOptions gives NOMAD's stock configuration.
type Options struct {
	BasePath         string             // default "/nomad-oasis/api" when ""; "/" serves at the root
	Clock            clock.PassiveClock // default clock.RealClock{}
	MaxLifetimeDays  *int               // nil = infinite tokens allowed; use DefaultOptions() for 365
	MaxActivePerUser int                // default 100 when 0
	AccessTokenTTL   time.Duration      // default 300s when 0
	DisablePats      bool               // do not serve {base}/v1/pats
	DisableAuthPats  bool               // do not serve {base}/v1/auth/pats
	LegacyList       bool               // V-A bare-array list
	Realm            string             // Keycloak realm name, default "nomad"
}

// DefaultOptions is NOMAD's stock configuration: pat_max_lifetime = 365 days, everything else default.
func DefaultOptions() Options {
	return Options{MaxLifetimeDays: intPtr(DefaultMaxLifetimeDays)}
}

func intPtr(v int) *int { return &v }

// withDefaults fills zero values. An empty BasePath means the default, not the root; pass "/" to
// serve at the root.
func (o Options) withDefaults() Options {
	if o.BasePath == "" {
		o.BasePath = DefaultBasePath
	}
	o.BasePath = normalizeBasePath(o.BasePath)
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.MaxActivePerUser == 0 {
		o.MaxActivePerUser = DefaultMaxActivePerUser
	}
	if o.Realm == "" {
		o.Realm = DefaultRealm
	}
	if o.AccessTokenTTL == 0 {
		o.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if o.MaxLifetimeDays != nil {
		o.MaxLifetimeDays = intPtr(*o.MaxLifetimeDays) // the caller's pointer must not alias our state
	}
	return o
}

// normalizeBasePath gives "/a/b" for "a/b/", and "" for "/" so that routes are base+"/v1/...".
func normalizeBasePath(p string) string {
	p = strings.TrimRight(strings.TrimSpace(p), "/")
	if p != "" && !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}
