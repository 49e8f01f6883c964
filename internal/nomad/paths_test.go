package nomad

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

func auto(cfg *Config) { cfg.PATPath = PATPathAuto }

// listOK answers a list (including the page_size=0 probe) with an empty envelope.
func listOK(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, `{"pagination":{"page_size":0,"total":0},"data":[]}`)
}

func TestPATPathDetection(t *testing.T) {
	for _, tc := range []struct {
		name     string
		openapi  string // "" = openapi.json answers 404
		pats     bool   // /v1/pats exists
		authPats bool   // /v1/auth/pats exists
		want     PATPath
		wantHow  []string // requests expected besides the login, in order
	}{
		{name: "openapi lists /auth/pats", openapi: `{"paths":{"/auth/token":{},"/auth/pats":{},"/auth/pats/{pat_id}":{}}}`, authPats: true,
			want: PATPathAuthPats, wantHow: []string{"GET /api/v1/openapi.json?"}},
		{name: "openapi lists /pats", openapi: `{"paths":{"/pats":{},"/pats/{pat_id}/rotate":{}}}`, pats: true,
			want: PATPathPats, wantHow: []string{"GET /api/v1/openapi.json?"}},
		{name: "openapi keys with /api/v1", openapi: `{"paths":{"/api/v1/auth/pats":{}}}`, authPats: true,
			want: PATPathAuthPats, wantHow: []string{"GET /api/v1/openapi.json?"}},
		{name: "openapi keys with /v1", openapi: `{"paths":{"/v1/pats":{}}}`, pats: true,
			want: PATPathPats, wantHow: []string{"GET /api/v1/openapi.json?"}},
		{name: "openapi keys with the full base path", openapi: `{"paths":{"/nomad-oasis/api/v1/auth/pats":{}}}`, authPats: true,
			want: PATPathAuthPats, wantHow: []string{"GET /api/v1/openapi.json?"}},
		{name: "openapi lists both: the documented /pats wins", openapi: `{"paths":{"/auth/pats":{},"/pats":{}}}`, pats: true, authPats: true,
			want: PATPathPats, wantHow: []string{"GET /api/v1/openapi.json?"}},
		{name: "no openapi: /pats answers the probe", pats: true,
			want: PATPathPats, wantHow: []string{"GET /api/v1/openapi.json?", "GET /api/v1/pats?page_size=0"}},
		{name: "no openapi: /pats is a framework 404, /auth/pats answers", authPats: true, want: PATPathAuthPats,
			wantHow: []string{"GET /api/v1/openapi.json?", "GET /api/v1/pats?page_size=0", "GET /api/v1/auth/pats?page_size=0"}},
		{name: "openapi says nothing about PATs: probe", openapi: `{"paths":{"/auth/token":{}}}`, authPats: true, want: PATPathAuthPats,
			wantHow: []string{"GET /api/v1/openapi.json?", "GET /api/v1/pats?page_size=0", "GET /api/v1/auth/pats?page_size=0"}},
		{name: "openapi is not JSON: probe", openapi: `<html>`, pats: true,
			want: PATPathPats, wantHow: []string{"GET /api/v1/openapi.json?", "GET /api/v1/pats?page_size=0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNomad(t)
			if tc.openapi != "" {
				f.handleRaw("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, tc.openapi) })
			}
			if tc.pats {
				f.handle("GET /api/v1/pats", listOK)
			}
			if tc.authPats {
				f.handle("GET /api/v1/auth/pats", listOK)
			}
			c, _ := newTestClient(t, f, auto)
			got, err := c.Check(context.Background())
			if err != nil || got != tc.want || c.ResolvedPATPath() != tc.want {
				t.Fatalf("Check = %q, %v (resolved %q); want %q", got, err, c.ResolvedPATPath(), tc.want)
			}
			var reqs []string
			for _, r := range f.requestLog() {
				if !strings.Contains(r, "/auth/token") {
					reqs = append(reqs, r)
				}
			}
			if strings.Join(reqs, " | ") != strings.Join(tc.wantHow, " | ") {
				t.Fatalf("requests = %q, want %q", reqs, tc.wantHow)
			}
			// Cached: a second Check costs nothing.
			if _, err := c.Check(context.Background()); err != nil || len(f.requestLog()) != len(reqs)+1 {
				t.Fatalf("a second Check must use the cache: %v, %q", err, f.requestLog())
			}
		})
	}
}

func TestPATPathDetectionFailures(t *testing.T) {
	t.Run("neither prefix exists", func(t *testing.T) {
		f := newFakeNomad(t)
		c, _ := newTestClient(t, f, auto)
		_, err := c.Check(context.Background())
		if e := asError(t, err); e.Code != CodePathNotFound || e.Op != "detect-path" || !strings.Contains(e.Detail, "neither") {
			t.Fatalf("got %v, want PathNotFound", err)
		}
		if c.ResolvedPATPath() != "" {
			t.Fatal("nothing may be cached after a failed detection")
		}
	})
	t.Run("a transient probe failure is returned and not cached", func(t *testing.T) {
		f := newFakeNomad(t)
		var fail atomic.Bool
		fail.Store(true)
		f.handle("GET /api/v1/pats", func(w http.ResponseWriter, r *http.Request) {
			if fail.Load() {
				writeJSON(w, 503, `{"detail":"maintenance"}`)
				return
			}
			listOK(w, r)
		})
		c, _ := newTestClient(t, f, auto)
		if _, err := c.Check(context.Background()); CodeOf(err) != CodeTransient {
			t.Fatalf("got %v, want transient", err)
		}
		fail.Store(false)
		if p, err := c.Check(context.Background()); err != nil || p != PATPathPats {
			t.Fatalf("got %q, %v after recovery", p, err)
		}
	})
	t.Run("a forbidden probe is returned", func(t *testing.T) {
		f := newFakeNomad(t)
		f.handle("GET /api/v1/pats", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 403, `{"detail":"You are not authorized to access this Oasis"}`)
		})
		c, _ := newTestClient(t, f, auto)
		if _, err := c.Check(context.Background()); CodeOf(err) != CodeForbidden {
			t.Fatalf("got %v, want Forbidden", err)
		}
	})
	t.Run("a validation error still proves the route exists", func(t *testing.T) {
		f := newFakeNomad(t)
		f.handle("GET /api/v1/auth/pats", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 422, `{"detail":[{"loc":["query","page_size"],"msg":"bad"}]}`)
		})
		c, _ := newTestClient(t, f, auto)
		if p, err := c.Check(context.Background()); err != nil || p != PATPathAuthPats {
			t.Fatalf("got %q, %v; want AuthPats", p, err)
		}
	})
	t.Run("a configured path that does not exist fails Check with advice", func(t *testing.T) {
		f := newFakeNomad(t)
		f.handle("GET /api/v1/auth/pats", listOK)
		c, _ := newTestClient(t, f) // Pats
		_, err := c.Check(context.Background())
		if e := asError(t, err); e.Code != CodePathNotFound || !strings.Contains(e.Detail, "use Auto") {
			t.Fatalf("got %v, want PathNotFound with advice", err)
		}
		if f.hitCount("GET /api/v1/openapi.json") != 0 {
			t.Fatal("a configured path is never detected")
		}
	})
	t.Run("a configured path is probed and returned", func(t *testing.T) {
		f := newFakeNomad(t)
		f.handle("GET /api/v1/auth/pats", listOK)
		c, _ := newTestClient(t, f, func(cfg *Config) { cfg.PATPath = PATPathAuthPats })
		if p, err := c.Check(context.Background()); err != nil || p != PATPathAuthPats || c.ResolvedPATPath() != PATPathAuthPats {
			t.Fatalf("got %q, %v", p, err)
		}
	})
}

