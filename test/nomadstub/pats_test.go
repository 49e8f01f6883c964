package nomadstub

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestGetPAT(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	pat, _ := h.createPAT(kc, patBody("p", []string{"uploads:read"}, 1))
	id := pat["id"].(string)

	got := h.do(http.MethodGet, h.v1("/pats/"+id), kc, nil)
	expectStatus(t, got, http.StatusOK)
	if !jsonEqual(got.json(t), pat) {
		t.Fatalf("GET = %s, create said %v", got.body, pat)
	}
	// bson's ObjectId(str) accepts upper-case hex, so NOMAD finds the token.
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats/"+strings.ToUpper(id)), kc, nil), http.StatusOK)

	// Revoked and expired tokens stay readable.
	h.srv.RevokePAT(id)
	h.clk.Step(48 * time.Hour)
	kc = h.botToken()
	r := h.do(http.MethodGet, h.v1("/pats/"+id), kc, nil).json(t)
	if r["revoked"] != true || r["expired_at"] != "2026-01-03T03:04:05Z" {
		t.Fatalf("revoked+expired PAT = %v", r)
	}
}

func TestNotFoundIDs(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	for _, id := range []string{
		"000000000000000000000000",  // well-formed, unknown
		"abc",                       // too short: NOMAD's docstring says 400, it really is 404
		"zzzzzzzzzzzzzzzzzzzzzzzz",  // 24 chars, not hex
		"0000000000000000000000000", // 25 chars
	} {
		for _, c := range []struct{ method, suffix string }{
			{http.MethodGet, ""}, {http.MethodDelete, ""}, {http.MethodPost, "/rotate"},
		} {
			r := h.do(c.method, h.v1("/pats/"+id+c.suffix), kc, nil)
			expectDetail(t, r, http.StatusNotFound, "Token not found or does not belong to the user.")
		}
	}
}

func TestRevokeIsIdempotentAndKeepsTheDocument(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	pat, raw := h.createPAT(kc, patBody("p", []string{"uploads:read"}, 30))
	id := pat["id"].(string)

	h.clk.Step(time.Minute)
	r := h.do(http.MethodDelete, h.v1("/pats/"+id), kc, nil)
	expectStatus(t, r, http.StatusNoContent)
	if len(r.body) != 0 {
		t.Fatalf("204 has a body: %q", r.body)
	}
	if h.srv.Authenticates(raw) {
		t.Fatal("revoked PAT still authenticates")
	}
	first := h.srv.PATs(botUser)[0]
	if !first.Revoked || first.RevokedAt == nil || !first.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after revoke: %+v", first)
	}
	if first.ExpiresAt == nil || !first.ExpiresAt.Equal(t0.AddDate(0, 0, 30)) {
		t.Fatalf("V-B/C keep expired_at on revoke; got %v", first.ExpiresAt)
	}

	h.clk.Step(time.Minute)
	expectStatus(t, h.do(http.MethodDelete, h.v1("/pats/"+id), kc, nil), http.StatusNoContent)
	if again := h.srv.PATs(botUser)[0]; !again.RevokedAt.Equal(*first.RevokedAt) {
		t.Fatalf("second revoke moved revoked_at to %v", again.RevokedAt)
	}
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats/"+id), kc, nil), http.StatusOK)
}

func TestRevokeExpiredTokenMarksItRevoked(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	pat, _ := h.createPAT(kc, patBody("p", []string{"uploads:read"}, 1))
	h.clk.Step(72 * time.Hour)
	kc = h.botToken()
	expectStatus(t, h.do(http.MethodDelete, h.v1("/pats/"+pat["id"].(string)), kc, nil), http.StatusNoContent)
	if !h.srv.PATs(botUser)[0].Revoked {
		t.Fatal("expired token was not flagged revoked")
	}
}

