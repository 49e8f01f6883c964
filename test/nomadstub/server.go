package nomadstub

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"
)

// Server is the NOMAD stand-in. It implements http.Handler; every exported method is safe for
// concurrent use with requests in flight.
type Server struct {
	clock clock.PassiveClock // fixed at New
	base  string             // normalised base path, "" for the root; fixed at New

	realmName string                 // fixed at New
	keys      realmKeys              // the realm's signing keys, made on first use
	lastBase  atomic.Pointer[string] // scheme://host of the last request; see issuerHint

	// mu guards everything below. Handlers hold it for the whole operation, so each request is
	// atomic, like NOMAD's single-document MongoDB updates.
	mu sync.Mutex

	maxLifetimeDays  *int
	maxActivePerUser int
	accessTokenTTL   time.Duration
	servePats        bool
	serveAuthPats    bool
	legacyList       bool

	st     store
	realm  realm
	calls  map[string]int
	logins map[string]LoginCount // by username
	faults map[string][]*faultEntry
	hangs  chan struct{} // closed to release the requests held by Hang faults; nil until needed

	inFlight flightGauge // its own lock; see InFlight
	requests requestLog  // its own lock; see Requests
}

// New builds a Server from opts (zero fields get their defaults, see Options).
func New(opts Options) *Server {
	o := opts.withDefaults()
	return &Server{
		clock:            o.Clock,
		base:             o.BasePath,
		realmName:        o.Realm,
		maxLifetimeDays:  o.MaxLifetimeDays,
		maxActivePerUser: o.MaxActivePerUser,
		accessTokenTTL:   o.AccessTokenTTL,
		servePats:        !o.DisablePats,
		serveAuthPats:    !o.DisableAuthPats,
		legacyList:       o.LegacyList,
		st:               newStore(),
		realm:            newRealm(),
		calls:            map[string]int{},
		logins:           map[string]LoginCount{},
		faults:           map[string][]*faultEntry{},
	}
}

// Start serves a new Server on an httptest.Server (HTTP/1.1, so LoseResponse can hijack the
// connection). The caller closes the httptest.Server.
func Start(opts Options) (*Server, *httptest.Server) {
	s := New(opts)
	return s, httptest.NewServer(s)
}

// APIRoot is the URL a NomadConnection's spec.url would hold: serverURL + base path, without "/v1".
func (s *Server) APIRoot(serverURL string) string {
	return strings.TrimRight(serverURL, "/") + s.base
}

// BasePath is the normalised base path ("" when serving at the root).
func (s *Server) BasePath() string { return s.base }

// SetMaxLifetimeDays changes pat_max_lifetime; nil allows never-expiring tokens.
func (s *Server) SetMaxLifetimeDays(days *int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if days == nil {
		s.maxLifetimeDays = nil
		return
	}
	s.maxLifetimeDays = intPtr(*days)
}

// SetMaxActivePerUser changes pat_max_active_per_user (0 restores the default of 100).
func (s *Server) SetMaxActivePerUser(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n == 0 {
		n = DefaultMaxActivePerUser
	}
	s.maxActivePerUser = n
}

// SetPaths switches the two PAT prefixes on and off at runtime ({base}/v1/pats, {base}/v1/auth/pats).
func (s *Server) SetPaths(pats, authPats bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servePats, s.serveAuthPats = pats, authPats
}

// SetLegacyList switches the list endpoint to V-A's bare JSON array.
func (s *Server) SetLegacyList(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.legacyList = on
}

// ServeHTTP dispatches admin routes (/_stub/...), then the Keycloak realm under
// /keycloak/auth/realms/{realm}, then NOMAD's v1 app under {base}/v1, and answers FastAPI's 404
// for everything else.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// NOMAD's Date header is its own clock: clients estimate the skew from it (net/http keeps a Date
	// set by the handler).
	w.Header().Set("Date", s.clock.Now().UTC().Format(http.TimeFormat))
	base := requestBaseURL(r)
	s.lastBase.Store(&base)
	path := r.URL.Path
	if strings.HasPrefix(path, adminPrefix) {
		s.serveAdmin(w, r)
		return
	}
	if rel, ok := s.realmRel(path); ok {
		s.serveRealm(w, r, rel)
		return
	}
	v1 := s.base + "/v1"
	if path == v1 || strings.HasPrefix(path, v1+"/") {
		s.serveV1(w, r, strings.TrimPrefix(path, v1))
		return
	}
	writeDetail(w, http.StatusNotFound, detailNotFound)
}
