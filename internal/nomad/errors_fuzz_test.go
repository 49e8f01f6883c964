package nomad

import (
	"context"
	"testing"
	"time"
)

// FuzzErrorResponse feeds Get and Revoke one answer with any status, body and Retry-After: error
// bodies whose detail is a string (400/401/403/404), a list of validation objects (422) or an object
// (500), and everything a proxy might send instead (nomad-pat-api.md §11.16). Each failure must be
// a classified *Error whose code fits the status; a Retry-After is never negative or unbounded.
func FuzzErrorResponse(f *testing.F) {
	const pat = `{"id":"0123456789abcdef01234567","name":"ci","scopes":["uploads:read"],"description":null,"revoked":false,"created_at":"2026-01-02T03:04:05Z","expired_at":null,"last_used_at":null}`
	for _, s := range []struct {
		status     int
		body       string
		retryAfter string
	}{
		// Success answers: inspect's PAT; revoke's 204.
		{200, pat, ""},
		{204, ``, ""},
		// String details, each 400 family of §4.1/§4.5, and the §2 errors.
		{400, `{"detail":"At least one scope must be selected."}`, ""},
		{400, `{"detail":"Invalid scopes: {'x:y', 'uploads:*'}"}`, ""},
		{400, `{"detail":"Infinite tokens are disabled. Max lifetime is 365 days."}`, ""},
		{400, `{"detail":"Page out of range requested."}`, ""},
		{401, `{"detail":"Could not validate credentials. The given token is invalid."}`, ""},
		{403, `{"detail":"You are not authorized to access this Oasis"}`, ""},
		{404, `{"detail":"Token not found or does not belong to the user."}`, ""},
		{404, `{"detail":"Not Found"}`, ""},
		{405, `{"detail":"Method Not Allowed"}`, ""},
		// 422 lists: loc with strings and numbers, no loc, extra keys, items that are not objects.
		{422, `{"detail":[{"type":"missing","loc":["body","metadata","name"],"msg":"Field required","input":{"password":"` + echoPassword + `"}}]}`, ""},
		{422, `{"detail":[{"loc":["query",0,null,true,{"a":1}],"msg":"Page has to be larger than 1"},{"msg":"no loc"}]}`, ""},
		{422, `{"detail":["just a string",1,null]}`, ""},
		{422, `{"detail":[]}`, ""},
		// 500 objects: NOMAD's, one without reason, one whose traceback holds a token.
		{500, `{"detail":{"reason":"Unexpected exception while handling your request","exception":"x","exception_class":"KeyError","exception_traceback":"Traceback..."}}`, ""},
		{500, `{"detail":{}}`, ""},
		{500, `{"detail":{"reason":"` + testRaw + `","exception_traceback":"` + echoAccess + `"}}`, ""},
		// Details of other types, and none.
		{400, `{"detail":null}`, ""},
		{400, `{"detail":42}`, ""},
		{400, `{"detail":""}`, ""},
		{418, `{"detail":""}`, ""},
		{400, `{}`, ""},
		// Not JSON: a proxy's HTML, plain text, invalid UTF-8, a detail echoing the password.
		{502, `<html><body>Bad Gateway</body></html>`, ""},
		{404, "404 page not found\n", ""},
		{400, "{\"detail\":\"bad \xff\xfe bytes\"}", ""},
		{400, `{"detail":"echo ` + echoPassword + `"}`, ""},
		// Retry-After as seconds, as an HTTP-date, absurdly large, negative, garbage.
		{429, `{"detail":"Too Many Requests"}`, "120"},
		{503, `{"detail":"Service Unavailable"}`, "Fri, 02 Jan 2026 03:05:35 GMT"},
		{503, `{"detail":"Service Unavailable"}`, "Fri, 31 Dec 9999 23:59:59 GMT"},
		{503, ``, "99999999999999999999"},
		{503, ``, "-5"},
		{503, ``, "soon"},
		// Redirects are reported, never followed.
		{307, ``, ""},
		{302, `<a href="/">moved</a>`, ""},
	} {
		f.Add(s.status, s.body, s.retryAfter)
	}
	srv := newReplayNomad(f)
	f.Fuzz(func(t *testing.T, status int, body, retryAfter string) {
		status = fuzzStatus(status)
		srv.script(nil, answer{status: status, body: body, retryAfter: fuzzHeader(retryAfter)})

		c, _ := srv.client(t)
		p, err := c.Get(context.Background(), "0123456789abcdef01234567")
		if err == nil {
			checkPAT(t, opGet, *p)
		} else {
			e := checkFailure(t, err, opGet)
			if e.RetryAfter < 0 || e.RetryAfter > maxRetryAfterSeconds*time.Second {
				t.Fatalf("Retry-After %q gave %v", retryAfter, e.RetryAfter)
			}
		}

		c, _ = srv.client(t)
		if err := c.Revoke(context.Background(), "0123456789abcdef01234567"); err != nil {
			e := checkFailure(t, err, opRevoke)
			if e.Code == CodeNotFound {
				t.Fatalf("revoke must treat NOMAD's 404 as success, got %v", e)
			}
		}
	})
}
