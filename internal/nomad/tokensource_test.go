package nomad

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"
)

func getHandler(f *fakeNomad) {
	f.handle("GET /api/v1/pats/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, patJSON(r.PathValue("id"), "n", testEpoch, nil, false))
	})
}

func TestAccessTokenIsCached(t *testing.T) {
	t.Run("N sequential operations log in once", func(t *testing.T) {
		f := newFakeNomad(t)
		getHandler(f)
		c, _ := newTestClient(t, f)
		for range 10 {
			if _, err := c.Get(context.Background(), patID(1)); err != nil {
				t.Fatal(err)
			}
		}
		if f.loginCount() != 1 {
			t.Fatalf("logins = %d, want 1", f.loginCount())
		}
	})
	t.Run("N concurrent operations share one login", func(t *testing.T) {
		f := newFakeNomad(t)
		f.loginDelay = 50 * time.Millisecond // everyone arrives while the login is in flight
		getHandler(f)
		c, _ := newTestClient(t, f)
		getConcurrently(t, c, 20)
		if f.loginCount() != 1 {
			t.Fatalf("logins = %d, want 1", f.loginCount())
		}
	})
	t.Run("a caller that gives up does not fail the shared login", func(t *testing.T) {
		f := newFakeNomad(t)
		f.loginDelay = 100 * time.Millisecond
		getHandler(f)
		c, _ := newTestClient(t, f)
		impatient, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		var wg sync.WaitGroup
		var patientErr error
		wg.Go(func() { _, patientErr = c.Get(context.Background(), patID(1)) })
		if _, err := c.Get(impatient, patID(1)); CodeOf(err) != CodeTransient {
			t.Fatalf("the impatient caller should time out, got %v", err)
		}
		wg.Wait()
		if patientErr != nil || f.loginCount() != 1 {
			t.Fatalf("patient caller: %v, logins %d; want success after one login", patientErr, f.loginCount())
		}
	})
}

// refresh when less than max(10s, 10% of expires_in) remains, counted from before the login request,
// and at the latest maxSignInAge after it.
func TestAccessTokenRefreshBeforeExpiry(t *testing.T) {
	for _, tc := range []struct {
		name      string
		expiresIn any
		body      string
		noRefresh time.Duration // still the cached token at this age
		refresh   time.Duration // a new login at this age
	}{
		{name: "300 s: the 10% margin (30 s) applies", expiresIn: 300, noRefresh: 269 * time.Second, refresh: 270 * time.Second},
		{name: "60 s: the 10 s floor applies", expiresIn: 60, noRefresh: 49 * time.Second, refresh: 50 * time.Second},
		{name: "10 h: the 10% margin (1 h) applies", expiresIn: 36000, noRefresh: 9*time.Hour - time.Second, refresh: 9 * time.Hour},
		{name: "24 h (central NOMAD): signed in again after maxSignInAge (12 h)", expiresIn: 86400,
			noRefresh: maxSignInAge - time.Second, refresh: maxSignInAge},
		{name: "expires_in null means 300 s", expiresIn: nil, noRefresh: 269 * time.Second, refresh: 270 * time.Second},
		{name: "the M2024 answer (no expires_in) means 300 s", body: `{"access_token":"TOKEN","token_type":"bearer"}`,
			noRefresh: 269 * time.Second, refresh: 270 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNomad(t)
			f.expiresIn, f.loginBody = tc.expiresIn, tc.body
			getHandler(f)
			c, clk := newTestClient(t, f)
			get := func() {
				t.Helper()
				if _, err := c.Get(context.Background(), patID(1)); err != nil {
					t.Fatal(err)
				}
			}
			get()
			clk.SetTime(testEpoch.Add(tc.noRefresh))
			get()
			if f.loginCount() != 1 {
				t.Fatalf("at %s: logins = %d, want 1", tc.noRefresh, f.loginCount())
			}
			clk.SetTime(testEpoch.Add(tc.refresh))
			get()
			if f.loginCount() != 2 {
				t.Fatalf("at %s: logins = %d, want 2", tc.refresh, f.loginCount())
			}
		})
	}
}

