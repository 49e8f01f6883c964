package nomadstub

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Helpers for the realm's tests.

func (h *harness) issuer() string { return h.srv.IssuerURL(h.ts.URL) }

// realmToken posts a form to the realm's token endpoint.
func (h *harness) realmToken(form url.Values, opts ...reqOpt) response {
	h.t.Helper()
	enc := form.Encode()
	return h.do(http.MethodPost, h.issuer()+tokenPath, "", nil, append([]reqOpt{func(r *http.Request) {
		r.Body = io.NopCloser(strings.NewReader(enc))
		r.ContentLength = int64(len(enc))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}}, opts...)...)
}

// realmTokenOK posts the form and decodes a 200.
func (h *harness) realmTokenOK(form url.Values, opts ...reqOpt) realmTokenResponse {
	h.t.Helper()
	r := h.realmToken(form, opts...)
	expectStatus(h.t, r, http.StatusOK)
	var out realmTokenResponse
	if err := json.Unmarshal(r.body, &out); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// refresh runs the refresh grant for the public client.
func (h *harness) refresh(rt string) response {
	h.t.Helper()
	return h.realmToken(url.Values{"grant_type": {"refresh_token"}, "client_id": {DefaultRealmClient}, "refresh_token": {rt}})
}

func (h *harness) issueRefresh(user string, offline bool) string {
	h.t.Helper()
	rt, err := h.srv.IssueRefreshToken(user, DefaultRealmClient, offline)
	if err != nil {
		h.t.Fatal(err)
	}
	return rt
}

// expectOAuthError checks a Keycloak error body; desc "" skips the description.
func expectOAuthError(t *testing.T, r response, status int, code, desc string) {
	t.Helper()
	expectStatus(t, r, status)
	var body struct {
		Error string `json:"error"`
		Desc  string `json:"error_description"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("not an OAuth error body: %s", r.body)
	}
	if body.Error != code || (desc != "" && body.Desc != desc) {
		t.Fatalf("error = %q %q, want %q %q", body.Error, body.Desc, code, desc)
	}
}

// claimsOf decodes a JWT's claims without verifying it.
func claimsOf(t *testing.T, token string) map[string]any {
	t.Helper()
	var m map[string]any
	if _, _, _, err := splitJWT(token, &m); err != nil {
		t.Fatalf("not a JWT: %v", err)
	}
	return m
}

func headerOf(t *testing.T, token string) jwtHeader {
	t.Helper()
	h, _, _, err := splitJWT(token, nil)
	if err != nil {
		t.Fatalf("not a JWT: %v", err)
	}
	return h
}
