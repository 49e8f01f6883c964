package nomadstub

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestRealmAdminRoutes(t *testing.T) {
	h := newHarness(t)
	post := func(route string, want int) response {
		t.Helper()
		r := adminDo(t, h, http.MethodPost, route, "")
		expectStatus(t, r, want)
		return r
	}

	post("realm/clients?id=ci&secret=ci-secret&service_account_user=sa-ci", http.StatusNoContent)
	post("realm/clients?secret=x", http.StatusBadRequest)
	post("realm/clients?id=x&direct_grants=maybe", http.StatusBadRequest)
	cc := h.realmTokenOK(url.Values{"grant_type": {"client_credentials"}, "client_id": {"ci"}, "client_secret": {"ci-secret"}})
	if claimsOf(t, cc.AccessToken)["preferred_username"] != "sa-ci" {
		t.Fatal("the service-account user signs in")
	}

	post("realm/config?rotate_refresh_tokens=true&sso_idle=10m&offline_idle=48h&offline_max=720h", http.StatusNoContent)
	post("realm/config?sso_idle=soon", http.StatusBadRequest)

	var issued struct {
		RefreshToken string `json:"refresh_token"`
	}
	r := post("realm/refresh-tokens?username=bot&offline=true", http.StatusOK)
	if err := json.Unmarshal(r.body, &issued); err != nil || claimsOf(t, issued.RefreshToken)["typ"] != "Offline" {
		t.Fatalf("refresh-tokens: %s", r.body)
	}
	if iss := claimsOf(t, issued.RefreshToken)["iss"]; iss != h.issuer() {
		t.Fatalf("iss = %v, want %s", iss, h.issuer())
	}
	post("realm/refresh-tokens?username=ghost", http.StatusNotFound)
	post("realm/refresh-tokens?username=bot&client_id=nope", http.StatusNotFound)
	next := refreshed(t, h.refresh(issued.RefreshToken)).RefreshToken
	expectOAuthError(t, h.refresh(issued.RefreshToken), 400, "invalid_grant", "Maximum allowed refresh token reuse exceeded") // rotation on

	post("realm/revoke-sessions?username=bot", http.StatusNoContent)
	post("realm/revoke-sessions?username=ghost", http.StatusNotFound)
	expectOAuthError(t, h.refresh(next), 400, "invalid_grant", "Offline user session not found")

	post("realm/required-action?username=bot", http.StatusNoContent)
	expectStatus(t, h.postForm(url.Values{"grant_type": {"password"}, "username": {botUser}, "password": {botPass}}), http.StatusInternalServerError)
	post("realm/required-action?username=bot&on=false", http.StatusNoContent)
	post("realm/required-action?username=ghost", http.StatusNotFound)

	post("realm/direct-grants?client_id=nomad_public&on=false", http.StatusNoContent)
	expectStatus(t, h.postForm(url.Values{"grant_type": {"password"}, "username": {botUser}, "password": {botPass}}), http.StatusInternalServerError)
	post("realm/direct-grants?client_id=nomad_public", http.StatusNoContent)
	post("realm/direct-grants?client_id=nope", http.StatusNotFound)

	post("realm/authorize-user?username=bot", http.StatusNoContent)
	q := location(t, h.authorize(func(q url.Values) { q.Set("kc_idp_hint", "github") }))
	expectStatus(t, h.exchange(q.Get("code"), "http://127.0.0.1:49152/callback", testVerifier), http.StatusOK)

	r = post("realm/users?username=stranger&password=pw", http.StatusOK)
	post("realm/users", http.StatusBadRequest)
	stranger := h.realmTokenOK(url.Values{"grant_type": {"password"}, "client_id": {DefaultRealmClient}, "username": {"stranger"}, "password": {"pw"}})
	expectDetail(t, h.do(http.MethodGet, h.v1("/pats"), stranger.AccessToken, nil), http.StatusForbidden, "You are logged in with an unknown user")

	r = adminDo(t, h, http.MethodGet, "state", "")
	expectStatus(t, r, http.StatusOK)
	var st State
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatal(err)
	}
	rs := st.Realm
	if rs.Name != "nomad" || rs.Issuer != h.issuer() || !rs.RotateRefreshTokens || rs.SSOIdle != "10m0s" || rs.OfflineIdle != "48h0m0s" ||
		rs.OfflineMax != "720h0m0s" || rs.AuthorizeUser != botUser || rs.LastIDPHint != "github" {
		t.Fatalf("realm state = %+v", rs)
	}
	if rs.Grants["client_credentials"] != 1 || rs.Grants["refresh_token"] != 1 || rs.Grants["authorization_code"] != 1 || rs.Grants["password"] != 1 ||
		rs.GrantFailures["refresh_token"] != 2 {
		t.Fatalf("grants = %v, failures = %v", rs.Grants, rs.GrantFailures)
	}
	if rs.Sessions[botUser] != 1 || rs.Sessions["stranger"] != 1 {
		t.Fatalf("sessions = %v", rs.Sessions)
	}
	if len(rs.Clients) != 2 || rs.Clients[0] != (RealmClientState{ID: "ci", ServiceAccountUser: "sa-ci"}) ||
		rs.Clients[1] != (RealmClientState{ID: DefaultRealmClient, Public: true, DirectGrants: true}) {
		t.Fatalf("clients = %+v", rs.Clients)
	}
	if !st.Users["stranger"].RealmOnly || st.Users["sa-ci"].UserID == "" {
		t.Fatalf("users = %+v", st.Users)
	}
	if st.Calls[OpRealmToken] != 6 {
		t.Fatalf("calls = %v", st.Calls)
	}
	for _, secret := range []string{"ci-secret", next, cc.AccessToken} {
		if strings.Contains(string(r.body), secret) {
			t.Fatal("state must not expose client secrets or tokens")
		}
	}
	r = adminDo(t, h, http.MethodGet, "realm", "")
	expectStatus(t, r, http.StatusOK)
	var only RealmState
	if err := json.Unmarshal(r.body, &only); err != nil || only.Grants["password"] != 1 {
		t.Fatalf("GET realm = %s", r.body)
	}

	// ResetCalls zeroes the grant counts too.
	h.srv.ResetCalls()
	if len(h.srv.Grants()) != 0 || len(h.srv.GrantFailures()) != 0 {
		t.Fatal("ResetCalls keeps grant counts")
	}
}

func TestRealmTokenEndpointTakesFaults(t *testing.T) {
	h := newHarness(t)
	h.srv.InjectFault(OpRealmToken, 1, Fault{Status: http.StatusServiceUnavailable})
	rt := h.issueRefresh(botUser, false)
	expectStatus(t, h.refresh(rt), http.StatusServiceUnavailable)
	expectStatus(t, h.refresh(rt), http.StatusOK)
	if c := h.srv.Calls()[OpRealmToken]; c != 2 {
		t.Fatalf("calls = %d", c)
	}
}
