package nomad

import (
	"context"
	"testing"
)

// FuzzCreationResponse feeds Create and Rotate one answer each: a PATCreationResponse in its
// variants (nomad-pat-api.md §3, §4.1, §4.5), or anything else. A usable answer must decode to a
// PAT with id, created_at and raw token; anything else must be a classified *Error, never a panic,
// and never show the raw token it may have carried.
func FuzzCreationResponse(f *testing.F) {
	const pat = `{"id":"0123456789abcdef01234567","name":"ci","scopes":["uploads:read"],"description":null,` +
		`"revoked":false,"created_at":"2026-01-02T03:04:05.123456Z","expired_at":"2026-02-01T03:04:05.123456Z","last_used_at":null}`
	for _, s := range []struct {
		status int
		body   string
	}{
		// V-B/C create: 201, microseconds and Z.
		{201, `{"pat":` + pat + `,"raw_token":"` + testRaw + `"}`},
		// Rotate answers 200 with the same shape.
		{200, `{"pat":` + pat + `,"raw_token":"` + testRaw + `"}`},
		// Zero microseconds are sent without a fraction; never expires is null.
		{201, `{"pat":{"id":"0123456789abcdef01234567","name":"","scopes":["uploads:read"],"revoked":false,"created_at":"2026-01-02T03:04:05Z","expired_at":null,"last_used_at":null},"raw_token":"` + testRaw + `"}`},
		// V-A: naive datetimes, milliseconds, a description.
		{201, `{"pat":{"id":"0123456789abcdef01234567","name":"a","scopes":[],"description":"d","revoked":false,"created_at":"2026-01-02T03:04:05.123","expired_at":"2026-01-03T03:04:05.123000","last_used_at":"2026-01-02T03:04:05"},"raw_token":"` + testRaw + `"}`},
		// An offset instead of Z, and a space instead of T.
		{201, `{"pat":{"id":"0123456789abcdef01234567","name":"a","scopes":["x"],"revoked":false,"created_at":"2026-01-02 05:04:05.5+02:00","expired_at":"2026-01-03T03:04:05-0500"},"raw_token":"` + testRaw + `"}`},
		// Broken answers that must be Transient: no raw_token, no pat, no id, no created_at.
		{201, `{"pat":` + pat + `}`},
		{201, `{"raw_token":"` + testRaw + `"}`},
		{201, `{"pat":{"name":"x","created_at":"2026-01-02T03:04:05Z"},"raw_token":"` + testRaw + `"}`},
		{201, `{"pat":{"id":"0123456789abcdef01234567"},"raw_token":"` + testRaw + `"}`},
		// created_at that is there but says nothing (Python's datetime.min).
		{201, `{"pat":{"id":"0123456789abcdef01234567","created_at":"0001-01-01T00:00:00"},"raw_token":"` + testRaw + `"}`},
		// Wrong types and bad datetimes: the decoder's error must not quote the raw token.
		{201, `{"pat":` + pat + `,"raw_token":42}`},
		{201, `{"pat":{"id":"0123456789abcdef01234567","created_at":"` + testRaw + `"},"raw_token":"` + testRaw + `"}`},
		{201, `{"pat":{"id":"0123456789abcdef01234567","created_at":"2026-13-45T99:99:99Z"},"raw_token":"` + testRaw + `"}`},
		{201, `{"pat":{"id":5,"created_at":1767323045},"raw_token":"` + testRaw + `"}`},
		// Not JSON, empty, truncated, or a list where an object belongs.
		{201, `<html>Created</html>`},
		{201, ``},
		{201, `{"pat":` + pat[:40]},
		{200, `[` + pat + `]`},
		// A 204 cannot carry the body at all.
		{204, `{"pat":` + pat + `,"raw_token":"` + testRaw + `"}`},
		// Errors: §4.1 400s, 422 lists, 401/403/404, an object detail, a detail echoing the token.
		{400, `{"detail":"Maximum number of active PAT (100) reached."}`},
		{400, `{"detail":"Requested lifetime (400 days) exceeds the maximum allowed (90.0 days)."}`},
		{400, `{"detail":"Cannot rotate an expired/revoked token."}`},
		{422, `{"detail":[{"type":"missing","loc":["body","metadata","name"],"msg":"Field required","input":{}}]}`},
		{403, `{"detail":"Missing scopes: [<Scope.TOKENS_CREATE: 'tokens:create'>]"}`},
		{404, `{"detail":"Token not found or does not belong to the user."}`},
		{500, `{"detail":{"reason":"Unexpected exception while handling your request","exception":"` + testRaw + `"}}`},
		{400, `{"detail":"bad token ` + testRaw + `"}`},
		{422, `{"detail":[{"loc":["body"],"msg":"` + testRaw + `","input":"` + echoPassword + `"}]}`},
	} {
		f.Add(s.status, s.body)
	}
	srv := newReplayNomad(f)
	f.Fuzz(func(t *testing.T, status int, body string) {
		status = fuzzStatus(status)
		srv.script(nil, answer{status: status, body: body})
		for _, op := range []string{opCreate, opRotate} {
			c, _ := srv.client(t)
			var (
				got *IssuedToken
				err error
			)
			if op == opCreate {
				got, err = c.Create(context.Background(), CreateRequest{Name: "ci", Scopes: []string{"uploads:read"}})
			} else {
				got, err = c.Rotate(context.Background(), "0123456789abcdef01234567")
			}
			if err != nil {
				checkFailure(t, err, op)
				continue
			}
			if got.RawToken == "" {
				t.Fatalf("%s: success without a raw token", op)
			}
			checkPAT(t, op, got.PAT)
		}
	})
}
