package nomadstub

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func adminDo(t *testing.T, h *harness, method, path, body string) response {
	t.Helper()
	var b any
	if body != "" {
		b = body
	}
	return h.do(method, h.ts.URL+"/_stub/"+path, "", b)
}

func TestAdminState(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	pat, _ := h.createPAT(kc, map[string]any{"metadata": map[string]any{"name": "p", "scopes": []string{"uploads:read"}, "description": "d"}, "expires_in_days": 1})
	h.createPAT(kc, patBody("q", []string{"uploads:read"}, 2))
	h.srv.RevokePAT(pat["id"].(string))

	r := adminDo(t, h, http.MethodGet, "state", "")
	expectStatus(t, r, http.StatusOK)
	var st struct {
		Now    string
		Config map[string]any
		Users  map[string]struct {
			UserID string `json:"user_id"`
			PATs   []map[string]any
		}
		Calls map[string]int
	}
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatal(err)
	}
	bot := st.Users[botUser]
	if st.Now != "2026-01-02T03:04:05Z" || len(bot.PATs) != 2 || bot.UserID == "" {
		t.Fatalf("state = %s", r.body)
	}
	if bot.PATs[1]["active"] != false || bot.PATs[1]["revoked_at"] != "2026-01-02T03:04:05Z" || bot.PATs[0]["active"] != true {
		t.Fatalf("pats = %v", bot.PATs)
	}
	if st.Calls["create"] != 2 || st.Calls["login"] != 1 {
		t.Fatalf("calls = %v", st.Calls)
	}
	if st.Config["max_lifetime_days"] != float64(365) || st.Config["pats"] != true {
		t.Fatalf("config = %v", st.Config)
	}
	if strings.Contains(string(r.body), "digest") || strings.Contains(string(r.body), patPrefix) {
		t.Fatal("state must not expose digests or raw tokens")
	}
}

func TestAdminClockAdvance(t *testing.T) {
	h := newHarness(t) // FakeClock: not the stand-in's to move
	expectStatus(t, adminDo(t, h, http.MethodPost, "clock/advance?by=1h", ""), http.StatusConflict)

	oc := NewOffsetClock()
	h2 := newHarness(t, func(o *Options) { o.Clock = oc })
	kc := h2.botToken()
	_, raw := h2.createPAT(kc, patBody("p", []string{"uploads:read"}, 1))
	expectStatus(t, adminDo(t, h2, http.MethodPost, "clock/advance?by=soon", ""), http.StatusBadRequest)
	r := adminDo(t, h2, http.MethodPost, "clock/advance?by=25h", "")
	expectStatus(t, r, http.StatusOK)
	if oc.Offset() != 25*time.Hour || r.json(t)["offset"] != "25h0m0s" {
		t.Fatalf("offset = %v, body %s", oc.Offset(), r.body)
	}
	if h2.srv.Authenticates(raw) {
		t.Fatal("a 1-day PAT must have expired after advancing 25h")
	}
	expectStatus(t, adminDo(t, h2, http.MethodGet, "clock/advance", ""), http.StatusMethodNotAllowed)
}

func TestAdminAuthenticatesAndRevoke(t *testing.T) {
	h := newHarness(t)
	pat, raw := h.createPAT(h.botToken(), patBody("p", []string{"uploads:read"}, 1))
	check := func() bool {
		r := adminDo(t, h, http.MethodPost, "authenticates", raw+"\n")
		expectStatus(t, r, http.StatusOK)
		return r.json(t)["active"].(bool)
	}
	if !check() {
		t.Fatal("active PAT reported inactive")
	}
	if h.srv.PATs(botUser)[0].LastUsedAt != nil {
		t.Fatal("the admin probe must not touch last_used_at")
	}
	expectStatus(t, adminDo(t, h, http.MethodPost, "revoke?id=000000000000000000000000", ""), http.StatusNotFound)
	expectStatus(t, adminDo(t, h, http.MethodPost, "revoke?id="+pat["id"].(string), ""), http.StatusNoContent)
	if check() {
		t.Fatal("revoked PAT reported active")
	}
}

