package nomadstub

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRealmDiscoveryAndJWKSVerifyAnAccessToken(t *testing.T) {
	h := newHarness(t)
	if want := h.ts.URL + "/keycloak/auth/realms/nomad"; h.issuer() != want {
		t.Fatalf("IssuerURL = %q, want %q", h.issuer(), want)
	}
	r := h.do(http.MethodGet, h.issuer()+"/.well-known/openid-configuration", "", nil)
	expectStatus(t, r, http.StatusOK)
	doc := r.json(t)
	for key, want := range map[string]string{
		"issuer":                 h.issuer(),
		"token_endpoint":         h.issuer() + "/protocol/openid-connect/token",
		"authorization_endpoint": h.issuer() + "/protocol/openid-connect/auth",
		"jwks_uri":               h.issuer() + "/protocol/openid-connect/certs",
	} {
		if doc[key] != want {
			t.Errorf("%s = %v, want %s", key, doc[key], want)
		}
	}
	if !jsonEqual(doc["code_challenge_methods_supported"], []string{"S256"}) {
		t.Errorf("code_challenge_methods_supported = %v", doc["code_challenge_methods_supported"])
	}
	for _, g := range []string{"refresh_token", "client_credentials", "authorization_code", "password"} {
		if !strings.Contains(string(r.body), `"`+g+`"`) {
			t.Errorf("grant_types_supported lacks %s", g)
		}
	}

	r = h.do(http.MethodGet, doc["jwks_uri"].(string), "", nil)
	expectStatus(t, r, http.StatusOK)
	var set struct {
		Keys []struct{ Kid, Kty, Alg, Use, N, E string }
	}
	if err := json.Unmarshal(r.body, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS = %s (%v)", r.body, err)
	}
	k := set.Keys[0]
	if k.Kty != "RSA" || k.Alg != "RS256" || k.Use != "sig" || k.Kid == "" {
		t.Fatalf("key = %+v", k)
	}
	n, _ := b64.DecodeString(k.N)
	e, _ := b64.DecodeString(k.E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if pub.N.BitLen() != 2048 {
		t.Fatalf("key has %d bits", pub.N.BitLen())
	}

	tok := h.realmTokenOK(url.Values{"grant_type": {"password"}, "client_id": {DefaultRealmClient}, "username": {botUser}, "password": {botPass}})
	hdr := headerOf(t, tok.AccessToken)
	if hdr.Alg != "RS256" || hdr.Kid != k.Kid {
		t.Fatalf("header = %+v, want RS256 with kid %s", hdr, k.Kid)
	}
	parts := strings.Split(tok.AccessToken, ".")
	sig, _ := b64.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("access token does not verify against the JWKS: %v", err)
	}
}

func TestRealmUnknownPathsAndMethods(t *testing.T) {
	h := newHarness(t)
	expectStatus(t, h.do(http.MethodGet, h.issuer()+"/protocol/openid-connect/userinfo", "", nil), http.StatusNotFound)
	expectStatus(t, h.do(http.MethodGet, h.issuer()+tokenPath, "", nil), http.StatusMethodNotAllowed)
	expectStatus(t, h.do(http.MethodGet, h.ts.URL+"/keycloak/auth/realms/other"+wellKnownPath, "", nil), http.StatusNotFound)
	custom := newHarness(t, func(o *Options) { o.Realm = "fairdi_nomad_prod" })
	if !strings.HasSuffix(custom.issuer(), "/keycloak/auth/realms/fairdi_nomad_prod") {
		t.Fatalf("issuer = %s", custom.issuer())
	}
	expectStatus(t, custom.do(http.MethodGet, custom.issuer()+wellKnownPath, "", nil), http.StatusOK)
}

