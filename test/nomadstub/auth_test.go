package nomadstub

import (
	"net/http"
	"testing"
	"time"
)

// endpoint is one PAT operation as a client calls it.
type endpoint struct {
	name    string
	method  string
	path    func(id string) string
	body    any
	missing string // the 403 detail a PAT gets (no PAT can hold tokens:*)
}

var patEndpoints = []endpoint{
	{"create", http.MethodPost, func(string) string { return "/pats" }, patBody("x", []string{"uploads:read"}, 1), "Missing scopes: ['tokens:create']"},
	{"list", http.MethodGet, func(string) string { return "/pats" }, nil, "Missing scopes: ['tokens:read']"},
	{"get", http.MethodGet, func(id string) string { return "/pats/" + id }, nil, "Missing scopes: ['tokens:read']"},
	{"revoke", http.MethodDelete, func(id string) string { return "/pats/" + id }, nil, "Missing scopes: ['tokens:delete']"},
	{"rotate", http.MethodPost, func(id string) string { return "/pats/" + id + "/rotate" }, nil, "Missing scopes: ['tokens:create', 'tokens:delete']"},
}

func TestAuthenticationPerEndpoint(t *testing.T) {
	for _, ep := range patEndpoints {
		t.Run(ep.name, func(t *testing.T) {
			h := newHarness(t)
			kc := h.botToken()
			pat, raw := h.createPAT(kc, patBody("probe", []string{"uploads:read"}, 30))
			id := pat["id"].(string)
			_, revokedRaw := h.createPAT(kc, patBody("revoked", []string{"uploads:read"}, 30))
			revokedID := h.srv.PATs(botUser)[0].ID
			h.srv.RevokePAT(revokedID)
			_, expiringRaw := h.createPAT(kc, patBody("short", []string{"uploads:read"}, 1))

			call := func(opts ...reqOpt) response {
				return h.do(ep.method, h.v1(ep.path(id)), "", ep.body, opts...)
			}
			bearer := func(tok string) reqOpt { return withHeader("Authorization", "Bearer "+tok) }

			for _, tc := range []struct {
				name    string
				opts    []reqOpt
				status  int
				detail  string
				wwwAuth string
			}{
				{"anonymous", nil, 401, "Authentication required.", "Bearer"},
				{"basic scheme is no credential", []reqOpt{withHeader("Authorization", "Basic Ym90OmJvdA==")}, 401, "Authentication required.", "Bearer"},
				{"unknown keycloak token", []reqOpt{bearer("eyJhbGciOi.not.valid")}, 401, "Could not validate credentials. The given token is invalid.", "Bearer"},
				{"unknown PAT is anonymous", []reqOpt{bearer(patPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")}, 401, "Authentication required.", "Bearer"},
				{"revoked PAT is anonymous", []reqOpt{bearer(revokedRaw)}, 401, "Authentication required.", "Bearer"},
				{"active PAT lacks tokens scopes", []reqOpt{bearer(raw)}, 403, ep.missing, ""},
				{"scheme is case-insensitive", []reqOpt{withHeader("Authorization", "bEaReR "+raw)}, 403, ep.missing, ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					r := call(tc.opts...)
					expectDetail(t, r, tc.status, tc.detail)
					if got := r.header.Get("WWW-Authenticate"); got != tc.wwwAuth {
						t.Errorf("WWW-Authenticate = %q, want %q", got, tc.wwwAuth)
					}
				})
			}

			t.Run("expired PAT is anonymous", func(t *testing.T) {
				h.clk.Step(24*time.Hour + time.Millisecond)
				expectDetail(t, call(bearer(expiringRaw)), 401, "Authentication required.")
			})
			t.Run("keycloak cookie authenticates", func(t *testing.T) {
				r := h.do(ep.method, h.v1(ep.path(id)), "", ep.body, withHeader("Cookie", "Authorization=Bearer%20"+h.botToken()))
				if r.status == 401 || r.status == 403 {
					t.Fatalf("cookie-authenticated call got %d %s", r.status, r.body)
				}
			})
		})
	}
}

func TestPATAtExpiryInstantIsStillActive(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	_, raw := h.createPAT(kc, patBody("edge", []string{"uploads:read"}, 1))
	h.clk.Step(24 * time.Hour) // now == expired_at: V-C says active
	if !h.srv.Authenticates(raw) {
		t.Fatal("PAT should be active at exactly expired_at")
	}
	h.clk.Step(time.Millisecond)
	if h.srv.Authenticates(raw) {
		t.Fatal("PAT should be inactive after expired_at")
	}
}

func TestPATProbeSetsLastUsedAt(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	pat, raw := h.createPAT(kc, patBody("probe", []string{"uploads:read"}, 30))
	if pat["last_used_at"] != nil {
		t.Fatalf("fresh PAT last_used_at = %v", pat["last_used_at"])
	}
	if !h.srv.Authenticates(raw) || h.srv.PATs(botUser)[0].LastUsedAt != nil {
		t.Fatal("Authenticates must report true and leave last_used_at alone")
	}

	h.clk.Step(time.Hour)
	// The cheap probe of §2: GET {pats}/{any id} with the PAT itself.
	r := h.do(http.MethodGet, h.v1("/pats/000000000000000000000000"), raw, nil)
	expectDetail(t, r, http.StatusForbidden, "Missing scopes: ['tokens:read']")
	got := h.srv.PATs(botUser)[0].LastUsedAt
	if got == nil || !got.Equal(t0.Add(time.Hour)) {
		t.Fatalf("last_used_at = %v, want %v", got, t0.Add(time.Hour))
	}
	view := h.do(http.MethodGet, h.v1("/pats/"+pat["id"].(string)), h.botToken(), nil).json(t) // kc expired with the hour
	if view["last_used_at"] != "2026-01-02T04:04:05Z" {
		t.Fatalf("API last_used_at = %v", view["last_used_at"])
	}
}

// TestCheckOrder pins FastAPI's precedence: 401 → 403 → 422, with one exception worth knowing:
// an undecodable JSON body fails in FastAPI's body step, before any dependency, so it is 422 even
// for an anonymous caller.
func TestCheckOrder(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	_, raw := h.createPAT(kc, patBody("p", []string{"uploads:read"}, 30))
	bad := map[string]any{"metadata": map[string]any{"name": 1}}
	tests := []struct {
		name   string
		token  string
		body   any
		status int
	}{
		{"bad body, no credentials", "", bad, 401},
		{"bad body, PAT", raw, bad, 403},
		{"bad body, keycloak token", kc, bad, 422},
		{"empty scopes, PAT", raw, patBody("x", []string{}, 1), 403},
		{"empty scopes, keycloak token", kc, patBody("x", []string{}, 1), 400},
		{"undecodable JSON, no credentials", "", `{"metadata":`, 422},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expectStatus(t, h.do(http.MethodPost, h.v1("/pats"), tc.token, tc.body), tc.status)
		})
	}
}

func TestUsersSeeOnlyTheirOwnPATs(t *testing.T) {
	h := newHarness(t)
	h.srv.AddUser("alice", "pw")
	bot, alice := h.botToken(), h.login("alice", "pw")
	pat, _ := h.createPAT(bot, patBody("bot's", []string{"uploads:read"}, 30))
	id := pat["id"].(string)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/pats/" + id},
		{http.MethodDelete, "/pats/" + id},
		{http.MethodPost, "/pats/" + id + "/rotate"},
	} {
		expectDetail(t, h.do(tc.method, h.v1(tc.path), alice, nil), 404, "Token not found or does not belong to the user.")
	}
	list := h.do(http.MethodGet, h.v1("/pats"), alice, nil).json(t)
	if n := len(list["data"].([]any)); n != 0 {
		t.Fatalf("alice sees %d PATs", n)
	}
	if h.srv.PATs(botUser)[0].Revoked {
		t.Fatal("alice's DELETE revoked bot's PAT")
	}
}
