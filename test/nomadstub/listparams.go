package nomadstub

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// orderByValues is PATSortOrder; created_desc is the default.
var orderByValues = []string{
	"created_asc", "created_desc", "expires_asc", "expires_desc",
	"last_used_asc", "last_used_desc", "name_asc", "name_desc",
}

// Pagination limits of NOMAD's MetadataPagination.
const (
	defaultPageSize = 10
	maxPagedEntries = 10000
)

// listQuery is PATQuery (the filters), already type-checked.
type listQuery struct {
	search                        *string
	revoked                       *bool
	state                         *string
	createdAfter, createdBefore   *time.Time
	lastUsedAfter, lastUsedBefore *time.Time
	expiresAfter, expiresBefore   *time.Time
}

// listPagination is PATPagination, already type-checked.
type listPagination struct {
	pageSize       int
	orderBy        string
	order          string
	pageAfterValue *string
	page           *int
	pageOffset     *int
}

// lastParam returns the last value of a query parameter, as Starlette's QueryParams.get does. A
// present but empty value is still a value (FastAPI treats "" as missing only for forms).
func lastParam(q url.Values, key string) (string, bool) {
	vs, ok := q[key]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// parseListQuery type-checks the filters. Its errors are FastAPI parameter errors, reported only
// after authentication.
func parseListQuery(q url.Values) (listQuery, []validationError) {
	var lq listQuery
	var errs []validationError
	if v, ok := lastParam(q, "search"); ok {
		lq.search = &v
	}
	if v, ok := lastParam(q, "revoked"); ok {
		if b, ok := laxBool(v); ok {
			lq.revoked = &b
		} else {
			errs = append(errs, validationError{Type: "bool_parsing", Loc: loc("query", "revoked"),
				Msg: "Input should be a valid boolean, unable to interpret input", Input: v})
		}
	}
	if v, ok := lastParam(q, "state"); ok {
		if v == "active" || v == "inactive" {
			lq.state = &v
		} else {
			errs = append(errs, literalError("state", v, []string{"active", "inactive"}))
		}
	}
	for _, d := range []struct {
		key string
		dst **time.Time
	}{
		{"created_after", &lq.createdAfter}, {"created_before", &lq.createdBefore},
		{"last_used_after", &lq.lastUsedAfter}, {"last_used_before", &lq.lastUsedBefore},
		{"expires_after", &lq.expiresAfter}, {"expires_before", &lq.expiresBefore},
	} {
		v, ok := lastParam(q, d.key)
		if !ok {
			continue
		}
		t, err := parseDatetime(v)
		if err != nil {
			errs = append(errs, validationError{Type: "datetime_from_date_parsing", Loc: loc("query", d.key),
				Msg: "Input should be a valid datetime or date, invalid datetime format", Input: v})
			continue
		}
		*d.dst = &t
	}
	return lq, errs
}

// parsePaginationTypes type-checks the pagination parameters (FastAPI level: reported after
// authentication; when any fails, NOMAD's pagination dependency never runs).
func parsePaginationTypes(q url.Values) (listPagination, []validationError) {
	p := listPagination{pageSize: defaultPageSize, orderBy: "created_desc", order: "asc"}
	var errs []validationError
	intParam := func(key string, dst **int) {
		v, ok := lastParam(q, key)
		if !ok {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			errs = append(errs, validationError{Type: "int_parsing", Loc: loc("query", key),
				Msg: "Input should be a valid integer, unable to parse string as an integer", Input: v})
			return
		}
		*dst = &n
	}
	var size *int
	intParam("page_size", &size)
	if size != nil {
		p.pageSize = *size
	}
	if v, ok := lastParam(q, "order_by"); ok {
		if slices.Contains(orderByValues, v) {
			p.orderBy = v
		} else {
			errs = append(errs, literalError("order_by", v, orderByValues))
		}
	}
	if v, ok := lastParam(q, "order"); ok {
		if v == "asc" || v == "desc" {
			p.order = v
		} else {
			e := literalError("order", v, []string{"asc", "desc"})
			e.Type = "enum"
			errs = append(errs, e)
		}
	}
	if v, ok := lastParam(q, "page_after_value"); ok {
		p.pageAfterValue = &v
	}
	intParam("page", &p.page)
	intParam("page_offset", &p.pageOffset)
	return p, errs
}

// validatePaginationModel runs PATPagination's pydantic validators: the field validators (all
// errors collected), then, only if they pass, the model validator (first error only). NOMAD raises
// these from inside a dependency, so they win over authentication.
func validatePaginationModel(p listPagination) []validationError {
	var errs []validationError
	sizeForChecks := p.pageSize
	if p.pageSize < 0 {
		errs = append(errs, validationError{Type: "greater_than_equal", Loc: loc("query", "page_size"),
			Msg: "Input should be greater than or equal to 0", Input: p.pageSize, Ctx: map[string]any{"ge": 0}})
		sizeForChecks = defaultPageSize // pydantic's values.data lacks a failed field; NOMAD falls back to 10
	}
	if p.page != nil {
		switch {
		case *p.page <= 0:
			errs = append(errs, validationError{Type: "bad_page", Loc: loc("query", "page"), Msg: "Page has to be larger than 1", Input: *p.page})
		case reachesPagingCap(*p.page, sizeForChecks):
			errs = append(errs, validationError{Type: "bad_page", Loc: loc("query", "page"), Msg: "Pagination by `page` is limited to 10.000 entries.", Input: *p.page})
		}
	}
	if p.pageOffset != nil {
		switch {
		case *p.pageOffset < 0:
			errs = append(errs, validationError{Type: "bad_page_offset", Loc: loc("query", "page_offset"), Msg: "Page offset has to be larger than 0", Input: *p.pageOffset})
		case *p.pageOffset >= maxPagedEntries-sizeForChecks:
			errs = append(errs, validationError{Type: "bad_page_offset", Loc: loc("query", "page_offset"), Msg: "Page offset plus page size has to be smaller than 10,000", Input: *p.pageOffset})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	modelErr := func(typ, msg string) []validationError {
		return []validationError{{Type: typ, Loc: loc("query"), Msg: msg, Input: p.modelInput()}}
	}
	criteria := 0
	if p.pageOffset != nil && *p.pageOffset != 0 { // Python truthiness: 0 and "" do not count
		criteria++
	}
	if p.page != nil && *p.page != 0 {
		criteria++
	}
	if p.pageAfterValue != nil && *p.pageAfterValue != "" {
		criteria++
	}
	if criteria > 1 {
		return modelErr("multiple_pagination_criteria", "Can only specify one of: page_offset, page, or page_after_value")
	}
	if p.pageSize == 0 {
		switch {
		case p.pageOffset != nil:
			return modelErr("invalid_pagination", "Cannot specify page_offset when page_size is set to 0")
		case p.page != nil:
			return modelErr("invalid_pagination", "Cannot specify page when page_size is set to 0")
		case p.pageAfterValue != nil:
			return modelErr("invalid_pagination", "Cannot specify page_after_value when page_size is set to 0")
		}
	}
	return nil
}

// reachesPagingCap is Python's page*page_size >= 10000 for page > 0 and page_size >= 0, without
// the int64 overflow that let page=6148914691236517206&page_size=3 through (the product wraps to 2)
// and then made the start index -1.
func reachesPagingCap(page, size int) bool {
	return size > 0 && page > (maxPagedEntries-1)/size
}

// paginationInput is the keyword arguments NOMAD's dependency passes to PATPagination, which
// pydantic echoes as the `input` of a model-level error.
type paginationInput struct {
	PageSize       int     `json:"page_size"`
	OrderBy        string  `json:"order_by"`
	Order          string  `json:"order"`
	PageAfterValue *string `json:"page_after_value"`
	Page           *int    `json:"page"`
	PageOffset     *int    `json:"page_offset"`
}

func (p listPagination) modelInput() paginationInput {
	return paginationInput{p.pageSize, p.orderBy, p.order, p.pageAfterValue, p.page, p.pageOffset}
}

func literalError(key, input string, allowed []string) validationError {
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = "'" + a + "'"
	}
	expected := quoted[0]
	if len(quoted) > 1 {
		expected = strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
	}
	return validationError{Type: "literal_error", Loc: loc("query", key), Msg: "Input should be " + expected,
		Input: input, Ctx: map[string]any{"expected": expected}}
}

// laxBool is pydantic's string-to-bool table.
func laxBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "on", "t", "true", "y", "yes":
		return true, true
	case "0", "off", "f", "false", "n", "no":
		return false, true
	}
	return false, false
}
