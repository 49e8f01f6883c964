package nomadstub

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"
)

// t0 is a whole second, so stored and returned times agree unless a test moves the clock.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	botUser = "bot"
	botPass = "bot-password"
)

// harness is one stand-in on a real listener, a fake clock and a client that does not follow
// redirects, so tests see exactly what NOMAD would send.
type harness struct {
	t      *testing.T
	srv    *Server
	ts     *httptest.Server
	clk    *testingclock.FakeClock
	client *http.Client
}

func newHarness(t *testing.T, mutate ...func(*Options)) *harness {
	t.Helper()
	clk := testingclock.NewFakeClock(t0)
	opts := DefaultOptions()
	opts.Clock = clk
	for _, m := range mutate {
		m(&opts)
	}
	srv, ts := Start(opts)
	t.Cleanup(ts.Close)
	srv.AddUser(botUser, botPass)
	return &harness{
		t: t, srv: srv, ts: ts, clk: clk,
		client: &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       10 * time.Second,
		},
	}
}

// v1 is the URL of a path below {base}/v1.
func (h *harness) v1(path string) string { return h.srv.APIRoot(h.ts.URL) + "/v1" + path }

// response is a finished exchange with its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// detail is the string detail of a FastAPI HTTPException body ("" if it is not a string).
func (r response) detail(t *testing.T) string {
	t.Helper()
	d, _ := r.json(t)["detail"].(string)
	return d
}

// validation returns the 422 error list.
func (r response) validation(t *testing.T) []map[string]any {
	t.Helper()
	list, ok := r.json(t)["detail"].([]any)
	if !ok {
		t.Fatalf("detail is not a list: %s", r.body)
	}
	out := make([]map[string]any, len(list))
	for i, e := range list {
		out[i] = e.(map[string]any)
	}
	return out
}

type reqOpt func(*http.Request)

func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

// do sends a request. body may be nil, a string (sent verbatim as JSON) or any value (JSON-encoded).
func (h *harness) do(method, url, token string, body any, opts ...reqOpt) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// postForm posts a urlencoded form to /auth/token.
func (h *harness) postForm(form url.Values) response {
	h.t.Helper()
	return h.do(http.MethodPost, h.v1("/auth/token"), "", nil, func(r *http.Request) {
		r.Body = io.NopCloser(strings.NewReader(form.Encode()))
		r.ContentLength = int64(len(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	})
}

// login runs the password grant and returns the access token.
func (h *harness) login(user, pass string) string {
	h.t.Helper()
	r := h.postForm(url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}})
	if r.status != http.StatusOK {
		h.t.Fatalf("login %s: %d %s", user, r.status, r.body)
	}
	return r.json(h.t)["access_token"].(string)
}

func (h *harness) botToken() string { return h.login(botUser, botPass) }

// createPAT creates a PAT through the API and returns the decoded PATCreationResponse.
func (h *harness) createPAT(token string, body any) (pat map[string]any, raw string) {
	h.t.Helper()
	r := h.do(http.MethodPost, h.v1("/pats"), token, body)
	if r.status != http.StatusCreated {
		h.t.Fatalf("create: %d %s", r.status, r.body)
	}
	m := r.json(h.t)
	return m["pat"].(map[string]any), m["raw_token"].(string)
}

// patBody builds a create body; days < 0 omits the key.
func patBody(name string, scopes []string, days int) map[string]any {
	b := map[string]any{"metadata": map[string]any{"name": name, "scopes": scopes}}
	if days >= 0 {
		b["expires_in_days"] = days
	}
	return b
}

func expectStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status = %d, want %d; body %s", r.status, want, r.body)
	}
}

func expectDetail(t *testing.T, r response, status int, detail string) {
	t.Helper()
	expectStatus(t, r, status)
	if got := r.detail(t); got != detail {
		t.Fatalf("detail = %q, want %q", got, detail)
	}
}

type nopCloser struct{ io.Reader }

func (nopCloser) Close() error { return nil }

// jsonEqual compares two values after a JSON round trip, so []string and []any compare equal.
func jsonEqual(a, b any) bool {
	norm := func(v any) any {
		raw, _ := json.Marshal(v)
		var out any
		_ = json.Unmarshal(raw, &out)
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}
