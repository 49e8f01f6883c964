package nomad

import (
	"context"
	"strings"
	"testing"
	"time"
)

// FuzzListResponse feeds List one first page: V-A's bare array or the V-B/C envelope (nomad-pat-api.md
// §4.2), or anything else. Later pages are empty, so an input is at most two requests. mode picks
// the filters (bits 0-1: state "", active, inactive; bit 2: a created_after bound), which V-A's
// array makes the client apply itself.
func FuzzListResponse(f *testing.F) {
	const (
		active  = `{"id":"000000000000000000000001","name":"ci-a","scopes":["uploads:read"],"description":null,"revoked":false,"created_at":"2026-01-02T03:04:05.123000Z","expired_at":"2026-02-01T03:04:05.123000Z","last_used_at":null}`
		revoked = `{"id":"000000000000000000000002","name":"ci-b","scopes":["uploads:read"],"description":"x","revoked":true,"created_at":"2026-01-01T03:04:05Z","expired_at":null,"last_used_at":"2026-01-01T04:00:00.5Z"}`
		naive   = `{"id":"000000000000000000000003","name":"CI-c","scopes":[],"revoked":false,"created_at":"2026-01-02T03:04:06.123","expired_at":"2026-01-02T03:04:04.999999"}`
		pg      = `"pagination":{"page_size":2,"order_by":"created_asc","order":"asc","page":1,"page_offset":null,"page_after_value":null,"total":3,"next_page_after_value":"1","page_url":"http://internal:8000/x","first_page_url":null,"next_page_url":null,"prev_page_url":null}`
		query   = `"query":{"search":null,"revoked":null,"state":null,"created_after":null,"created_before":null,"last_used_after":null,"last_used_before":null,"expires_after":null,"expires_before":null}`
	)
	for _, s := range []struct {
		mode   uint8
		status int
		body   string
	}{
		// V-B/C envelope: a full page (so page 2 is fetched), a short one, an empty one.
		{0, 200, `{` + query + `,` + pg + `,"data":[` + active + `,` + revoked + `]}`},
		{1, 200, `{` + pg + `,"data":[` + naive + `]}`},
		{0, 200, `{"pagination":{"total":0},"data":[]}`},
		// An envelope without pagination, or with a total that is not a number.
		{0, 200, `{"data":[` + active + `,` + active + `]}`},
		{0, 200, `{"pagination":{"total":"3"},"data":[` + active + `]}`},
		// V-A bare array, newest first, every filter applied locally.
		{0, 200, `[` + naive + `,` + active + `,` + revoked + `]`},
		{1, 200, `[` + naive + `,` + active + `,` + revoked + `]`},
		{2, 200, `  [` + naive + `,` + revoked + `]`},
		{4, 200, `[` + active + `,` + revoked + `]`},
		{0, 200, `[]`},
		// Items the operator cannot use: no id, no created_at, a bad or non-string datetime.
		{0, 200, `[{"name":"x","created_at":"2026-01-02T03:04:05Z"}]`},
		{0, 200, `{"data":[{"id":"000000000000000000000009"}]}`},
		{0, 200, `{"data":[{"id":"000000000000000000000009","created_at":"yesterday"}]}`},
		{0, 200, `[{"id":"000000000000000000000009","created_at":1767323045}]`},
		// Not the list shape at all.
		{0, 200, `{"data":null}`},
		{0, 200, `{"items":[]}`},
		{0, 200, `"data"`},
		{0, 200, `[` + active},
		{0, 200, ``},
		{0, 200, `null`},
		// Errors: page out of range, 422 pagination, an object detail, auth, a proxy's HTML.
		{0, 400, `{"detail":"Page out of range requested."}`},
		{0, 422, `{"detail":[{"type":"literal_error","loc":["query","state"],"msg":"Input should be 'active' or 'inactive'","input":"all"}]}`},
		{0, 500, `{"detail":{"reason":"Unexpected exception while handling your request","exception":"invalid literal for int()","exception_class":"ValueError","exception_traceback":"..."}}`},
		{0, 401, `{"detail":"Authentication required."}`},
		{0, 502, `<html><body>Bad Gateway</body></html>`},
	} {
		f.Add(s.mode, s.status, s.body)
	}
	srv := newReplayNomad(f)
	f.Fuzz(func(t *testing.T, mode uint8, status int, body string) {
		status = fuzzStatus(status)
		srv.script(nil, answer{status: status, body: body})
		opts := ListOptions{State: []string{"", "active", "inactive", ""}[mode&3], PageSize: 2}
		if mode&4 != 0 {
			opts.CreatedAfter = testEpoch.Add(-24 * time.Hour)
		}
		c, clk := srv.client(t)
		pats, err := c.List(context.Background(), opts)
		if err != nil {
			checkFailure(t, err, opList)
			return
		}
		for _, p := range pats {
			checkPAT(t, opList, p)
			// Only V-A's array is filtered here; for the envelope the server's filtering is trusted.
			if !isBareArray(body) {
				continue
			}
			if opts.State == "active" && !p.Active(clk.Now()) || opts.State == "inactive" && p.Active(clk.Now()) {
				t.Fatalf("state %q kept %+v", opts.State, p)
			}
			if !opts.CreatedAfter.IsZero() && p.CreatedAt.Before(opts.CreatedAfter) {
				t.Fatalf("created_after %v kept %+v", opts.CreatedAfter, p)
			}
		}
	})
}

// isBareArray tells the two list shapes apart the way the client does.
func isBareArray(body string) bool { return strings.HasPrefix(strings.TrimSpace(body), "[") }