func TestRealmGrantsHappyPaths(t *testing.T) {
	h := newHarness(t)
	if err := h.srv.AddClient(RealmClient{ID: "ci", Secret: "ci-secret", ServiceAccountUser: "service-account-ci"}); err != nil {
		t.Fatal(err)
	}
	botID := h.srv.AddUser(botUser, botPass)
	tests := []struct {
		name        string
		form        url.Values
		opts        []reqOpt
		user        string
		wantRefresh bool
		wantID      bool
		typ         string
	}{
		{"password", url.Values{"grant_type": {"password"}, "client_id": {DefaultRealmClient}, "username": {botUser}, "password": {botPass}, "scope": {"openid"}}, nil, botUser, true, true, "Refresh"},
		{"refresh_token", url.Values{"grant_type": {"refresh_token"}, "client_id": {DefaultRealmClient}, "refresh_token": {h.issueRefresh(botUser, false)}}, nil, botUser, true, true, "Refresh"},
		{"refresh_token offline", url.Values{"grant_type": {"refresh_token"}, "client_id": {DefaultRealmClient}, "refresh_token": {h.issueRefresh(botUser, true)}}, nil, botUser, true, true, "Offline"},
		{"client_credentials in the form", url.Values{"grant_type": {"client_credentials"}, "client_id": {"ci"}, "client_secret": {"ci-secret"}}, nil, "service-account-ci", false, false, ""},
		{"client_credentials with Basic", url.Values{"grant_type": {"client_credentials"}}, []reqOpt{func(r *http.Request) { r.SetBasicAuth("ci", "ci-secret") }}, "service-account-ci", false, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.realmToken(tc.form, tc.opts...)
			expectStatus(t, r, http.StatusOK)
			if r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q", r.header.Get("Cache-Control"))
			}
			var tok realmTokenResponse
			_ = json.Unmarshal(r.body, &tok)
			if tok.TokenType != "Bearer" || tok.ExpiresIn != 300 || !strings.Contains(string(r.body), `"not-before-policy":0`) {
				t.Errorf("response = %s", r.body)
			}
			ac := claimsOf(t, tok.AccessToken)
			if ac["iss"] != h.issuer() || ac["preferred_username"] != tc.user || ac["typ"] != "Bearer" || ac["jti"] == "" {
				t.Errorf("access claims = %v", ac)
			}
			if exp, iat := ac["exp"].(float64), ac["iat"].(float64); iat != float64(t0.Unix()) || exp != iat+300 {
				t.Errorf("iat %v exp %v", iat, exp)
			}
			if (tok.RefreshToken != "") != tc.wantRefresh || (tok.IDToken != "") != tc.wantID {
				t.Fatalf("refresh %v id %v, want %v %v", tok.RefreshToken != "", tok.IDToken != "", tc.wantRefresh, tc.wantID)
			}
			if tc.wantRefresh {
				rc := claimsOf(t, tok.RefreshToken)
				if rc["typ"] != tc.typ || rc["sid"] != tok.SessionState || rc["sid"] != ac["sid"] || headerOf(t, tok.RefreshToken).Alg != "HS256" {
					t.Errorf("refresh claims = %v, session_state %s", rc, tok.SessionState)
				}
				_, hasExp := rc["exp"]
				if online := tc.typ == "Refresh"; hasExp != online || (online && tok.RefreshExpiresIn != 1800) || (!online && tok.RefreshExpiresIn != 0) {
					t.Errorf("refresh exp present %v, refresh_expires_in %d", hasExp, tok.RefreshExpiresIn)
				}
			}
			if tc.wantID {
				id := claimsOf(t, tok.IDToken)
				if id["aud"] != DefaultRealmClient || id["sub"] != botID || id["iss"] != h.issuer() {
					t.Errorf("id claims = %v", id)
				}
			}
			// NOMAD accepts it: a PAT made with it belongs to the token's user.
			h.createPAT(tok.AccessToken, patBody(tc.name, []string{"uploads:read"}, 30))
			if got := h.srv.PATs(tc.user); len(got) == 0 || got[0].Name != tc.name {
				t.Fatalf("PATs of %s = %+v", tc.user, got)
			}
		})
	}
	if g := h.srv.Grants(); g["password"] != 1 || g["refresh_token"] != 2 || g["client_credentials"] != 2 {
		t.Fatalf("Grants = %v", g)
	}
	if l := h.srv.Logins(botUser); l != (LoginCount{}) {
		t.Fatalf("realm grants counted as NOMAD logins: %+v", l)
	}
}

