package nomad

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// oidcMethods are the two realm sign-ins, set up against one fake NOMAD and realm.
var oidcMethods = []struct {
	name   string
	config func(r *fakeRealm) func(*Config)
}{
	{"refresh token", func(r *fakeRealm) func(*Config) { return withRefreshToken(r, nil) }},
	{"client credentials", withClientCredentials},
}

func TestOIDCSignInIsCachedAndShared(t *testing.T) {
	for _, m := range oidcMethods {
		t.Run(m.name, func(t *testing.T) {
			f := newFakeNomad(t)
			getHandler(f)
			realm := newFakeRealm(t, f)
			realm.tokenDelay = 50 * time.Millisecond // everyone arrives while the sign-in is in flight
			c, _ := newTestClient(t, f, m.config(realm))
			getConcurrently(t, c, 20)
			for range 5 {
				if _, err := c.Get(context.Background(), patID(1)); err != nil {
					t.Fatal(err)
				}
			}
			if d, n := realm.counts(); d != 1 || n != 1 {
				t.Fatalf("discoveries %d, token requests %d; want 1 and 1", d, n)
			}
			if f.loginCount() != 0 {
				t.Fatalf("NOMAD's /auth/token was called %d times; the realm methods must not use it", f.loginCount())
			}
		})
	}
}

func TestOIDCGrantRequests(t *testing.T) {
	f := newFakeNomad(t)
	getHandler(f)
	realm := newFakeRealm(t, f)
	rc, _ := newTestClient(t, f, withRefreshToken(realm, nil))
	cc, _ := newTestClient(t, f, withClientCredentials(realm))
	for _, c := range []*HTTPClient{rc, cc} {
		if _, err := c.Get(context.Background(), patID(1)); err != nil {
			t.Fatal(err)
		}
	}
	want := []map[string]string{
		{"grant_type": "refresh_token", "refresh_token": refreshTokenN(1), "client_id": DefaultClientID},
		{"grant_type": "client_credentials", "client_id": "nomad-bot", "client_secret": testClientSecret},
	}
	realm.mu.Lock()
	defer realm.mu.Unlock()
	if len(realm.forms) != 2 {
		t.Fatalf("token requests: %d, want 2 (no auth-style probing)", len(realm.forms))
	}
	for i, w := range want {
		if len(realm.forms[i]) != len(w) {
			t.Errorf("request %d sends %d fields, want %d", i, len(realm.forms[i]), len(w))
		}
		for k, v := range w {
			if realm.forms[i][k] != v {
				t.Errorf("request %d: %s = %q, want %q", i, k, realm.forms[i][k], v)
			}
		}
	}
}

func TestOIDCDiscoveryIsCachedAcrossSignIns(t *testing.T) {
	f := newFakeNomad(t)
	getHandler(f)
	realm := newFakeRealm(t, f)
	c, clk := newTestClient(t, f, withClientCredentials(realm))
	for i := range 4 {
		clk.SetTime(testEpoch.Add(time.Duration(i) * 300 * time.Second)) // each access token has expired
		if _, err := c.Get(context.Background(), patID(1)); err != nil {
			t.Fatal(err)
		}
	}
	if d, n := realm.counts(); d != 1 || n != 4 {
		t.Fatalf("discoveries %d, token requests %d; want 1 and 4", d, n)
	}

	// The token endpoint moves: its 404 fails that sign-in (transient) and the next discovers again.
	realm.set(func(r *fakeRealm) { r.tokenPath = testRealmPath + "/moved/token" })
	clk.SetTime(testEpoch.Add(4 * 300 * time.Second))
	_, err := c.Get(context.Background(), patID(1))
	if e := asError(t, err); e.Code != CodeTransient || e.StatusCode != 404 || e.Op != opLogin {
		t.Fatalf("got %v, want a transient 404 from the old token endpoint", err)
	}
	if _, err := c.Get(context.Background(), patID(1)); err != nil {
		t.Fatalf("the next sign-in should discover the new endpoint: %v", err)
	}
	if d, _ := realm.counts(); d != 2 {
		t.Fatalf("discoveries %d, want 2", d)
	}
}