func TestRotateIssuesNewTokenAndRevokesOld(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	r := h.do(http.MethodPost, h.v1("/pats"), kc, map[string]any{
		"metadata":        map[string]any{"name": "svc", "scopes": []string{"uploads:read", "entries:read"}, "description": "d"},
		"expires_in_days": 30,
	})
	old := r.json(t)["pat"].(map[string]any)
	oldRaw := r.json(t)["raw_token"].(string)

	h.clk.Step(10*24*time.Hour + 5*time.Second)
	kc = h.botToken()
	rot := h.do(http.MethodPost, h.v1("/pats/"+old["id"].(string)+"/rotate"), kc, nil)
	expectStatus(t, rot, http.StatusOK) // 200, not 201
	m := rot.json(t)
	pat, raw := m["pat"].(map[string]any), m["raw_token"].(string)
	if pat["id"] == old["id"] || raw == oldRaw || !rawTokenRE.MatchString(raw) {
		t.Fatalf("rotation reused id or secret: %v", m)
	}
	for _, k := range []string{"name", "scopes", "description"} {
		if !jsonEqual(pat[k], old[k]) {
			t.Errorf("%s = %v, want the old %v", k, pat[k], old[k])
		}
	}
	if pat["created_at"] != "2026-01-12T03:04:10Z" || pat["expired_at"] != "2026-02-11T03:04:10Z" {
		t.Errorf("new times %v → %v, want a fresh 30-day lifetime", pat["created_at"], pat["expired_at"])
	}
	if h.srv.Authenticates(oldRaw) || !h.srv.Authenticates(raw) {
		t.Error("old must be revoked and new active")
	}
	expectDetail(t, h.do(http.MethodPost, h.v1("/pats/"+old["id"].(string)+"/rotate"), kc, nil),
		http.StatusBadRequest, "Cannot rotate an expired/revoked token.")
}

func TestRotateLifetimeIsFlooredDays(t *testing.T) {
	// Rotation computes (expired_at - created_at).days from the stored (millisecond) values; a
	// clock with sub-millisecond digits must neither lose nor gain a day.
	h := newHarness(t)
	h.clk.SetTime(t0.Add(999999999 * time.Nanosecond))
	kc := h.botToken()
	old, _ := h.createPAT(kc, patBody("p", []string{"uploads:read"}, 7))
	m := h.do(http.MethodPost, h.v1("/pats/"+old["id"].(string)+"/rotate"), kc, nil).json(t)
	if got := m["pat"].(map[string]any)["expired_at"]; got != "2026-01-09T03:04:05.999999Z" {
		t.Fatalf("expired_at = %v", got)
	}
}

func TestRotateRejectsInactive(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	expiring, _ := h.createPAT(kc, patBody("e", []string{"uploads:read"}, 1))
	h.clk.Step(25 * time.Hour)
	kc = h.botToken()
	expectDetail(t, h.do(http.MethodPost, h.v1("/pats/"+expiring["id"].(string)+"/rotate"), kc, nil),
		http.StatusBadRequest, "Cannot rotate an expired/revoked token.")
}

// TestRotateHazard: NOMAD revokes first and validates afterwards, so a rotation that fails
// validation leaves the user with no token at all (§5).
func TestRotateHazard(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(h *harness) // runs after the old token exists
		days   any
		detail string
	}{
		{
			name:   "max lifetime lowered below the old lifetime",
			setup:  func(h *harness) { h.srv.SetMaxLifetimeDays(intPtr(10)) },
			days:   30,
			detail: "Requested lifetime (30 days) exceeds the maximum allowed (10 days).",
		},
		{
			name:   "never-expiring token once infinite tokens are disabled",
			setup:  func(h *harness) { h.srv.SetMaxLifetimeDays(intPtr(365)) },
			days:   nil,
			detail: "Infinite tokens are disabled. Max lifetime is 365 days.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.MaxLifetimeDays = nil })
			kc := h.botToken()
			old, oldRaw := h.createPAT(kc, map[string]any{
				"metadata": map[string]any{"name": "n", "scopes": []string{"uploads:read"}}, "expires_in_days": tc.days,
			})
			tc.setup(h)
			r := h.do(http.MethodPost, h.v1("/pats/"+old["id"].(string)+"/rotate"), kc, nil)
			expectDetail(t, r, http.StatusBadRequest, tc.detail)
			if h.srv.Authenticates(oldRaw) {
				t.Fatal("the old token must stay revoked after a failed rotation")
			}
			if n := len(h.srv.ActivePATs(botUser)); n != 0 || len(h.srv.PATs(botUser)) != 1 {
				t.Fatalf("active=%d total=%d: want no token at all", n, len(h.srv.PATs(botUser)))
			}
		})
	}
}

