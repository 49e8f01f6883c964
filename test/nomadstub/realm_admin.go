package nomadstub

import (
	"net/http"
	"sort"
	"strconv"
	"time"
)

// Admin routes for the realm, under /_stub/realm/..., so the e2e suite can drive the binary.
// Like admin.go: mutations answer 204 (or JSON when they create something), problems 4xx
// {"detail": "..."}.

// RealmState is the realm part of GET /_stub/state (and all of GET /_stub/realm). Secrets and
// tokens are never part of it.
type RealmState struct {
	Name                string             `json:"name"`
	Issuer              string             `json:"issuer"` // as seen from the admin request's host
	RotateRefreshTokens bool               `json:"rotate_refresh_tokens"`
	SSOIdle             string             `json:"sso_idle"`
	OfflineIdle         string             `json:"offline_idle"`
	OfflineMax          string             `json:"offline_max"` // "0s" = none
	AuthorizeUser       string             `json:"authorize_user"`
	LastIDPHint         string             `json:"last_idp_hint"`
	Clients             []RealmClientState `json:"clients"`
	// Sessions counts the live sessions (online and offline) per username.
	Sessions map[string]int `json:"sessions"`
	// Grants and GrantFailures count token-endpoint exchanges per grant_type (see Server.Grants).
	Grants        map[string]int `json:"grants"`
	GrantFailures map[string]int `json:"grant_failures"`
}

// RealmClientState is one client, without its secret.
type RealmClientState struct {
	ID                 string `json:"id"`
	Public             bool   `json:"public"`
	ServiceAccountUser string `json:"service_account_user,omitempty"`
	DirectGrants       bool   `json:"direct_grants"`
}

// realmStateLocked builds the realm's state. Caller holds s.mu.
func (s *Server) realmStateLocked(r *http.Request) RealmState {
	rs := RealmState{
		Name: s.realmName, Issuer: requestBaseURL(r) + s.realmPath(), RotateRefreshTokens: s.realm.rotate,
		SSOIdle: s.realm.ssoIdle.String(), OfflineIdle: s.realm.offlineIdle.String(), OfflineMax: s.realm.offlineMax.String(),
		AuthorizeUser: s.realm.authorizeUser, LastIDPHint: s.realm.lastIDPHint,
		Clients: []RealmClientState{}, Sessions: map[string]int{},
		Grants: copyCounts(s.realm.grants), GrantFailures: copyCounts(s.realm.grantFailures),
	}
	for _, c := range s.realm.clients {
		rs.Clients = append(rs.Clients, RealmClientState{ID: c.ID, Public: c.public(), ServiceAccountUser: c.ServiceAccountUser, DirectGrants: c.DirectGrants})
	}
	sort.Slice(rs.Clients, func(i, j int) bool { return rs.Clients[i].ID < rs.Clients[j].ID })
	now := s.clock.Now()
	for _, sess := range s.realm.sessions {
		if u := s.st.usersByID[sess.userID]; u != nil && now.Before(s.sessionEnd(sess)) {
			rs.Sessions[u.name]++
		}
	}
	return rs
}

// adminRealm is GET /_stub/realm.
func (s *Server) adminRealm(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rs := s.realmStateLocked(r)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, rs)
}

