package nomad

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestClassification drives every Code from a NOMAD answer to a PAT endpoint (Get, with the path
// configured so that a 404 does not trigger detection).
func TestClassification(t *testing.T) {
	retryDate := testEpoch.Add(90 * time.Second).Format(http.TimeFormat)
	for _, tc := range []struct {
		name       string
		status     int
		body       string
		header     map[string]string
		wantCode   Code
		wantDetail string // exact, unless wantSubstr
		wantSubstr bool
		wantRetry  time.Duration
	}{
		{name: "400 empty scopes is InvalidScopes", status: 400, body: `{"detail":"At least one scope must be selected."}`,
			wantCode: CodeInvalidScopes, wantDetail: "At least one scope must be selected."},
		{name: "400 unknown scopes (a Python set) is InvalidScopes", status: 400, body: `{"detail":"Invalid scopes: {'x:y', 'uploads:*'}"}`,
			wantCode: CodeInvalidScopes, wantDetail: "Invalid scopes: {'x:y', 'uploads:*'}"},
		{name: "400 tokens:* scopes is InvalidScopes", status: 400, body: `{"detail":"Personal access tokens are not allowed to operate on PATs."}`,
			wantCode: CodeInvalidScopes, wantDetail: "Personal access tokens are not allowed to operate on PATs."},
		{name: "400 non-positive lifetime is LifetimeExceeded", status: 400, body: `{"detail":"Cannot create an already expired token."}`,
			wantCode: CodeLifetimeExceeded, wantDetail: "Cannot create an already expired token."},
		{name: "400 infinite lifetime is LifetimeExceeded", status: 400, body: `{"detail":"Infinite tokens are disabled. Max lifetime is 365 days."}`,
			wantCode: CodeLifetimeExceeded, wantDetail: "Infinite tokens are disabled. Max lifetime is 365 days."},
		{name: "400 lifetime over the maximum (float form) is LifetimeExceeded", status: 400, body: `{"detail":"Requested lifetime (400 days) exceeds the maximum allowed (90.0 days)."}`,
			wantCode: CodeLifetimeExceeded, wantDetail: "Requested lifetime (400 days) exceeds the maximum allowed (90.0 days)."},
		{name: "400 active limit is TokenLimitReached", status: 400, body: `{"detail":"Maximum number of active PAT (100) reached."}`,
			wantCode: CodeTokenLimitReached, wantDetail: "Maximum number of active PAT (100) reached."},
		{name: "400 rotating an inactive token is NotActive", status: 400, body: `{"detail":"Cannot rotate an expired/revoked token."}`,
			wantCode: CodeNotActive, wantDetail: "Cannot rotate an expired/revoked token."},
		{name: "400 anything else is BadRequest", status: 400, body: `{"detail":"Page out of range requested."}`,
			wantCode: CodeBadRequest, wantDetail: "Page out of range requested."},
		{name: "422 list details are flattened to loc: msg", status: 422,
			body:     `{"detail":[{"type":"missing","loc":["body","metadata","name"],"msg":"Field required","input":{"scopes":[]}},{"type":"int_parsing","loc":["body","expires_in_days"],"msg":"Input should be a valid integer","input":1.5},{"msg":"no loc"}]}`,
			wantCode: CodeBadRequest, wantDetail: "body.metadata.name: Field required; body.expires_in_days: Input should be a valid integer; no loc"},
		{name: "422 pagination detail with a numeric loc", status: 422, body: `{"detail":[{"loc":["query",0],"msg":"Page has to be larger than 1"}]}`,
			wantCode: CodeBadRequest, wantDetail: "query.0: Page has to be larger than 1"},
		{name: "403 is Forbidden", status: 403, body: `{"detail":"Missing scopes: ['tokens:read']"}`,
			wantCode: CodeForbidden, wantDetail: "Missing scopes: ['tokens:read']"},
		{name: "404 with NOMAD's detail is NotFound", status: 404, body: `{"detail":"Token not found or does not belong to the user."}`,
			wantCode: CodeNotFound, wantDetail: "Token not found or does not belong to the user."},
		{name: "404 Not Found from the framework is PathNotFound", status: 404, body: `{"detail":"Not Found"}`,
			wantCode: CodePathNotFound, wantDetail: "Not Found"},
		{name: "404 HTML from an ingress is PathNotFound", status: 404, body: `<html>404 Not Found</html>`,
			wantCode: CodePathNotFound, wantDetail: "Not Found (the answer is not NOMAD's JSON)"},
		{name: "405 is BadRequest", status: 405, body: `{"detail":"Method Not Allowed"}`,
			wantCode: CodeBadRequest, wantDetail: "Method Not Allowed"},
		{name: "500 object detail keeps only the reason", status: 500,
			body:     `{"detail":{"reason":"Unexpected exception while handling your request","exception":"KeyError('x')","exception_class":"KeyError","exception_traceback":"Traceback ..."}}`,
			wantCode: CodeTransient, wantDetail: "Unexpected exception while handling your request"},
		{name: "500 string detail", status: 500, body: `{"detail":"Failed to verify authenticated user"}`,
			wantCode: CodeTransient, wantDetail: "Failed to verify authenticated user"},
		{name: "502 HTML from a proxy", status: 502, body: `<html>bad gateway</html>`,
			wantCode: CodeTransient, wantDetail: "Bad Gateway (the answer is not NOMAD's JSON)"},
		{name: "503 with Retry-After seconds", status: 503, body: `{"detail":"down"}`, header: map[string]string{"Retry-After": "120"},
			wantCode: CodeTransient, wantDetail: "down", wantRetry: 2 * time.Minute},
		{name: "429 with Retry-After as an HTTP-date, measured on the client's clock", status: 429, body: `{"detail":"slow down"}`,
			header: map[string]string{"Retry-After": retryDate}, wantCode: CodeTransient, wantDetail: "slow down", wantRetry: 90 * time.Second},
		{name: "429 with a Retry-After date in the past", status: 429, body: `{}`, header: map[string]string{"Retry-After": "Mon, 01 Jan 2024 00:00:00 GMT"},
			wantCode: CodeTransient, wantDetail: "Too Many Requests (the answer is not NOMAD's JSON)"},
		{name: "429 with a garbage Retry-After", status: 429, body: `{"detail":"x"}`, header: map[string]string{"Retry-After": "soon"},
			wantCode: CodeTransient, wantDetail: "x"},
		{name: "a redirect is reported, not followed", status: 301, body: ``, header: map[string]string{"Location": "https://elsewhere/api/v1/pats/x"},
			wantCode: CodeBadRequest, wantDetail: `redirected to "https://elsewhere/api/v1/pats/x"`, wantSubstr: true},
		{name: "a raw PAT echoed in a detail is redacted", status: 400, body: `{"detail":"bad token ` + testRaw + `"}`,
			wantCode: CodeBadRequest, wantDetail: "bad token nomad_pat_<redacted>"},
		{name: "a 200 that is not a PAT is transient", status: 200, body: `<html>login page</html>`,
			wantCode: CodeTransient, wantDetail: "unreadable answer", wantSubstr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNomad(t)
			f.handle("GET /api/v1/pats/{id}", func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				writeJSON(w, tc.status, tc.body)
			})
			c, _ := newTestClient(t, f)
			_, err := c.Get(context.Background(), patID(1))
			e := asError(t, err)
			if e.Code != tc.wantCode || e.StatusCode != tc.status || e.Op != "get" || e.RetryAfter != tc.wantRetry {
				t.Fatalf("got %+v (%v), want code %s status %d retry %s", *e, e, tc.wantCode, tc.status, tc.wantRetry)
			}
			if tc.wantSubstr && !strings.Contains(e.Detail, tc.wantDetail) || !tc.wantSubstr && e.Detail != tc.wantDetail {
				t.Fatalf("detail = %q, want %q", e.Detail, tc.wantDetail)
			}
			if strings.Contains(e.Detail, "Traceback") || strings.Contains(e.Detail, "Input should") && strings.Contains(e.Detail, "1.5") {
				t.Fatalf("detail keeps more than it should: %q", e.Detail)
			}
		})
	}
}

