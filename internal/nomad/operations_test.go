package nomad

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func ptrInt(n int) *int { return &n }

func TestCreateSendsTheContractBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  CreateRequest
		want string
	}{
		{name: "full request", req: CreateRequest{Name: "team-a/ci", Description: "ci uploader", Scopes: []string{"uploads:read", "uploads:write"}, ExpiresInDays: ptrInt(30)},
			want: `{"metadata":{"name":"team-a/ci","scopes":["uploads:read","uploads:write"],"description":"ci uploader"},"expires_in_days":30}`},
		{name: "an empty description is omitted", req: CreateRequest{Name: "n", Scopes: []string{"uploads:read"}, ExpiresInDays: ptrInt(7)},
			want: `{"metadata":{"name":"n","scopes":["uploads:read"]},"expires_in_days":7}`},
		{name: "no lifetime is an explicit null (never expires), not an omitted key (30 days)", req: CreateRequest{Name: "n", Scopes: []string{"uploads:read"}},
			want: `{"metadata":{"name":"n","scopes":["uploads:read"]},"expires_in_days":null}`},
		{name: "nil scopes are sent as [] so NOMAD says why", req: CreateRequest{Name: "", ExpiresInDays: ptrInt(1)},
			want: `{"metadata":{"name":"","scopes":[]},"expires_in_days":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNomad(t)
			var got, ctype string
			f.handle("POST /api/v1/pats", func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got, ctype = string(b), r.Header.Get("Content-Type")
				writeJSON(w, 201, `{"pat":`+patJSON(patID(7), "n", testEpoch, nil, false)+`,"raw_token":"`+testRaw+`"}`)
			})
			c, _ := newTestClient(t, f)
			it, err := c.Create(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || ctype != "application/json" {
				t.Fatalf("body = %s (%s)\nwant   %s", got, ctype, tc.want)
			}
			if it.RawToken != testRaw || it.PAT.ID != patID(7) {
				t.Fatalf("issued = %v", it)
			}
		})
	}
}

func TestCreateAndRotateDecodeTheCreationResponse(t *testing.T) {
	f := newFakeNomad(t)
	created := `{"pat":{"id":"665f1c0000000000000000aa","name":"n","scopes":["uploads:read","uploads:write"],"description":"d","revoked":false,
		"created_at":"2026-01-02T03:04:05.123000Z","expired_at":"2026-02-01T03:04:05.123000Z","last_used_at":null},"raw_token":"` + testRaw + `"}`
	f.handle("POST /api/v1/pats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 201, created) })
	var rotateBody string
	f.handle("POST /api/v1/pats/{id}/rotate", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rotateBody = string(b)
		writeJSON(w, 200, created)
	})
	c, _ := newTestClient(t, f)
	for _, call := range []func() (*IssuedToken, error){
		func() (*IssuedToken, error) {
			return c.Create(context.Background(), CreateRequest{Name: "n", Scopes: []string{"uploads:read"}, ExpiresInDays: ptrInt(30)})
		},
		func() (*IssuedToken, error) { return c.Rotate(context.Background(), "665f1c0000000000000000a9") },
	} {
		it, err := call()
		if err != nil {
			t.Fatal(err)
		}
		want := PAT{ID: "665f1c0000000000000000aa", Name: "n", Description: "d", Scopes: []string{"uploads:read", "uploads:write"},
			CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 123000000, time.UTC)}
		exp := time.Date(2026, 2, 1, 3, 4, 5, 123000000, time.UTC)
		if it.PAT.ID != want.ID || it.PAT.Name != want.Name || it.PAT.Description != want.Description ||
			strings.Join(it.PAT.Scopes, ",") != "uploads:read,uploads:write" || !it.PAT.CreatedAt.Equal(want.CreatedAt) ||
			it.PAT.ExpiresAt == nil || !it.PAT.ExpiresAt.Equal(exp) || it.PAT.LastUsedAt != nil || it.RawToken != testRaw {
			t.Fatalf("issued = %+v", it.PAT)
		}
	}
	if rotateBody != "" {
		t.Fatalf("rotate sends no body, sent %q", rotateBody)
	}
}

func TestCreationResponseWithoutTokenIsTransient(t *testing.T) {
	for _, body := range []string{`{"pat":` + patJSON(patID(1), "n", testEpoch, nil, false) + `}`, `{"raw_token":"` + testRaw + `"}`, `not json`} {
		f := newFakeNomad(t)
		f.handle("POST /api/v1/pats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 201, body) })
		c, _ := newTestClient(t, f)
		_, err := c.Create(context.Background(), CreateRequest{Name: "n", Scopes: []string{"uploads:read"}, ExpiresInDays: ptrInt(1)})
		if e := asError(t, err); e.Code != CodeTransient || e.StatusCode != 201 || strings.Contains(e.Error(), testRaw) {
			t.Fatalf("body %s: got %v, want a transient error without the token", body, err)
		}
	}
}

func TestGet(t *testing.T) {
	f := newFakeNomad(t)
	f.handle("GET /api/v1/pats/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"id":"`+r.PathValue("id")+`","name":"n","scopes":["a:b"],"description":null,"revoked":true,
			"created_at":"2026-01-02T03:04:05","expired_at":"2026-01-03T03:04:05","last_used_at":"2026-01-02T04:00:00"}`)
	})
	c, _ := newTestClient(t, f)
	p, err := c.Get(context.Background(), patID(3))
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != patID(3) || !p.Revoked || p.Active(testEpoch) || !p.CreatedAt.Equal(testEpoch) || p.LastUsedAt == nil {
		t.Fatalf("got %+v", p)
	}
}

