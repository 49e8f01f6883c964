package nomadstub

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"
)

// This file holds what the stand-in's fuzz targets share: a small world (one user with a few
// PATs), a way to turn fuzzed bytes into the request net/http would hand the server, and the
// checks every answer must pass. Requests go straight to ServeHTTP, not through a listener, so
// that a handler's panic fails the fuzz run instead of being swallowed by net/http's recovery.

// fuzzWorld is a fresh stand-in per input, so that no input depends on the ones before it.
type fuzzWorld struct {
	srv    *Server
	clk    *testingclock.FakeClock
	access string   // the bot's Keycloak access token
	raw    string   // the raw token of an active PAT (a PAT cannot manage PATs: 403)
	ids    []string // PAT ids: active, revoked, expired
}

// Placeholders fuzzed paths, queries and bodies may hold; the world's random ids and tokens
// replace them, so that seeds can reach existing PATs.
const (
	idPlaceholder  = "{id}"
	rawPlaceholder = "{raw}"
)

func newFuzzWorld(t *testing.T) *fuzzWorld {
	t.Helper()
	w := &fuzzWorld{clk: testingclock.NewFakeClock(t0)}
	opts := DefaultOptions()
	opts.Clock = w.clk
	w.srv = New(opts)
	w.srv.AddUser(botUser, botPass)
	w.login(t)
	for _, days := range []int{30, 30, 1} {
		body := `{"metadata":{"name":"fuzz","scopes":["uploads:read"]},"expires_in_days":` + strconv.Itoa(days) + `}`
		rec := w.serve(t, rawRequest("POST", w.v1("/pats"), "application/json", body, "Bearer "+w.access))
		var cr struct {
			PAT struct {
				ID string `json:"id"`
			} `json:"pat"`
			RawToken string `json:"raw_token"`
		}
		if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &cr) != nil {
			t.Fatalf("create: %d %s", rec.Code, rec.Body)
		}
		w.ids = append(w.ids, cr.PAT.ID)
		if w.raw == "" {
			w.raw = cr.RawToken
		}
		w.clk.Step(time.Second)
	}
	w.srv.RevokePAT(w.ids[1])
	w.clk.Step(2 * 24 * time.Hour) // the one-day PAT has expired, and so has the access token
	w.login(t)
	return w
}

// login runs the password grant through ServeHTTP and keeps the access token.
func (w *fuzzWorld) login(t *testing.T) {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {botUser}, "password": {botPass}}.Encode()
	rec := w.serve(t, rawRequest("POST", w.v1("/auth/token"), "application/x-www-form-urlencoded", form, ""))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &tok) != nil {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	w.access = tok.AccessToken
}

func (w *fuzzWorld) v1(path string) string { return w.srv.BasePath() + "/v1" + path }

// fill replaces the placeholders.
func (w *fuzzWorld) fill(s string) string {
	return strings.NewReplacer(idPlaceholder, w.ids[0], rawPlaceholder, w.raw).Replace(s)
}

// credential picks the Authorization header by a fuzzed byte: the Keycloak token, none, a PAT,
// an unknown bearer, another scheme.
func (w *fuzzWorld) credential(kind uint8) string {
	switch kind % 5 {
	case 0:
		return "Bearer " + w.access
	case 1:
		return ""
	case 2:
		return "Bearer " + w.raw
	case 3:
		return "Bearer not-a-token"
	default:
		return "Basic Ym90OmJvdC1wYXNzd29yZA=="
	}
}

// rawRequest is an HTTP/1.1 request as text: target is the request-target (path and query).
func rawRequest(method, target, contentType, body, authorization string) string {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: stub.test\r\n")
	if contentType != "" {
		b.WriteString("Content-Type: " + contentType + "\r\n")
	}
	if authorization != "" {
		b.WriteString("Authorization: " + authorization + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	return b.String()
}

// parse reads raw the way net/http's server does; ok is false for what it would answer 400
// itself without calling the handler (a bad request line or header).
func parse(raw string) (*http.Request, bool) {
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		return nil, false
	}
	return req, true
}

// serve runs one request through ServeHTTP; raw must parse.
func (w *fuzzWorld) serve(t *testing.T, raw string) *httptest.ResponseRecorder {
	t.Helper()
	req, ok := parse(raw)
	if !ok {
		t.Fatalf("request does not parse: %q", raw)
	}
	return w.do(req)
}

// do runs a parsed request through ServeHTTP.
func (w *fuzzWorld) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	w.srv.ServeHTTP(rec, req)
	return rec
}

// checkAnswer asserts the contract's shape of any answer: a status in allowed, and for errors a
// JSON body with a detail of the right kind (nomad-pat-api.md §11.16): a string for 4xx other than
// 422, a list of validation objects for 422, NOMAD's object for 500.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, allowed ...int) {
	t.Helper()
	ok := false
	for _, s := range allowed {
		ok = ok || rec.Code == s
	}
	if !ok {
		t.Fatalf("status %d is not one of %v; body %s", rec.Code, allowed, rec.Body)
	}
	switch {
	case rec.Code == http.StatusNoContent || rec.Code == http.StatusTemporaryRedirect:
		if rec.Body.Len() != 0 {
			t.Fatalf("%d with a body: %s", rec.Code, rec.Body)
		}
		if rec.Code == http.StatusTemporaryRedirect && rec.Header().Get("Location") == "" {
			t.Fatalf("307 without Location")
		}
		return
	case rec.Code < 400:
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%d body is not JSON: %s", rec.Code, rec.Body)
		}
		return
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%d with Content-Type %q", rec.Code, ct)
	}
	var body struct {
		Detail json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Detail) == 0 {
		t.Fatalf("%d body is not JSON with a detail: %s", rec.Code, rec.Body)
	}
	switch rec.Code {
	case http.StatusUnprocessableEntity:
		var items []struct {
			Type string `json:"type"`
			Loc  []any  `json:"loc"`
			Msg  string `json:"msg"`
		}
		if err := json.Unmarshal(body.Detail, &items); err != nil || len(items) == 0 {
			t.Fatalf("422 detail is not a validation list: %s", rec.Body)
		}
		for _, it := range items {
			if it.Type == "" || it.Msg == "" || len(it.Loc) == 0 {
				t.Fatalf("422 item without type, msg or loc: %s", rec.Body)
			}
		}
	case http.StatusInternalServerError:
		var obj struct {
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal(body.Detail, &obj); err != nil || obj.Reason != detailUnexpectedFailure {
			t.Fatalf("500 detail is not NOMAD's exception object: %s", rec.Body)
		}
	default:
		var s string
		if err := json.Unmarshal(body.Detail, &s); err != nil || s == "" {
			t.Fatalf("%d detail is not a string: %s", rec.Code, rec.Body)
		}
		if rec.Code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
			t.Fatalf("401 without WWW-Authenticate")
		}
	}
}
