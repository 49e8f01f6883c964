package nomadstub

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	rawTokenRE = regexp.MustCompile(`^nomad_pat_[A-Za-z0-9_-]{43}$`)
	objectIDRE = regexp.MustCompile(`^[0-9a-f]{24}$`)
)

func TestCreateReturnsPATAndRawTokenOnce(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	r := h.do(http.MethodPost, h.v1("/pats"), kc, map[string]any{
		"metadata":        map[string]any{"name": "ci uploader", "scopes": []string{"uploads:write", "uploads:read"}, "description": "for CI"},
		"expires_in_days": 7,
		"unknown_key":     "ignored",
	})
	expectStatus(t, r, http.StatusCreated)
	m := r.json(t)
	raw := m["raw_token"].(string)
	if !rawTokenRE.MatchString(raw) || len(raw) != 53 {
		t.Fatalf("raw_token %q has the wrong format", raw)
	}
	pat := m["pat"].(map[string]any)
	want := map[string]any{
		"name": "ci uploader", "scopes": []string{"uploads:write", "uploads:read"}, "description": "for CI",
		"revoked": false, "created_at": "2026-01-02T03:04:05Z", "expired_at": "2026-01-09T03:04:05Z", "last_used_at": nil,
	}
	for k, v := range want {
		if !jsonEqual(pat[k], v) {
			t.Errorf("pat.%s = %#v, want %#v", k, pat[k], v)
		}
	}
	if !objectIDRE.MatchString(pat["id"].(string)) {
		t.Errorf("id %q is not 24 lowercase hex", pat["id"])
	}
	if len(pat) != 8 {
		t.Errorf("PATResponse has %d fields, want 8: %v", len(pat), pat)
	}
	if !h.srv.Authenticates(raw) {
		t.Error("the new raw token does not authenticate")
	}
	// The secret is never shown again.
	get := h.do(http.MethodGet, h.v1("/pats/"+pat["id"].(string)), kc, nil)
	if strings.Contains(string(get.body), raw) || strings.Contains(string(get.body), "raw_token") {
		t.Error("GET leaks the raw token")
	}
}

func TestCreateExpiryDefaults(t *testing.T) {
	tests := []struct {
		name        string
		maxLifetime *int
		body        map[string]any
		wantExpiry  any
	}{
		{"key omitted means 30 days", intPtr(365), patBody("a", []string{"uploads:read"}, -1), "2026-02-01T03:04:05Z"},
		{"explicit days", intPtr(365), patBody("a", []string{"uploads:read"}, 365), "2027-01-02T03:04:05Z"},
		{"string days are lax-parsed", intPtr(365), map[string]any{"metadata": map[string]any{"name": "a", "scopes": []string{"uploads:read"}}, "expires_in_days": "2"}, "2026-01-04T03:04:05Z"},
		{"integral float days", intPtr(365), map[string]any{"metadata": map[string]any{"name": "a", "scopes": []string{"uploads:read"}}, "expires_in_days": 3.0}, "2026-01-05T03:04:05Z"},
		{"null means never when infinite tokens are allowed", nil, map[string]any{"metadata": map[string]any{"name": "a", "scopes": []string{"uploads:read"}}, "expires_in_days": nil}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.MaxLifetimeDays = tc.maxLifetime })
			pat, _ := h.createPAT(h.botToken(), tc.body)
			if !jsonEqual(pat["expired_at"], tc.wantExpiry) {
				t.Fatalf("expired_at = %v, want %v", pat["expired_at"], tc.wantExpiry)
			}
		})
	}
}

// TestCreateValidationOrder walks §4.1's checks 1..7; each case also trips every later check, so
// the expected message proves the order.
func TestCreateValidationOrder(t *testing.T) {
	body := func(scopes []string, days any) map[string]any {
		return map[string]any{"metadata": map[string]any{"name": "n", "scopes": scopes}, "expires_in_days": days}
	}
	bad := []string{"uploads:read", "nope", "tokens:read"}
	tests := []struct {
		name   string
		body   map[string]any
		detail string
	}{
		{"1 empty scopes", body([]string{}, 0), "At least one scope must be selected."},
		{"2 zero days", body(bad, 0), "Cannot create an already expired token."},
		{"2 negative days", body(bad, -5), "Cannot create an already expired token."},
		{"3 infinite while max set", body(bad, nil), "Infinite tokens are disabled. Max lifetime is 10 days."},
		{"4 over max", body(bad, 11), "Requested lifetime (11 days) exceeds the maximum allowed (10 days)."},
		{"5 invalid scope", body(bad, 10), "Invalid scopes: {'nope'}"},
		{"6 tokens scope", body([]string{"uploads:read", "tokens:read"}, 10), "Personal access tokens are not allowed to operate on PATs."},
		{"7 active limit", body([]string{"uploads:read"}, 10), "Maximum number of active PAT (1) reached."},
	}
	h := newHarness(t, func(o *Options) { o.MaxLifetimeDays = intPtr(10); o.MaxActivePerUser = 1 })
	kc := h.botToken()
	h.createPAT(kc, body([]string{"uploads:read"}, 10)) // fills the limit of 1
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expectDetail(t, h.do(http.MethodPost, h.v1("/pats"), kc, tc.body), http.StatusBadRequest, tc.detail)
		})
	}
	if n := len(h.srv.PATs(botUser)); n != 1 {
		t.Fatalf("failed creates stored PATs: %d", n)
	}
}

