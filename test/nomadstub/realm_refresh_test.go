package nomadstub

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

func refreshed(t *testing.T, r response) realmTokenResponse {
	t.Helper()
	expectStatus(t, r, http.StatusOK)
	var tok realmTokenResponse
	if err := json.Unmarshal(r.body, &tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRefreshTokenRotation(t *testing.T) {
	for _, rotate := range []bool{false, true} {
		t.Run(map[bool]string{false: "off", true: "on"}[rotate], func(t *testing.T) {
			h := newHarness(t)
			h.srv.SetRefreshTokenRotation(rotate)
			first := h.issueRefresh(botUser, true)
			second := refreshed(t, h.refresh(first)).RefreshToken
			if second == "" || second == first {
				t.Fatal("every refresh answers a new refresh token")
			}
			again := h.refresh(first)
			if rotate {
				expectOAuthError(t, again, http.StatusBadRequest, "invalid_grant", "Maximum allowed refresh token reuse exceeded")
			} else {
				expectStatus(t, again, http.StatusOK)
			}
			// The newest token works either way, once.
			expectStatus(t, h.refresh(second), http.StatusOK)
		})
	}
}

func TestRefreshTokenIdleTimeouts(t *testing.T) {
	tests := []struct {
		name    string
		offline bool
		idle    time.Duration
		desc    string
	}{
		{"online: SSO idle", false, DefaultSSOIdle, "Token is not active"},
		{"offline: offline idle", true, DefaultOfflineIdle, "Offline user session not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			rt := h.issueRefresh(botUser, tc.offline)
			// Each use restarts the idle timer.
			h.clk.Step(tc.idle - time.Second)
			rt = refreshed(t, h.refresh(rt)).RefreshToken
			h.clk.Step(tc.idle - time.Second)
			tok := refreshed(t, h.refresh(rt))
			h.clk.Step(tc.idle)
			expectOAuthError(t, h.refresh(tok.RefreshToken), http.StatusBadRequest, "invalid_grant", tc.desc)
		})
	}
}

func TestRefreshTokenIdleTimeoutOfTheSessionNotTheToken(t *testing.T) {
	// With rotation off an old online token stays usable while the session lives; its own exp
	// still bounds it, and once the session idles out every token of it is refused.
	h := newHarness(t)
	h.srv.SetSessionTimeouts(10*time.Minute, 0, 0)
	rt := h.issueRefresh(botUser, false)
	h.clk.Step(9 * time.Minute)
	expectStatus(t, h.refresh(rt), http.StatusOK)
	h.clk.Step(2 * time.Minute) // rt's own exp (10 min) has passed; the session lives on
	expectOAuthError(t, h.refresh(rt), http.StatusBadRequest, "invalid_grant", "Token is not active")
}

func TestRevokeSessionsEndsRefreshTokensNotAccessTokens(t *testing.T) {
	h := newHarness(t)
	online, offline := h.issueRefresh(botUser, false), h.issueRefresh(botUser, true)
	tok := refreshed(t, h.refresh(online))
	if !h.srv.RevokeSessions(botUser) || h.srv.RevokeSessions("ghost") {
		t.Fatal("RevokeSessions: known user true, unknown false")
	}
	expectOAuthError(t, h.refresh(tok.RefreshToken), http.StatusBadRequest, "invalid_grant", "Session not active")
	expectOAuthError(t, h.refresh(offline), http.StatusBadRequest, "invalid_grant", "Offline user session not found")
	// NOMAD checks access tokens without asking Keycloak: this one lives until its exp.
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), tok.AccessToken, nil), http.StatusOK)
	// A new sign-in works.
	expectStatus(t, h.refresh(h.issueRefresh(botUser, false)), http.StatusOK)
}

func TestConfidentialClientRefresh(t *testing.T) {
	h := newHarness(t)
	_ = h.srv.AddClient(RealmClient{ID: "web", Secret: "web-secret"})
	rt, err := h.srv.IssueRefreshToken(botUser, "web", true)
	if err != nil {
		t.Fatal(err)
	}
	form := map[string][]string{"grant_type": {"refresh_token"}, "client_id": {"web"}, "refresh_token": {rt}}
	expectOAuthError(t, h.realmToken(form), http.StatusUnauthorized, "unauthorized_client", "")
	form["client_secret"] = []string{"wrong"}
	expectOAuthError(t, h.realmToken(form), http.StatusUnauthorized, "unauthorized_client", "Invalid client or Invalid client credentials")
	form["client_secret"] = []string{"web-secret"}
	expectStatus(t, h.realmToken(form), http.StatusOK)
	delete(form, "client_secret")
	delete(form, "client_id")
	expectStatus(t, h.realmToken(form, func(r *http.Request) { r.SetBasicAuth("web", "web-secret") }), http.StatusOK)
	if _, err := h.srv.IssueRefreshToken(botUser, "nope", false); err == nil {
		t.Fatal("IssueRefreshToken for an unknown client")
	}
	if _, err := h.srv.IssueRefreshToken("ghost", "web", false); err == nil {
		t.Fatal("IssueRefreshToken for an unknown user")
	}
}