// NOMAD moved its routes (an upgrade): the cached path answers the framework's 404, the client
// detects again once and carries on; a token-not-found 404 must not trigger any of that.
func TestPATPathRedetection(t *testing.T) {
	f := newFakeNomad(t)
	var moved atomic.Bool
	f.handleRaw("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		if moved.Load() {
			writeJSON(w, 200, `{"paths":{"/auth/pats/{pat_id}":{},"/auth/pats":{}}}`)
			return
		}
		writeJSON(w, 200, `{"paths":{"/pats/{pat_id}":{},"/pats":{}}}`)
	})
	serve := func(newPrefix bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if moved.Load() != newPrefix {
				writeJSON(w, 404, `{"detail":"Not Found"}`)
				return
			}
			if r.PathValue("id") == patID(404) {
				writeJSON(w, 404, `{"detail":"Token not found or does not belong to the user."}`)
				return
			}
			writeJSON(w, 200, patJSON(r.PathValue("id"), "n", testEpoch, nil, false))
		}
	}
	f.handle("GET /api/v1/pats/{id}", serve(false))
	f.handle("GET /api/v1/auth/pats/{id}", serve(true))
	c, _ := newTestClient(t, f, auto)
	ctx := context.Background()

	if _, err := c.Get(ctx, patID(1)); err != nil || c.ResolvedPATPath() != PATPathPats {
		t.Fatalf("first get: %v, path %q", err, c.ResolvedPATPath())
	}
	if _, err := c.Get(ctx, patID(404)); !IsNotFound(err) {
		t.Fatalf("got %v, want NotFound", err)
	}
	if n := f.hitCount("GET /api/v1/openapi.json"); n != 1 {
		t.Fatalf("a token-not-found 404 must not trigger detection; openapi fetched %d times", n)
	}
	moved.Store(true)
	if _, err := c.Get(ctx, patID(1)); err != nil {
		t.Fatalf("get after the move: %v", err)
	}
	if c.ResolvedPATPath() != PATPathAuthPats || f.hitCount("GET /api/v1/openapi.json") != 2 {
		t.Fatalf("path %q, openapi fetched %d times; want AuthPats after one re-detection",
			c.ResolvedPATPath(), f.hitCount("GET /api/v1/openapi.json"))
	}

	// Re-detection happens once per call: if the detected path still 404s, the error is returned.
	f2 := newFakeNomad(t)
	f2.handleRaw("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"paths":{"/pats":{}}}`)
	})
	c2, _ := newTestClient(t, f2, auto)
	_, err := c2.Get(ctx, patID(1))
	if CodeOf(err) != CodePathNotFound || f2.hitCount("GET /api/v1/openapi.json") != 2 || f2.hitCount("GET /api/v1/pats/"+patID(1)) != 1 {
		t.Fatalf("got %v, openapi %d, gets %d; want PathNotFound after one re-detection and no pointless retry",
			err, f2.hitCount("GET /api/v1/openapi.json"), f2.hitCount("GET /api/v1/pats/"+patID(1)))
	}
}