func TestCreateScopeValidation(t *testing.T) {
	tests := []struct {
		scopes []string
		detail string // "" = accepted
	}{
		{[]string{"uploads:read", "uploads:write", "datasets:read", "federation:write", "external_dcat:read"}, ""},
		{[]string{"uploads:read", "uploads:read"}, ""}, // duplicates are stored as given
		{[]string{"uploads_bundle:read"}, "Invalid scopes: {'uploads_bundle:read'}"},
		{[]string{"uploads:*"}, "Invalid scopes: {'uploads:*'}"},
		{[]string{"*:*"}, "Invalid scopes: {'*:*'}"},
		{[]string{"tokens:*"}, "Invalid scopes: {'tokens:*'}"},
		{[]string{"zz", "aa", "zz"}, "Invalid scopes: {'aa', 'zz'}"},
		{[]string{"it's"}, `Invalid scopes: {"it's"}`},
		{[]string{"tokens:create"}, "Personal access tokens are not allowed to operate on PATs."},
		{[]string{"tokens:delete", "uploads:read"}, "Personal access tokens are not allowed to operate on PATs."},
	}
	h := newHarness(t)
	kc := h.botToken()
	for _, tc := range tests {
		t.Run(strings.Join(tc.scopes, ","), func(t *testing.T) {
			r := h.do(http.MethodPost, h.v1("/pats"), kc, patBody("s", tc.scopes, 1))
			if tc.detail == "" {
				expectStatus(t, r, http.StatusCreated)
				if got := r.json(t)["pat"].(map[string]any)["scopes"]; !jsonEqual(got, tc.scopes) {
					t.Fatalf("scopes = %v, want %v", got, tc.scopes)
				}
				return
			}
			expectDetail(t, r, http.StatusBadRequest, tc.detail)
		})
	}
}

func TestCreateActiveLimitCountsOnlyActive(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxActivePerUser = 2 })
	kc := h.botToken()
	short, _ := h.createPAT(kc, patBody("short", []string{"uploads:read"}, 1))
	h.createPAT(kc, patBody("long", []string{"uploads:read"}, 30))
	expectDetail(t, h.do(http.MethodPost, h.v1("/pats"), kc, patBody("third", []string{"uploads:read"}, 30)),
		http.StatusBadRequest, "Maximum number of active PAT (2) reached.")

	h.clk.Step(24*time.Hour + time.Second) // "short" expires and stops counting
	kc = h.botToken()
	third, _ := h.createPAT(kc, patBody("third", []string{"uploads:read"}, 30))
	expectStatus(t, h.do(http.MethodDelete, h.v1("/pats/"+third["id"].(string)), kc, nil), http.StatusNoContent)
	h.createPAT(kc, patBody("fourth", []string{"uploads:read"}, 30)) // the revoked one does not count either
	_ = short

	h.srv.SetMaxActivePerUser(3)
	h.createPAT(kc, patBody("fifth", []string{"uploads:read"}, 30))
	if n := len(h.srv.ActivePATs(botUser)); n != 3 {
		t.Fatalf("active = %d, want 3", n)
	}
}

func TestCreateMaxLifetimeSwitch(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	never := map[string]any{"metadata": map[string]any{"name": "n", "scopes": []string{"uploads:read"}}, "expires_in_days": nil}
	expectDetail(t, h.do(http.MethodPost, h.v1("/pats"), kc, never), 400, "Infinite tokens are disabled. Max lifetime is 365 days.")
	h.srv.SetMaxLifetimeDays(nil)
	pat, _ := h.createPAT(kc, never)
	if pat["expired_at"] != nil {
		t.Fatalf("expired_at = %v, want null", pat["expired_at"])
	}
	h.srv.SetMaxLifetimeDays(intPtr(90))
	expectDetail(t, h.do(http.MethodPost, h.v1("/pats"), kc, patBody("n", []string{"uploads:read"}, 91)), 400,
		"Requested lifetime (91 days) exceeds the maximum allowed (90 days).")
}