func TestRetryOnceOn401(t *testing.T) {
	t.Run("a rejected access token is replaced and the request retried", func(t *testing.T) {
		f := newFakeNomad(t)
		getHandler(f)
		c, _ := newTestClient(t, f)
		if _, err := c.Get(context.Background(), patID(1)); err != nil {
			t.Fatal(err)
		}
		f.expireAccessTokens() // a Keycloak restart: the cached token is still "fresh" but useless
		if _, err := c.Get(context.Background(), patID(1)); err != nil {
			t.Fatalf("the retry with a new token should succeed: %v", err)
		}
		if f.loginCount() != 2 || f.hitCount("GET /api/v1/pats/"+patID(1)) != 3 {
			t.Fatalf("logins %d, gets %d; want 2 and 3", f.loginCount(), f.hitCount("GET /api/v1/pats/"+patID(1)))
		}
	})
	t.Run("a second 401 gives up as Unauthorized", func(t *testing.T) {
		f := newFakeNomad(t)
		f.handle("GET /api/v1/pats/{id}", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 401, `{"detail":"Authentication required."}`)
		})
		c, _ := newTestClient(t, f)
		_, err := c.Get(context.Background(), patID(1))
		if e := asError(t, err); e.Code != CodeUnauthorized || e.StatusCode != 401 || e.Detail != "Authentication required." {
			t.Fatalf("got %v, want Unauthorized", err)
		}
		if f.loginCount() != 2 || f.hitCount("GET /api/v1/pats/"+patID(1)) != 2 {
			t.Fatalf("logins %d, gets %d; want exactly one retry", f.loginCount(), f.hitCount("GET /api/v1/pats/"+patID(1)))
		}
	})
}

func TestLoginFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mutate   func(*fakeNomad, *Config)
		wantCode Code
		wantSub  string
	}{
		{name: "a wrong password is CredentialsInvalid", mutate: func(_ *fakeNomad, c *Config) { c.Password = "wrong-password" },
			wantCode: CodeCredentialsInvalid, wantSub: "Incorrect username or password"},
		{name: "a Keycloak failure is transient", mutate: func(f *fakeNomad, _ *Config) {
			f.loginStatus, f.loginBody = 500, `{"detail":{"reason":"Unexpected exception while handling your request","exception":"x"}}`
		}, wantCode: CodeTransient, wantSub: "Unexpected exception"},
		{name: "Keycloak's 400 inside NOMAD's 500 is CredentialsInvalid", mutate: func(f *fakeNomad, _ *Config) {
			f.loginStatus, f.loginBody = 500, `{"detail":{"reason":"Unexpected exception while handling your request",`+
				`"exception":"400: b'{\"error\":\"invalid_grant\",\"error_description\":\"Account is not fully set up\"}'",`+
				`"exception_class":"keycloak.exceptions.KeycloakAuthenticationError","exception_traceback":"Traceback: password=`+testPass+`"}}`
		}, wantCode: CodeCredentialsInvalid, wantSub: "Keycloak refused the password grant: invalid_grant: Account is not fully set up"},
		{name: "a client without direct access grants is CredentialsInvalid", mutate: func(f *fakeNomad, _ *Config) {
			f.loginStatus, f.loginBody = 500, `{"detail":{"reason":"Unexpected exception while handling your request",`+
				`"exception":"b'{\"error\":\"unauthorized_client\",\"error_description\":\"Client not allowed for direct access grants\"}'"}}`
		}, wantCode: CodeCredentialsInvalid, wantSub: "Keycloak refused the password grant: unauthorized_client: Client not allowed for direct access grants"},
		{name: "Keycloak's own server_error inside NOMAD's 500 stays transient", mutate: func(f *fakeNomad, _ *Config) {
			f.loginStatus, f.loginBody = 500, `{"detail":{"reason":"Unexpected exception while handling your request",`+
				`"exception":"b'{\"error\":\"server_error\"}'"}}`
		}, wantCode: CodeTransient, wantSub: "Unexpected exception"},
		{name: "a 502 with a Keycloak body stays transient", mutate: func(f *fakeNomad, _ *Config) {
			f.loginStatus, f.loginBody = 502, `{"detail":{"reason":"bad gateway","exception":"400: b'{\"error\":\"invalid_grant\"}'"}}`
		}, wantCode: CodeTransient, wantSub: "bad gateway"},
		{name: "an answer without access_token is transient", mutate: func(f *fakeNomad, _ *Config) {
			f.loginBody = `{"token_type":"bearer"}`
		}, wantCode: CodeTransient, wantSub: "no access_token"},
		{name: "a wrong API root is PathNotFound with a hint", mutate: func(f *fakeNomad, c *Config) { c.URL = f.ts.URL + "/nomad-oasis" },
			wantCode: CodePathNotFound, wantSub: "is the URL the NOMAD API root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNomad(t)
			getHandler(f)
			c, _ := newTestClient(t, f, func(cfg *Config) { tc.mutate(f, cfg) })
			for range 2 {
				_, err := c.Get(context.Background(), patID(1))
				if e := asError(t, err); e.Code != tc.wantCode || e.Op != "login" || !strings.Contains(e.Detail, tc.wantSub) {
					t.Fatalf("got %v (%s), want %s containing %q", err, e.Code, tc.wantCode, tc.wantSub)
				}
				if strings.Contains(err.Error(), "Traceback") || strings.Contains(err.Error(), "exception_class") {
					t.Fatalf("only Keycloak's error and description may be taken from the exception: %v", err)
				}
			}
			if f.hitCount("GET /api/v1/pats/"+patID(1)) != 0 {
				t.Fatal("no PAT request may be sent without an access token")
			}
			if f.hitCount("POST /api/v1/auth/token") != 2 && f.hitCount("POST /nomad-oasis/v1/auth/token") != 2 {
				t.Fatalf("a failed login must not be cached: %v", f.requestLog())
			}
		})
	}
}

