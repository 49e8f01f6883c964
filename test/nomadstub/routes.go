package nomadstub

import (
	"net/http"
	"sort"
	"strings"
)

// Operation names, as counted by Calls and targeted by InjectFault.
const (
	OpLogin   = "login"
	OpCreate  = "create"
	OpList    = "list"
	OpGet     = "get"
	OpRevoke  = "revoke"
	OpRotate  = "rotate"
	OpOpenAPI = "openapi"
	// OpRealmToken is the Keycloak realm's token endpoint (every grant type; see Grants).
	OpRealmToken = "realm_token"
)

// allOps lists every operation, so Calls and the admin state always show all of them.
var allOps = []string{OpLogin, OpCreate, OpList, OpGet, OpRevoke, OpRotate, OpOpenAPI, OpRealmToken}

// Path prefixes of the PAT router relative to the v1 app: the documented one and the one every
// published NOMAD source version actually serves (the auth router is mounted at /auth).
const (
	patsPrefix     = "/pats"
	authPatsPrefix = "/auth/pats"
)

// opHandler handles one matched operation; id is the {pat_id} path parameter, if any.
type opHandler func(w http.ResponseWriter, r *http.Request, id string)

// routeEntry is one path template of the v1 app with its methods, in FastAPI registration order.
type routeEntry struct {
	template string // "{pat_id}" matches one non-empty path segment, like Starlette's default convertor
	methods  map[string]string
	anyVerb  string // op served for every method (FastAPI's openapi route has no method filter)
}

// routes is the v1 URL space the stand-in serves right now (the PAT prefixes can be switched).
func (s *Server) routes() []routeEntry {
	s.mu.Lock()
	pats, authPats := s.servePats, s.serveAuthPats
	s.mu.Unlock()
	rs := []routeEntry{
		{template: "/openapi.json", anyVerb: OpOpenAPI},
		{template: "/auth/token", methods: map[string]string{http.MethodPost: OpLogin}},
	}
	for _, p := range enabledPrefixes(pats, authPats) {
		rs = append(rs,
			routeEntry{template: p, methods: map[string]string{http.MethodPost: OpCreate, http.MethodGet: OpList}},
			routeEntry{template: p + "/{pat_id}", methods: map[string]string{http.MethodGet: OpGet, http.MethodDelete: OpRevoke}},
			routeEntry{template: p + "/{pat_id}/rotate", methods: map[string]string{http.MethodPost: OpRotate}},
		)
	}
	return rs
}

// enabledPrefixes lists the PAT prefixes being served, documented form first.
func enabledPrefixes(pats, authPats bool) []string {
	var out []string
	if pats {
		out = append(out, patsPrefix)
	}
	if authPats {
		out = append(out, authPatsPrefix)
	}
	return out
}

// matchTemplate matches a path against a template and returns the {pat_id} value.
func matchTemplate(template, path string) (id string, ok bool) {
	ts := strings.Split(template, "/")
	ps := strings.Split(path, "/")
	if len(ts) != len(ps) {
		return "", false
	}
	for i := range ts {
		switch {
		case ts[i] == "{pat_id}":
			if ps[i] == "" {
				return "", false
			}
			id = ps[i]
		case ts[i] != ps[i]:
			return "", false
		}
	}
	return id, true
}

// serveV1 routes a request inside the v1 app the way Starlette does: full match → handler; path
// match with another method → 405; no match but the path without trailing slashes matches → 307;
// otherwise 404. rel is the path below {base}/v1.
func (s *Server) serveV1(w http.ResponseWriter, r *http.Request, rel string) {
	routes := s.routes()
	for _, rt := range routes {
		id, ok := matchTemplate(rt.template, rel)
		if !ok {
			continue
		}
		op := rt.anyVerb
		if op == "" {
			op = rt.methods[r.Method]
		}
		if op == "" {
			w.Header().Set("Allow", allowHeader(rt.methods))
			writeDetail(w, http.StatusMethodNotAllowed, detailMethodNotAllowed)
			return
		}
		s.serveOp(w, r, op, s.handlerFor(op), id)
		return
	}
	if trimmed := strings.TrimRight(rel, "/"); trimmed != rel && rel != "/" {
		for _, rt := range routes {
			if _, ok := matchTemplate(rt.template, trimmed); ok {
				redirectSlash(w, r, s.base+"/v1"+trimmed)
				return
			}
		}
	}
	writeDetail(w, http.StatusNotFound, detailNotFound)
}

func (s *Server) handlerFor(op string) opHandler {
	switch op {
	case OpLogin:
		return s.handleLogin
	case OpCreate:
		return s.handleCreate
	case OpList:
		return s.handleList
	case OpGet:
		return s.handleGet
	case OpRevoke:
		return s.handleRevoke
	case OpRotate:
		return s.handleRotate
	default:
		return s.handleOpenAPI
	}
}

// allowHeader lists a route's methods. (Starlette names only the first partially matching route's
// methods; listing every method of the path is more useful and no client depends on it.)
func allowHeader(methods map[string]string) string {
	ms := make([]string, 0, len(methods))
	for m := range methods {
		ms = append(ms, m)
	}
	sort.Strings(ms)
	return strings.Join(ms, ", ")
}

// redirectSlash answers Starlette's redirect_slashes 307 with an absolute Location built from the
// request's own view of scheme and host, keeping the query string.
func redirectSlash(w http.ResponseWriter, r *http.Request, path string) {
	u := requestBaseURL(r) + path
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", u)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// requestBaseURL is scheme://host as the server sees the request (NOMAD's page URLs and redirects
// use the same internal view).
func requestBaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