func TestRealmOfflineMaxLifespanGivesRefreshTokensAnEnd(t *testing.T) {
	h := newHarness(t)
	h.srv.SetSessionTimeouts(0, 0, 10*24*time.Hour)
	tok := h.realmTokenOK(url.Values{"grant_type": {"refresh_token"}, "client_id": {DefaultRealmClient}, "refresh_token": {h.issueRefresh(botUser, true)}})
	if tok.RefreshExpiresIn != 10*24*3600 {
		t.Fatalf("refresh_expires_in = %d", tok.RefreshExpiresIn)
	}
	if exp := claimsOf(t, tok.RefreshToken)["exp"]; exp != float64(t0.Add(10*24*time.Hour).Unix()) {
		t.Fatalf("exp = %v", exp)
	}
	h.clk.Step(10 * 24 * time.Hour)
	expectOAuthError(t, h.refresh(tok.RefreshToken), http.StatusBadRequest, "invalid_grant", "Token is not active")
}

func TestRealmTokenEndpointErrors(t *testing.T) {
	h := newHarness(t)
	_ = h.srv.AddClient(RealmClient{ID: "ci", Secret: "ci-secret", ServiceAccountUser: "sa-ci"})
	_ = h.srv.AddClient(RealmClient{ID: "no-sa", Secret: "s"})
	_ = h.srv.AddClient(RealmClient{ID: "web", Secret: "web-secret", DirectGrants: true})
	foreign, err := h.srv.IssueRefreshToken(botUser, "web", false)
	if err != nil {
		t.Fatal(err)
	}
	pw := func(client, user, pass string) url.Values {
		return url.Values{"grant_type": {"password"}, "client_id": {client}, "username": {user}, "password": {pass}}
	}
	tests := []struct {
		name         string
		form         url.Values
		status       int
		code, desc   string
		failureGrant string
	}{
		{"no grant_type", url.Values{"client_id": {DefaultRealmClient}}, 400, "invalid_request", "Missing form parameter: grant_type", ""},
		{"unknown grant", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {DefaultRealmClient}}, 400, "unsupported_grant_type", "", "urn:ietf:params:oauth:grant-type:device_code"},
		{"unknown client", url.Values{"grant_type": {"client_credentials"}, "client_id": {"nope"}, "client_secret": {"x"}}, 401, "invalid_client", "", "client_credentials"},
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {"ci"}, "client_secret": {"wrong"}}, 401, "unauthorized_client", "Invalid client or Invalid client credentials", "client_credentials"},
		{"missing secret", url.Values{"grant_type": {"refresh_token"}, "client_id": {"web"}, "refresh_token": {foreign}}, 401, "unauthorized_client", "", "refresh_token"},
		{"public client credentials", url.Values{"grant_type": {"client_credentials"}, "client_id": {DefaultRealmClient}}, 400, "unauthorized_client", "Public client not allowed to retrieve service account", "client_credentials"},
		{"no service account", url.Values{"grant_type": {"client_credentials"}, "client_id": {"no-sa"}, "client_secret": {"s"}}, 400, "unauthorized_client", "Client not enabled to retrieve service account", "client_credentials"},
		{"wrong password", pw(DefaultRealmClient, botUser, "nope"), 401, "invalid_grant", "Invalid user credentials", "password"},
		{"unknown user", pw(DefaultRealmClient, "ghost", "x"), 401, "invalid_grant", "Invalid user credentials", "password"},
		{"service account has no password", pw(DefaultRealmClient, "sa-ci", ""), 401, "invalid_grant", "Invalid user credentials", "password"},
		{"no direct grants", url.Values{"grant_type": {"password"}, "client_id": {"ci"}, "client_secret": {"ci-secret"}, "username": {botUser}, "password": {botPass}}, 400, "unauthorized_client", "Client not allowed for direct access grants", "password"},
		{"refresh of another client", url.Values{"grant_type": {"refresh_token"}, "client_id": {DefaultRealmClient}, "refresh_token": {foreign}}, 400, "invalid_grant", "", "refresh_token"},
		{"garbage refresh token", url.Values{"grant_type": {"refresh_token"}, "client_id": {DefaultRealmClient}, "refresh_token": {"eyJhbGciOiJIUzI1NiJ9.e30.c2ln"}}, 400, "invalid_grant", "Invalid refresh token", "refresh_token"},
		{"missing refresh token", url.Values{"grant_type": {"refresh_token"}, "client_id": {DefaultRealmClient}}, 400, "invalid_request", "", "refresh_token"},
		{"unknown code", url.Values{"grant_type": {"authorization_code"}, "client_id": {DefaultRealmClient}, "code": {"nope"}}, 400, "invalid_grant", "Code not valid", "authorization_code"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := h.srv.GrantFailures()[tc.failureGrant]
			r := h.realmToken(tc.form)
			expectOAuthError(t, r, tc.status, tc.code, tc.desc)
			if strings.Contains(string(r.body), foreign) {
				t.Fatal("error body echoes the refresh token")
			}
			if got := h.srv.GrantFailures()[tc.failureGrant]; got != before+1 {
				t.Fatalf("GrantFailures[%q] = %d, want %d", tc.failureGrant, got, before+1)
			}
		})
	}
	if g := h.srv.Grants(); len(g) != 0 {
		t.Fatalf("Grants = %v, want none", g)
	}
}

