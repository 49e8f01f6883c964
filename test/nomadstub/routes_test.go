package nomadstub

import (
	"encoding/json"
	"net/http"
	"sort"
	"testing"
)

func TestBothPrefixesShareOneStore(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	r := h.do(http.MethodPost, h.v1("/auth/pats"), kc, patBody("via auth", []string{"uploads:read"}, 1))
	expectStatus(t, r, http.StatusCreated)
	id := r.json(t)["pat"].(map[string]any)["id"].(string)
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats/"+id), kc, nil), http.StatusOK)
	expectStatus(t, h.do(http.MethodGet, h.v1("/auth/pats/"+id), kc, nil), http.StatusOK)
	expectStatus(t, h.do(http.MethodPost, h.v1("/auth/pats/"+id+"/rotate"), kc, nil), http.StatusOK)
	expectStatus(t, h.do(http.MethodDelete, h.v1("/auth/pats/"+id), kc, nil), http.StatusNoContent)
}

func TestPathSwitches(t *testing.T) {
	tests := []struct {
		name            string
		pats, authPats  bool
		wantPats        int
		wantAuthPats    int
		wantOpenAPIKeys []string
	}{
		{"both", true, true, 200, 200, []string{"/auth/pats", "/auth/pats/{pat_id}", "/auth/pats/{pat_id}/rotate", "/auth/token", "/pats", "/pats/{pat_id}", "/pats/{pat_id}/rotate"}},
		{"docs form only", true, false, 200, 404, []string{"/auth/token", "/pats", "/pats/{pat_id}", "/pats/{pat_id}/rotate"}},
		{"published source only", false, true, 404, 200, []string{"/auth/pats", "/auth/pats/{pat_id}", "/auth/pats/{pat_id}/rotate", "/auth/token"}},
		{"neither", false, false, 404, 404, []string{"/auth/token"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.srv.SetPaths(tc.pats, tc.authPats)
			kc := h.botToken()
			for path, want := range map[string]int{"/pats": tc.wantPats, "/auth/pats": tc.wantAuthPats} {
				r := h.do(http.MethodGet, h.v1(path), kc, nil)
				if want == 404 {
					expectDetail(t, r, 404, "Not Found") // FastAPI's own 404: the prefix is wrong
					expectDetail(t, h.do(http.MethodGet, h.v1(path+"/000000000000000000000000"), kc, nil), 404, "Not Found")
				} else {
					expectStatus(t, r, want)
				}
			}
			doc := h.do(http.MethodGet, h.v1("/openapi.json"), "", nil)
			expectStatus(t, doc, http.StatusOK)
			var parsed struct {
				Servers []struct{ URL string } `json:"servers"`
				Paths   map[string]map[string]any
			}
			if err := json.Unmarshal(doc.body, &parsed); err != nil {
				t.Fatal(err)
			}
			var keys []string
			for k := range parsed.Paths {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if !jsonEqual(keys, tc.wantOpenAPIKeys) {
				t.Fatalf("openapi paths = %v, want %v", keys, tc.wantOpenAPIKeys)
			}
			if len(parsed.Servers) != 1 || parsed.Servers[0].URL != "/nomad-oasis/api/v1" {
				t.Fatalf("servers = %v", parsed.Servers)
			}
			if tc.pats {
				if _, ok := parsed.Paths["/pats/{pat_id}"]["delete"]; !ok {
					t.Fatalf("no delete under /pats/{pat_id}: %v", parsed.Paths)
				}
			}
		})
	}
}

func TestOptionsDisablePaths(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.DisablePats = true })
	kc := h.botToken()
	expectDetail(t, h.do(http.MethodGet, h.v1("/pats"), kc, nil), 404, "Not Found")
	expectStatus(t, h.do(http.MethodGet, h.v1("/auth/pats"), kc, nil), 200)

	h2 := newHarness(t, func(o *Options) { o.DisableAuthPats = true })
	expectDetail(t, h2.do(http.MethodGet, h2.v1("/auth/pats"), h2.botToken(), nil), 404, "Not Found")
}

