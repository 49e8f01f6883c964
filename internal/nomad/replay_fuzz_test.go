package nomad

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	testingclock "k8s.io/utils/clock/testing"
)

// This file holds what the client fuzz targets share: a server that replays one scripted answer,
// and the checks every failed call must pass. The targets go through the real HTTPClient and a real
// HTTP exchange, so that decoding, classification and redaction are exercised end to end.

// Placeholders a fuzzed body may contain; the replay server substitutes the client's own secrets,
// so that seeds can check that an echoed password or access token is withheld.
const (
	echoPassword = "$PASSWORD"
	echoAccess   = "$ACCESS"
)

// answer is one scripted HTTP answer.
type answer struct {
	status     int
	body       string
	retryAfter string
}

// replayNomad answers the login and the PAT routes with scripted answers. Unset answers are a
// good login (access token accessToken(1)) and, for list pages after the first, an empty page.
type replayNomad struct {
	ts *httptest.Server
	// hc is shared by every client of one fuzz run, so that connections are reused: a new
	// transport per input would leave thousands of sockets in TIME_WAIT.
	hc *http.Client

	mu    sync.Mutex
	login *answer
	pats  answer
}

func newReplayNomad(f *testing.F) *replayNomad {
	r := &replayNomad{}
	r.ts = httptest.NewServer(http.HandlerFunc(r.serve))
	f.Cleanup(r.ts.Close)
	r.hc = &http.Client{
		Transport:     r.ts.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return r
}

// script sets the answers for the next input. login nil means a good login.
func (r *replayNomad) script(login *answer, pats answer) {
	r.mu.Lock()
	r.login, r.pats = login, pats
	r.mu.Unlock()
}

func (r *replayNomad) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	login, pats := r.login, r.pats
	r.mu.Unlock()
	var a answer
	switch {
	case req.URL.Path == "/api/v1/auth/token" && login == nil:
		a = answer{status: 200, body: `{"access_token":"` + accessToken(1) + `","token_type":"Bearer","expires_in":300}`}
	case req.URL.Path == "/api/v1/auth/token":
		a = *login
	case req.Method == http.MethodGet && req.URL.Path == "/api/v1/pats" && req.URL.Query().Get("page") != "1":
		// Later list pages end the listing, so that one input is at most two list requests.
		a = answer{status: 200, body: `{"pagination":{"total":0},"data":[]}`}
	default:
		a = pats
	}
	body := strings.ReplaceAll(a.body, echoPassword, testPass)
	body = strings.ReplaceAll(body, echoAccess, accessToken(1))
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(body))
}

// client builds a fresh client (no cached access token, no detected path) on the shared transport.
func (r *replayNomad) client(t *testing.T) (*HTTPClient, *testingclock.FakeClock) {
	t.Helper()
	clk := testingclock.NewFakeClock(testEpoch)
	c, err := New(Config{
		URL: r.ts.URL + "/api", PATPath: PATPathPats, Username: testUser, Password: testPass,
		HTTPClient: r.hc, Clock: clk, RequestTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, clk
}

// fuzzStatus maps any fuzzed integer to a status a server can send with a body: 200-599 (1xx are
// interim answers, and net/http refuses codes outside 100-999).
func fuzzStatus(n int) int {
	if n >= 200 && n <= 599 {
		return n
	}
	return 200 + (n%400+400)%400
}

// fuzzHeader keeps a fuzzed header value to what net/http will send unchanged.
func fuzzHeader(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
}

var knownCodes = map[Code]bool{
	CodeCredentialsInvalid: true, CodeUnauthorized: true, CodeForbidden: true, CodeNotFound: true,
	CodePathNotFound: true, CodeInvalidScopes: true, CodeLifetimeExceeded: true,
	CodeTokenLimitReached: true, CodeNotActive: true, CodeBadRequest: true, CodeTransient: true,
	CodeIssuerInvalid: true,
}

// checkFailure asserts what every failed call must look like: a classified *Error (never a raw
// error), a code consistent with the HTTP status, and a message free of any secret: no raw PAT
// or JWT by shape, not the client's password or access token, and valid UTF-8 (it becomes a
// condition message).
func checkFailure(t *testing.T, err error, op string) *Error {
	t.Helper()
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("%s returned %T, not *nomad.Error: %v", op, err, err)
	}
	if !knownCodes[e.Code] {
		t.Fatalf("%s: unknown code %q in %v", op, e.Code, e)
	}
	if e.Op != op && e.Op != opLogin {
		t.Fatalf("%s: error names op %q: %v", op, e.Op, e)
	}
	if e.StatusCode != 0 && !codeFitsStatus(e.Code, e.StatusCode, e.Op) {
		t.Fatalf("%s: code %s does not fit HTTP %d: %v", op, e.Code, e.StatusCode, e)
	}
	msg := e.Error()
	for _, leak := range []string{testPass, accessToken(1)} {
		if strings.Contains(msg, leak) {
			t.Fatalf("%s: error message leaks a client secret: %q", op, msg)
		}
	}
	if patPattern.MatchString(msg) || jwtPattern.MatchString(msg) {
		t.Fatalf("%s: error message carries a token: %q", op, msg)
	}
	if !utf8.ValidString(msg) {
		t.Fatalf("%s: error message is not UTF-8: %q", op, msg)
	}
	return e
}

// codeFitsStatus is the classification contract by status class (nomad-pat-api.md §11.16,
// errors.go): 2xx failures are unreadable answers, retried.
func codeFitsStatus(code Code, status int, op string) bool {
	switch {
	case status >= 200 && status < 300:
		return code == CodeTransient
	case status >= 300 && status < 400:
		return code == CodeBadRequest
	case status == 400:
		switch code {
		case CodeInvalidScopes, CodeLifetimeExceeded, CodeTokenLimitReached, CodeNotActive, CodeBadRequest:
			return true
		}
		return false
	case status == 401 && op == opLogin:
		return code == CodeCredentialsInvalid
	case status == 401:
		return code == CodeUnauthorized
	case status == 403:
		return code == CodeForbidden
	case status == 404:
		return code == CodeNotFound || code == CodePathNotFound
	case status == 500 && op == opLogin:
		// NOMAD's 500 carrying Keycloak's refusal of the password grant.
		return code == CodeTransient || code == CodeCredentialsInvalid
	case status == 408, status == 429, status >= 500:
		return code == CodeTransient
	default:
		return code == CodeBadRequest
	}
}

// checkPAT asserts that a decoded PAT is usable: an id, a creation time, and UTC times.
func checkPAT(t *testing.T, op string, p PAT) {
	t.Helper()
	if p.ID == "" {
		t.Fatalf("%s: decoded a PAT without id: %+v", op, p)
	}
	if p.CreatedAt.IsZero() || p.CreatedAt.Location() != time.UTC {
		t.Fatalf("%s: created_at %v is zero or not UTC", op, p.CreatedAt)
	}
	for _, tp := range []*time.Time{p.ExpiresAt, p.LastUsedAt} {
		if tp != nil && tp.Location() != time.UTC {
			t.Fatalf("%s: time %v is not UTC", op, *tp)
		}
	}
}