func TestOIDCSignInIsRenewedAfterTwelveHours(t *testing.T) {
	f := newFakeNomad(t)
	getHandler(f)
	realm := newFakeRealm(t, f)
	realm.expiresIn = 86400
	c, clk := newTestClient(t, f, withRefreshToken(realm, nil))
	for _, at := range []time.Duration{0, maxSignInAge - time.Second, maxSignInAge} {
		clk.SetTime(testEpoch.Add(at))
		if _, err := c.Get(context.Background(), patID(1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, n := realm.counts(); n != 2 {
		t.Fatalf("token requests %d, want 2: a 24 h access token is replaced after 12 h", n)
	}
}

func TestOIDCRetryOnceOn401(t *testing.T) {
	f := newFakeNomad(t)
	getHandler(f)
	realm := newFakeRealm(t, f)
	realm.rotate = true
	var rotations int
	c, _ := newTestClient(t, f, withRefreshToken(realm, func(context.Context, string, string) error { rotations++; return nil }))
	if _, err := c.Get(context.Background(), patID(1)); err != nil {
		t.Fatal(err)
	}
	f.expireAccessTokens()
	if _, err := c.Get(context.Background(), patID(1)); err != nil {
		t.Fatalf("the retry with a new token should succeed: %v", err)
	}
	if _, n := realm.counts(); n != 2 || rotations != 2 {
		t.Fatalf("token requests %d, rotations stored %d; want 2 and 2", n, rotations)
	}
}

func TestRefreshTokenRotation(t *testing.T) {
	f := newFakeNomad(t)
	var nomadSaw bearersSeen
	f.handle("GET /api/v1/pats/{id}", nomadSaw.handler)
	realm := newFakeRealm(t, f)
	realm.rotate = true

	type call struct{ previous, current string }
	var calls []call
	var c *HTTPClient
	rotated := func(ctx context.Context, previous, current string) error {
		realm.mu.Lock()
		access := realm.lastAccess
		realm.mu.Unlock()
		if nomadSaw.has(access) {
			t.Errorf("the access token was used before the rotated refresh token was stored")
		}
		if !c.HoldsRefreshToken(current) {
			t.Errorf("the client must already hold the new refresh token while it is being stored")
		}
		calls = append(calls, call{previous, current})
		return nil
	}
	c, clk := newTestClient(t, f, withRefreshToken(realm, rotated))
	before := c.Account()
	for i := range 3 {
		clk.SetTime(testEpoch.Add(time.Duration(i) * 300 * time.Second))
		if _, err := c.Get(context.Background(), patID(1)); err != nil {
			t.Fatal(err)
		}
	}
	want := []call{{refreshTokenN(1), refreshTokenN(2)}, {refreshTokenN(2), refreshTokenN(3)}, {refreshTokenN(3), refreshTokenN(4)}}
	if len(calls) != len(want) {
		t.Fatalf("RefreshTokenRotated called %d times, want %d", len(calls), len(want))
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Fatalf("call %d: got (#%d→#%d)", i, i+1, i+2)
		}
	}
	for n := 1; n <= 4; n++ {
		if !c.HoldsRefreshToken(refreshTokenN(n)) {
			t.Errorf("HoldsRefreshToken(#%d) = false", n)
		}
	}
	if c.HoldsRefreshToken(refreshTokenN(99)) || c.HoldsRefreshToken("") {
		t.Error("HoldsRefreshToken is true for a token the client never had")
	}
	if after := c.Account(); after != before || after != accountHash(c.root+"\nsub:"+testUserID) {
		t.Fatalf("Account changed across rotation or is not the sub's: %s → %s", before, after)
	}
}

func TestHoldsRefreshTokenIsBounded(t *testing.T) {
	r := newRefreshTokens("first")
	for n := range 20 {
		r.receive(refreshTokenN(n))
	}
	if !r.holds("first") || !r.holds(refreshTokenN(19)) || !r.holds(refreshTokenN(20-maxHeldRefreshTokens)) {
		t.Fatal("the first token and the latest ones must be held")
	}
	if r.holds(refreshTokenN(19 - maxHeldRefreshTokens)) {
		t.Fatal("older received tokens must be forgotten")
	}
	if r.next() != refreshTokenN(19) {
		t.Fatal("the latest received token is the one to send next")
	}
}

func TestRefreshTokenRotationWriteBackFails(t *testing.T) {
	f := newFakeNomad(t)
	var nomadSaw bearersSeen
	f.handle("GET /api/v1/pats/{id}", nomadSaw.handler)
	realm := newFakeRealm(t, f)
	realm.rotate = true
	var mu sync.Mutex
	var calls [][2]string
	failing := true
	rotated := func(_ context.Context, previous, current string) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, [2]string{previous, current})
		if failing {
			return errors.New("secrets \"nomad-bot\" is forbidden")
		}
		return nil
	}
	c, clk := newTestClient(t, f, withRefreshToken(realm, rotated))

	// The refresh succeeds, the write-back fails: a transient sign-in failure, nothing sent to NOMAD.
	_, err := c.Get(context.Background(), patID(1))
	if e := asError(t, err); e.Code != CodeTransient || e.Op != opLogin || !strings.Contains(e.Detail, "is forbidden") {
		t.Fatalf("got %v, want a transient login error naming the write-back failure", err)
	}
	realm.mu.Lock()
	held := realm.lastAccess
	realm.mu.Unlock()
	if f.hitCount("GET /api/v1/pats/"+patID(1)) != 0 {
		t.Fatal("no NOMAD request may be sent before the rotated refresh token is stored")
	}
	if !c.HoldsRefreshToken(refreshTokenN(2)) {
		t.Fatal("the client must keep the new refresh token (the realm already revoked the old one)")
	}

	// Still failing: the write-back is retried, without refreshing again.
	if _, err := c.Get(context.Background(), patID(1)); CodeOf(err) != CodeTransient {
		t.Fatalf("got %v, want transient", err)
	}
	// Now it works: the held access token is used, still without a new refresh.
	mu.Lock()
	failing = false
	mu.Unlock()
	if _, err := c.Get(context.Background(), patID(1)); err != nil {
		t.Fatal(err)
	}
	if _, n := realm.counts(); n != 1 {
		t.Fatalf("token requests %d, want 1: a pending rotation is stored again, not refreshed again", n)
	}
	if !nomadSaw.has(held) {
		t.Fatal("the held access token should be used once the rotation is stored")
	}
	mu.Lock()
	for i, call := range calls {
		if call != [2]string{refreshTokenN(1), refreshTokenN(2)} {
			t.Errorf("call %d stores another rotation", i)
		}
	}
	if len(calls) != 3 {
		t.Errorf("RefreshTokenRotated called %d times, want 3", len(calls))
	}
	mu.Unlock()

	// The next refresh sends the stored token, which the realm accepts.
	clk.SetTime(testEpoch.Add(300 * time.Second))
	if _, err := c.Get(context.Background(), patID(1)); err != nil {
		t.Fatal(err)
	}
	realm.mu.Lock()
	last := realm.forms[len(realm.forms)-1]["refresh_token"]
	realm.mu.Unlock()
	if last != refreshTokenN(2) {
		t.Fatal("the refresh after a stored rotation must send the new refresh token")
	}
}

