package nomadstub

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// listQueryJSON echoes PATQuery; unset filters are null.
type listQueryJSON struct {
	Search         *string `json:"search"`
	Revoked        *bool   `json:"revoked"`
	State          *string `json:"state"`
	CreatedAfter   *string `json:"created_after"`
	CreatedBefore  *string `json:"created_before"`
	LastUsedAfter  *string `json:"last_used_after"`
	LastUsedBefore *string `json:"last_used_before"`
	ExpiresAfter   *string `json:"expires_after"`
	ExpiresBefore  *string `json:"expires_before"`
}

// paginationJSON is NOMAD's PaginationResponse.
type paginationJSON struct {
	PageSize           int     `json:"page_size"`
	OrderBy            string  `json:"order_by"`
	Order              string  `json:"order"`
	PageAfterValue     *string `json:"page_after_value"`
	Page               int     `json:"page"`
	PageOffset         *int    `json:"page_offset"`
	Total              int     `json:"total"`
	NextPageAfterValue *string `json:"next_page_after_value"`
	PageURL            string  `json:"page_url"`
	NextPageURL        *string `json:"next_page_url"`
	PrevPageURL        *string `json:"prev_page_url"`
	FirstPageURL       *string `json:"first_page_url"`
}

type listResponseJSON struct {
	Query      listQueryJSON  `json:"query"`
	Pagination paginationJSON `json:"pagination"`
	Data       []patJSON      `json:"data"`
}

// handleList is GET {pats} (nomad-pat-api.md §4.2), with FastAPI's order of failures: pagination
// model errors (422, before auth), 401/403, parameter type errors (422), then the service: a 500
// for a non-numeric page_after_value and 400 for a page past the end.
func (s *Server) handleList(w http.ResponseWriter, r *http.Request, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.legacyList {
		s.handleLegacyList(w, r)
		return
	}
	q := r.URL.Query()
	query, queryErrs := parseListQuery(q)
	pag, pagErrs := parsePaginationTypes(q)
	if len(pagErrs) == 0 {
		if errs := validatePaginationModel(pag); len(errs) > 0 {
			writeValidation(w, errs)
			return
		}
	}
	c, ok := s.authorize(w, r, scopeTokensRead)
	if !ok {
		return
	}
	if errs := append(queryErrs, pagErrs...); len(errs) > 0 {
		writeValidation(w, errs)
		return
	}

	matches := filterPATs(s.st.userPATs(c.userID), query, s.clock.Now())
	sortPATs(matches, pag.orderBy)
	total := len(matches)

	resp := paginationJSON{
		PageSize: pag.pageSize, OrderBy: pag.orderBy, Order: pag.order,
		PageOffset: pag.pageOffset, Total: total, Page: 1,
	}
	data := []patJSON{}
	if pag.pageSize > 0 {
		start, fail := simpleIndex(pag)
		if fail != nil {
			writeServerError(w, fail.exception, fail.class)
			return
		}
		// PaginationResponse.populate_simple_index_and_urls, including its quirk of deriving
		// `page` from the start index even when page_offset was given.
		resp.Page = start/pag.pageSize + 1
		if resp.Page != 1 {
			resp.PageAfterValue = strPtr(strconv.Itoa(start - 1))
		}
		if pag.pageSize*resp.Page < total {
			resp.NextPageAfterValue = strPtr(strconv.Itoa(start + pag.pageSize - 1))
		}
		if resp.Page < 1 || (total == 0 && resp.Page != 1) || (total > 0 && (resp.Page-1)*pag.pageSize >= total) {
			writeDetail(w, http.StatusBadRequest, detailPageOutOfRange)
			return
		}
		for i := start; i < total && i < start+pag.pageSize; i++ {
			data = append(data, matches[i].toJSON(formatTime))
		}
	}
	populateURLs(&resp, r)
	writeJSON(w, http.StatusOK, listResponseJSON{Query: query.toJSON(), Pagination: resp, Data: data})
}

// handleLegacyList is V-A's list: every token of the caller, newest first, as a bare array with
// naive datetimes; query parameters are ignored. Caller holds s.mu.
func (s *Server) handleLegacyList(w http.ResponseWriter, r *http.Request) {
	c, ok := s.authorize(w, r, scopeTokensRead)
	if !ok {
		return
	}
	out := []patJSON{}
	for _, p := range s.st.userPATs(c.userID) {
		out = append(out, p.toJSON(formatNaiveTime))
	}
	writeJSON(w, http.StatusOK, out)
}

// formatNaiveTime is V-A's datetime: Python's isoformat() of a naive UTC value.
func formatNaiveTime(t time.Time) string {
	return strings.TrimSuffix(formatTime(t), "Z")
}

func strPtr(s string) *string { return &s }

// pyFailure is a Python exception that NOMAD turns into its generic 500.
type pyFailure struct{ exception, class string }

// simpleIndex is Pagination.get_simple_index: page_offset, else page, else page_after_value + 1.
func simpleIndex(p listPagination) (int, *pyFailure) {
	switch {
	case p.pageOffset != nil:
		return *p.pageOffset, nil
	case p.page != nil:
		return (*p.page - 1) * p.pageSize, nil
	case p.pageAfterValue != nil:
		n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(*p.pageAfterValue), "_", ""))
		if err != nil {
			return 0, &pyFailure{"invalid literal for int() with base 10: " + pyRepr(*p.pageAfterValue), "ValueError"}
		}
		if n+1 < 0 {
			return 0, &pyFailure{"", "AssertionError"}
		}
		return n + 1, nil
	}
	return 0, nil
}

