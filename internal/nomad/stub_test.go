package nomad_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// End-to-end tests of every client operation against the faithful NOMAD stand-in.

const (
	stubUser = "team-a-bot"
	stubPass = "stub-password-1"
)

type stubEnv struct {
	srv *nomadstub.Server
	c   *nomad.HTTPClient
	clk *testingclock.FakeClock
}

func newStubEnv(t *testing.T, mutateOpts func(*nomadstub.Options), mutateCfg ...func(*nomad.Config)) *stubEnv {
	t.Helper()
	clk := testingclock.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	opts := nomadstub.DefaultOptions()
	opts.Clock = clk
	if mutateOpts != nil {
		mutateOpts(&opts)
	}
	srv, ts := nomadstub.Start(opts)
	t.Cleanup(ts.Close)
	srv.AddUser(stubUser, stubPass)
	cfg := nomad.Config{
		URL:            srv.APIRoot(ts.URL) + "/v1/", // as a user might paste it
		Username:       stubUser,
		Password:       stubPass,
		Clock:          clk,
		RequestTimeout: 5 * time.Second,
	}
	for _, m := range mutateCfg {
		m(&cfg)
	}
	c, err := nomad.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &stubEnv{srv: srv, c: c, clk: clk}
}

func days(n int) *int { return &n }

func (e *stubEnv) create(t *testing.T, name string, lifetime int) *nomad.IssuedToken {
	t.Helper()
	it, err := e.c.Create(context.Background(), nomad.CreateRequest{
		Name: name, Description: "made by " + t.Name(), Scopes: []string{"uploads:read", "uploads:write"}, ExpiresInDays: days(lifetime),
	})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return it
}