// dueForRefresh is a client that signed in once and whose access token is now due for refresh but
// not expired, at a NOMAD whose logins from now on answer status and body.
func dueForRefresh(t *testing.T, status int, body string) (*HTTPClient, *fakeNomad, *testingclock.FakeClock) {
	t.Helper()
	f := newFakeNomad(t)
	getHandler(f)
	c, clk := newTestClient(t, f)
	if _, err := c.Get(context.Background(), patID(1)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.loginStatus, f.loginBody = status, body
	f.mu.Unlock()
	clk.SetTime(testEpoch.Add(280 * time.Second)) // due for refresh, not yet expired
	return c, f, clk
}

func TestFailedEarlyRefreshKeepsTheStillValidToken(t *testing.T) {
	c, f, clk := dueForRefresh(t, 503, `{"detail":"keycloak down"}`)
	if _, err := c.Get(context.Background(), patID(1)); err != nil {
		t.Fatalf("inside the refresh margin a failed login must fall back to the valid token: %v", err)
	}
	clk.SetTime(testEpoch.Add(300 * time.Second)) // expired
	if _, err := c.Get(context.Background(), patID(1)); CodeOf(err) != CodeTransient {
		t.Fatalf("past expiry the login failure is the answer, got %v", err)
	}
	if f.loginCount() != 3 {
		t.Fatalf("logins = %d, want 3 (each call past the refresh time tries again)", f.loginCount())
	}
}

// A refused early refresh (a revoked refresh token or password) is the answer at once: the still
// valid access token of the refused credentials is not used for the hours it may have left.
func TestRefusedEarlyRefreshFailsAtOnce(t *testing.T) {
	c, f, _ := dueForRefresh(t, 401, `{"detail":"Incorrect username or password"}`)
	for range 2 {
		if _, err := c.Get(context.Background(), patID(1)); CodeOf(err) != CodeCredentialsInvalid {
			t.Fatalf("a refused refresh must fail the call, got %v", err)
		}
	}
	if n := f.hitCount("GET /api/v1/pats/" + patID(1)); n != 1 {
		t.Fatalf("%d PAT requests, want only the first: the refused credentials' token is dropped", n)
	}
}
