package nomadstub

import (
	"net/http"
	"strings"
	"testing"
)

// fuzzMethods are the methods FuzzRoutePath picks from: the routed ones and a few that never are.
var fuzzMethods = []string{"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"}

// FuzzRoutePath sends any method (by index) and request-target, with a credential picked by auth,
// to the stand-in's NOMAD routes (nomad-pat-api.md §1, §4.3-4.5): path ids of every shape,
// trailing slashes, both prefixes, escapes. The answer must be one of the contract's statuses with
// its body. The /_stub admin routes are not NOMAD's and are left out.
func FuzzRoutePath(f *testing.F) {
	for _, s := range []struct {
		method uint8
		auth   uint8
		target string
	}{
		// Inspect, revoke, rotate an existing PAT under both prefixes, and the upper-case id.
		{0, 0, "/nomad-oasis/api/v1/pats/{id}"},
		{0, 0, "/nomad-oasis/api/v1/auth/pats/{id}"},
		{2, 0, "/nomad-oasis/api/v1/pats/{id}"},
		{1, 0, "/nomad-oasis/api/v1/pats/{id}/rotate"},
		{0, 0, "/nomad-oasis/api/v1/pats/0123456789ABCDEF01234567"},
		// Ids that are no ObjectId: short, long, not hex, escaped, empty segments (all 404).
		{0, 0, "/nomad-oasis/api/v1/pats/123"},
		{0, 0, "/nomad-oasis/api/v1/pats/{id}0"},
		{2, 0, "/nomad-oasis/api/v1/pats/zzzzzzzzzzzzzzzzzzzzzzzz"},
		{0, 0, "/nomad-oasis/api/v1/pats/%30%31%32%33%34%35%36%37%38%39%61%62%63%64%65%66%30%31%32%33%34%35%36%37"},
		{0, 0, "/nomad-oasis/api/v1/pats/%2F"},
		{0, 0, "/nomad-oasis/api/v1/pats//rotate"},
		// Trailing slashes redirect (307); a wrong method is 405; PUT/PATCH never exist.
		{0, 0, "/nomad-oasis/api/v1/pats/"},
		{1, 0, "/nomad-oasis/api/v1/pats/{id}/rotate/?x=1"},
		{3, 0, "/nomad-oasis/api/v1/pats/{id}"},
		{4, 0, "/nomad-oasis/api/v1/pats"},
		{0, 0, "/nomad-oasis/api/v1/pats/{id}/rotate"},
		{5, 0, "/nomad-oasis/api/v1/auth/token"},
		// The rest of the URL space: openapi.json (any verb), the root, outside the base.
		{6, 1, "/nomad-oasis/api/v1/openapi.json"},
		{0, 1, "/nomad-oasis/api/v1"},
		{0, 1, "/nomad-oasis/api/v1/"},
		{0, 1, "/"},
		{0, 1, "/nomad-oasis/api/v2/pats"},
		{0, 1, "/nomad-oasis/api/v1/pats/../auth/token"},
		{0, 1, "*"},
		{0, 1, "http://other.host/nomad-oasis/api/v1/pats"},
		// Credentials: none (401), a PAT (403), unknown (401), another scheme (401).
		{0, 1, "/nomad-oasis/api/v1/pats/{id}"},
		{1, 2, "/nomad-oasis/api/v1/pats/{id}/rotate"},
		{2, 3, "/nomad-oasis/api/v1/pats/{id}"},
		{0, 4, "/nomad-oasis/api/v1/pats"},
	} {
		f.Add(s.method, s.auth, s.target)
	}
	f.Fuzz(func(t *testing.T, method, auth uint8, target string) {
		w := newFuzzWorld(t)
		req, ok := parse(rawRequest(fuzzMethods[int(method)%len(fuzzMethods)], w.fill(target), "", "", w.credential(auth)))
		if !ok || strings.HasPrefix(req.URL.Path, adminPrefix) {
			return
		}
		rec := w.do(req)
		checkAnswer(t, rec, http.StatusOK, http.StatusCreated, http.StatusNoContent, http.StatusTemporaryRedirect,
			http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
			http.StatusMethodNotAllowed, http.StatusUnprocessableEntity)
	})
}