func TestCreateFarFutureExpiryIsPythonOverflow(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxLifetimeDays = nil })
	r := h.do(http.MethodPost, h.v1("/pats"), h.botToken(), patBody("n", []string{"uploads:read"}, 10_000_000))
	expectStatus(t, r, http.StatusInternalServerError)
	d := r.json(t)["detail"].(map[string]any)
	if d["reason"] != "Unexpected exception while handling your request" || d["exception_class"] != "OverflowError" {
		t.Fatalf("detail = %v", d)
	}
}

func TestCreateBodyValidation422(t *testing.T) {
	meta := map[string]any{"name": "n", "scopes": []any{"uploads:read"}}
	tests := []struct {
		name string
		body any
		ct   string // Content-Type override
		want []map[string]any
	}{
		{"no body", nil, "", []map[string]any{{"type": "missing", "loc": []any{"body"}, "msg": "Field required", "input": nil}}},
		{"JSON null", "null", "", []map[string]any{{"type": "missing", "loc": []any{"body"}}}},
		{"array body", "[1]", "", []map[string]any{{"type": "model_attributes_type", "loc": []any{"body"}}}},
		{"text/plain body", `{"metadata":{}}`, "text/plain", []map[string]any{{"type": "model_attributes_type", "loc": []any{"body"}}}},
		{"metadata missing", map[string]any{"expires_in_days": 1}, "", []map[string]any{{"type": "missing", "loc": []any{"body", "metadata"}, "input": map[string]any{"expires_in_days": 1}}}},
		{"metadata not an object", map[string]any{"metadata": "x"}, "", []map[string]any{{"type": "model_attributes_type", "loc": []any{"body", "metadata"}}}},
		{"name and scopes missing", map[string]any{"metadata": map[string]any{}}, "", []map[string]any{
			{"type": "missing", "loc": []any{"body", "metadata", "name"}},
			{"type": "missing", "loc": []any{"body", "metadata", "scopes"}},
		}},
		{"wrong types everywhere", map[string]any{"metadata": map[string]any{"name": 5, "scopes": []any{"ok", 7}, "description": true}, "expires_in_days": 1.5}, "", []map[string]any{
			{"type": "string_type", "loc": []any{"body", "metadata", "name"}, "msg": "Input should be a valid string", "input": 5},
			{"type": "string_type", "loc": []any{"body", "metadata", "scopes", 1}, "input": 7},
			{"type": "string_type", "loc": []any{"body", "metadata", "description"}},
			{"type": "int_from_float", "loc": []any{"body", "expires_in_days"}, "msg": "Input should be a valid integer, got a number with a fractional part", "input": 1.5},
		}},
		{"scopes not a list", map[string]any{"metadata": map[string]any{"name": "n", "scopes": "uploads:read"}}, "", []map[string]any{
			{"type": "list_type", "loc": []any{"body", "metadata", "scopes"}, "msg": "Input should be a valid list"},
		}},
		{"days not numeric", map[string]any{"metadata": meta, "expires_in_days": "soon"}, "", []map[string]any{
			{"type": "int_parsing", "loc": []any{"body", "expires_in_days"}, "msg": "Input should be a valid integer, unable to parse string as an integer"},
		}},
		{"days an object", map[string]any{"metadata": meta, "expires_in_days": map[string]any{}}, "", []map[string]any{
			{"type": "int_type", "loc": []any{"body", "expires_in_days"}},
		}},
		{"undecodable JSON", `{"metadata": }`, "", []map[string]any{{"type": "json_invalid", "msg": "JSON decode error"}}},
	}
	h := newHarness(t)
	kc := h.botToken()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts []reqOpt
			if tc.ct != "" {
				opts = append(opts, withHeader("Content-Type", tc.ct))
			}
			expectValidation(t, h.do(http.MethodPost, h.v1("/pats"), kc, tc.body, opts...), tc.want)
		})
	}
	if n := len(h.srv.PATs(botUser)); n != 0 {
		t.Fatalf("422s stored %d PATs", n)
	}
}

func TestCreateResponseHasMicrosecondsStoreHasMilliseconds(t *testing.T) {
	h := newHarness(t)
	h.clk.SetTime(t0.Add(123456789 * time.Nanosecond))
	kc := h.botToken()
	pat, _ := h.createPAT(kc, patBody("p", []string{"uploads:read"}, 1))
	if pat["created_at"] != "2026-01-02T03:04:05.123456Z" || pat["expired_at"] != "2026-01-03T03:04:05.123456Z" {
		t.Fatalf("create times = %v / %v", pat["created_at"], pat["expired_at"])
	}
	got := h.do(http.MethodGet, h.v1("/pats/"+pat["id"].(string)), kc, nil).json(t)
	if got["created_at"] != "2026-01-02T03:04:05.123000Z" || got["expired_at"] != "2026-01-03T03:04:05.123000Z" {
		t.Fatalf("GET times = %v / %v", got["created_at"], got["expired_at"])
	}
}
