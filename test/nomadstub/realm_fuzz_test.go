package nomadstub

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	testingclock "k8s.io/utils/clock/testing"
)

// FuzzRealmTokenForm posts any body with any Content-Type (and optional Basic credentials) to the
// realm's token endpoint. Whatever the input, the answer is Keycloak's: 200 with a token set, or
// 400/401 with {"error","error_description"}; always no-store, and an error never echoes the
// refresh token it was given. One Server serves every input (its RSA key is costly to make);
// "{rt}" in a body is replaced by a refresh token freshly issued for the input.
func FuzzRealmTokenForm(f *testing.F) {
	const form = "application/x-www-form-urlencoded"
	for _, s := range []struct{ contentType, body, basic string }{
		{form, "grant_type=refresh_token&client_id=nomad_public&refresh_token={rt}", ""},
		{form, "grant_type=refresh_token&client_id=nomad_public&refresh_token={rt}x", ""},
		{form, "grant_type=refresh_token&client_id=ci&client_secret=ci-secret&refresh_token={rt}", ""},
		{form, "grant_type=password&client_id=nomad_public&username=bot&password=bot-password&scope=openid+offline_access", ""},
		{form, "grant_type=password&client_id=nomad_public&username=bot&password=nope", ""},
		{form, "grant_type=client_credentials", "Basic Y2k6Y2ktc2VjcmV0"},                      // ci:ci-secret
		{form, "grant_type=client_credentials", "Basic Y2k6d3Jvbmc="},                          // ci:wrong
		{form, "grant_type=client_credentials&client_id=ci%25&client_secret=%zz", "Basic %%%"}, // bad escapes
		{form, "grant_type=authorization_code&client_id=nomad_public&code=x&code_verifier=y", ""},
		{form, "grant_type=&grant_type=password&client_id=", ""},
		{form, "client_id=nomad_public", ""},
		{"application/json", `{"grant_type":"client_credentials"}`, ""},
		{"multipart/form-data; boundary=XX", "--XX\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nrefresh_token\r\n--XX--\r\n", ""},
		{form, "grant_type=refresh_token&client_id=nomad_public&refresh_token=eyJ.eyJ.x", ""},
	} {
		f.Add(s.contentType, s.body, s.basic)
	}
	srv := New(Options{Clock: testingclock.NewFakeClock(t0)})
	srv.AddUser(botUser, botPass)
	if err := srv.AddClient(RealmClient{ID: "ci", Secret: "ci-secret", ServiceAccountUser: "sa-ci"}); err != nil {
		f.Fatal(err)
	}
	w := &fuzzWorld{srv: srv}
	f.Fuzz(func(t *testing.T, contentType, body, basic string) {
		rt, err := srv.IssueRefreshToken(botUser, DefaultRealmClient, strings.Contains(body, "offline"))
		if err != nil {
			t.Fatal(err)
		}
		body = strings.ReplaceAll(body, "{rt}", rt)
		req, ok := parse(rawRequest("POST", srv.IssuerURL("http://stub.test")+tokenPath, contentType, body, basic))
		if !ok {
			return
		}
		rec := w.do(req)
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%d without Cache-Control: no-store", rec.Code)
		}
		switch rec.Code {
		case http.StatusOK:
			var tok realmTokenResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil || !looksLikeJWT(tok.AccessToken) || tok.TokenType != "Bearer" || tok.ExpiresIn <= 0 {
				t.Fatalf("200 is not a token set: %v: %s", err, rec.Body)
			}
		case http.StatusBadRequest, http.StatusUnauthorized:
			var e map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e["error"] == "" || len(e) != 2 {
				t.Fatalf("%d is not an OAuth error: %s", rec.Code, rec.Body)
			}
			if strings.Contains(rec.Body.String(), rt) {
				t.Fatal("an error echoes the refresh token")
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