// A path known from an earlier client (the connection's status) is used without detection, and a
// wrong one heals like a stale detection: the first 404 from a PAT route makes the client detect anew.
func TestKnownPATPath(t *testing.T) {
	for _, tc := range []struct {
		name        string
		known       PATPath
		mode        PATPath
		wantOpenAPI int // openapi.json fetches after Check and a list
	}{
		{name: "right known path: no detection", known: PATPathAuthPats, mode: PATPathAuto, wantOpenAPI: 0},
		{name: "wrong known path: detected on the first 404", known: PATPathPats, mode: PATPathAuto, wantOpenAPI: 1},
		{name: "not a path: detected", known: "Bogus", mode: PATPathAuto, wantOpenAPI: 1},
		{name: "configured path wins over a known one", known: PATPathPats, mode: PATPathAuthPats, wantOpenAPI: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNomad(t)
			f.handleRaw("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, `{"paths":{"/auth/pats":{}}}`)
			})
			f.handle("GET /api/v1/auth/pats", listOK)
			c, _ := newTestClient(t, f, func(cfg *Config) { cfg.PATPath, cfg.KnownPATPath = tc.mode, tc.known })
			ctx := context.Background()
			if _, err := c.Check(ctx); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if _, err := c.List(ctx, ListOptions{State: "active"}); err != nil {
				t.Fatalf("List: %v", err)
			}
			if c.ResolvedPATPath() != PATPathAuthPats || f.hitCount("GET /api/v1/openapi.json") != tc.wantOpenAPI {
				t.Fatalf("path %q, openapi fetched %d times; want AuthPats after %d fetches",
					c.ResolvedPATPath(), f.hitCount("GET /api/v1/openapi.json"), tc.wantOpenAPI)
			}
		})
	}
}