func TestNomadAcceptsOnlyValidRealmTokens(t *testing.T) {
	h := newHarness(t)
	h.srv.AddRealmOnlyUser("stranger", "pw")
	good := h.realmTokenOK(url.Values{"grant_type": {"refresh_token"}, "client_id": {DefaultRealmClient}, "refresh_token": {h.issueRefresh(botUser, false)}}).AccessToken
	stranger := h.realmTokenOK(url.Values{"grant_type": {"password"}, "client_id": {DefaultRealmClient}, "username": {"stranger"}, "password": {"pw"}}).AccessToken

	// Forged: same claims, but signed by another key (another Server's realm) or re-encoded.
	other := New(Options{Clock: h.clk})
	var ac accessClaims
	_, _, _, _ = splitJWT(good, &ac)
	forged := other.keys.signRS256(ac)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + b64.EncodeToString([]byte(strings.Replace(string(mustDecode(t, parts[1])), `"sub":"`, `"sub":"x`, 1))) + "." + parts[2]
	ac2 := ac
	ac2.Iss = "http://elsewhere/keycloak/auth/realms/nomad"
	wrongIssuer := h.srv.keys.signRS256(ac2)
	ac3 := ac
	ac3.Iat = ac.Iat + 1 // a second ahead of NOMAD's clock
	future := h.srv.keys.signRS256(ac3)
	h.srv.mu.Lock()
	h.srv.realm.live[ac2.Jti] = t0.Add(time.Hour) // the jti is live, so only iss/iat can fail
	h.srv.mu.Unlock()

	for _, tc := range []struct {
		name   string
		token  string
		status int
		detail string
	}{
		{"good", good, 200, ""},
		{"unknown user", stranger, 403, "You are logged in with an unknown user"},
		{"other key", forged, 401, detailInvalidKeycloak},
		{"tampered", tampered, 401, detailInvalidKeycloak},
		{"wrong issuer", wrongIssuer, 401, detailInvalidKeycloak},
		{"iat in the future", future, 401, detailInvalidKeycloak},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(http.MethodGet, h.v1("/pats"), tc.token, nil)
			if tc.status == 200 {
				expectStatus(t, r, 200)
				return
			}
			expectDetail(t, r, tc.status, tc.detail)
		})
	}

	// exp: valid until the access-token lifespan ends, on the server's clock.
	h.clk.Step(299 * time.Second)
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), good, nil), 200)
	h.clk.Step(time.Second)
	expectDetail(t, h.do(http.MethodGet, h.v1("/pats"), good, nil), 401, detailInvalidKeycloak)
}

