package nomadstub

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// listFixture creates five PATs a minute apart; the clock is at t0+5m afterwards:
//
//	alpha   created t0+0m  30 d  revoked
//	Beta    created t0+1m   1 d
//	gamma   created t0+2m  never expires (max lifetime off)
//	delta.* created t0+3m   2 d  used at t0+4m
//	epsilon created t0+4m  10 d
type listFixture struct {
	h   *harness
	kc  string
	ids map[string]string
}

func newListFixture(t *testing.T) *listFixture {
	h := newHarness(t, func(o *Options) { o.MaxLifetimeDays = nil })
	f := &listFixture{h: h, kc: h.botToken(), ids: map[string]string{}}
	mk := func(name string, days any) string {
		pat, raw := h.createPAT(f.kc, map[string]any{"metadata": map[string]any{"name": name, "scopes": []string{"uploads:read"}}, "expires_in_days": days})
		f.ids[name] = pat["id"].(string)
		h.clk.Step(time.Minute)
		return raw
	}
	mk("alpha", 30)
	mk("Beta", 1)
	mk("gamma", nil)
	deltaRaw := mk("delta.*", 2)
	// use delta at t0+4m (the probe sets last_used_at)
	h.do(http.MethodGet, h.v1("/pats/"+f.ids["delta.*"]), deltaRaw, nil)
	mk("epsilon", 10)
	h.srv.RevokePAT(f.ids["alpha"])
	f.kc = h.botToken() // five minutes passed: the first access token has expired
	return f
}

func (f *listFixture) list(t *testing.T, query string) map[string]any {
	t.Helper()
	r := f.h.do(http.MethodGet, f.h.v1("/pats?"+query), f.kc, nil)
	expectStatus(t, r, http.StatusOK)
	return r.json(t)
}

func names(m map[string]any) []string {
	var out []string
	for _, d := range m["data"].([]any) {
		out = append(out, d.(map[string]any)["name"].(string))
	}
	return out
}

func TestListEnvelope(t *testing.T) {
	f := newListFixture(t)
	m := f.list(t, "")
	wantQuery := map[string]any{"search": nil, "revoked": nil, "state": nil, "created_after": nil, "created_before": nil,
		"last_used_after": nil, "last_used_before": nil, "expires_after": nil, "expires_before": nil}
	if !jsonEqual(m["query"], wantQuery) {
		t.Errorf("query = %v", m["query"])
	}
	p := m["pagination"].(map[string]any)
	for k, v := range map[string]any{"page_size": 10, "order_by": "created_desc", "order": "asc", "page": 1,
		"page_offset": nil, "page_after_value": nil, "total": 5, "next_page_after_value": nil,
		"next_page_url": nil, "prev_page_url": nil} {
		if !jsonEqual(p[k], v) {
			t.Errorf("pagination.%s = %v, want %v", k, p[k], v)
		}
	}
	if !strings.HasPrefix(p["page_url"].(string), f.h.ts.URL+"/nomad-oasis/api/v1/pats") || p["first_page_url"] == nil {
		t.Errorf("urls: %v / %v", p["page_url"], p["first_page_url"])
	}
	if got := names(m); strings.Join(got, ",") != "epsilon,delta.*,gamma,Beta,alpha" {
		t.Errorf("default order = %v", got)
	}
}

