package nomadstub

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// adminPrefix is outside every NOMAD URL (NOMAD's routes all live under {base}/v1), so the
// admin surface can never shadow or be confused with the API under test.
const adminPrefix = "/_stub/"

// serveAdmin is the control surface for the binary and e2e tests. Mutations answer 204, reads
// JSON; problems answer 4xx {"detail": "..."}.
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	type route struct {
		method string
		handle func(http.ResponseWriter, *http.Request)
	}
	routes := map[string][]route{
		"state":                {{http.MethodGet, s.adminState}},
		"clock/advance":        {{http.MethodPost, s.adminAdvance}},
		"authenticates":        {{http.MethodPost, s.adminAuthenticates}},
		"faults":               {{http.MethodPost, s.adminInjectFault}, {http.MethodDelete, s.adminClearFaults}},
		"revoke":               {{http.MethodPost, s.adminRevoke}},
		"prune":                {{http.MethodPost, s.adminPrune}},
		"config":               {{http.MethodPost, s.adminConfig}},
		"expire-access-tokens": {{http.MethodPost, s.adminExpireAccessTokens}},
		"users":                {{http.MethodPost, s.adminAddUser}},
		"calls":                {{http.MethodGet, s.adminCalls}, {http.MethodDelete, s.adminResetCalls}},
		"inflight":             {{http.MethodGet, s.adminInFlight}},
		// The Keycloak realm (realm_admin.go).
		"realm":                 {{http.MethodGet, s.adminRealm}},
		"realm/clients":         {{http.MethodPost, s.adminAddClient}},
		"realm/direct-grants":   {{http.MethodPost, s.adminDirectGrants}},
		"realm/config":          {{http.MethodPost, s.adminRealmConfig}},
		"realm/refresh-tokens":  {{http.MethodPost, s.adminIssueRefreshToken}},
		"realm/revoke-sessions": {{http.MethodPost, s.adminRevokeSessions}},
		"realm/required-action": {{http.MethodPost, s.adminRequiredAction}},
		"realm/authorize-user":  {{http.MethodPost, s.adminAuthorizeUser}},
		"realm/users":           {{http.MethodPost, s.adminRealmOnlyUser}},
	}
	rs, ok := routes[strings.Trim(strings.TrimPrefix(r.URL.Path, adminPrefix), "/")]
	if !ok {
		writeDetail(w, http.StatusNotFound, detailNotFound)
		return
	}
	for _, rt := range rs {
		if rt.method == r.Method {
			rt.handle(w, r)
			return
		}
	}
	writeDetail(w, http.StatusMethodNotAllowed, detailMethodNotAllowed)
}

// State is GET /_stub/state: the whole store as a test would want to assert on it. Tests that run the
// stand-in's binary decode it with this same type.
type State struct {
	Now    string               `json:"now"`
	Config StateConfig          `json:"config"`
	Users  map[string]UserState `json:"users"`
	// Calls counts requests per operation: login, create, list, get, revoke, rotate, openapi.
	Calls map[string]int `json:"calls"`
	// InFlight counts, per operation, the requests being handled at this moment (see Server.InFlight).
	InFlight map[string]int `json:"in_flight"`
	// Realm is the Keycloak realm: settings, clients, sessions and grant counts.
	Realm RealmState `json:"realm"`
}

// StateConfig is the stand-in's current configuration.
type StateConfig struct {
	BasePath         string `json:"base_path"`
	MaxLifetimeDays  *int   `json:"max_lifetime_days"`
	MaxActivePerUser int    `json:"max_active_per_user"`
	AccessTokenTTL   string `json:"access_token_ttl"`
	Pats             bool   `json:"pats"`
	AuthPats         bool   `json:"auth_pats"`
	LegacyList       bool   `json:"legacy_list"`
}

// UserState is one account's PATs.
type UserState struct {
	UserID string     `json:"user_id"`
	PATs   []PATState `json:"pats"`
	// RealmOnly: Keycloak knows the account, NOMAD does not. RequiredAction: a pending Keycloak
	// required action makes its password grants fail.
	RealmOnly      bool `json:"realm_only,omitempty"`
	RequiredAction bool `json:"required_action,omitempty"`
}

// PATState is one PAT record with its state now; the raw token is never part of it.
type PATState struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description *string  `json:"description"`
	Scopes      []string `json:"scopes"`
	Revoked     bool     `json:"revoked"`
	Active      bool     `json:"active"`
	CreatedAt   string   `json:"created_at"`
	ExpiredAt   *string  `json:"expired_at"`
	LastUsedAt  *string  `json:"last_used_at"`
	RevokedAt   *string  `json:"revoked_at"`
}