// filterPATs applies PATQuery the way the Mongo query does: all given filters must match; a null
// last_used_at or expired_at never matches a bound on it.
func filterPATs(pats []*patRecord, q listQuery, now time.Time) []*patRecord {
	var out []*patRecord
	for _, p := range pats {
		if q.search != nil && !strings.Contains(strings.ToLower(p.name), strings.ToLower(*q.search)) {
			continue
		}
		if q.revoked != nil && p.revoked != *q.revoked {
			continue
		}
		if q.state != nil && (*q.state == "active") != p.activeAt(now) {
			continue
		}
		if !inRange(&p.createdAt, q.createdAfter, q.createdBefore) ||
			!inRange(p.lastUsedAt, q.lastUsedAfter, q.lastUsedBefore) ||
			!inRange(p.expiredAt, q.expiresAfter, q.expiresBefore) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// inRange is Mongo's {$gte: after, $lte: before} on a nullable field.
func inRange(v, after, before *time.Time) bool {
	if after == nil && before == nil {
		return true
	}
	if v == nil {
		return false
	}
	if after != nil && v.Before(*after) {
		return false
	}
	if before != nil && v.After(*before) {
		return false
	}
	return true
}

// sortPATs orders by one key with nulls lowest, as MongoDB sorts; name compares bytes. NOMAD adds
// no tie-breaker; the stand-in breaks ties by insertion order in the sort's direction, so equal
// timestamps from a frozen test clock still give a stable, intuitive order.
func sortPATs(pats []*patRecord, orderBy string) {
	field, dir, _ := strings.Cut(orderBy, "_")
	if field == "last" { // last_used_asc / last_used_desc
		field = "last_used"
		dir = strings.TrimPrefix(orderBy, "last_used_")
	}
	desc := dir == "desc"
	cmp := func(a, b *patRecord) int {
		switch field {
		case "name":
			return strings.Compare(a.name, b.name)
		case "expires":
			return compareNullableTime(a.expiredAt, b.expiredAt)
		case "last_used":
			return compareNullableTime(a.lastUsedAt, b.lastUsedAt)
		default:
			return a.createdAt.Compare(b.createdAt)
		}
	}
	sort.SliceStable(pats, func(i, j int) bool {
		c := cmp(pats[i], pats[j])
		if c == 0 {
			c = compareInt64(pats[i].seq, pats[j].seq)
		}
		if desc {
			return c > 0
		}
		return c < 0
	})
}

func compareNullableTime(a, b *time.Time) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return a.Compare(*b)
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (q listQuery) toJSON() listQueryJSON {
	return listQueryJSON{
		Search: q.search, Revoked: q.revoked, State: q.state,
		CreatedAfter: formatTimePtr(q.createdAfter), CreatedBefore: formatTimePtr(q.createdBefore),
		LastUsedAfter: formatTimePtr(q.lastUsedAfter), LastUsedBefore: formatTimePtr(q.lastUsedBefore),
		ExpiresAfter: formatTimePtr(q.expiresAfter), ExpiresBefore: formatTimePtr(q.expiresBefore),
	}
}

// populateURLs is PaginationResponse.populate_urls: built from the request's own URL (scheme and
// host as this server sees them), rewriting `page` and `page_after_value` like NOMAD's
// update_url_query_arguments (parse_qs + urlencode: blank values dropped, key order kept).
func populateURLs(p *paginationJSON, r *http.Request) {
	base := requestBaseURL(r) + r.URL.EscapedPath()
	p.PageURL = base
	if r.URL.RawQuery != "" {
		p.PageURL += "?" + r.URL.RawQuery
	}
	with := func(page, after *string) *string {
		qs := rewriteQuery(r.URL.RawQuery, map[string]*string{"page": page, "page_after_value": after})
		u := base
		if qs != "" {
			u += "?" + qs
		}
		return &u
	}
	if p.PageSize != 0 {
		p.FirstPageURL = with(nil, nil)
	}
	if p.NextPageAfterValue != nil && *p.NextPageAfterValue != "" {
		p.NextPageURL = with(nil, p.NextPageAfterValue)
	}
	if p.Page > 1 {
		p.PrevPageURL = with(strPtr(strconv.Itoa(p.Page-1)), nil)
	}
}

// rewriteQuery sets (non-nil) or removes (nil) keys in a raw query string, keeping the first-seen
// key order as Python's dict does.
func rewriteQuery(raw string, set map[string]*string) string {
	var keys []string
	vals := map[string][]string{}
	for _, part := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(part, "=")
		k, errK := url.QueryUnescape(k)
		v, errV := url.QueryUnescape(v)
		if errK != nil || errV != nil || k == "" || v == "" {
			continue
		}
		if _, seen := vals[k]; !seen {
			keys = append(keys, k)
		}
		vals[k] = append(vals[k], v)
	}
	for _, k := range []string{"page", "page_after_value"} {
		v, ok := set[k]
		if !ok {
			continue
		}
		if v == nil {
			delete(vals, k)
			continue
		}
		if _, seen := vals[k]; !seen {
			keys = append(keys, k)
		}
		vals[k] = []string{*v}
	}
	var parts []string
	for _, k := range keys {
		for _, v := range vals[k] {
			parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(v))
		}
	}
	return strings.Join(parts, "&")
}