func TestTransportFailuresAreTransient(t *testing.T) {
	t.Run("a slow server hits RequestTimeout", func(t *testing.T) {
		f := newFakeNomad(t)
		release := make(chan struct{})
		defer close(release)
		f.handle("GET /api/v1/pats/{id}", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		c, _ := newTestClient(t, f, func(cfg *Config) { cfg.RequestTimeout = 100 * time.Millisecond })
		_, err := c.Get(context.Background(), patID(1))
		e := asError(t, err)
		if e.Code != CodeTransient || e.StatusCode != 0 || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v (%+v), want a transient deadline error", err, *e)
		}
		if !strings.Contains(e.Detail, "request timeout (100ms)") {
			t.Fatalf("detail should name the timeout: %q", e.Detail)
		}
	})
	t.Run("a reset connection", func(t *testing.T) {
		f := newFakeNomad(t)
		f.handle("POST /api/v1/pats", func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			if tcp, ok := conn.(*net.TCPConn); ok {
				_ = tcp.SetLinger(0) // RST instead of FIN
			}
			_ = conn.Close()
		})
		c, _ := newTestClient(t, f)
		_, err := c.Create(context.Background(), CreateRequest{Name: "n", Scopes: []string{"uploads:read"}})
		if e := asError(t, err); e.Code != CodeTransient || e.Op != "create" || e.StatusCode != 0 {
			t.Fatalf("got %v, want a transient create error without status", err)
		}
		if n := f.hitCount("POST /api/v1/pats"); n != 1 {
			t.Fatalf("a POST whose answer was lost must not be resent (it may have created a PAT): %d sends", n)
		}
	})
	t.Run("a refused connection", func(t *testing.T) {
		f := newFakeNomad(t)
		c, _ := newTestClient(t, f)
		f.ts.Close()
		err := c.Revoke(context.Background(), patID(1))
		if e := asError(t, err); e.Code != CodeTransient || e.Op != "login" {
			t.Fatalf("got %v, want a transient login error", err)
		}
	})
	t.Run("the caller's cancellation", func(t *testing.T) {
		f := newFakeNomad(t)
		c, _ := newTestClient(t, f)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.Get(ctx, patID(1))
		if CodeOf(err) != CodeTransient || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "cancelled by the caller") {
			t.Fatalf("got %v, want a transient error wrapping context.Canceled", err)
		}
	})
	t.Run("a truncated body", func(t *testing.T) {
		f := newFakeNomad(t)
		f.handle("GET /api/v1/pats/{id}", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`{"id":`))
		})
		c, _ := newTestClient(t, f)
		_, err := c.Get(context.Background(), patID(1))
		if e := asError(t, err); e.Code != CodeTransient {
			t.Fatalf("got %v, want transient", err)
		}
	})
}