func TestExpireAccessTokensEndsRealmTokensAndTheLogStillNamesTheirUser(t *testing.T) {
	h := newHarness(t)
	tok := h.realmTokenOK(url.Values{"grant_type": {"refresh_token"}, "client_id": {DefaultRealmClient}, "refresh_token": {h.issueRefresh(botUser, false)}})
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), tok.AccessToken, nil), 200)
	h.srv.ExpireAccessTokens()
	expectDetail(t, h.do(http.MethodGet, h.v1("/pats"), tok.AccessToken, nil), 401, detailInvalidKeycloak)
	// A token issued afterwards is good again.
	fresh := h.realmTokenOK(url.Values{"grant_type": {"refresh_token"}, "client_id": {DefaultRealmClient}, "refresh_token": {tok.RefreshToken}})
	expectStatus(t, h.do(http.MethodGet, h.v1("/pats"), fresh.AccessToken, nil), 200)

	var ops []string
	for _, r := range h.srv.Requests(botUser) {
		ops = append(ops, r.Op)
	}
	want := []string{OpRealmToken, OpList, OpList, OpRealmToken, OpList}
	if strings.Join(ops, ",") != strings.Join(want, ",") {
		t.Fatalf("requests of %s = %v, want %v", botUser, ops, want)
	}
	if c := h.srv.Calls(); c[OpRealmToken] != 2 {
		t.Fatalf("Calls = %v", c)
	}
}

func TestNomadLoginFollowsTheRealmsRules(t *testing.T) {
	h := newHarness(t)
	login := func() response {
		return h.postForm(url.Values{"grant_type": {"password"}, "username": {botUser}, "password": {botPass}})
	}
	keycloak500 := func(t *testing.T, r response, kcBody string) {
		t.Helper()
		expectStatus(t, r, http.StatusInternalServerError)
		d, _ := r.json(t)["detail"].(map[string]any)
		if d["reason"] != detailUnexpectedFailure || d["exception_class"] != "keycloak.exceptions.KeycloakPostError" ||
			d["exception"] != "400: b'"+kcBody+"'" || !strings.HasPrefix(d["exception_traceback"].(string), "Traceback (most recent call last):") {
			t.Fatalf("detail = %v", d)
		}
	}

	expectStatus(t, login(), http.StatusOK)

	h.srv.SetRequiredAction(botUser, true)
	keycloak500(t, login(), `{"error":"invalid_grant","error_description":"Account is not fully set up"}`)
	expectOAuthError(t, h.realmToken(url.Values{"grant_type": {"password"}, "client_id": {DefaultRealmClient}, "username": {botUser}, "password": {botPass}}),
		400, "invalid_grant", "Account is not fully set up")
	// A wrong password is still NOMAD's 401, whatever else is pending.
	expectDetail(t, h.postForm(url.Values{"grant_type": {"password"}, "username": {botUser}, "password": {"x"}}), 401, detailBadLogin)
	h.srv.SetRequiredAction(botUser, false)

	h.srv.SetDirectGrants(DefaultRealmClient, false)
	keycloak500(t, login(), `{"error":"unauthorized_client","error_description":"Client not allowed for direct access grants"}`)
	h.srv.SetDirectGrants(DefaultRealmClient, true)
	expectStatus(t, login(), http.StatusOK)

	if l := h.srv.Logins(botUser); l != (LoginCount{Attempts: 5, Succeeded: 2}) {
		t.Fatalf("Logins = %+v", l)
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := b64.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
