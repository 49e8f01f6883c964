package nomad

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// DefaultListPageSize is used when ListOptions.PageSize is 0 (NOMAD's own default is 10).
	DefaultListPageSize = 100
	// maxListPageSize keeps one page's answer reasonable and well under the paging cap.
	maxListPageSize = 1000
	// pagingCap: NOMAD refuses page*page_size >= 10000 (nomad-pat-api.md §4.2).
	pagingCap = 10000
)

// listEnvelope is the V-B/C list answer; only what paging needs is decoded.
type listEnvelope struct {
	Pagination *struct {
		Total *int `json:"total"`
	} `json:"pagination"`
	Data []wirePAT `json:"data"`
}

// List returns every PAT matching opts, oldest first. It pages by itself (page/page_size, never the
// server's *_url values, which carry the server's internal host) and accepts V-A's bare array, which
// ignores every parameter, by filtering client-side.
func (c *HTTPClient) List(ctx context.Context, opts ListOptions) ([]PAT, error) {
	switch opts.State {
	case "", "active", "inactive":
	default:
		return nil, c.newError(opList, CodeBadRequest, 0, "state must be \"active\", \"inactive\" or empty, not "+strconv.Quote(opts.State))
	}
	var out []PAT
	err := c.onPATs(ctx, func(prefix string) error {
		var err error
		out, err = c.list(ctx, prefix, opts)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *HTTPClient) list(ctx context.Context, prefix string, opts ListOptions) ([]PAT, error) {
	size := opts.PageSize
	if size <= 0 {
		size = DefaultListPageSize
	}
	size = min(size, maxListPageSize)

	var out []PAT
	seen := map[string]bool{}
	after := opts.CreatedAfter // moves forward when the paging cap forces a new window
	for page := 1; ; page++ {
		rep, err := c.call(ctx, request{op: opList, method: http.MethodGet, path: prefix, query: listQuery(opts, after, page, size)})
		if err != nil {
			if page > 1 && isPageOutOfRange(err) {
				return out, nil // tokens were pruned while we paged; what we have is the whole list
			}
			return nil, err
		}
		body := bytes.TrimSpace(rep.body)
		if len(body) > 0 && body[0] == '[' {
			var all []wirePAT
			if err := json.Unmarshal(body, &all); err != nil {
				return nil, c.badAnswer(opList, rep, "not a list of PATs: "+err.Error())
			}
			if why := firstUnusable(all); why != "" {
				return nil, c.badAnswer(opList, rep, why)
			}
			return filterLocally(all, opts, c.clock.Now()), nil
		}
		var env listEnvelope
		if err := json.Unmarshal(body, &env); err != nil {
			return nil, c.badAnswer(opList, rep, "not a PAT list: "+err.Error())
		}
		if env.Data == nil { // an empty list decodes as [], so nil means no "data" at all
			return nil, c.badAnswer(opList, rep, "a list answer without data")
		}
		if why := firstUnusable(env.Data); why != "" {
			return nil, c.badAnswer(opList, rep, why)
		}
		for i := range env.Data {
			if !seen[env.Data[i].ID] {
				seen[env.Data[i].ID] = true
				out = append(out, env.Data[i].pat())
			}
		}
		n := len(env.Data)
		if n < size || (env.Pagination != nil && env.Pagination.Total != nil && page*size >= *env.Pagination.Total) {
			return out, nil
		}
		if (page+1)*size >= pagingCap {
			// NOMAD will not serve the next page. Start a new window at the newest created_at seen:
			// the bound is inclusive, so ties are fetched again and dropped by id.
			last := env.Data[n-1].pat().CreatedAt
			if !last.After(after) {
				return nil, c.newError(opList, CodeBadRequest, 0, "more PATs share one created_at than one listing window can hold")
			}
			after, page = last, 0
		}
	}
}

// listQuery builds the §4.2 parameters. order_by=created_asc makes paging stable against tokens
// created meanwhile (they land on the last page) and lets the paging-cap window move forward.
func listQuery(opts ListOptions, after time.Time, page, size int) url.Values {
	q := url.Values{}
	if opts.Search != "" {
		q.Set("search", opts.Search)
	}
	if opts.State != "" {
		q.Set("state", opts.State)
	}
	if !after.IsZero() {
		q.Set("created_after", formatTime(after))
	}
	if !opts.CreatedBefore.IsZero() {
		q.Set("created_before", formatTime(opts.CreatedBefore))
	}
	q.Set("order_by", "created_asc")
	q.Set("page", strconv.Itoa(page))
	q.Set("page_size", strconv.Itoa(size))
	return q
}

// firstUnusable says why a list cannot be used, or "". One bad item fails the whole list: a
// partial list would make the controllers miss (and never revoke) the PAT it left out.
func firstUnusable(pats []wirePAT) string {
	for i := range pats {
		if why := pats[i].unusable(); why != "" {
			return fmt.Sprintf("item %d: %s", i, why)
		}
	}
	return ""
}

func isPageOutOfRange(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Code == CodeBadRequest && strings.HasPrefix(e.Detail, "Page out of range")
}

// filterLocally applies opts to V-A's complete, unfiltered, newest-first list and returns it in the
// same order as the envelope path (oldest first).
func filterLocally(all []wirePAT, opts ListOptions, now time.Time) []PAT {
	search := strings.ToLower(opts.Search)
	var out []PAT
	for i := range all {
		p := all[i].pat()
		switch {
		case search != "" && !strings.Contains(strings.ToLower(p.Name), search),
			opts.State == "active" && !p.Active(now),
			opts.State == "inactive" && p.Active(now),
			!opts.CreatedAfter.IsZero() && p.CreatedAt.Before(opts.CreatedAfter),
			!opts.CreatedBefore.IsZero() && p.CreatedAt.After(opts.CreatedBefore):
			continue
		}
		out = append(out, p)
	}
	slices.SortStableFunc(out, func(a, b PAT) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out
}