func TestRefreshTokenRotationStoredLate(t *testing.T) {
	// The write-back succeeds only after the held access token is due for replacement: it is not
	// used, a new refresh with the stored refresh token is made instead.
	f := newFakeNomad(t)
	getHandler(f)
	realm := newFakeRealm(t, f)
	realm.rotate = true
	failing := true
	c, clk := newTestClient(t, f, withRefreshToken(realm, func(context.Context, string, string) error {
		if failing {
			return errors.New("conflict")
		}
		return nil
	}))
	if _, err := c.Get(context.Background(), patID(1)); CodeOf(err) != CodeTransient {
		t.Fatalf("got %v, want transient", err)
	}
	failing = false
	clk.SetTime(testEpoch.Add(290 * time.Second))
	if _, err := c.Get(context.Background(), patID(1)); err != nil {
		t.Fatal(err)
	}
	realm.mu.Lock()
	defer realm.mu.Unlock()
	if realm.tokenRequests != 2 || realm.forms[1]["refresh_token"] != refreshTokenN(2) {
		t.Fatalf("token requests %d; want a second refresh with the stored token", realm.tokenRequests)
	}
}

func TestOIDCRefusals(t *testing.T) {
	for _, tc := range []struct {
		name       string
		method     func(r *fakeRealm) func(*Config)
		realm      func(r *fakeRealm)
		mutate     func(*Config)
		wantCode   Code
		wantStatus int
		wantDetail string
	}{
		{name: "a spent refresh token", method: oidcMethods[0].config,
			mutate:   func(c *Config) { c.OIDC.RefreshToken = refreshTokenN(7) },
			wantCode: CodeCredentialsInvalid, wantStatus: 400,
			wantDetail: "Keycloak refused the refresh_token grant: invalid_grant: Token is not active"},
		{name: "a wrong client secret", method: withClientCredentials,
			mutate:   func(c *Config) { c.OIDC.ClientSecret = "wrong-secret-value" },
			wantCode: CodeCredentialsInvalid, wantStatus: 401,
			wantDetail: "Keycloak refused the client_credentials grant: invalid_client: Invalid client or Invalid client credentials"},
		{name: "a client without service accounts", method: withClientCredentials,
			realm: func(r *fakeRealm) {
				r.tokenStatus, r.tokenBody = 401, `{"error":"unauthorized_client","error_description":"Client not enabled to retrieve service account"}`
			},
			wantCode: CodeCredentialsInvalid, wantStatus: 401,
			wantDetail: "Keycloak refused the client_credentials grant: unauthorized_client: Client not enabled to retrieve service account"},
		{name: "a 401 without an error object", method: withClientCredentials,
			realm:    func(r *fakeRealm) { r.tokenStatus, r.tokenBody = 401, `` },
			wantCode: CodeCredentialsInvalid, wantStatus: 401, wantDetail: "Keycloak refused the client_credentials grant: unrecognised error"},
		{name: "another 400 is BadRequest", method: withClientCredentials,
			realm: func(r *fakeRealm) {
				r.tokenStatus, r.tokenBody = 400, `{"error":"invalid_request","error_description":"Missing form parameter"}`
			},
			wantCode: CodeBadRequest, wantStatus: 400, wantDetail: "Keycloak refused the client_credentials grant: invalid_request: Missing form parameter"},
		{name: "a realm that is down", method: withClientCredentials,
			realm: func(r *fakeRealm) {
				r.tokenStatus, r.tokenBody, r.tokenHeader = 503, `<html>down</html>`, map[string]string{"Retry-After": "7"}
			},
			wantCode: CodeTransient, wantStatus: 503, wantDetail: "the realm's token endpoint answered HTTP 503"},
		{name: "a 2xx without an access token", method: withClientCredentials,
			realm:    func(r *fakeRealm) { r.tokenStatus, r.tokenBody = 200, `{"token_type":"Bearer"}` },
			wantCode: CodeTransient, wantStatus: 200, wantDetail: "unreadable answer from the realm's token endpoint"},
		{name: "no discovery document", method: withClientCredentials,
			realm:    func(r *fakeRealm) { r.discoveryStatus, r.discoveryBody = 404, `{"error":"Realm does not exist"}` },
			wantCode: CodeIssuerInvalid, wantStatus: 404, wantDetail: "does not serve an OpenID discovery document"},
		{name: "a discovery document that is not JSON", method: withClientCredentials,
			realm:    func(r *fakeRealm) { r.discoveryStatus, r.discoveryBody = 200, `<html>SSO</html>` },
			wantCode: CodeIssuerInvalid, wantStatus: 200, wantDetail: "is not JSON"},
		{name: "a discovery document without token endpoint", method: withClientCredentials,
			realm: func(r *fakeRealm) {
				r.discoveryStatus, r.discoveryBody = 200, `{"issuer":"`+r.issuer()+`"}`
			},
			wantCode: CodeIssuerInvalid, wantStatus: 200, wantDetail: "no token_endpoint"},
		{name: "a discovery document of another issuer", method: withClientCredentials,
			realm: func(r *fakeRealm) {
				r.discoveryStatus, r.discoveryBody = 200, `{"issuer":"https://elsewhere/realms/x","token_endpoint":"https://elsewhere/t"}`
			},
			wantCode: CodeIssuerInvalid, wantStatus: 200, wantDetail: `names the issuer "https://elsewhere/realms/x"`},
		{name: "a token endpoint over plain http elsewhere", method: withClientCredentials,
			realm: func(r *fakeRealm) {
				r.discoveryStatus, r.discoveryBody = 200, `{"issuer":"`+r.issuer()+`","token_endpoint":"http://kc.example.org/t"}`
			},
			wantCode: CodeIssuerInvalid, wantStatus: 200, wantDetail: "token_endpoint must use https"},
		{name: "discovery while the realm is down", method: withClientCredentials,
			realm:    func(r *fakeRealm) { r.discoveryStatus, r.discoveryBody = 502, `bad gateway` },
			wantCode: CodeTransient, wantStatus: 502, wantDetail: "answered HTTP 502"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNomad(t)
			getHandler(f)
			realm := newFakeRealm(t, f)
			if tc.realm != nil {
				realm.set(tc.realm)
			}
			mutate := tc.method(realm)
			if tc.mutate != nil {
				mutate = func(c *Config) { tc.method(realm)(c); tc.mutate(c) }
			}
			c, _ := newTestClient(t, f, mutate)
			for range 2 {
				_, err := c.Get(context.Background(), patID(1))
				e := asError(t, err)
				if e.Code != tc.wantCode || e.StatusCode != tc.wantStatus || e.Op != opLogin || !strings.Contains(e.Detail, tc.wantDetail) {
					t.Fatalf("got %v (%s), want %s, HTTP %d, containing %q", err, e.Code, tc.wantCode, tc.wantStatus, tc.wantDetail)
				}
				if tc.wantCode == CodeIssuerInvalid && !strings.Contains(e.Detail, realm.issuer()) {
					t.Fatalf("an issuer error must name the issuer URL: %v", err)
				}
				if tc.wantStatus == 503 && e.RetryAfter != 7*time.Second {
					t.Fatalf("Retry-After not honoured: %v", e.RetryAfter)
				}
			}
			if f.hitCount("GET /api/v1/pats/"+patID(1)) != 0 {
				t.Fatal("no PAT request may be sent without an access token")
			}
		})
	}
}

func TestRealmRequestsBypassNOMADsLimiterAndGuard(t *testing.T) {
	f := newFakeNomad(t)
	getHandler(f)
	realm := newFakeRealm(t, f)
	obs := &recorder{}
	// One NOMAD request is allowed, the next only in an hour: if discovery or the token request
	// took the token, the PAT request would be refused.
	lim := rate.NewLimiter(rate.Every(time.Hour), 1)
	c, _ := newTestClient(t, f, withClientCredentials(realm), func(cfg *Config) {
		cfg.Limiter, cfg.Observer = lim, obs
		cfg.Guard = &GuardOptions{}
	})
	if _, err := c.Get(context.Background(), patID(1)); err != nil {
		t.Fatalf("the realm's requests must not consume NOMAD's rate limit: %v", err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	want := []string{"login OK", "login OK", "get OK"}
	if strings.Join(obs.requests, ",") != strings.Join(want, ",") || obs.logins != 1 {
		t.Fatalf("observer saw %v and %d sign-ins; want %v and 1", obs.requests, obs.logins, want)
	}
}