func TestStubLifecycle(t *testing.T) {
	e := newStubEnv(t, nil)
	ctx := context.Background()

	it := e.create(t, "team-a/ci", 30)
	if !e.srv.Authenticates(it.RawToken) {
		t.Fatal("the raw token from create must authenticate")
	}
	if !strings.HasPrefix(it.RawToken, "nomad_pat_") || len(it.RawToken) != 53 {
		t.Fatalf("raw token has the wrong shape (len %d)", len(it.RawToken))
	}
	if it.PAT.ExpiresAt == nil || it.PAT.ExpiresAt.Sub(it.PAT.CreatedAt) != 30*24*time.Hour || it.PAT.Description == "" {
		t.Fatalf("created PAT = %+v", it.PAT)
	}

	got, err := e.c.Get(ctx, it.PAT.ID)
	if err != nil || got.ID != it.PAT.ID || got.Name != "team-a/ci" || got.Revoked || !got.Active(e.clk.Now()) {
		t.Fatalf("get = %+v, %v", got, err)
	}
	if got.CreatedAt.Sub(it.PAT.CreatedAt).Abs() > time.Millisecond {
		t.Fatalf("created_at differs: %v vs %v", got.CreatedAt, it.PAT.CreatedAt)
	}

	// Rotate: a new id and secret; the old one stops working at once.
	rot, err := e.c.Rotate(ctx, it.PAT.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rot.PAT.ID == it.PAT.ID || rot.RawToken == it.RawToken || rot.PAT.Name != "team-a/ci" {
		t.Fatalf("rotated = %v", rot)
	}
	if e.srv.Authenticates(it.RawToken) || !e.srv.Authenticates(rot.RawToken) {
		t.Fatal("after rotate the old token must be dead and the new one alive")
	}
	if _, err := e.c.Rotate(ctx, it.PAT.ID); nomad.CodeOf(err) != nomad.CodeNotActive {
		t.Fatalf("rotating the revoked token: got %v, want NotActive", err)
	}

	// Revoke is idempotent, and a missing id counts as done.
	for range 2 {
		if err := e.c.Revoke(ctx, rot.PAT.ID); err != nil {
			t.Fatal(err)
		}
	}
	if e.srv.Authenticates(rot.RawToken) {
		t.Fatal("revoked token still authenticates")
	}
	if err := e.c.Revoke(ctx, "000000000000000000000000"); err != nil {
		t.Fatalf("revoking an unknown id: %v", err)
	}
	if _, err := e.c.Get(ctx, "000000000000000000000000"); !nomad.IsNotFound(err) {
		t.Fatalf("get unknown: %v", err)
	}
	if _, err := e.c.Get(ctx, "not-an-object-id"); !nomad.IsNotFound(err) {
		t.Fatalf("get malformed id: %v", err)
	}
	if p, _ := e.c.Get(ctx, rot.PAT.ID); p == nil || !p.Revoked {
		t.Fatalf("a revoked PAT is still readable and says so: %+v", p)
	}
	if n := e.srv.Calls()["login"]; n != 1 {
		t.Fatalf("logins = %d for the whole lifecycle, want 1", n)
	}
}

func TestStubValidationErrors(t *testing.T) {
	e := newStubEnv(t, func(o *nomadstub.Options) { o.MaxActivePerUser = 2 })
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  nomad.CreateRequest
		want nomad.Code
	}{
		{name: "no scopes", req: nomad.CreateRequest{Name: "x", ExpiresInDays: days(1)}, want: nomad.CodeInvalidScopes},
		{name: "unknown scope", req: nomad.CreateRequest{Name: "x", Scopes: []string{"uploads:*"}, ExpiresInDays: days(1)}, want: nomad.CodeInvalidScopes},
		{name: "tokens scope", req: nomad.CreateRequest{Name: "x", Scopes: []string{"tokens:read"}, ExpiresInDays: days(1)}, want: nomad.CodeInvalidScopes},
		{name: "zero days", req: nomad.CreateRequest{Name: "x", Scopes: []string{"uploads:read"}, ExpiresInDays: days(0)}, want: nomad.CodeLifetimeExceeded},
		{name: "never expires", req: nomad.CreateRequest{Name: "x", Scopes: []string{"uploads:read"}}, want: nomad.CodeLifetimeExceeded},
		{name: "over the maximum", req: nomad.CreateRequest{Name: "x", Scopes: []string{"uploads:read"}, ExpiresInDays: days(366)}, want: nomad.CodeLifetimeExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.c.Create(ctx, tc.req)
			if nomad.CodeOf(err) != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
	e.create(t, "a", 1)
	e.create(t, "b", 1)
	if _, err := e.c.Create(ctx, nomad.CreateRequest{Name: "c", Scopes: []string{"uploads:read"}, ExpiresInDays: days(1)}); nomad.CodeOf(err) != nomad.CodeTokenLimitReached {
		t.Fatalf("third token: got %v, want TokenLimitReached", err)
	}
}

func TestStubWrongPassword(t *testing.T) {
	e := newStubEnv(t, nil, func(c *nomad.Config) { c.Password = "wrong-password" })
	_, err := e.c.Check(context.Background())
	if nomad.CodeOf(err) != nomad.CodeCredentialsInvalid {
		t.Fatalf("got %v, want CredentialsInvalid", err)
	}
}

func TestStubListPaging(t *testing.T) {
	e := newStubEnv(t, func(o *nomadstub.Options) { o.MaxActivePerUser = 1000 })
	ctx := context.Background()
	const n = 130
	ids := map[string]bool{}
	for i := range n {
		it := e.create(t, fmt.Sprintf("bulk-%03d", i), 30)
		ids[it.PAT.ID] = true
		e.clk.Step(time.Millisecond) // distinct created_at, as in real life
	}
	e.srv.ResetCalls()

	all, err := e.c.List(ctx, nomad.ListOptions{PageSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n {
		t.Fatalf("listed %d, want %d", len(all), n)
	}
	for i, p := range all {
		if !ids[p.ID] || p.Name != fmt.Sprintf("bulk-%03d", i) {
			t.Fatalf("entry %d = %s %q: want every PAT once, oldest first", i, p.ID, p.Name)
		}
	}
	if got, want := e.srv.Calls()["list"], (n+6)/7; got != want {
		t.Fatalf("list requests = %d, want %d", got, want)
	}

	// Filters are the server's: revoke a few, then ask for the active ones matching a search.
	for _, p := range all[:5] {
		if err := e.c.Revoke(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
	}
	active, err := e.c.List(ctx, nomad.ListOptions{State: "active", Search: "BULK-00", PageSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 5 { // bulk-005..bulk-009
		t.Fatalf("active bulk-00x = %d, want 5", len(active))
	}
	inactive, err := e.c.List(ctx, nomad.ListOptions{State: "inactive"})
	if err != nil || len(inactive) != 5 {
		t.Fatalf("inactive = %d, %v", len(inactive), err)
	}
	window, err := e.c.List(ctx, nomad.ListOptions{CreatedAfter: all[10].CreatedAt, CreatedBefore: all[19].CreatedAt})
	if err != nil || len(window) != 10 {
		t.Fatalf("created window = %d, %v; want 10 (inclusive bounds)", len(window), err)
	}

	// V-A's bare array: the same answers, filtered by the client.
	e.srv.SetLegacyList(true)
	legacy, err := e.c.List(ctx, nomad.ListOptions{State: "active", Search: "bulk-00", PageSize: 3})
	if err != nil || len(legacy) != 5 || legacy[0].Name != "bulk-005" {
		t.Fatalf("legacy active bulk-00x = %d, %v", len(legacy), err)
	}
	legacyAll, err := e.c.List(ctx, nomad.ListOptions{})
	if err != nil || len(legacyAll) != n || legacyAll[0].Name != "bulk-000" {
		t.Fatalf("legacy all = %d, %v", len(legacyAll), err)
	}
}

// NOMAD's rotate revokes first and validates after: lowering the maximum lifetime below the old
// token's makes rotate fail and leaves the user without a token.
func TestStubRotateHazard(t *testing.T) {
	e := newStubEnv(t, nil)
	it := e.create(t, "hazard", 30)
	e.srv.SetMaxLifetimeDays(days(10))
	_, err := e.c.Rotate(context.Background(), it.PAT.ID)
	if nomad.CodeOf(err) != nomad.CodeLifetimeExceeded {
		t.Fatalf("got %v, want LifetimeExceeded", err)
	}
	if e.srv.Authenticates(it.RawToken) {
		t.Fatal("the old token must be revoked even though rotate failed (that is the hazard)")
	}
	if p, err := e.c.Get(context.Background(), it.PAT.ID); err != nil || !p.Revoked {
		t.Fatalf("get after failed rotate = %+v, %v", p, err)
	}
	if len(e.srv.ActivePATs(stubUser)) != 0 {
		t.Fatal("no active token should remain")
	}
}

func TestStubPathDetection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   func(*nomadstub.Options)
		want   nomad.PATPath
		config nomad.PATPath
	}{
		{name: "both served: the documented /pats", opts: func(*nomadstub.Options) {}, want: nomad.PATPathPats},
		{name: "/pats disabled: /auth/pats", opts: func(o *nomadstub.Options) { o.DisablePats = true }, want: nomad.PATPathAuthPats},
		{name: "/auth/pats disabled: /pats", opts: func(o *nomadstub.Options) { o.DisableAuthPats = true }, want: nomad.PATPathPats},
		{name: "configured AuthPats", opts: func(o *nomadstub.Options) { o.DisablePats = true }, want: nomad.PATPathAuthPats, config: nomad.PATPathAuthPats},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newStubEnv(t, tc.opts, func(c *nomad.Config) { c.PATPath = tc.config })
			p, err := e.c.Check(context.Background())
			if err != nil || p != tc.want {
				t.Fatalf("Check = %q, %v; want %q", p, err, tc.want)
			}
			it := e.create(t, "x", 1)
			if !e.srv.Authenticates(it.RawToken) {
				t.Fatal("create through the detected path failed")
			}
		})
	}

	t.Run("a configured path the server does not serve", func(t *testing.T) {
		e := newStubEnv(t, func(o *nomadstub.Options) { o.DisablePats = true }, func(c *nomad.Config) { c.PATPath = nomad.PATPathPats })
		if _, err := e.c.Check(context.Background()); nomad.CodeOf(err) != nomad.CodePathNotFound {
			t.Fatalf("got %v, want PathNotFound", err)
		}
	})

	t.Run("openapi unavailable: detection by 404 probe", func(t *testing.T) {
		e := newStubEnv(t, func(o *nomadstub.Options) { o.DisablePats = true })
		e.srv.InjectFault("openapi", 1, nomadstub.Fault{Status: 500})
		p, err := e.c.Check(context.Background())
		if err != nil || p != nomad.PATPathAuthPats {
			t.Fatalf("Check = %q, %v", p, err)
		}
		if calls := e.srv.Calls(); calls["list"] != 1 || calls["openapi"] != 1 {
			t.Fatalf("calls = %v: want one openapi try and one successful probe (the 404 probe is routing, not an operation)", calls)
		}
	})

	t.Run("the server moves its routes: re-detection", func(t *testing.T) {
		e := newStubEnv(t, func(o *nomadstub.Options) { o.DisableAuthPats = true })
		it := e.create(t, "moving", 1)
		if e.c.ResolvedPATPath() != nomad.PATPathPats {
			t.Fatalf("resolved %q", e.c.ResolvedPATPath())
		}
		e.srv.SetPaths(false, true)
		if _, err := e.c.Get(context.Background(), it.PAT.ID); err != nil {
			t.Fatalf("get after the move: %v", err)
		}
		if e.c.ResolvedPATPath() != nomad.PATPathAuthPats {
			t.Fatalf("resolved %q after the move", e.c.ResolvedPATPath())
		}
	})
}

func TestStubAccessTokens(t *testing.T) {
	t.Run("N calls, one login", func(t *testing.T) {
		e := newStubEnv(t, nil)
		it := e.create(t, "x", 1)
		for range 20 {
			if _, err := e.c.Get(context.Background(), it.PAT.ID); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.c.List(context.Background(), nomad.ListOptions{}); err != nil {
			t.Fatal(err)
		}
		if n := e.srv.Calls()["login"]; n != 1 {
			t.Fatalf("logins = %d, want 1", n)
		}
	})
	t.Run("revoked access tokens: transparent re-login", func(t *testing.T) {
		e := newStubEnv(t, nil)
		it := e.create(t, "x", 1)
		e.srv.ExpireAccessTokens()
		if _, err := e.c.Get(context.Background(), it.PAT.ID); err != nil {
			t.Fatalf("get after ExpireAccessTokens: %v", err)
		}
		if c := e.srv.Calls(); c["login"] != 2 || c["get"] != 2 {
			t.Fatalf("calls = %v; want 2 logins and one retried get", c)
		}
	})
	t.Run("refresh ahead of expiry on the shared clock, without a 401", func(t *testing.T) {
		e := newStubEnv(t, nil)
		it := e.create(t, "x", 1)
		e.clk.Step(275 * time.Second) // 300 s tokens are replaced 30 s early
		if _, err := e.c.Get(context.Background(), it.PAT.ID); err != nil {
			t.Fatal(err)
		}
		if c := e.srv.Calls(); c["login"] != 2 || c["get"] != 1 {
			t.Fatalf("calls = %v; want a proactive second login and no rejected get", c)
		}
	})
}

func TestStubInjectedFaults(t *testing.T) {
	ctx := context.Background()
	t.Run("503 with Retry-After", func(t *testing.T) {
		e := newStubEnv(t, nil)
		e.srv.InjectFault("create", 1, nomadstub.Fault{Status: 503, RetryAfter: 7 * time.Second})
		_, err := e.c.Create(ctx, nomad.CreateRequest{Name: "x", Scopes: []string{"uploads:read"}, ExpiresInDays: days(1)})
		if !nomad.IsTransient(err) || nomad.RetryAfterOf(err) != 7*time.Second {
			t.Fatalf("got %v (retry %s), want transient with 7s", err, nomad.RetryAfterOf(err))
		}
		if len(e.srv.ActivePATs(stubUser)) != 0 {
			t.Fatal("a 503 created nothing")
		}
	})
	t.Run("429 on list", func(t *testing.T) {
		e := newStubEnv(t, nil)
		e.srv.InjectFault("list", 1, nomadstub.Fault{Status: 429, RetryAfter: 2 * time.Second})
		if _, err := e.c.Check(ctx); err != nil {
			t.Fatal(err) // detection uses openapi, not list
		}
		_, err := e.c.List(ctx, nomad.ListOptions{})
		if !nomad.IsTransient(err) || nomad.RetryAfterOf(err) != 2*time.Second {
			t.Fatalf("got %v, want transient with 2s", err)
		}
	})
	t.Run("503 on login", func(t *testing.T) {
		e := newStubEnv(t, nil)
		e.srv.InjectFault("login", 1, nomadstub.Fault{Status: 503})
		if _, err := e.c.Check(ctx); !nomad.IsTransient(err) {
			t.Fatalf("got %v, want transient", err)
		}
		if _, err := e.c.Check(ctx); err != nil {
			t.Fatalf("the next call logs in again: %v", err)
		}
	})
	t.Run("a lost create answer leaves an orphan that List finds", func(t *testing.T) {
		e := newStubEnv(t, nil)
		e.srv.InjectFault("create", 1, nomadstub.Fault{LoseResponse: true})
		_, err := e.c.Create(ctx, nomad.CreateRequest{Name: "orphan", Scopes: []string{"uploads:read"}, ExpiresInDays: days(1)})
		if !nomad.IsTransient(err) {
			t.Fatalf("got %v, want transient", err)
		}
		if c := e.srv.Calls()["create"]; c != 1 {
			t.Fatalf("creates = %d: a POST must never be resent", c)
		}
		found, err := e.c.List(ctx, nomad.ListOptions{Search: "orphan", State: "active"})
		if err != nil || len(found) != 1 {
			t.Fatalf("orphans found = %d, %v", len(found), err)
		}
		if err := e.c.Revoke(ctx, found[0].ID); err != nil || len(e.srv.ActivePATs(stubUser)) != 0 {
			t.Fatalf("revoking the orphan: %v", err)
		}
	})
	t.Run("a lost revoke answer, then a retry, is still success", func(t *testing.T) {
		e := newStubEnv(t, nil)
		it := e.create(t, "x", 1)
		e.srv.InjectFault("revoke", 1, nomadstub.Fault{LoseResponse: true})
		if err := e.c.Revoke(ctx, it.PAT.ID); !nomad.IsTransient(err) {
			t.Fatalf("got %v, want transient", err)
		}
		if err := e.c.Revoke(ctx, it.PAT.ID); err != nil {
			t.Fatalf("retry: %v", err)
		}
	})
	t.Run("a slow server and a short timeout", func(t *testing.T) {
		e := newStubEnv(t, nil, func(c *nomad.Config) { c.RequestTimeout = 100 * time.Millisecond })
		if _, err := e.c.Check(ctx); err != nil {
			t.Fatal(err)
		}
		e.srv.InjectFault("get", 1, nomadstub.Fault{Delay: 5 * time.Second})
		if _, err := e.c.Get(ctx, "000000000000000000000000"); !nomad.IsTransient(err) {
			t.Fatalf("got %v, want transient", err)
		}
	})
}