func (s *Server) adminState(w http.ResponseWriter, r *http.Request) {
	calls := s.Calls()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	st := State{
		Now: formatTime(now),
		Config: StateConfig{
			BasePath: s.base, MaxLifetimeDays: s.maxLifetimeDays, MaxActivePerUser: s.maxActivePerUser,
			AccessTokenTTL: s.accessTokenTTL.String(), Pats: s.servePats, AuthPats: s.serveAuthPats, LegacyList: s.legacyList,
		},
		Users:    map[string]UserState{},
		Calls:    calls,
		InFlight: s.InFlight(),
		Realm:    s.realmStateLocked(r),
	}
	for name, u := range s.st.usersByName {
		us := UserState{UserID: u.id, PATs: []PATState{}, RealmOnly: u.realmOnly, RequiredAction: u.requiredAction}
		for _, p := range s.st.userPATs(u.id) {
			us.PATs = append(us.PATs, PATState{
				ID: p.id, Name: p.name, Description: p.description, Scopes: p.scopes, Revoked: p.revoked,
				Active: p.activeAt(now), CreatedAt: formatTime(p.createdAt), ExpiredAt: formatTimePtr(p.expiredAt),
				LastUsedAt: formatTimePtr(p.lastUsedAt), RevokedAt: formatTimePtr(p.revokedAt),
			})
		}
		st.Users[name] = us
	}
	writeJSON(w, http.StatusOK, st)
}

// adminAdvance moves an OffsetClock; any other clock (a test's FakeClock, the real clock) is not
// the stand-in's to move, hence 409.
func (s *Server) adminAdvance(w http.ResponseWriter, r *http.Request) {
	oc, ok := s.clock.(*OffsetClock)
	if !ok {
		writeDetail(w, http.StatusConflict, "the stand-in's clock is not an OffsetClock")
		return
	}
	d, err := time.ParseDuration(r.URL.Query().Get("by"))
	if err != nil {
		writeDetail(w, http.StatusBadRequest, "by: want a Go duration such as 90m or 720h")
		return
	}
	oc.Advance(d)
	writeJSON(w, http.StatusOK, map[string]any{"now": formatTime(oc.Now()), "offset": oc.Offset().String()})
}

func (s *Server) adminAuthenticates(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err != nil {
		writeDetail(w, http.StatusBadRequest, "cannot read body")
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"active": s.Authenticates(strings.TrimSpace(string(raw)))})
}

// adminInjectFault is POST /_stub/faults?op=create&times=1&status=503&retry_after=2s
// &lose_response=true&delay=1s&hold=200ms&hang=true&detail=...; times defaults to 1 (-1: until DELETE).
func (s *Server) adminInjectFault(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	op := q.Get("op")
	if !slices.Contains(allOps, op) {
		writeDetail(w, http.StatusBadRequest, "op: want one of "+strings.Join(allOps, ", "))
		return
	}
	times, f, err := parseFaultQuery(q.Get("times"), q.Get("status"), q.Get("retry_after"), q.Get("lose_response"), q.Get("delay"), q.Get("hold"), q.Get("hang"))
	if err != "" {
		writeDetail(w, http.StatusBadRequest, err)
		return
	}
	f.Detail = q.Get("detail")
	s.InjectFault(op, times, f)
	w.WriteHeader(http.StatusNoContent)
}

func parseFaultQuery(times, status, retryAfter, lose, delay, hold, hang string) (int, Fault, string) {
	var f Fault
	n := 1
	var err error
	if times != "" {
		if n, err = strconv.Atoi(times); err != nil {
			return 0, f, "times: want an integer"
		}
	}
	if status != "" {
		if f.Status, err = strconv.Atoi(status); err != nil || f.Status < 100 || f.Status > 599 {
			return 0, f, "status: want an HTTP status code"
		}
	}
	if retryAfter != "" {
		if f.RetryAfter, err = parseSecondsOrDuration(retryAfter); err != nil {
			return 0, f, "retry_after: want a Go duration or whole seconds"
		}
	}
	if lose != "" {
		if f.LoseResponse, err = strconv.ParseBool(lose); err != nil {
			return 0, f, "lose_response: want true or false"
		}
	}
	if delay != "" {
		if f.Delay, err = parseSecondsOrDuration(delay); err != nil {
			return 0, f, "delay: want a Go duration or whole seconds"
		}
	}
	if hold != "" {
		if f.Hold, err = parseSecondsOrDuration(hold); err != nil || f.Hold < 0 {
			return 0, f, "hold: want a Go duration or whole seconds"
		}
	}
	if hang != "" {
		if f.Hang, err = strconv.ParseBool(hang); err != nil {
			return 0, f, "hang: want true or false"
		}
	}
	if f.Status == 0 && !f.LoseResponse && f.Delay == 0 && f.Hold == 0 && !f.Hang {
		return 0, f, "a fault needs status, lose_response, delay, hold or hang"
	}
	return n, f, ""
}