func TestAdminFaults(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	for _, bad := range []string{"op=nope", "op=create&status=abc", "op=create&times=x&status=503", "op=create", "op=create&lose_response=maybe", "op=create&hang=perhaps", "op=create&retry_after=x&status=503"} {
		expectStatus(t, adminDo(t, h, http.MethodPost, "faults?"+bad, ""), http.StatusBadRequest)
	}
	expectStatus(t, adminDo(t, h, http.MethodPost, "faults?op=create&times=1&status=503&retry_after=2s&detail=down", ""), http.StatusNoContent)
	r := h.do(http.MethodPost, h.v1("/pats"), kc, patBody("p", []string{"uploads:read"}, 1))
	expectDetail(t, r, 503, "down")
	if r.header.Get("Retry-After") != "2" {
		t.Fatalf("Retry-After = %q", r.header.Get("Retry-After"))
	}

	expectStatus(t, adminDo(t, h, http.MethodPost, "faults?op=list&times=-1&status=500", ""), http.StatusNoContent)
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), kc, nil), 500)
	expectStatus(t, adminDo(t, h, http.MethodDelete, "faults", ""), http.StatusNoContent)
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), kc, nil), 200)

	expectStatus(t, adminDo(t, h, http.MethodPost, "faults?op=create&lose_response=true", ""), http.StatusNoContent)
	if f := h.srv.faults[OpCreate]; len(f) != 1 || !f[0].fault.LoseResponse || f[0].remaining != 1 {
		t.Fatalf("queued fault = %+v", f)
	}
	expectStatus(t, adminDo(t, h, http.MethodDelete, "faults", ""), http.StatusNoContent)
	expectStatus(t, adminDo(t, h, http.MethodPost, "faults?op=create&times=-1&hang=true", ""), http.StatusNoContent)
	if f := h.srv.faults[OpCreate]; len(f) != 1 || !f[0].fault.Hang || f[0].remaining != -1 {
		t.Fatalf("queued fault = %+v", f)
	}
}

func TestAdminConfig(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	expectStatus(t, adminDo(t, h, http.MethodPost, "config?max_lifetime_days=none&max_active=1&pats=false&auth_pats=true&legacy_list=true", ""), http.StatusNoContent)
	expectDetail(t, h.do(http.MethodGet, h.v1("/pats"), kc, nil), 404, "Not Found")
	r := h.do(http.MethodPost, h.v1("/auth/pats"), kc, map[string]any{"metadata": map[string]any{"name": "n", "scopes": []string{"uploads:read"}}, "expires_in_days": nil})
	expectStatus(t, r, http.StatusCreated)
	expectDetail(t, h.do(http.MethodPost, h.v1("/auth/pats"), kc, patBody("n", []string{"uploads:read"}, 1)), 400, "Maximum number of active PAT (1) reached.")
	if l := h.do(http.MethodGet, h.v1("/auth/pats"), kc, nil); !strings.HasPrefix(string(l.body), "[") {
		t.Fatalf("legacy list expected: %s", l.body)
	}

	// A bad parameter changes nothing at all.
	expectStatus(t, adminDo(t, h, http.MethodPost, "config?pats=true&max_active=zero", ""), http.StatusBadRequest)
	expectDetail(t, h.do(http.MethodGet, h.v1("/pats"), kc, nil), 404, "Not Found")
	expectStatus(t, adminDo(t, h, http.MethodPost, "config?max_lifetime_days=0", ""), http.StatusBadRequest)

	expectStatus(t, adminDo(t, h, http.MethodPost, "config?max_lifetime_days=7&pats=true&legacy_list=false", ""), http.StatusNoContent)
	h.srv.RevokePAT(h.srv.PATs(botUser)[0].ID)
	expectDetail(t, h.do(http.MethodPost, h.v1("/pats"), kc, patBody("n", []string{"uploads:read"}, 8)), 400,
		"Requested lifetime (8 days) exceeds the maximum allowed (7 days).")
}

func TestAdminExpireAccessTokensUsersAndCalls(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	expectStatus(t, adminDo(t, h, http.MethodPost, "expire-access-tokens", ""), http.StatusNoContent)
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), kc, nil), http.StatusUnauthorized)

	expectStatus(t, adminDo(t, h, http.MethodPost, "users", ""), http.StatusBadRequest)
	r := adminDo(t, h, http.MethodPost, "users?username=carol&password=pw", "")
	expectStatus(t, r, http.StatusOK)
	if id, _ := r.json(t)["user_id"].(string); len(id) != 36 {
		t.Fatalf("user_id = %q", id)
	}
	h.login("carol", "pw")

	calls := adminDo(t, h, http.MethodGet, "calls", "").json(t)
	if calls["login"] != float64(2) || calls["list"] != float64(1) {
		t.Fatalf("calls = %v", calls)
	}
	expectStatus(t, adminDo(t, h, http.MethodDelete, "calls", ""), http.StatusNoContent)
	if h.srv.Calls()["login"] != 0 {
		t.Fatal("calls not reset")
	}
	expectStatus(t, adminDo(t, h, http.MethodGet, "nope", ""), http.StatusNotFound)
}
