package nomadstub

import (
	"encoding/json"
	"net/http"
	"testing"
)

// FuzzListQuery sends any query string to GET {pats} (nomad-pat-api.md §4.2), in the V-B/C or the
// V-A list mode, over a store with an active, a revoked and an expired PAT. The answer must be one
// of list's statuses with the contract's body (500 only for a non-numeric page_after_value, which
// is NOMAD's own behaviour), and a 200 must be a page no larger than page_size.
func FuzzListQuery(f *testing.F) {
	for _, s := range []struct {
		legacy bool
		auth   uint8
		query  string
	}{
		// The operator's query, and each filter and order_by.
		{false, 0, "order_by=created_asc&page=1&page_size=100"},
		{false, 0, "search=FU&state=active&revoked=false&created_after=2026-01-01T00:00:00Z&created_before=2027-01-01T00:00:00.123456Z"},
		{false, 0, "state=inactive&last_used_after=2026-01-02&last_used_before=2026-01-02%2003:04:05&expires_after=1767323045&expires_before=2026-01-02T03:04:05%2B01:00"},
		{false, 0, "order_by=expires_desc&order=desc&page_size=1&page=2"},
		{false, 0, "order_by=last_used_asc&page_offset=1&page_size=1"},
		{false, 0, "order_by=name_desc&page_after_value=0&page_size=2"},
		{false, 0, "page_size=0"},
		{false, 0, "search=&search=fuzz&page_size=%20%203%20"},
		// 422s: enums, bools, ints, datetimes, and the pagination model's rules.
		{false, 0, "state=all&order_by=newest&order=up&revoked=maybe&page_size=x&created_after=yesterday"},
		{false, 0, "page=0"},
		{false, 0, "page=1000&page_size=10"},
		{false, 0, "page=2&page_offset=3"},
		{false, 0, "page_size=0&page=1"},
		{false, 0, "page_size=-1&page_offset=-1"},
		{false, 0, "page_offset=9999999999999999999"},
		// 400 page out of range, and 500 for a page_after_value int() cannot read.
		{false, 0, "page=3&page_size=2"},
		{false, 0, "page_after_value=abc"},
		{false, 0, "page_after_value=-5"},
		// Integer overflow: page*page_size and page_offset+page_size wrap around in int64.
		{false, 0, "page=6148914691236517206&page_size=3"},
		{false, 0, "page_offset=9223372036854775800&page_size=10"},
		{false, 0, "page_after_value=9223372036854775807&page_size=1"},
		{false, 0, "page_size=9223372036854775807&page_after_value=1"},
		// Datetimes pydantic refuses: out of Python's range, NaN and infinite timestamps.
		{false, 0, "created_after=0000-01-01T00:00:00Z&created_before=9999-12-31T23:59:59-01:00"},
		{false, 0, "created_after=NaN&expires_before=inf&last_used_after=1e300"},
		// Malformed query strings, and precedence: 422 pagination errors beat 401 and 403.
		{false, 0, "%zz=1&;&=&page"},
		{false, 1, "page=0"},
		{false, 1, "state=all"},
		{false, 2, "page=1"},
		{false, 3, ""},
		// V-A ignores every parameter.
		{true, 0, "state=all&page=0"},
		{true, 1, ""},
	} {
		f.Add(s.legacy, s.auth, s.query)
	}
	f.Fuzz(func(t *testing.T, legacy bool, auth uint8, query string) {
		w := newFuzzWorld(t)
		w.srv.SetLegacyList(legacy)
		req, ok := parse(rawRequest("GET", w.v1("/pats")+"?"+w.fill(query), "", "", w.credential(auth)))
		if !ok {
			return // not a request-target net/http accepts
		}
		rec := w.do(req)
		checkAnswer(t, rec, http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden,
			http.StatusUnprocessableEntity, http.StatusInternalServerError)
		if rec.Code != http.StatusOK {
			return
		}
		if legacy {
			var all []patJSON
			if err := json.Unmarshal(rec.Body.Bytes(), &all); err != nil || len(all) != len(w.ids) {
				t.Fatalf("V-A list is not every PAT: %v: %s", err, rec.Body)
			}
			return
		}
		var page listResponseJSON
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
			t.Fatalf("200 is not a list envelope: %v: %s", err, rec.Body)
		}
		p := page.Pagination
		if page.Data == nil || len(page.Data) > p.PageSize || p.Total < len(page.Data) || p.Total > len(w.ids) || p.Page < 1 {
			t.Fatalf("inconsistent page: %s", rec.Body)
		}
	})
}
