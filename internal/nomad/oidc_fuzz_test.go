package nomad

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	testingclock "k8s.io/utils/clock/testing"
)

// Placeholders a fuzzed token answer may contain; the realm substitutes what the client sent, so
// that seeds can check that an echoed refresh token or client secret is withheld.
const (
	echoRefresh = "$REFRESH"
	echoSecret  = "$SECRET"
)

const (
	fuzzIssuer = "https://realm.test/realms/nomad"
	fuzzNomad  = "https://nomad.test/api"
)

// realmRoundTripper answers in-process, without sockets: the discovery document, the token
// endpoint with the fuzzed answer, and NOMAD's PAT route with a PAT (so any failure is the
// sign-in's). It records the bearer NOMAD got.
type realmRoundTripper struct {
	status      int
	contentType string
	body        string
	bearer      string
}

func (rt *realmRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	answer := func(status int, contentType, body string) (*http.Response, error) {
		h := http.Header{}
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: h,
			Body: io.NopCloser(bytes.NewReader([]byte(body))), Request: req}, nil
	}
	switch req.URL.String() {
	case fuzzIssuer + discoveryPath:
		return answer(200, "application/json", `{"issuer":"`+fuzzIssuer+`","token_endpoint":"`+fuzzIssuer+`/protocol/openid-connect/token"}`)
	case fuzzIssuer + "/protocol/openid-connect/token":
		body := strings.ReplaceAll(rt.body, echoRefresh, refreshTokenN(1))
		body = strings.ReplaceAll(body, echoSecret, testClientSecret)
		return answer(rt.status, rt.contentType, body)
	}
	rt.bearer = strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
	return answer(200, "application/json", patJSON(patID(1), "n", testEpoch, nil, false))
}

