package nomad

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// listServer serves n PATs created one second apart (index i at testEpoch+i s; every third one
// revoked) with the §4.2 envelope, or V-A's bare array (newest first, parameters ignored).
type listServer struct {
	n     int
	bare  bool
	total bool // send pagination.total (V-B/C always do)

	mu    sync.Mutex
	pages []string // "page/page_size[/created_after]" per request
}

func (ls *listServer) pat(i int) (string, time.Time) {
	created := testEpoch.Add(time.Duration(i) * time.Second)
	return patJSON(patID(i), fmt.Sprintf("Token-%d", i), created, nil, i%3 == 0), created
}

func (ls *listServer) serve(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if ls.bare {
			var items []string
			for i := ls.n - 1; i >= 0; i-- {
				s, _ := ls.pat(i)
				items = append(items, s)
			}
			writeJSON(w, 200, "["+strings.Join(items, ",")+"]")
			return
		}
		if q.Get("order_by") != "created_asc" {
			t.Errorf("order_by = %q", q.Get("order_by"))
		}
		page, _ := strconv.Atoi(q.Get("page"))
		size, _ := strconv.Atoi(q.Get("page_size"))
		ls.mu.Lock()
		ls.pages = append(ls.pages, fmt.Sprintf("%d/%d/%s", page, size, q.Get("created_after")))
		ls.mu.Unlock()
		if page*size >= 10000 {
			writeJSON(w, 422, `{"detail":[{"loc":["query","page"],"msg":"Pagination by `+"`page`"+` is limited to 10.000 entries."}]}`)
			return
		}
		var after time.Time
		if s := q.Get("created_after"); s != "" {
			after, _ = ParseTime(s)
		}
		var match []string
		for i := range ls.n {
			s, created := ls.pat(i)
			if !after.IsZero() && created.Before(after) {
				continue
			}
			if q.Get("search") != "" && !strings.Contains(strings.ToLower(fmt.Sprintf("Token-%d", i)), strings.ToLower(q.Get("search"))) {
				continue
			}
			if q.Get("state") == "active" && i%3 == 0 {
				continue
			}
			match = append(match, s)
		}
		total := len(match)
		if (total > 0 && (page-1)*size >= total) || (total == 0 && page != 1) {
			writeJSON(w, 400, `{"detail":"Page out of range requested."}`)
			return
		}
		data := match[min((page-1)*size, total):min(page*size, total)]
		pg := fmt.Sprintf(`{"page_size":%d,"order_by":"created_asc","order":"asc","page":%d,"total":%d,"next_page_url":"http://internal:8000/x"}`, size, page, total)
		if !ls.total {
			pg = fmt.Sprintf(`{"page_size":%d,"page":%d}`, size, page)
		}
		writeJSON(w, 200, `{"query":{},"pagination":`+pg+`,"data":[`+strings.Join(data, ",")+`]}`)
	}
}

func (ls *listServer) requests() []string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return append([]string(nil), ls.pages...)
}

