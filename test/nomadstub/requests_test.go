package nomadstub

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"
)

// TestRequestLogAttributesEveryRequest: each request that reaches an operation is logged with its
// real arrival time and the account it acts as, whatever its outcome; admin routes and routing
// 404s are not operations.
func TestRequestLogAttributesEveryRequest(t *testing.T) {
	h := newHarness(t)
	h.srv.AddUser("other", "pw")
	before := time.Now()

	kc := h.botToken()
	pat, raw := h.createPAT(kc, patBody("p", []string{"uploads:read"}, 1))
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), raw, nil), http.StatusForbidden) // a PAT, refused for scopes
	expectStatus(t, h.do(http.MethodGet, h.v1("/openapi.json"), "", nil), http.StatusOK)
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), "", nil), http.StatusUnauthorized)
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), "not-a-token", nil), http.StatusUnauthorized)
	expectStatus(t, h.postForm(url.Values{"grant_type": {"password"}, "username": {"other"}, "password": {"wrong"}}), http.StatusUnauthorized)
	h.srv.ExpireAccessTokens()
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), kc, nil), http.StatusUnauthorized) // dropped, still the bot's
	h.srv.InjectFault(OpRevoke, 1, Fault{Status: http.StatusServiceUnavailable})
	expectStatus(t, h.do(http.MethodDelete, h.v1("/pats/"+pat["id"].(string)), h.botToken(), nil), http.StatusServiceUnavailable)
	adminDo(t, h, http.MethodGet, "state", "")
	expectStatus(t, h.do(http.MethodGet, h.v1("/nowhere"), kc, nil), http.StatusNotFound)
	after := time.Now()

	type entry struct{ op, user string }
	var got []entry
	log := h.srv.RequestLog()
	for i, r := range log {
		got = append(got, entry{r.Op, r.User})
		// The harness's clock is a FakeClock at t0 (2026); the log must use real time anyway.
		if r.At.Before(before) || r.At.After(after) {
			t.Errorf("request %d at %v, not in real time [%v, %v]", i, r.At, before, after)
		}
		if i > 0 && r.At.Before(log[i-1].At) {
			t.Errorf("request %d at %v before request %d at %v", i, r.At, i-1, log[i-1].At)
		}
	}
	want := []entry{
		{OpLogin, botUser}, {OpCreate, botUser}, {OpList, botUser}, {OpOpenAPI, ""}, {OpList, ""}, {OpList, ""},
		{OpLogin, "other"}, {OpList, botUser}, {OpLogin, botUser}, {OpRevoke, botUser},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("request log\n got %v\nwant %v", got, want)
	}
	if n := len(h.srv.Requests(botUser)); n != 6 {
		t.Errorf("Requests(bot) has %d entries, want 6", n)
	}
	if rs := h.srv.Requests("other"); len(rs) != 1 || rs[0].Op != OpLogin {
		t.Errorf("Requests(other) = %v, want the one failed login", rs)
	}
	if n := len(h.srv.Requests("")); n != 3 {
		t.Errorf("anonymous requests = %d, want 3", n)
	}
	h.srv.ResetCalls()
	if len(h.srv.RequestLog()) != len(log) {
		t.Error("ResetCalls must not clear the request log")
	}
}

// TestRequestLogLeavesTheLoginBodyIntact: reading the username for the log must not eat the form
// the handler parses, in either encoding.
func TestRequestLogLeavesTheLoginBodyIntact(t *testing.T) {
	h := newHarness(t)
	h.botToken() // urlencoded
	expectStatus(t, h.multipartLogin(), http.StatusOK)
	rs := h.srv.Requests(botUser)
	if len(rs) != 2 || rs[0].Op != OpLogin || rs[1].Op != OpLogin {
		t.Fatalf("Requests(bot) = %v, want two logins", rs)
	}
}

// TestRequestLogIsBounded: a long-running stand-in keeps the newest requests only.
func TestRequestLogIsBounded(t *testing.T) {
	var l requestLog
	base := time.Now()
	for i := range maxLoggedRequests + 10 {
		l.add(Request{At: base.Add(time.Duration(i)), Op: OpList})
	}
	if n := len(l.entries); n > maxLoggedRequests || n < maxLoggedRequests/2 {
		t.Fatalf("log holds %d entries, want between %d and %d", n, maxLoggedRequests/2, maxLoggedRequests)
	}
	if last := l.entries[len(l.entries)-1].At; !last.Equal(base.Add(time.Duration(maxLoggedRequests + 9))) {
		t.Fatalf("newest entry at %v was dropped", last)
	}
}
