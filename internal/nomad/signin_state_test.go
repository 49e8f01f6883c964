package nomad

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"testing"
	"time"
)

// signIns is an Observer that keeps every SignIn it is told about.
type signIns struct {
	mu  sync.Mutex
	all []SignIn
}

func (s *signIns) Request(string, int, time.Duration) {}
func (s *signIns) SignedIn(si SignIn) {
	s.mu.Lock()
	s.all = append(s.all, si)
	s.mu.Unlock()
}

func TestSignInStateAndObserver(t *testing.T) {
	refreshExp := testEpoch.Add(30 * 24 * time.Hour).Truncate(time.Second)
	for _, tc := range []struct {
		name             string
		config           func(r *fakeRealm) func(*Config)
		refreshExpiresIn int
		mint             func(int) string // NOMAD's access tokens (Password)
		want             SignIn
	}{
		{name: "password, opaque access token", config: func(*fakeRealm) func(*Config) { return func(*Config) {} },
			mint: func(int) string { return "opaque-access-token-zzzz" },
			want: SignIn{Method: MethodPassword, Account: testUser, At: testEpoch}},
		{name: "password, Keycloak access token", config: func(*fakeRealm) func(*Config) { return func(*Config) {} },
			mint: func(int) string {
				return jwtWith(map[string]any{"sub": testUserID, "preferred_username": "bot-in-keycloak"})
			},
			want: SignIn{Method: MethodPassword, Account: "bot-in-keycloak", UserID: testUserID, At: testEpoch}},
		{name: "refresh token with refresh_expires_in", config: func(r *fakeRealm) func(*Config) { return withRefreshToken(r, nil) },
			refreshExpiresIn: 1800,
			want: SignIn{Method: MethodRefreshToken, Account: "bot", UserID: testUserID, At: testEpoch,
				RefreshTokenExpiresAt: testEpoch.Add(1800 * time.Second)}},
		{name: "offline token: refresh_expires_in 0, the refresh token's exp", config: func(r *fakeRealm) func(*Config) { return withRefreshToken(r, nil) },
			want: SignIn{Method: MethodRefreshToken, Account: "bot", UserID: testUserID, At: testEpoch, RefreshTokenExpiresAt: refreshExp}},
		{name: "client credentials", config: withClientCredentials,
			want: SignIn{Method: MethodClientCredentials, Account: "service-account-nomad-bot", UserID: testUserID, At: testEpoch}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNomad(t)
			f.mint = tc.mint
			getHandler(f)
			realm := newFakeRealm(t, f)
			realm.refreshExpiresIn = tc.refreshExpiresIn
			obs := &signIns{}
			c, clk := newTestClient(t, f, tc.config(realm), func(cfg *Config) { cfg.Observer = obs })
			if _, ok := c.SignInState(); ok {
				t.Fatal("no sign-in state before any sign-in")
			}
			if _, err := c.Get(context.Background(), patID(1)); err != nil {
				t.Fatal(err)
			}
			clk.SetTime(testEpoch.Add(time.Minute))
			if _, err := c.Get(context.Background(), patID(1)); err != nil { // cached: no new sign-in
				t.Fatal(err)
			}
			got, ok := c.SignInState()
			if !ok || got != tc.want {
				t.Fatalf("SignInState = %+v, %v; want %+v", got, ok, tc.want)
			}
			obs.mu.Lock()
			defer obs.mu.Unlock()
			if len(obs.all) != 1 || obs.all[0] != tc.want {
				t.Fatalf("Observer.SignedIn got %+v, want once %+v", obs.all, tc.want)
			}
		})
	}
}

func TestAccount(t *testing.T) {
	f := newFakeNomad(t)
	getHandler(f)
	realm := newFakeRealm(t, f)
	hash := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:8]) }

	pw, _ := newTestClient(t, f)
	if got := pw.Account(); got != hash(f.apiRoot()+"\n"+testUser) {
		t.Fatalf("the password account changed: stored values depend on it (%s)", got)
	}
	rt, _ := newTestClient(t, f, withRefreshToken(realm, nil))
	if got := rt.Account(); got != hash(f.apiRoot()+"\nsub:"+testUserID) {
		t.Fatalf("a JWT refresh token's account is its sub's, before any call (%s)", got)
	}
	cc, _ := newTestClient(t, f, withClientCredentials(realm))
	cc2, _ := newTestClient(t, f, withClientCredentials(realm), func(c *Config) { c.OIDC.ClientID = "other-bot" })
	if cc.Account() == cc2.Account() || cc.Account() == rt.Account() || cc.Account() == pw.Account() {
		t.Fatal("accounts of different clients or methods must differ")
	}

	// An opaque refresh token: a placeholder until a sign-in shows the sub.
	realm.set(func(r *fakeRealm) { r.validRefresh["opaque-refresh-token"] = true })
	op, _ := newTestClient(t, f, withRefreshToken(realm, nil), func(c *Config) { c.OIDC.RefreshToken = "opaque-refresh-token" })
	before := op.Account()
	if _, err := op.Get(context.Background(), patID(1)); err != nil {
		t.Fatal(err)
	}
	if after := op.Account(); after == before || after != rt.Account() {
		t.Fatalf("after a sign-in the account is the access token's sub's: %s → %s, want %s", before, after, rt.Account())
	}
}
