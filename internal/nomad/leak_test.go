package nomad

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
)

// TestNoSecretLeaks drives every path that produces an error, a log line or a formatted value while
// NOMAD does its worst (echoing the password, the bearer token and raw PATs back in details, 422
// inputs and 500 exceptions), and proves that none of the secrets appears in any of them.
func TestNoSecretLeaks(t *testing.T) {
	for _, tokens := range []struct {
		name string
		mint func(int) string
	}{
		{name: "JWT access tokens", mint: accessToken},
		{name: "opaque access tokens", mint: func(n int) string { return fmt.Sprintf("opaque-access-token-%d-zzzz", n) }},
	} {
		t.Run(tokens.name, func(t *testing.T) { leakScenario(t, tokens.mint) })
	}
}

func leakScenario(t *testing.T, mint func(int) string) {
	var logMu sync.Mutex
	var logs []string
	logger := funcr.New(func(prefix, args string) {
		logMu.Lock()
		logs = append(logs, prefix+" "+args)
		logMu.Unlock()
	}, funcr.Options{Verbosity: 10})

	f := newFakeNomad(t)
	f.mint = mint
	echo := func(status int, shape string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			bearer := r.Header.Get("Authorization")
			switch shape {
			case "string":
				writeJSON(w, status, fmt.Sprintf(`{"detail":%q}`, "echo "+bearer+" "+testRaw+" "+testPass))
			case "list":
				writeJSON(w, status, fmt.Sprintf(`{"detail":[{"loc":["body",%q],"msg":%q,"input":%q}]}`, testPass, bearer, testRaw))
			case "object":
				writeJSON(w, status, fmt.Sprintf(`{"detail":{"reason":%q,"exception":%q}}`, "boom "+bearer, testPass+testRaw))
			case "html":
				writeJSON(w, status, "<html>"+bearer+testRaw+testPass+"</html>")
			}
		}
	}
	// Every id selects a different misbehaviour of GET/DELETE/rotate; create succeeds.
	f.handle("GET /api/v1/pats/{id}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("id") {
		case "400":
			echo(400, "string")(w, r)
		case "403":
			echo(403, "string")(w, r)
		case "404":
			echo(404, "string")(w, r)
		case "422":
			echo(422, "list")(w, r)
		case "500":
			echo(500, "object")(w, r)
		case "502":
			echo(502, "html")(w, r)
		case "garbage":
			writeJSON(w, 200, `{"id": `+testRaw+`}`)
		case "reset":
			conn, _, _ := w.(http.Hijacker).Hijack()
			if tcp, ok := conn.(*net.TCPConn); ok {
				_ = tcp.SetLinger(0)
			}
			_ = conn.Close()
		case "slow":
			<-r.Context().Done()
		}
	})
	f.handle("DELETE /api/v1/pats/{id}", echo(401, "string")) // 401 twice → Unauthorized
	f.handle("POST /api/v1/pats/{id}/rotate", echo(400, "list"))
	f.handle("POST /api/v1/pats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 201, `{"pat":`+patJSON(patID(1), "n", testEpoch, nil, false)+`,"raw_token":"`+testRaw+`"}`)
	})
	f.handle("GET /api/v1/pats", echo(400, "object"))

	cfg := func(c *Config) {
		c.PATPath = PATPathAuto
		c.Log = logger
		c.RequestTimeout = 200 * time.Millisecond
	}
	// openapi.json is absent, so the first call also goes through detection and its logs.
	f.handle("GET /api/v1/auth/pats", echo(400, "object"))
	c, _ := newTestClient(t, f, cfg)
	ctx := context.Background()

	var seen []string
	record := func(vs ...any) {
		for _, v := range vs {
			if v == nil {
				continue
			}
			seen = append(seen, fmt.Sprintf("%v", v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v), fmt.Sprintf("%s", v))
		}
	}

	it, err := c.Create(ctx, CreateRequest{Name: "n", Scopes: []string{"uploads:read"}, ExpiresInDays: ptrInt(1)})
	if err != nil || it.RawToken != testRaw {
		t.Fatalf("create: %v", err)
	}
	record(it, *it, []*IssuedToken{it}, map[string]IssuedToken{"x": *it})
	for _, id := range []string{"400", "403", "404", "422", "500", "502", "garbage", "reset", "slow"} {
		_, err := c.Get(ctx, id)
		if err == nil {
			t.Fatalf("get %s: expected an error", id)
		}
		record(err, err.Error())
	}
	_, err = c.List(ctx, ListOptions{})
	record(err)
	record(c.Revoke(ctx, patID(2)))
	_, err = c.Rotate(ctx, patID(2))
	record(err)

	// Login failures: a wrong password, and a server that echoes the form back.
	bad, _ := newTestClient(t, f, cfg, func(c *Config) { c.Password = "another-secret-pw" })
	_, err = bad.Get(ctx, "x")
	record(err)
	f2 := newFakeNomad(t)
	f2.mint = mint
	f2.loginStatus, f2.loginBody = 500, `{"detail":{"reason":"keycloak said `+testPass+`","exception":"`+testPass+`"}}`
	echoing, _ := newTestClient(t, f2, cfg)
	_, err = echoing.Get(ctx, "x")
	record(err)

	record(c, *c, c.tokens, Config{URL: "https://h/api", Username: testUser, Password: testPass}, &Config{Password: testPass})

	secrets := []string{testPass, testRaw, "another-secret-pw"}
	for n := 1; n <= f.loginCount()+f2.loginCount()+2; n++ {
		secrets = append(secrets, mint(n))
	}
	logMu.Lock()
	all := append(seen, logs...)
	logMu.Unlock()
	if len(logs) == 0 {
		t.Fatal("expected some log lines to check")
	}
	for _, s := range all {
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				t.Errorf("secret %.12s… leaked in: %s", secret, s)
			}
		}
	}
}