func TestListPaging(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ls        *listServer
		opts      ListOptions
		wantN     int
		wantPages []string
	}{
		{name: "250 tokens, default page size: three pages", ls: &listServer{n: 250, total: true},
			wantN: 250, wantPages: []string{"1/100/", "2/100/", "3/100/"}},
		{name: "exactly two full pages stop on total without asking for a third", ls: &listServer{n: 200, total: true},
			wantN: 200, wantPages: []string{"1/100/", "2/100/"}},
		{name: "without total, a short page ends the list", ls: &listServer{n: 25},
			opts: ListOptions{PageSize: 10}, wantN: 25, wantPages: []string{"1/10/", "2/10/", "3/10/"}},
		{name: "without total, an empty page ends an exact multiple", ls: &listServer{n: 20},
			opts: ListOptions{PageSize: 10}, wantN: 20, wantPages: []string{"1/10/", "2/10/", "3/10/"}},
		{name: "no tokens: one request", ls: &listServer{n: 0, total: true}, wantN: 0, wantPages: []string{"1/100/"}},
		{name: "a page size over the cap is clamped", ls: &listServer{n: 10, total: true}, opts: ListOptions{PageSize: 50000},
			wantN: 10, wantPages: []string{"1/1000/"}},
		{name: "state=active is sent, not filtered locally", ls: &listServer{n: 30, total: true}, opts: ListOptions{State: "active", PageSize: 7},
			wantN: 20, wantPages: []string{"1/7/", "2/7/", "3/7/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNomad(t)
			f.handle("GET /api/v1/pats", tc.ls.serve(t))
			c, _ := newTestClient(t, f)
			got, err := c.List(context.Background(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.wantN {
				t.Fatalf("got %d PATs, want %d", len(got), tc.wantN)
			}
			if !slices.IsSortedFunc(got, func(a, b PAT) int { return a.CreatedAt.Compare(b.CreatedAt) }) {
				t.Fatal("the list must be oldest first")
			}
			if r := tc.ls.requests(); !slices.Equal(r, tc.wantPages) {
				t.Fatalf("pages requested %q, want %q", r, tc.wantPages)
			}
		})
	}
}

func TestListSendsFilters(t *testing.T) {
	f := newFakeNomad(t)
	var got string
	f.handle("GET /api/v1/pats", func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.RawQuery
		writeJSON(w, 200, `{"pagination":{"total":0},"data":[]}`)
	})
	c, _ := newTestClient(t, f)
	_, err := c.List(context.Background(), ListOptions{
		Search: "team a/ci", State: "inactive",
		CreatedAfter:  time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		CreatedBefore: time.Date(2026, 1, 2, 2, 0, 0, 0, time.FixedZone("cet", 3600)),
		PageSize:      5,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "created_after=2026-01-01T00%3A00%3A00Z&created_before=2026-01-02T01%3A00%3A00Z&order_by=created_asc&page=1&page_size=5&search=team+a%2Fci&state=inactive"
	if got != want {
		t.Fatalf("query = %s\nwant    %s", got, want)
	}
	if _, err := c.List(context.Background(), ListOptions{State: "revoked"}); CodeOf(err) != CodeBadRequest {
		t.Fatalf("state=revoked does not exist in NOMAD and must be refused locally, got %v", err)
	}
}

// NOMAD refuses page*page_size >= 10000; past that the client opens a new window at the last
// created_at it saw (inclusive, so duplicates are dropped by id).
func TestListCrossesThePagingCap(t *testing.T) {
	ls := &listServer{n: 10500, total: true}
	f := newFakeNomad(t)
	f.handle("GET /api/v1/pats", ls.serve(t))
	c, _ := newTestClient(t, f)
	got, err := c.List(context.Background(), ListOptions{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != ls.n {
		t.Fatalf("got %d PATs, want %d", len(got), ls.n)
	}
	seen := map[string]bool{}
	for _, p := range got {
		if seen[p.ID] {
			t.Fatalf("duplicate %s", p.ID)
		}
		seen[p.ID] = true
	}
	r := ls.requests()
	if r[8] != "9/1000/" || r[9] != "1/1000/"+formatTime(testEpoch.Add(8999*time.Second)) {
		t.Fatalf("requests %q: want a new window after page 9", r)
	}
}

func TestListPageOutOfRangeEndsTheList(t *testing.T) {
	f := newFakeNomad(t)
	f.handle("GET /api/v1/pats", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page") == "1" {
			s, _ := (&listServer{}).pat(1)
			writeJSON(w, 200, `{"pagination":{"total":2},"data":[`+s+`]}`)
			return
		}
		writeJSON(w, 400, `{"detail":"Page out of range requested."}`) // pruned meanwhile
	})
	c, _ := newTestClient(t, f)
	got, err := c.List(context.Background(), ListOptions{PageSize: 1})
	if err != nil || len(got) != 1 {
		t.Fatalf("got %d, %v", len(got), err)
	}
}

func TestListAnswerWithoutDataIsTransient(t *testing.T) {
	f := newFakeNomad(t)
	f.handle("GET /api/v1/pats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, `{"pagination":{"total":3}}`) })
	c, _ := newTestClient(t, f)
	if _, err := c.List(context.Background(), ListOptions{}); CodeOf(err) != CodeTransient {
		t.Fatalf("got %v, want transient", err)
	}
}

func TestListBareArrayIsFilteredLocally(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  ListOptions
		wantN int
	}{
		{name: "no filter returns everything, oldest first", wantN: 30},
		{name: "search is a case-insensitive substring", opts: ListOptions{Search: "token-1"}, wantN: 11}, // 1, 10-19
		{name: "state active drops revoked", opts: ListOptions{State: "active"}, wantN: 20},
		{name: "state inactive keeps revoked", opts: ListOptions{State: "inactive"}, wantN: 10},
		{name: "created bounds are inclusive", opts: ListOptions{CreatedAfter: testEpoch.Add(5 * time.Second), CreatedBefore: testEpoch.Add(9 * time.Second)}, wantN: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls := &listServer{n: 30, bare: true}
			f := newFakeNomad(t)
			f.handle("GET /api/v1/pats", ls.serve(t))
			c, _ := newTestClient(t, f)
			got, err := c.List(context.Background(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.wantN {
				t.Fatalf("got %d, want %d", len(got), tc.wantN)
			}
			if !slices.IsSortedFunc(got, func(a, b PAT) int { return a.CreatedAt.Compare(b.CreatedAt) }) {
				t.Fatal("the list must be oldest first")
			}
			if f.hitCount("GET /api/v1/pats") != 1 {
				t.Fatal("a bare array is the whole list: one request")
			}
		})
	}

	// Expiry is judged on the client's clock.
	f := newFakeNomad(t)
	exp := testEpoch.Add(time.Hour)
	f.handle("GET /api/v1/pats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, "["+patJSON(patID(1), "x", testEpoch, &exp, false)+"]")
	})
	c, clk := newTestClient(t, f)
	if got, _ := c.List(context.Background(), ListOptions{State: "active"}); len(got) != 1 {
		t.Fatalf("active before expiry: %d", len(got))
	}
	clk.SetTime(exp.Add(time.Second))
	if got, _ := c.List(context.Background(), ListOptions{State: "inactive"}); len(got) != 1 {
		t.Fatalf("inactive after expiry: %d", len(got))
	}
}