func TestListFilters(t *testing.T) {
	f := newListFixture(t)
	at := func(min int) string {
		return url.QueryEscape(t0.Add(time.Duration(min) * time.Minute).Format(time.RFC3339))
	}
	tests := []struct {
		query string
		want  string
	}{
		{"search=ALP", "alpha"},
		{"search=a", "delta.*,gamma,Beta,alpha"},
		{"search=" + url.QueryEscape(".*"), "delta.*"}, // regex characters are literal
		{"search=zzz", ""},
		{"state=active", "epsilon,delta.*,gamma,Beta"},
		{"state=inactive", "alpha"},
		{"revoked=true", "alpha"},
		{"revoked=false", "epsilon,delta.*,gamma,Beta"},
		{"revoked=0", "epsilon,delta.*,gamma,Beta"},
		{"created_after=" + at(2), "epsilon,delta.*,gamma"}, // inclusive
		{"created_before=" + at(1), "Beta,alpha"},           // inclusive
		{"created_after=" + at(1) + "&created_before=" + at(3), "delta.*,gamma,Beta"},
		{"created_after=2026-01-02T03:06:05", "epsilon,delta.*,gamma"},         // naive = UTC
		{"created_after=2026-01-02T04:06:05%2B01:00", "epsilon,delta.*,gamma"}, // offset honoured
		{"last_used_after=" + at(0), "delta.*"},                                // nulls never match
		{"last_used_before=" + at(10), "delta.*"},
		{"expires_before=" + url.QueryEscape("2026-01-03T03:05:05Z"), "Beta"},                      // inclusive; never-expiring gamma excluded
		{"expires_after=" + url.QueryEscape("2026-01-03T03:05:05Z"), "epsilon,delta.*,Beta,alpha"}, // inclusive
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			m := f.list(t, tc.query)
			if got := strings.Join(names(m), ","); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if total := m["pagination"].(map[string]any)["total"]; total != float64(len(names(m))) {
				t.Fatalf("total = %v", total)
			}
		})
	}

	t.Run("expired-only tokens: state=inactive&revoked=false", func(t *testing.T) {
		f.h.clk.Step(36 * time.Hour) // Beta (1 day) has expired, delta (2 days) not yet
		f.kc = f.h.botToken()
		if got := strings.Join(names(f.list(t, "state=inactive&revoked=false")), ","); got != "Beta" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("query echo", func(t *testing.T) {
		q := f.list(t, "search=x&state=active&revoked=yes&created_after=2026-01-02")["query"].(map[string]any)
		if q["search"] != "x" || q["state"] != "active" || q["revoked"] != true || q["created_after"] != "2026-01-02T00:00:00Z" {
			t.Fatalf("query echo = %v", q)
		}
	})
}

func TestListOrdering(t *testing.T) {
	f := newListFixture(t)
	tests := map[string]string{
		"created_asc":    "alpha,Beta,gamma,delta.*,epsilon",
		"created_desc":   "epsilon,delta.*,gamma,Beta,alpha",
		"expires_asc":    "gamma,Beta,delta.*,epsilon,alpha", // null lowest
		"expires_desc":   "alpha,epsilon,delta.*,Beta,gamma",
		"last_used_asc":  "alpha,Beta,gamma,epsilon,delta.*", // nulls first, ties in insertion order
		"last_used_desc": "delta.*,epsilon,gamma,Beta,alpha",
		"name_asc":       "Beta,alpha,delta.*,epsilon,gamma", // bytes: upper case first
		"name_desc":      "gamma,epsilon,delta.*,alpha,Beta",
	}
	for order, want := range tests {
		t.Run(order, func(t *testing.T) {
			m := f.list(t, "order_by="+order+"&order=desc") // `order` is ignored
			if got := strings.Join(names(m), ","); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}

func TestListPaging(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	for i := range 12 {
		h.createPAT(kc, patBody(fmt.Sprintf("t%02d", i), []string{"uploads:read"}, 30))
		h.clk.Step(time.Second)
	}
	kc = h.botToken()
	list := func(q string) response { return h.do(http.MethodGet, h.v1("/pats?"+q), kc, nil) }
	page := func(q string) (names []string, p map[string]any) {
		t.Helper()
		r := list(q)
		expectStatus(t, r, http.StatusOK)
		m := r.json(t)
		for _, d := range m["data"].([]any) {
			names = append(names, d.(map[string]any)["name"].(string))
		}
		return names, m["pagination"].(map[string]any)
	}

	tests := []struct {
		query     string
		first     string
		n         int
		page      float64
		after     any // page_after_value in the response
		next      any
		prevPage  bool
		firstPage bool
	}{
		{"order_by=name_asc", "t00", 10, 1, nil, "9", false, true},
		{"order_by=name_asc&page=2", "t10", 2, 2, "9", nil, true, true},
		{"order_by=name_asc&page_after_value=9", "t10", 2, 2, "9", nil, true, true},
		{"order_by=name_asc&page_size=5&page=2", "t05", 5, 2, "4", "9", true, true},
		{"order_by=name_asc&page_size=5&page_after_value=4", "t05", 5, 2, "4", "9", true, true},
		{"order_by=name_asc&page_size=5&page_offset=3", "t03", 5, 1, nil, "7", false, true}, // page derived from the index
		{"order_by=name_asc&page_size=5&page_offset=0&page=3", "t00", 5, 1, nil, "4", false, true},
		{"order_by=name_asc&page_size=12", "t00", 12, 1, nil, nil, false, true},
		{"order_by=name_asc&page_after_value=-1", "t00", 10, 1, nil, "9", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			got, p := page(tc.query)
			if len(got) != tc.n || got[0] != tc.first {
				t.Fatalf("data = %v", got)
			}
			if p["page"] != tc.page || !jsonEqual(p["page_after_value"], tc.after) || !jsonEqual(p["next_page_after_value"], tc.next) || p["total"] != float64(12) {
				t.Fatalf("pagination = %v", p)
			}
			if (p["prev_page_url"] != nil) != tc.prevPage || (p["first_page_url"] != nil) != tc.firstPage {
				t.Fatalf("urls = %v", p)
			}
			if tc.next != nil {
				next := p["next_page_url"].(string)
				if !strings.Contains(next, "page_after_value="+tc.next.(string)) || strings.Contains(next, "page=") && !strings.Contains(next, "page_size=") {
					t.Fatalf("next_page_url = %s", next)
				}
			}
		})
	}

	t.Run("page_size=0 counts only", func(t *testing.T) {
		got, p := page("page_size=0")
		if len(got) != 0 || p["total"] != float64(12) || p["page"] != float64(1) || p["first_page_url"] != nil {
			t.Fatalf("data=%v pagination=%v", got, p)
		}
	})
	t.Run("page past the end", func(t *testing.T) {
		expectDetail(t, list("page=3"), http.StatusBadRequest, "Page out of range requested.")
		expectDetail(t, list("page_offset=20"), http.StatusBadRequest, "Page out of range requested.")
	})
	t.Run("NOMAD quirk: page_offset past the end within the derived page is 200 and empty", func(t *testing.T) {
		got, p := page("page_offset=12") // page = 12/10+1 = 2, and (2-1)*10 < 12
		if len(got) != 0 || p["page"] != float64(2) || p["page_after_value"] != "11" {
			t.Fatalf("data=%v pagination=%v", got, p)
		}
	})
	t.Run("no results: page 1 fine, page 2 out of range", func(t *testing.T) {
		got, p := page("search=nothing&page=1")
		if len(got) != 0 || p["total"] != float64(0) {
			t.Fatalf("data=%v pagination=%v", got, p)
		}
		expectDetail(t, list("search=nothing&page=2"), http.StatusBadRequest, "Page out of range requested.")
	})
	t.Run("non-numeric page_after_value is a 500", func(t *testing.T) {
		r := list("page_after_value=abc")
		expectStatus(t, r, http.StatusInternalServerError)
		d := r.json(t)["detail"].(map[string]any)
		if d["exception_class"] != "ValueError" || d["exception"] != "invalid literal for int() with base 10: 'abc'" {
			t.Fatalf("detail = %v", d)
		}
	})
	t.Run("repeated parameter: last wins", func(t *testing.T) {
		got, _ := page("order_by=name_asc&page_size=1&page_size=3")
		if len(got) != 3 {
			t.Fatalf("data = %v", got)
		}
	})
}

// TestListPagination422 separates NOMAD's two kinds of 422: errors raised by the pagination model
// (inside a dependency, so before authentication) and FastAPI parameter type errors (after it).
func TestListPagination422(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	_, pat := h.createPAT(kc, patBody("p", []string{"uploads:read"}, 30))
	tests := []struct {
		query   string
		preAuth bool
		typ     string
		msg     string
		loc     []any
	}{
		{"page=0", true, "bad_page", "Page has to be larger than 1", []any{"query", "page"}},
		{"page=1000", true, "bad_page", "Pagination by `page` is limited to 10.000 entries.", []any{"query", "page"}},
		{"page=100&page_size=100", true, "bad_page", "Pagination by `page` is limited to 10.000 entries.", []any{"query", "page"}},
		{"page_offset=-1", true, "bad_page_offset", "Page offset has to be larger than 0", []any{"query", "page_offset"}},
		{"page_offset=9990", true, "bad_page_offset", "Page offset plus page size has to be smaller than 10,000", []any{"query", "page_offset"}},
		{"page_size=-1", true, "greater_than_equal", "Input should be greater than or equal to 0", []any{"query", "page_size"}},
		{"page=2&page_offset=3", true, "multiple_pagination_criteria", "Can only specify one of: page_offset, page, or page_after_value", []any{"query"}},
		{"page=2&page_after_value=3", true, "multiple_pagination_criteria", "Can only specify one of: page_offset, page, or page_after_value", []any{"query"}},
		{"page_size=0&page=1", true, "invalid_pagination", "Cannot specify page when page_size is set to 0", []any{"query"}},
		{"page_size=0&page_offset=0", true, "invalid_pagination", "Cannot specify page_offset when page_size is set to 0", []any{"query"}},
		{"page_size=0&page_after_value=1", true, "invalid_pagination", "Cannot specify page_after_value when page_size is set to 0", []any{"query"}},
		{"state=revoked", false, "literal_error", "Input should be 'active' or 'inactive'", []any{"query", "state"}},
		{"state=all", false, "literal_error", "Input should be 'active' or 'inactive'", []any{"query", "state"}},
		{"order_by=newest", false, "literal_error", "Input should be 'created_asc', 'created_desc', 'expires_asc', 'expires_desc', 'last_used_asc', 'last_used_desc', 'name_asc' or 'name_desc'", []any{"query", "order_by"}},
		{"order=up", false, "enum", "Input should be 'asc' or 'desc'", []any{"query", "order"}},
		{"page_size=ten", false, "int_parsing", "Input should be a valid integer, unable to parse string as an integer", []any{"query", "page_size"}},
		{"page=0&page_size=x", false, "int_parsing", "Input should be a valid integer, unable to parse string as an integer", []any{"query", "page_size"}}, // type error stops the model
		{"revoked=maybe", false, "bool_parsing", "Input should be a valid boolean, unable to interpret input", []any{"query", "revoked"}},
		{"created_after=yesterday", false, "datetime_from_date_parsing", "", []any{"query", "created_after"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			url := h.v1("/pats?" + tc.query)
			anon := h.do(http.MethodGet, url, "", nil)
			withPAT := h.do(http.MethodGet, url, pat, nil)
			if tc.preAuth {
				expectStatus(t, anon, 422)
				expectStatus(t, withPAT, 422)
			} else {
				expectDetail(t, anon, 401, "Authentication required.")
				expectDetail(t, withPAT, 403, "Missing scopes: ['tokens:read']")
			}
			want := map[string]any{"type": tc.typ, "loc": tc.loc}
			if tc.msg != "" {
				want["msg"] = tc.msg
			}
			expectValidation(t, h.do(http.MethodGet, url, kc, nil), []map[string]any{want})
		})
	}
}

func TestLegacyList(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.LegacyList = true })
	kc := h.botToken()
	h.clk.SetTime(t0.Add(500 * time.Millisecond))
	h.createPAT(kc, patBody("old", []string{"uploads:read"}, 30))
	h.clk.Step(time.Second)
	h.createPAT(kc, patBody("new", []string{"uploads:read"}, 30))

	r := h.do(http.MethodGet, h.v1("/pats?page=0&state=bogus"), kc, nil) // V-A has no parameters
	expectStatus(t, r, http.StatusOK)
	if !strings.HasPrefix(string(r.body), "[") {
		t.Fatalf("V-A list is not a bare array: %s", r.body)
	}
	if !strings.Contains(string(r.body), `"name":"new"`) || strings.Index(string(r.body), `"new"`) > strings.Index(string(r.body), `"old"`) {
		t.Fatalf("not newest first: %s", r.body)
	}
	if !strings.Contains(string(r.body), `"created_at":"2026-01-02T03:04:05.500000"`) || strings.Contains(string(r.body), `Z"`) {
		t.Fatalf("V-A datetimes are naive: %s", r.body)
	}
	expectDetail(t, h.do(http.MethodGet, h.v1("/pats"), "", nil), 401, "Authentication required.")

	h.srv.SetLegacyList(false)
	if r := h.do(http.MethodGet, h.v1("/pats"), kc, nil); !strings.HasPrefix(string(r.body), "{") {
		t.Fatalf("envelope expected after switching back: %s", r.body)
	}
}