// TestNoSecretLeaksWithTheRealm does the same for the realm sign-ins: a realm that echoes the
// refresh token and client secret in error descriptions and bodies, a write-back that fails with
// the new refresh token in its error, and every formatted value. None of the refresh tokens, the
// client secret, the access tokens or the id tokens may appear.
func TestNoSecretLeaksWithTheRealm(t *testing.T) {
	var logMu sync.Mutex
	var logs []string
	logger := funcr.New(func(prefix, args string) {
		logMu.Lock()
		logs = append(logs, prefix+" "+args)
		logMu.Unlock()
	}, funcr.Options{Verbosity: 10})
	cfg := func(c *Config) { c.Log = logger }

	f := newFakeNomad(t)
	getHandler(f)
	realm := newFakeRealm(t, f)
	realm.rotate = true
	var seen []string
	record := func(vs ...any) {
		for _, v := range vs {
			if v != nil {
				seen = append(seen, fmt.Sprintf("%v", v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v))
			}
		}
	}
	ctx := context.Background()

	// Rotation whose write-back fails with the new refresh token in its message, then succeeds.
	fail := true
	rt, clk := newTestClient(t, f, cfg, withRefreshToken(realm, func(_ context.Context, prev, cur string) error {
		if fail {
			return fmt.Errorf("cannot store %s (was %s)", cur, prev)
		}
		return nil
	}), func(c *Config) { c.OIDC.ClientSecret = testClientSecret }) // a confidential client: both know the secret
	_, err := rt.Get(ctx, patID(1))
	record(err)
	fail = false
	for i := range 3 {
		clk.SetTime(testEpoch.Add(time.Duration(i) * 300 * time.Second))
		_, err = rt.Get(ctx, patID(1))
		record(err)
	}
	cc, ccClk := newTestClient(t, f, cfg, withClientCredentials(realm))
	_, err = cc.Get(ctx, patID(1))
	record(err)

	// The realm echoes what it got in every refusal.
	current := rt.refresh.next()
	for _, body := range []string{
		`{"error":"invalid_grant","error_description":"token ` + current + ` is not active"}`,
		`{"error":"invalid_client","error_description":"secret ` + testClientSecret + ` is wrong"}`,
		`{"error":"invalid_` + testClientSecret + `","error_description":"x"}`,
		`<html>` + current + testClientSecret + `</html>`,
	} {
		for _, status := range []int{400, 401, 502} {
			realm.set(func(r *fakeRealm) { r.tokenStatus, r.tokenBody = status, body })
			clk.SetTime(clk.Now().Add(time.Hour))
			ccClk.SetTime(ccClk.Now().Add(time.Hour))
			for _, c := range []*HTTPClient{rt, cc} {
				_, err := c.Get(ctx, patID(1))
				if err == nil {
					t.Fatalf("expected a refusal for %d %s", status, body)
				}
				record(err, err.Error())
			}
		}
	}
	record(rt, *rt, cc, *cc, rt.tokens, rt.refresh, rt.signer, cc.signer, rt.refresh.getPending(), Config{Method: MethodRefreshToken, OIDC: OIDCConfig{RefreshToken: current, ClientSecret: testClientSecret}})

	realm.mu.Lock()
	secrets := []string{testClientSecret, realm.lastAccess}
	for n := 1; n <= realm.issued; n++ {
		secrets = append(secrets, refreshTokenN(n))
	}
	realm.mu.Unlock()
	logMu.Lock()
	all := append(seen, logs...)
	logMu.Unlock()
	if len(logs) == 0 {
		t.Fatal("expected some log lines to check")
	}
	for _, s := range all {
		if jwtPattern.MatchString(s) {
			t.Errorf("a JWT (access, refresh or id token) leaked in: %s", s)
		}
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				t.Errorf("secret %.12s… leaked in: %s", secret, s)
			}
		}
	}
}
