package nomadstub

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// FuzzLoginForm posts any body with any Content-Type to /auth/token (nomad-pat-api.md §9): only a
// form with grant_type=password and the right credentials logs in. The answer must be 200 with the
// OIDC set and the no-store headers, 401 with its challenge, or a 422 list.
func FuzzLoginForm(f *testing.F) {
	const mp = "multipart/form-data; boundary=XX"
	for _, s := range []struct {
		contentType string
		body        string
	}{
		// Good logins: the client's form, extra ignored fields, repeated keys (the last wins).
		{"application/x-www-form-urlencoded", "grant_type=password&username=bot&password=bot-password"},
		{"application/x-www-form-urlencoded; charset=UTF-8", "grant_type=password&username=bot&password=bot-password&scope=openid&client_id=x&client_secret="},
		{"application/x-www-form-urlencoded", "grant_type=refresh_token&grant_type=password&username=x&username=bot&password=bot-password"},
		{mp, "--XX\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\npassword\r\n--XX\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nbot\r\n--XX\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nbot-password\r\n--XX--\r\n"},
		// 401: wrong password, unknown user, percent-encoded credentials that decode wrong.
		{"application/x-www-form-urlencoded", "grant_type=password&username=bot&password=nope"},
		{"application/x-www-form-urlencoded", "grant_type=password&username=nobody&password=bot-password"},
		{"application/x-www-form-urlencoded", "grant_type=password&username=b%6Ft&password=bot%2Dpassword%00"},
		// 422: grant_type missing or another one, empty values (= missing), JSON instead of a form.
		{"application/x-www-form-urlencoded", "username=bot&password=bot-password"},
		{"application/x-www-form-urlencoded", "grant_type=client_credentials&username=bot&password=bot-password"},
		{"application/x-www-form-urlencoded", "grant_type=password&username=&password="},
		{"application/json", `{"grant_type":"password","username":"bot","password":"bot-password"}`},
		{"", "grant_type=password&username=bot&password=bot-password"},
		// Malformed forms: bad escapes, a bare key, a broken multipart, a bad media type.
		{"application/x-www-form-urlencoded", "grant_type=pass%zzword&username=bot&password"},
		{"application/x-www-form-urlencoded", "&&=&;grant_type=password"},
		{mp, "--XX\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\npassword"},
		{"multipart/form-data", "--\r\n"},
		{"application/x-www-form-urlencoded; =", "grant_type=password"},
	} {
		f.Add(s.contentType, s.body)
	}
	f.Fuzz(func(t *testing.T, contentType, body string) {
		w := newFuzzWorld(t)
		req, ok := parse(rawRequest("POST", w.v1("/auth/token"), contentType, body, ""))
		if !ok {
			return // net/http itself would have answered 400
		}
		rec := w.do(req)
		checkAnswer(t, rec, http.StatusOK, http.StatusUnauthorized, http.StatusUnprocessableEntity)
		if rec.Code != http.StatusOK {
			return
		}
		var tok oidcToken
		if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil || tok.AccessToken == "" ||
			strings.HasPrefix(tok.AccessToken, patPrefix) || tok.TokenType != "Bearer" || tok.ExpiresIn <= 0 {
			t.Fatalf("200 is not an OIDC token: %v: %s", err, rec.Body)
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("200 without Cache-Control: no-store")
		}
	})
}
