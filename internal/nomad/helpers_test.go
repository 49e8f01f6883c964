package nomad

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"
)

const (
	testUser = "bot"
	testPass = "s3cret-Passw0rd!"
	// testRaw has the real raw-token shape (nomad-pat-api.md §6).
	testRaw = "nomad_pat_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde"
)

var testEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeNomad is a small, scriptable NOMAD for the unit tests: a login endpoint issuing numbered
// access tokens, and whatever PAT handlers a test registers. Faithful behaviour is the job of
// test/nomadstub; this one exists to produce exact answers and count exact requests.
type fakeNomad struct {
	t   *testing.T
	mux *http.ServeMux
	ts  *httptest.Server

	mu          sync.Mutex
	logins      int
	loginDelay  time.Duration
	loginStatus int                // 0 = 200
	loginBody   string             // "" = a V-B/C answer with expiresIn
	expiresIn   any                // the expires_in value sent; nil sends JSON null
	mint        func(n int) string // access token number n; default accessToken
	valid       map[string]bool
	hits        map[string]int // "METHOD /path" → count
	lastQuery   map[string]string
	queries     []string
}

func newFakeNomad(t *testing.T) *fakeNomad {
	t.Helper()
	f := &fakeNomad{t: t, mux: http.NewServeMux(), expiresIn: 300, valid: map[string]bool{}, hits: map[string]int{}}
	f.mux.HandleFunc("POST /api/v1/auth/token", f.login)
	f.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.hits[r.Method+" "+r.URL.Path]++
		f.queries = append(f.queries, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		f.mu.Unlock()
		f.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.ts.Close)
	return f
}

// accessToken is JWT-shaped on purpose, so that the leak test also covers the JWT pattern.
func accessToken(n int) string {
	return fmt.Sprintf("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib3QiLCJuIjo%dfQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ", n)
}

func (f *fakeNomad) login(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.logins++
	n := f.logins
	delay, status, body, exp, mint := f.loginDelay, f.loginStatus, f.loginBody, f.expiresIn, f.mint
	f.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		writeJSON(w, 422, `{"detail":[{"loc":["body"],"msg":"form expected"}]}`)
		return
	}
	if r.PostFormValue("grant_type") != "password" || r.PostFormValue("username") != testUser || r.PostFormValue("password") != testPass {
		writeJSON(w, 401, `{"detail":"Incorrect username or password"}`)
		return
	}
	if status != 0 {
		writeJSON(w, status, body)
		return
	}
	if mint == nil {
		mint = accessToken
	}
	tok := mint(n)
	f.mu.Lock()
	f.valid[tok] = true
	f.mu.Unlock()
	if body == "" {
		e, _ := json.Marshal(exp)
		body = fmt.Sprintf(`{"access_token":%q,"token_type":"Bearer","expires_in":%s,"refresh_token":"r","scope":null,"id_token":null,"refresh_expires_in":1800}`, tok, e)
	} else {
		body = strings.ReplaceAll(body, "TOKEN", tok)
	}
	writeJSON(w, 200, body)
}

// handle registers h behind bearer authentication (401 for an unknown or expired access token).
func (f *fakeNomad) handle(pattern string, h http.HandlerFunc) {
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		ok := f.valid[tok]
		f.mu.Unlock()
		if !ok {
			writeJSON(w, 401, `{"detail":"Could not validate credentials. The given token is invalid."}`)
			return
		}
		h(w, r)
	})
}

// handleRaw registers h without authentication.
func (f *fakeNomad) handleRaw(pattern string, h http.HandlerFunc) { f.mux.HandleFunc(pattern, h) }

// expireAccessTokens makes every issued access token invalid, as a Keycloak restart would.
func (f *fakeNomad) expireAccessTokens() {
	f.mu.Lock()
	f.valid = map[string]bool{}
	f.mu.Unlock()
}

func (f *fakeNomad) loginCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins
}

func (f *fakeNomad) hitCount(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[key]
}

func (f *fakeNomad) requestLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.queries...)
}

func (f *fakeNomad) apiRoot() string { return f.ts.URL + "/api" }

// newTestClient builds a client for f with PATPath Pats (no detection) and a fake clock at testEpoch.
func newTestClient(t *testing.T, f *fakeNomad, mutate ...func(*Config)) (*HTTPClient, *testingclock.FakeClock) {
	t.Helper()
	clk := testingclock.NewFakeClock(testEpoch)
	cfg := Config{
		URL:            f.apiRoot(),
		PATPath:        PATPathPats,
		Username:       testUser,
		Password:       testPass,
		Clock:          clk,
		RequestTimeout: 5 * time.Second,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, clk
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// patJSON renders a PATResponse the way V-B/C do.
func patJSON(id, name string, created time.Time, expires *time.Time, revoked bool) string {
	exp := "null"
	if expires != nil {
		exp = `"` + expires.UTC().Format("2006-01-02T15:04:05.000000Z") + `"`
	}
	return fmt.Sprintf(`{"id":%q,"name":%q,"scopes":["uploads:read"],"description":null,"revoked":%t,"created_at":%q,"expired_at":%s,"last_used_at":null}`,
		id, name, revoked, created.UTC().Format("2006-01-02T15:04:05.000000Z"), exp)
}

func patID(n int) string { return fmt.Sprintf("%024x", n) }

func asError(t *testing.T, err error) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an error, got nil")
	}
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("expected *nomad.Error, got %T: %v", err, err)
	}
	return e
}

// getConcurrently makes n Get calls on c at once and fails the test on any error: the callers that
// find no access token share one sign-in.
func getConcurrently(t *testing.T, c *HTTPClient, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := c.Get(context.Background(), patID(1))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
