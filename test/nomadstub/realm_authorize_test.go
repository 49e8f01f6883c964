package nomadstub

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const testVerifier = "dBjftJeZ4CVP-mJ92K9-skeleton_verifier.0123456789~abcdef"

// authorize calls the authorize endpoint with PKCE S256 for testVerifier; mutate adjusts the query.
func (h *harness) authorize(mutate func(url.Values)) response {
	h.t.Helper()
	q := url.Values{
		"response_type": {"code"}, "client_id": {DefaultRealmClient}, "redirect_uri": {"http://127.0.0.1:49152/callback"},
		"state": {"st/ate+with spaces&odd=chars"}, "scope": {"openid offline_access"},
		"code_challenge": {s256(testVerifier)}, "code_challenge_method": {"S256"},
	}
	if mutate != nil {
		mutate(q)
	}
	return h.do(http.MethodGet, h.issuer()+authPath+"?"+q.Encode(), "", nil)
}

func location(t *testing.T, r response) url.Values {
	t.Helper()
	expectStatus(t, r, http.StatusFound)
	u, err := url.Parse(r.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func (h *harness) exchange(code, redirect, verifier string) response {
	h.t.Helper()
	return h.realmToken(url.Values{
		"grant_type": {"authorization_code"}, "client_id": {DefaultRealmClient}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {verifier},
	})
}

func TestAuthorizationCodeWithPKCE(t *testing.T) {
	h := newHarness(t)
	h.srv.SetAuthorizeUser(botUser)
	q := location(t, h.authorize(func(q url.Values) { q.Set("kc_idp_hint", "orcid"); q.Set("nonce", "n-1") }))
	if q.Get("state") != "st/ate+with spaces&odd=chars" || q.Get("code") == "" || q.Get("iss") != h.issuer() {
		t.Fatalf("redirect query = %v", q)
	}
	if h.srv.LastIDPHint() != "orcid" {
		t.Fatalf("LastIDPHint = %q", h.srv.LastIDPHint())
	}
	tok := refreshed(t, h.exchange(q.Get("code"), "http://127.0.0.1:49152/callback", testVerifier))
	if claimsOf(t, tok.RefreshToken)["typ"] != "Offline" || claimsOf(t, tok.IDToken)["nonce"] != "n-1" {
		t.Fatalf("scope offline_access gives an offline token and the nonce reaches the ID token: %v %v",
			claimsOf(t, tok.RefreshToken), claimsOf(t, tok.IDToken))
	}
	h.createPAT(tok.AccessToken, patBody("browser", []string{"uploads:read"}, 30))
	// Single use.
	expectOAuthError(t, h.exchange(q.Get("code"), "http://127.0.0.1:49152/callback", testVerifier), 400, "invalid_grant", "Code not valid")

	// Without offline_access: an online refresh token; without a hint, none recorded.
	q = location(t, h.authorize(func(q url.Values) { q.Set("scope", "openid"); q.Set("redirect_uri", "http://localhost:8080/cb") }))
	if h.srv.LastIDPHint() != "" {
		t.Fatalf("LastIDPHint = %q after a request without one", h.srv.LastIDPHint())
	}
	tok = refreshed(t, h.exchange(q.Get("code"), "http://localhost:8080/cb", testVerifier))
	if claimsOf(t, tok.RefreshToken)["typ"] != "Refresh" {
		t.Fatal("want an online refresh token")
	}
	if g := h.srv.Grants(); g["authorization_code"] != 2 {
		t.Fatalf("Grants = %v", g)
	}
}

func TestAuthorizationCodeExchangeErrors(t *testing.T) {
	const cb = "http://127.0.0.1:49152/callback"
	tests := []struct {
		name     string
		redirect string
		verifier string
		client   func(url.Values)
		desc     string
	}{
		{"PKCE mismatch", cb, strings.Repeat("x", 43), nil, "PKCE verification failed: Invalid code verifier"},
		{"no verifier", cb, "", nil, "PKCE code verifier not specified"},
		{"other redirect_uri", "http://127.0.0.1:49153/callback", testVerifier, nil, "Incorrect redirect_uri"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.srv.SetAuthorizeUser(botUser)
			code := location(t, h.authorize(nil)).Get("code")
			expectOAuthError(t, h.exchange(code, tc.redirect, tc.verifier), 400, "invalid_grant", tc.desc)
		})
	}
	t.Run("another client", func(t *testing.T) {
		h := newHarness(t)
		h.srv.SetAuthorizeUser(botUser)
		_ = h.srv.AddClient(RealmClient{ID: "other"})
		code := location(t, h.authorize(nil)).Get("code")
		r := h.realmToken(url.Values{"grant_type": {"authorization_code"}, "client_id": {"other"}, "code": {code}, "redirect_uri": {cb}, "code_verifier": {testVerifier}})
		expectOAuthError(t, r, 400, "invalid_grant", "")
	})
	t.Run("expired code", func(t *testing.T) {
		h := newHarness(t)
		h.srv.SetAuthorizeUser(botUser)
		code := location(t, h.authorize(nil)).Get("code")
		h.clk.Step(authCodeLifespan)
		expectOAuthError(t, h.exchange(code, cb, testVerifier), 400, "invalid_grant", "Code is expired")
	})
}

func TestAuthorizeRejections(t *testing.T) {
	h := newHarness(t)
	h.srv.SetAuthorizeUser(botUser)
	redirected := []struct {
		name   string
		mutate func(url.Values)
		code   string
	}{
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
		{"no PKCE", func(q url.Values) { q.Del("code_challenge_method"); q.Del("code_challenge") }, "invalid_request"},
		{"no challenge", func(q url.Values) { q.Del("code_challenge") }, "invalid_request"},
		{"implicit flow", func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
	}
	for _, tc := range redirected {
		t.Run(tc.name, func(t *testing.T) {
			q := location(t, h.authorize(tc.mutate))
			if q.Get("error") != tc.code || q.Get("code") != "" || q.Get("state") != "st/ate+with spaces&odd=chars" {
				t.Fatalf("redirect query = %v", q)
			}
		})
	}
	pages := []struct {
		name   string
		mutate func(url.Values)
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "nope") }},
		{"https redirect", func(q url.Values) { q.Set("redirect_uri", "https://127.0.0.1:8443/cb") }},
		{"remote redirect", func(q url.Values) { q.Set("redirect_uri", "http://evil.example:8080/cb") }},
		{"no port", func(q url.Values) { q.Set("redirect_uri", "http://localhost/cb") }},
	}
	for _, tc := range pages {
		t.Run(tc.name, func(t *testing.T) { expectStatus(t, h.authorize(tc.mutate), http.StatusBadRequest) })
	}
	t.Run("no authorize user", func(t *testing.T) {
		h.srv.SetAuthorizeUser("")
		expectStatus(t, h.authorize(nil), http.StatusBadRequest)
	})
}
