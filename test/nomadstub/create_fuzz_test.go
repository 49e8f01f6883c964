package nomadstub

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
)

var (
	rawTokenShape = regexp.MustCompile(`^nomad_pat_[A-Za-z0-9_-]{43}$`)
	objectIDShape = regexp.MustCompile(`^[0-9a-f]{24}$`)
)

// FuzzCreateBody posts any body with any Content-Type to POST {pats} (nomad-pat-api.md §4.1), with
// a credential picked by auth. The answer must be one of create's statuses with the contract's
// body; a 201 must carry a PAT that exists and a raw token that authenticates.
func FuzzCreateBody(f *testing.F) {
	for _, s := range []struct {
		auth        uint8
		contentType string
		body        string
	}{
		// Valid: the operator's body, an omitted lifetime (30 days), lax ints, extra keys.
		{0, "application/json", `{"metadata":{"name":"ci","scopes":["uploads:read"],"description":"d"},"expires_in_days":30}`},
		{0, "application/json", `{"metadata":{"name":"","scopes":["uploads:read","entries:read"]}}`},
		{0, "application/json; charset=utf-8", `{"metadata":{"name":"ci","scopes":["uploads:read"],"description":null},"expires_in_days":"30","x":1}`},
		{0, "application/vnd.api+json", `{"metadata":{"name":"ci","scopes":["uploads:read"]},"expires_in_days":30.0}`},
		{0, "", `{"metadata":{"name":"ci","scopes":["uploads:read"]},"expires_in_days":true}`},
		// §4.1 400s in order: empty scopes, non-positive, infinite, too long, unknown, tokens:*.
		{0, "application/json", `{"metadata":{"name":"ci","scopes":[]},"expires_in_days":30}`},
		{0, "application/json", `{"metadata":{"name":"ci","scopes":["uploads:read"]},"expires_in_days":-0}`},
		{0, "application/json", `{"metadata":{"name":"ci","scopes":["uploads:read"]},"expires_in_days":null}`},
		{0, "application/json", `{"metadata":{"name":"ci","scopes":["uploads:read"]},"expires_in_days":1e308}`},
		{0, "application/json", `{"metadata":{"name":"ci","scopes":["uploads:*","*:*","x'\"\\\n\u0000"]},"expires_in_days":1}`},
		{0, "application/json", `{"metadata":{"name":"ci","scopes":["tokens:read"]},"expires_in_days":1}`},
		// 422s: missing fields, wrong types, fractions, huge and non-finite numbers, not an object.
		{0, "application/json", `{}`},
		{0, "application/json", `{"metadata":[]}`},
		{0, "application/json", `{"metadata":{"name":1,"scopes":"uploads:read","description":5},"expires_in_days":1.5}`},
		{0, "application/json", `{"metadata":{"name":"ci","scopes":[1,null,{}]},"expires_in_days":1e400}`},
		{0, "application/json", `{"metadata":{"name":"ci","scopes":["uploads:read"]},"expires_in_days":"1e3"}`},
		{0, "application/json", `{"metadata":{"name":"ci","scopes":["uploads:read"]},"expires_in_days":123456789012345678901234567890}`},
		{0, "application/json", `[1,2]`},
		{0, "application/json", `null`},
		// Not JSON: truncated, trailing data, invalid UTF-8, empty, a form, deeply nested.
		{0, "application/json", `{"metadata":`},
		{0, "application/json", `{} {}`},
		{0, "application/json", "{\"metadata\":{\"name\":\"\xff\",\"scopes\":[\"uploads:read\"]}}"},
		{0, "application/json", ``},
		{0, "application/x-www-form-urlencoded", `metadata=x`},
		{0, "application/json", `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`},
		{0, "text/plain; charset=\"unterminated", `{"metadata":{"name":"ci","scopes":["uploads:read"]}}`},
		// Precedence: a bad body without credentials is 401, with a PAT 403; bad JSON is 422 first.
		{1, "application/json", `{"metadata":{}}`},
		{2, "application/json", `{"metadata":{"name":"ci","scopes":["uploads:read"]}}`},
		{3, "application/json", `{"metadata":{"name":"ci","scopes":["uploads:read"]}}`},
		{4, "application/json", `{"metadata":`},
	} {
		f.Add(s.auth, s.contentType, s.body)
	}
	f.Fuzz(func(t *testing.T, auth uint8, contentType, body string) {
		w := newFuzzWorld(t)
		req, ok := parse(rawRequest("POST", w.v1("/pats"), contentType, w.fill(body), w.credential(auth)))
		if !ok {
			return // net/http itself would have answered 400
		}
		rec := w.do(req)
		checkAnswer(t, rec, http.StatusCreated, http.StatusBadRequest, http.StatusUnauthorized,
			http.StatusForbidden, http.StatusUnprocessableEntity)
		if rec.Code != http.StatusCreated {
			return
		}
		var cr struct {
			PAT struct {
				ID     string   `json:"id"`
				Scopes []string `json:"scopes"`
			} `json:"pat"`
			RawToken string `json:"raw_token"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &cr); err != nil {
			t.Fatalf("201 is not a PATCreationResponse: %v: %s", err, rec.Body)
		}
		if !objectIDShape.MatchString(cr.PAT.ID) || !rawTokenShape.MatchString(cr.RawToken) || len(cr.PAT.Scopes) == 0 {
			t.Fatalf("201 with a malformed PAT: %s", rec.Body)
		}
		if !w.srv.Authenticates(cr.RawToken) {
			t.Fatalf("the raw token of a created PAT does not authenticate")
		}
	})
}