func TestRoutingEdges(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	id := "0123456789abcdef01234567"
	tests := []struct {
		name     string
		method   string
		path     string // absolute path on the server
		status   int
		detail   string
		location string // for 307, relative to the server URL
		allow    string
	}{
		{"trailing slash on collection", "GET", "/nomad-oasis/api/v1/pats/", 307, "", "/nomad-oasis/api/v1/pats", ""},
		{"trailing slash keeps query", "GET", "/nomad-oasis/api/v1/auth/pats/?page=2", 307, "", "/nomad-oasis/api/v1/auth/pats?page=2", ""},
		{"trailing slash on item, any method", "DELETE", "/nomad-oasis/api/v1/pats/" + id + "/", 307, "", "/nomad-oasis/api/v1/pats/" + id, ""},
		{"trailing slash on rotate", "POST", "/nomad-oasis/api/v1/pats/" + id + "/rotate/", 307, "", "/nomad-oasis/api/v1/pats/" + id + "/rotate", ""},
		{"PUT item", "PUT", "/nomad-oasis/api/v1/pats/" + id, 405, "Method Not Allowed", "", "DELETE, GET"},
		{"PATCH item", "PATCH", "/nomad-oasis/api/v1/auth/pats/" + id, 405, "Method Not Allowed", "", "DELETE, GET"},
		{"PUT collection", "PUT", "/nomad-oasis/api/v1/pats", 405, "Method Not Allowed", "", "GET, POST"},
		{"GET rotate", "GET", "/nomad-oasis/api/v1/pats/" + id + "/rotate", 405, "Method Not Allowed", "", "POST"},
		{"POST item", "POST", "/nomad-oasis/api/v1/pats/" + id, 405, "Method Not Allowed", "", "DELETE, GET"},
		{"HEAD list (FastAPI routes are GET only)", "HEAD", "/nomad-oasis/api/v1/pats", 405, "", "", "GET, POST"},
		{"unknown v1 path", "GET", "/nomad-oasis/api/v1/nope", 404, "Not Found", "", ""},
		{"deeper than rotate", "POST", "/nomad-oasis/api/v1/pats/" + id + "/rotate/now", 404, "Not Found", "", ""},
		{"empty id segment", "GET", "/nomad-oasis/api/v1/pats//rotate", 404, "Not Found", "", ""},
		{"outside the base path", "GET", "/api/v1/pats", 404, "Not Found", "", ""},
		{"v1 root", "GET", "/nomad-oasis/api/v1", 404, "Not Found", "", ""},
		{"admin is not under the base path", "GET", "/nomad-oasis/api/_stub/state", 404, "Not Found", "", ""},
		{"admin is not under v1", "GET", "/nomad-oasis/api/v1/_stub/state", 404, "Not Found", "", ""},
		{"id named rotate", "GET", "/nomad-oasis/api/v1/pats/rotate", 404, "Token not found or does not belong to the user.", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(tc.method, h.ts.URL+tc.path, kc, nil)
			expectStatus(t, r, tc.status)
			if tc.detail != "" {
				expectDetail(t, r, tc.status, tc.detail)
			}
			if tc.location != "" {
				if got := r.header.Get("Location"); got != h.ts.URL+tc.location {
					t.Fatalf("Location = %q, want %q", got, h.ts.URL+tc.location)
				}
			}
			if tc.allow != "" && r.header.Get("Allow") != tc.allow {
				t.Fatalf("Allow = %q, want %q", r.header.Get("Allow"), tc.allow)
			}
		})
	}
}

func TestTrailingSlashOnDisabledPrefixIs404(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.DisablePats = true })
	expectDetail(t, h.do(http.MethodGet, h.ts.URL+"/nomad-oasis/api/v1/pats/", "", nil), 404, "Not Found")
}

func TestBasePaths(t *testing.T) {
	tests := []struct {
		base     string
		wantRoot string
	}{
		{"", "/nomad-oasis/api"},
		{"/prod/v1/api", "/prod/v1/api"},
		{"custom/api/", "/custom/api"},
		{"/", ""},
	}
	for _, tc := range tests {
		t.Run(tc.base, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.BasePath = tc.base })
			if got := h.srv.APIRoot(h.ts.URL + "/"); got != h.ts.URL+tc.wantRoot {
				t.Fatalf("APIRoot = %q", got)
			}
			kc := h.botToken() // login goes through APIRoot too
			expectStatus(t, h.do(http.MethodGet, h.ts.URL+tc.wantRoot+"/v1/pats", kc, nil), http.StatusOK)
			doc := h.do(http.MethodGet, h.ts.URL+tc.wantRoot+"/v1/openapi.json", "", nil).json(t)
			if got := doc["servers"].([]any)[0].(map[string]any)["url"]; got != tc.wantRoot+"/v1" {
				t.Fatalf("servers url = %v", got)
			}
		})
	}
}

func TestCallsCountEveryRequestThatReachedAHandler(t *testing.T) {
	h := newHarness(t)
	kc := h.botToken()
	pat, _ := h.createPAT(kc, patBody("p", []string{"uploads:read"}, 1))
	id := pat["id"].(string)
	h.do(http.MethodPost, h.v1("/pats"), "", patBody("anon", []string{"x"}, 1)) // 401 still counts
	h.do(http.MethodGet, h.v1("/pats"), kc, nil)
	h.do(http.MethodGet, h.v1("/auth/pats/"+id), kc, nil)
	h.do(http.MethodPost, h.v1("/pats/"+id+"/rotate"), kc, nil)
	h.do(http.MethodDelete, h.v1("/pats/"+id), kc, nil)
	h.do(http.MethodGet, h.v1("/openapi.json"), "", nil)
	h.do(http.MethodPut, h.v1("/pats"), kc, nil)  // 405: not an operation
	h.do(http.MethodGet, h.v1("/pats/"), kc, nil) // 307: not an operation
	want := map[string]int{"login": 1, "create": 2, "list": 1, "get": 1, "revoke": 1, "rotate": 1, "openapi": 1, "realm_token": 0}
	if got := h.srv.Calls(); !jsonEqual(got, want) {
		t.Fatalf("Calls = %v, want %v", got, want)
	}
	h.srv.ResetCalls()
	if got := h.srv.Calls(); got["create"] != 0 || len(got) != len(allOps) {
		t.Fatalf("after reset: %v", got)
	}
}