func TestRotateSucceedsAtActiveLimit(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxActivePerUser = 1 })
	kc := h.botToken()
	old, _ := h.createPAT(kc, patBody("n", []string{"uploads:read"}, 5))
	expectStatus(t, h.do(http.MethodPost, h.v1("/pats/"+old["id"].(string)+"/rotate"), kc, nil), http.StatusOK)
	if n := len(h.srv.ActivePATs(botUser)); n != 1 {
		t.Fatalf("active = %d, want 1", n)
	}
}

func TestRevokePATOutOfBand(t *testing.T) {
	h := newHarness(t)
	pat, raw := h.createPAT(h.botToken(), patBody("n", []string{"uploads:read"}, 5))
	if h.srv.RevokePAT("000000000000000000000000") || h.srv.RevokePAT("junk") {
		t.Fatal("unknown ids must report false")
	}
	if !h.srv.RevokePAT(pat["id"].(string)) || !h.srv.RevokePAT(pat["id"].(string)) {
		t.Fatal("known id must report true, twice")
	}
	if h.srv.Authenticates(raw) {
		t.Fatal("revoked out of band but still active")
	}
}

func TestPATsAndActivePATsViews(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	a, _ := h.createPAT(kc, map[string]any{"metadata": map[string]any{"name": "a", "scopes": []string{"uploads:read"}, "description": "da"}, "expires_in_days": 1})
	h.clk.Step(time.Second)
	b, _ := h.createPAT(kc, patBody("b", []string{"uploads:write"}, 30))
	h.srv.RevokePAT(b["id"].(string))

	all := h.srv.PATs(botUser)
	if len(all) != 2 || all[0].ID != b["id"] || all[1].ID != a["id"] {
		t.Fatalf("PATs not newest first: %+v", all)
	}
	if all[1].Description != "da" || all[0].Description != "" || !all[0].Revoked {
		t.Fatalf("records: %+v", all)
	}
	active := h.srv.ActivePATs(botUser)
	if len(active) != 1 || active[0].ID != a["id"] {
		t.Fatalf("ActivePATs = %+v", active)
	}
	if h.srv.PATs("nobody") != nil {
		t.Fatal("unknown user has PATs")
	}
	// Records are copies: changing one must not change the store.
	all[1].Scopes[0] = "mutated"
	if h.srv.PATs(botUser)[1].Scopes[0] != "uploads:read" {
		t.Fatal("Record shares memory with the store")
	}
}

func TestPrunedPATIsGone(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	pat, raw := h.createPAT(kc, patBody("p", []string{"uploads:read"}, 5))
	id := pat["id"].(string)
	h.srv.RevokePAT(id)
	if !h.srv.PrunePAT(id) || h.srv.PrunePAT(id) {
		t.Fatal("PrunePAT must succeed once")
	}
	for _, c := range []struct{ method, suffix string }{{http.MethodGet, ""}, {http.MethodDelete, ""}, {http.MethodPost, "/rotate"}} {
		expectDetail(t, h.do(c.method, h.v1("/pats/"+id+c.suffix), kc, nil), 404, "Token not found or does not belong to the user.")
	}
	if h.srv.Authenticates(raw) || len(h.srv.PATs(botUser)) != 0 {
		t.Fatal("pruned PAT still visible")
	}
	_, raw2 := h.createPAT(kc, patBody("q", []string{"uploads:read"}, 5))
	expectStatus(t, adminDo(t, h, http.MethodPost, "prune?id="+h.srv.PATs(botUser)[0].ID, ""), http.StatusNoContent)
	expectStatus(t, adminDo(t, h, http.MethodPost, "prune?id="+id, ""), http.StatusNotFound)
	if h.srv.Authenticates(raw2) {
		t.Fatal("admin prune did not delete")
	}
}