// FuzzTokenEndpointAnswer feeds the realm's token endpoint one answer (status, content type, body)
// for a refresh-token or client-credentials sign-in. A success must carry an access token that is
// then used (and does not expire before the sign-in started); a failure must be a classified
// *Error fitting the status, and no error may repeat the refresh token or client secret sent.
func FuzzTokenEndpointAnswer(f *testing.F) {
	const json = "application/json"
	for _, s := range []struct {
		status      int
		contentType string
		body        string
	}{
		// Keycloak's successes: with a rotated refresh token, with the same one, without one; an
		// offline token (refresh_expires_in 0), a session one (> 0).
		{200, json, `{"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln","expires_in":300,"refresh_expires_in":1800,"refresh_token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1IiwibiI6Mn0.c2ln","token_type":"Bearer","id_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJpZCJ9.c2ln","scope":"openid offline_access"}`},
		{200, json, `{"access_token":"at-1","expires_in":300,"refresh_expires_in":0,"refresh_token":"` + echoRefresh + `","token_type":"Bearer"}`},
		{200, json, `{"access_token":"at-1","expires_in":300,"refresh_expires_in":0,"token_type":"Bearer","not-before-policy":0}`},
		{200, "application/json;charset=UTF-8", `{"access_token":"at-1","expires_in":60}`},
		{200, "application/x-www-form-urlencoded", `access_token=at-1&expires_in=300&refresh_token=rt-2`},
		// Lifetimes: huge, overflowing int32, negative, float, string, null.
		{200, json, `{"access_token":"at-1","expires_in":1e300}`},
		{200, json, `{"access_token":"at-1","expires_in":2147483648}`},
		{200, json, `{"access_token":"at-1","expires_in":-5}`},
		{200, json, `{"access_token":"at-1","expires_in":299.5}`},
		{200, json, `{"access_token":"at-1","expires_in":"300","refresh_expires_in":"x"}`},
		{200, json, `{"access_token":"at-1","expires_in":null,"refresh_expires_in":1e308}`},
		// Unusable 2xx: empty, no access token, an error object, not JSON.
		{200, json, ``},
		{200, json, `{}`},
		{200, json, `{"token_type":"Bearer","expires_in":300}`},
		{200, json, `{"error":"invalid_grant","access_token":"at-1"}`},
		{204, "", ``},
		{200, "text/html", `<html>login</html>`},
		// Refusals (§9a), one echoing the refresh token and the secret.
		{400, json, `{"error":"invalid_grant","error_description":"Token is not active"}`},
		{400, json, `{"error":"invalid_grant","error_description":"Offline user session not found"}`},
		{401, json, `{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}`},
		{401, json, `{"error":"invalid_client","error_description":"Invalid client or Invalid client credentials"}`},
		{400, json, `{"error":"unsupported_grant_type","error_description":"Unsupported grant_type"}`},
		{400, json, `{"error":"invalid_scope"}`},
		{400, json, `{"error":"invalid_grant","error_description":"refresh token ` + echoRefresh + ` was sent by ` + echoSecret + `"}`},
		{400, json, `{"error":"` + echoSecret + `","error_description":"` + echoRefresh + `"}`},
		{400, "text/plain", `error=invalid_grant&error_description=` + echoRefresh},
		{400, json, `{"error":"invalid_grant","error_description":"` + strings.Repeat("long ", 500) + `"}`},
		{400, json, `{"error":"invalid_grant","error_description":"line\nbreak\u0000nul \u202e"}`},
		// Outages and oddities: a non-JSON 502, 503 and 429 with Retry-After-less bodies, a
		// redirect, a moved endpoint.
		{502, "text/html", `<html><body>Bad Gateway ` + echoRefresh + `</body></html>`},
		{503, json, `{"error":"temporarily_unavailable"}`},
		{429, json, `{"error":"slow_down"}`},
		{302, "", ``},
		{404, json, `{"error":"RESTEASY003210: Could not find resource for full path"}`},
		{405, "", ``},
	} {
		f.Add(s.status, s.contentType, s.body, false)
		f.Add(s.status, s.contentType, s.body, true)
	}
	f.Fuzz(func(t *testing.T, status int, contentType, body string, clientCredentials bool) {
		status = fuzzStatus(status)
		rt := &realmRoundTripper{status: status, contentType: fuzzHeader(contentType), body: body}
		clk := testingclock.NewFakeClock(testEpoch)
		cfg := Config{URL: fuzzNomad, PATPath: PATPathPats, Method: MethodRefreshToken, Clock: clk,
			HTTPClient: &http.Client{Transport: rt}, RequestTimeout: 10 * time.Second,
			OIDC: OIDCConfig{IssuerURL: fuzzIssuer, ClientSecret: testClientSecret, RefreshToken: refreshTokenN(1),
				RefreshTokenRotated: func(context.Context, string, string) error { return nil }}}
		if clientCredentials {
			cfg.Method = MethodClientCredentials
		}
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Get(context.Background(), patID(1))
		if err == nil {
			c.tokens.mu.Lock()
			tok, expiresAt := c.tokens.token, c.tokens.expiresAt
			c.tokens.mu.Unlock()
			if tok == "" || rt.bearer != tok {
				t.Fatalf("a sign-in succeeded without an access token (cached %q, sent %q)", tok, rt.bearer)
			}
			if status < 200 || status > 299 {
				t.Fatalf("a sign-in succeeded on HTTP %d", status)
			}
			if !expiresAt.After(testEpoch) {
				t.Fatalf("the access token expires at %v, before the sign-in (%v)", expiresAt, testEpoch)
			}
			return
		}
		e, ok := err.(*Error)
		if !ok {
			t.Fatalf("got %T, not *nomad.Error: %v", err, err)
		}
		if !knownCodes[e.Code] || e.Op != opLogin {
			t.Fatalf("unknown code or op: %#v", *e)
		}
		if e.StatusCode != status {
			t.Fatalf("error names HTTP %d, the realm answered %d: %v", e.StatusCode, status, e)
		}
		if !tokenEndpointCodeFits(e.Code, status) {
			t.Fatalf("code %s does not fit HTTP %d: %v", e.Code, status, e)
		}
		msg := e.Error()
		if strings.Contains(msg, refreshTokenN(1)) || strings.Contains(msg, testClientSecret) || jwtPattern.MatchString(msg) {
			t.Fatalf("the error repeats a secret: %q", msg)
		}
		if !utf8.ValidString(msg) || len(e.Detail) > detailLimit+len("…") {
			t.Fatalf("the error is not a bounded UTF-8 message: %q", msg)
		}
	})
}

// tokenEndpointCodeFits is the token endpoint's classification contract by status.
func tokenEndpointCodeFits(code Code, status int) bool {
	switch {
	case status >= 200 && status < 300, status == 404, status == 408, status == 429, status >= 500:
		return code == CodeTransient
	case status == 401:
		return code == CodeCredentialsInvalid
	default: // 3xx and the other 4xx: a refusal for the credentials, or another one
		return code == CodeCredentialsInvalid || code == CodeBadRequest
	}
}