// adminAddClient is POST /_stub/realm/clients?id=&secret=&service_account_user=&direct_grants=B.
func (s *Server) adminAddClient(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	direct, ok := boolParam(w, q.Get("direct_grants"), "direct_grants", false)
	if !ok {
		return
	}
	err := s.AddClient(RealmClient{ID: q.Get("id"), Secret: q.Get("secret"), ServiceAccountUser: q.Get("service_account_user"), DirectGrants: direct})
	if err != nil {
		writeDetail(w, http.StatusBadRequest, "id: required")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminDirectGrants is POST /_stub/realm/direct-grants?client_id=nomad_public&on=B.
func (s *Server) adminDirectGrants(w http.ResponseWriter, r *http.Request) {
	s.adminSwitch(w, r, "client_id", s.SetDirectGrants, "no client with that id")
}

// adminSwitch turns a realm setting of the client or user named by the query parameter key on or
// off (on=B, default true) through set, answering 404 with notFound when set knows no such name.
func (s *Server) adminSwitch(w http.ResponseWriter, r *http.Request, key string, set func(string, bool) bool, notFound string) {
	q := r.URL.Query()
	on, ok := boolParam(w, q.Get("on"), "on", true)
	if !ok {
		return
	}
	if !set(q.Get(key), on) {
		writeDetail(w, http.StatusNotFound, notFound)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminRealmConfig is POST /_stub/realm/config?rotate_refresh_tokens=B&sso_idle=D&offline_idle=D
// &offline_max=D (Go durations; offline_max=0 for none). Every parameter is optional; nothing
// changes unless all of them parse.
func (s *Server) adminRealmConfig(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	rotate, sso, idle, maxLife := s.realm.rotate, s.realm.ssoIdle, s.realm.offlineIdle, s.realm.offlineMax
	s.mu.Unlock()
	var ok bool
	if rotate, ok = boolParam(w, q.Get("rotate_refresh_tokens"), "rotate_refresh_tokens", rotate); !ok {
		return
	}
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{{"sso_idle", &sso}, {"offline_idle", &idle}, {"offline_max", &maxLife}} {
		v := q.Get(d.key)
		if v == "" {
			continue
		}
		n, err := time.ParseDuration(v)
		if err != nil || n < 0 {
			writeDetail(w, http.StatusBadRequest, d.key+": want a Go duration such as 30m or 720h")
			return
		}
		*d.dst = n
	}
	s.SetRefreshTokenRotation(rotate)
	s.SetSessionTimeouts(sso, idle, maxLife)
	w.WriteHeader(http.StatusNoContent)
}

// adminIssueRefreshToken is POST /_stub/realm/refresh-tokens?username=&client_id=nomad_public
// &offline=B: a refresh token as if the user had signed in in a browser.
func (s *Server) adminIssueRefreshToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	offline, ok := boolParam(w, q.Get("offline"), "offline", false)
	if !ok {
		return
	}
	client := q.Get("client_id")
	if client == "" {
		client = DefaultRealmClient
	}
	tok, err := s.IssueRefreshToken(q.Get("username"), client, offline)
	if err != nil {
		writeDetail(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"refresh_token": tok})
}

// adminRevokeSessions is POST /_stub/realm/revoke-sessions?username=.
func (s *Server) adminRevokeSessions(w http.ResponseWriter, r *http.Request) {
	if !s.RevokeSessions(r.URL.Query().Get("username")) {
		writeDetail(w, http.StatusNotFound, "unknown user")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminRequiredAction is POST /_stub/realm/required-action?username=&on=B (on defaults to true).
func (s *Server) adminRequiredAction(w http.ResponseWriter, r *http.Request) {
	s.adminSwitch(w, r, "username", s.SetRequiredAction, "unknown user")
}

// adminAuthorizeUser is POST /_stub/realm/authorize-user?username= ("" unsets it).
func (s *Server) adminAuthorizeUser(w http.ResponseWriter, r *http.Request) {
	s.SetAuthorizeUser(r.URL.Query().Get("username"))
	w.WriteHeader(http.StatusNoContent)
}

// adminRealmOnlyUser is POST /_stub/realm/users?username=&password=: an account NOMAD does not know.
func (s *Server) adminRealmOnlyUser(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("username") == "" {
		writeDetail(w, http.StatusBadRequest, "username: required")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"user_id": s.AddRealmOnlyUser(q.Get("username"), q.Get("password"))})
}

// boolParam parses an optional boolean query parameter (def when absent); on a bad value it
// answers 400 and reports false.
func boolParam(w http.ResponseWriter, v, key string, def bool) (bool, bool) {
	if v == "" {
		return def, true
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		writeDetail(w, http.StatusBadRequest, key+": want true or false")
		return false, false
	}
	return b, true
}