// parseSecondsOrDuration accepts "2s"/"1m30s" and, like a Retry-After header, bare seconds "2".
func parseSecondsOrDuration(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}

func (s *Server) adminClearFaults(w http.ResponseWriter, _ *http.Request) {
	s.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminRevoke(w http.ResponseWriter, r *http.Request) {
	if !s.RevokePAT(r.URL.Query().Get("id")) {
		writeDetail(w, http.StatusNotFound, "no PAT with that id")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminPrune(w http.ResponseWriter, r *http.Request) {
	if !s.PrunePAT(r.URL.Query().Get("id")) {
		writeDetail(w, http.StatusNotFound, "no PAT with that id")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminConfig is POST /_stub/config?max_lifetime_days=N|none&max_active=N&pats=B&auth_pats=B
// &legacy_list=B. Every parameter is optional; nothing changes unless all of them parse.
func (s *Server) adminConfig(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var apply []func()
	fail := func(msg string) { writeDetail(w, http.StatusBadRequest, msg) }
	if v, ok := lastParam(q, "max_lifetime_days"); ok {
		if strings.EqualFold(v, "none") || strings.EqualFold(v, "null") {
			apply = append(apply, func() { s.SetMaxLifetimeDays(nil) })
		} else if n, err := strconv.Atoi(v); err == nil && n > 0 {
			apply = append(apply, func() { s.SetMaxLifetimeDays(&n) })
		} else {
			fail("max_lifetime_days: want a positive integer or none")
			return
		}
	}
	if v, ok := lastParam(q, "max_active"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			fail("max_active: want a positive integer")
			return
		}
		apply = append(apply, func() { s.SetMaxActivePerUser(n) })
	}
	pats, authPats := s.paths()
	for _, b := range []struct {
		key string
		dst *bool
	}{{"pats", &pats}, {"auth_pats", &authPats}} {
		if v, ok := lastParam(q, b.key); ok {
			on, err := strconv.ParseBool(v)
			if err != nil {
				fail(b.key + ": want true or false")
				return
			}
			*b.dst = on
		}
	}
	apply = append(apply, func() { s.SetPaths(pats, authPats) })
	if v, ok := lastParam(q, "legacy_list"); ok {
		on, err := strconv.ParseBool(v)
		if err != nil {
			fail("legacy_list: want true or false")
			return
		}
		apply = append(apply, func() { s.SetLegacyList(on) })
	}
	for _, f := range apply {
		f()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) paths() (pats, authPats bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.servePats, s.serveAuthPats
}

func (s *Server) adminExpireAccessTokens(w http.ResponseWriter, _ *http.Request) {
	s.ExpireAccessTokens()
	w.WriteHeader(http.StatusNoContent)
}

// adminAddUser is POST /_stub/users?username=&password=, for e2e tests that need a second account.
func (s *Server) adminAddUser(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("username")
	if name == "" {
		writeDetail(w, http.StatusBadRequest, "username: required")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"user_id": s.AddUser(name, q.Get("password"))})
}

func (s *Server) adminCalls(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Calls())
}

// adminInFlight is GET /_stub/inflight: the requests each operation is handling right now.
func (s *Server) adminInFlight(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.InFlight())
}

func (s *Server) adminResetCalls(w http.ResponseWriter, _ *http.Request) {
	s.ResetCalls()
	w.WriteHeader(http.StatusNoContent)
}

// ActivePATs are the user's active PATs.
func (st *State) ActivePATs(user string) []PATState {
	var out []PATState
	for _, p := range st.Users[user].PATs {
		if p.Active {
			out = append(out, p)
		}
	}
	return out
}

// PAT finds a user's PAT by id.
func (st *State) PAT(user, id string) (PATState, bool) {
	for _, p := range st.Users[user].PATs {
		if p.ID == id {
			return p, true
		}
	}
	return PATState{}, false
}
