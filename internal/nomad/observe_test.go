package nomad

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"
)

// recorder is an Observer that remembers what it was told.
type recorder struct {
	mu       sync.Mutex
	requests []string // "operation status"
	took     []time.Duration
	logins   int
}

func (r *recorder) Request(operation string, status int, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if took < 0 {
		operation += " negative duration"
	}
	r.requests = append(r.requests, operation+" "+http.StatusText(status))
	r.took = append(r.took, took)
}

func (r *recorder) SignedIn(SignIn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logins++
}

func TestObserverSeesEveryExchangeByOperation(t *testing.T) {
	f := newFakeNomad(t)
	f.handle("DELETE /api/v1/pats/{id}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("id") {
		case "gone":
			writeJSON(w, 404, `{"detail":"PAT not found"}`)
		case "boom":
			writeJSON(w, 500, `{"detail":"Internal Server Error"}`)
		default:
			w.WriteHeader(204)
		}
	})
	f.handle("GET /api/v1/pats/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 403, `{"detail":"forbidden"}`)
	})
	f.handle("POST /api/v1/pats/{id}/rotate", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, `{"detail":"Cannot rotate"}`)
	})
	tests := []struct {
		name string
		call func(ctx context.Context, c *HTTPClient) error
		want []string
	}{
		{"revoke 2xx, after a login", func(ctx context.Context, c *HTTPClient) error { return c.Revoke(ctx, "ok") },
			[]string{"login OK", "revoke No Content"}},
		{"revoke of a pruned PAT is success for the caller, a 4xx for the metrics", func(ctx context.Context, c *HTTPClient) error { return c.Revoke(ctx, "gone") },
			[]string{"revoke Not Found"}},
		{"revoke 5xx", func(ctx context.Context, c *HTTPClient) error { return c.Revoke(ctx, "boom") },
			[]string{"revoke Internal Server Error"}},
		{"get 4xx", func(ctx context.Context, c *HTTPClient) error { _, err := c.Get(ctx, "x"); return err },
			[]string{"get Forbidden"}},
		{"rotate 4xx", func(ctx context.Context, c *HTTPClient) error { _, err := c.Rotate(ctx, "x"); return err },
			[]string{"rotate Bad Request"}},
		{"a rejected access token: both exchanges and the new login are seen", func(ctx context.Context, c *HTTPClient) error {
			f.expireAccessTokens()
			return c.Revoke(ctx, "ok")
		}, []string{"revoke Unauthorized", "login OK", "revoke No Content"}},
	}
	obs := &recorder{}
	c, _ := newTestClient(t, f, func(cfg *Config) { cfg.Observer = obs })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs.mu.Lock()
			obs.requests = nil
			obs.mu.Unlock()
			_ = tt.call(t.Context(), c)
			if !slices.Equal(obs.requests, tt.want) {
				t.Errorf("observed %q, want %q", obs.requests, tt.want)
			}
		})
	}
	if obs.logins != 2 || f.loginCount() != 2 {
		t.Errorf("observed %d logins, NOMAD saw %d; want 2 each", obs.logins, f.loginCount())
	}
}

// No answer at all is status 0, and a failed login is no login.
func TestObserverSeesTransportErrors(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL + "/api"
	ts.Close() // nothing listens there any more
	obs := &recorder{}
	c, err := New(Config{URL: url, PATPath: PATPathPats, Username: testUser, Password: testPass, Observer: obs, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(t.Context(), "x"); err == nil {
		t.Fatal("revoke against a closed port succeeded")
	}
	if want := []string{"login "}; !slices.Equal(obs.requests, want) || obs.logins != 0 {
		t.Errorf("observed %q and %d logins, want %q and none", obs.requests, obs.logins, want)
	}
}

// Path detection reads openapi.json ("openapi"); the probe without it is "other".
func TestObserverNamesPathDetection(t *testing.T) {
	f := newFakeNomad(t)
	f.handleRaw("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"paths":{"/auth/pats":{}}}`)
	})
	f.handle("GET /api/v1/auth/pats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 422, `{"detail":"page_size"}`)
	})
	obs := &recorder{}
	c, _ := newTestClient(t, f, func(cfg *Config) { cfg.PATPath = PATPathAuto; cfg.Observer = obs })
	if _, err := c.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(obs.requests, "openapi OK") {
		t.Errorf("observed %q, want an openapi request", obs.requests)
	}
	obs.requests = nil
	c2, _ := newTestClient(t, f, func(cfg *Config) { cfg.PATPath = PATPathAuthPats; cfg.Observer = obs })
	if _, err := c2.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"login OK", "other Unprocessable Entity"}; !slices.Equal(obs.requests, want) {
		t.Errorf("observed %q, want %q", obs.requests, want)
	}
}

// Latency is measured with Config.LatencyClock, not with the decision Clock that tests move: NOMAD
// and the realm here take exactly 2 s of the latency clock per exchange.
func TestObserverTimesExchangesWithTheLatencyClock(t *testing.T) {
	f := newFakeNomad(t)
	getHandler(f)
	latency := testingclock.NewFakeClock(testEpoch)
	obs := &recorder{}
	c, _ := newTestClient(t, f, func(cfg *Config) {
		cfg.Observer, cfg.LatencyClock = obs, latency
		cfg.HTTPClient = &http.Client{Transport: steppingTransport{latency, 2 * time.Second, http.DefaultTransport}}
	})
	if _, err := c.Get(t.Context(), patID(1)); err != nil {
		t.Fatal(err)
	}
	if len(obs.took) != 2 || obs.took[0] != 2*time.Second || obs.took[1] != 2*time.Second {
		t.Fatalf("observed %v for %q, want 2s for the login and the get", obs.took, obs.requests)
	}
}

// steppingTransport moves clk by step during each exchange.
type steppingTransport struct {
	clk  *testingclock.FakeClock
	step time.Duration
	base http.RoundTripper
}

func (s steppingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	s.clk.Step(s.step)
	return s.base.RoundTrip(r)
}