func TestRevoke(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		body     string
		wantCode Code
	}{
		{name: "204 is success", status: 204},
		{name: "revoking an already revoked PAT is 204 again", status: 204},
		{name: "404 token-not-found (pruned) is success", status: 404, body: `{"detail":"Token not found or does not belong to the user."}`},
		{name: "a framework 404 is not success", status: 404, body: `{"detail":"Not Found"}`, wantCode: CodePathNotFound},
		{name: "403 is returned", status: 403, body: `{"detail":"Missing scopes: ['tokens:delete']"}`, wantCode: CodeForbidden},
		{name: "503 is returned", status: 503, body: `{"detail":"x"}`, wantCode: CodeTransient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNomad(t)
			f.handle("DELETE /api/v1/pats/{id}", func(w http.ResponseWriter, r *http.Request) {
				if tc.status == 204 {
					w.WriteHeader(204)
					return
				}
				writeJSON(w, tc.status, tc.body)
			})
			c, _ := newTestClient(t, f)
			if err := c.Revoke(context.Background(), patID(1)); CodeOf(err) != tc.wantCode {
				t.Fatalf("got %v, want code %q", err, tc.wantCode)
			}
			if f.hitCount("DELETE /api/v1/pats/"+patID(1)) != 1 {
				t.Fatal("revoke must send exactly one DELETE")
			}
		})
	}
}

func TestIDsArePathEscaped(t *testing.T) {
	f := newFakeNomad(t)
	var got string
	f.handle("GET /api/v1/pats/{id}", func(w http.ResponseWriter, r *http.Request) {
		got = r.PathValue("id")
		writeJSON(w, 404, `{"detail":"Token not found or does not belong to the user."}`)
	})
	c, _ := newTestClient(t, f)
	if _, err := c.Get(context.Background(), "a/b?c"); !IsNotFound(err) || got != "a/b?c" {
		t.Fatalf("got %v, id %q: an id must stay one path segment", err, got)
	}
}

func TestCreateBodyAlwaysCarriesScopesAndLifetime(t *testing.T) {
	// Guards the JSON shape against accidental omitempty on scopes.
	b, _ := json.Marshal(createBody{})
	if !strings.Contains(string(b), `"scopes":null`) || !strings.Contains(string(b), `"expires_in_days":null`) {
		t.Fatalf("createBody must always carry scopes and expires_in_days keys: %s", b)
	}
}