func TestLimiterIsWaitedOnBeforeEveryRequest(t *testing.T) {
	f := newFakeNomad(t)
	f.handle("GET /api/v1/pats/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, patJSON(r.PathValue("id"), "n", testEpoch, nil, false))
	})
	lim := rate.NewLimiter(rate.Every(time.Hour), 10)
	c, _ := newTestClient(t, f, func(cfg *Config) { cfg.Limiter = lim })
	for range 3 {
		if _, err := c.Get(context.Background(), patID(1)); err != nil {
			t.Fatal(err)
		}
	}
	// 1 login + 3 gets.
	if got := lim.Tokens(); got > 6.01 || got < 5.99 {
		t.Fatalf("limiter has %.2f tokens left, want 6 (4 requests from a burst of 10)", got)
	}

	// An exhausted limiter fails the call within the caller's deadline instead of hanging.
	empty := rate.NewLimiter(rate.Every(time.Hour), 1)
	empty.Allow()
	c2, _ := newTestClient(t, f, func(cfg *Config) { cfg.Limiter = empty })
	_, err := c2.Get(context.Background(), patID(1))
	if e := asError(t, err); e.Code != CodeTransient || !strings.Contains(e.Detail, "rate limiter") {
		t.Fatalf("got %v, want a transient rate limiter error", err)
	}
	if f.loginCount() != 1 {
		t.Fatalf("the exhausted limiter must stop the login request too; logins = %d", f.loginCount())
	}
}

func TestEmptyIDIsRejectedWithoutARequest(t *testing.T) {
	f := newFakeNomad(t)
	c, _ := newTestClient(t, f)
	ctx := context.Background()
	_, gerr := c.Get(ctx, "")
	_, rerr := c.Rotate(ctx, "")
	for _, err := range []error{gerr, c.Revoke(ctx, ""), rerr} {
		if CodeOf(err) != CodeBadRequest {
			t.Fatalf("got %v, want BadRequest", err)
		}
	}
	if n := len(f.requestLog()); n != 0 {
		t.Fatalf("no request may be sent for an empty id; got %d", n)
	}
}
