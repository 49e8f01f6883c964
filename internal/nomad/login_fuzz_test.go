package nomad

import (
	"context"
	"strings"
	"testing"
)

// FuzzLoginResponse feeds the password grant one answer from /auth/token: V-B/C's full OIDC set,
// M2024's two keys, the §9 errors, or anything else. A failed login must be a classified *Error that
// never repeats the password or the access token; a successful one must cache a token that does not
// expire before the login started (a garbage expires_in must not overflow into the past).
func FuzzLoginResponse(f *testing.F) {
	const tok = `"access_token":"` + echoAccess + `"`
	for _, s := range []struct {
		status int
		body   string
	}{
		// V-B/C: the full OIDC set; central NOMAD's 24 h; a float lifetime.
		{200, `{` + tok + `,"token_type":"Bearer","expires_in":300,"refresh_token":null,"scope":null,"id_token":null,"refresh_expires_in":1800}`},
		{200, `{` + tok + `,"token_type":"Bearer","expires_in":86400}`},
		{200, `{` + tok + `,"expires_in":299.5}`},
		// M2024: no expires_in at all; null, zero, negative, tiny, huge ones.
		{200, `{` + tok + `,"token_type":"bearer"}`},
		{200, `{` + tok + `,"expires_in":null}`},
		{200, `{` + tok + `,"expires_in":0}`},
		{200, `{` + tok + `,"expires_in":-1}`},
		{200, `{` + tok + `,"expires_in":1e-9}`},
		{200, `{` + tok + `,"expires_in":1e300}`},
		{200, `{` + tok + `,"expires_in":9223372036.9}`},
		{200, `{` + tok + `,"expires_in":"300"}`},
		// Unusable 200s: no token, an empty one, a number, not JSON.
		{200, `{"token_type":"Bearer","expires_in":300}`},
		{200, `{"access_token":"","expires_in":300}`},
		{200, `{"access_token":7}`},
		{200, `access_token=x&expires_in=300`},
		// §9 errors: bad credentials, 422 echoing the form (with the password), Keycloak's 500.
		{401, `{"detail":"Incorrect username or password"}`},
		{422, `{"detail":[{"type":"missing","loc":["body","grant_type"],"msg":"Field required","input":null}]}`},
		{422, `{"detail":[{"loc":["body","password"],"msg":"bad ` + echoPassword + `","input":"` + echoPassword + `"}]}`},
		{500, `{"detail":{"reason":"Unexpected exception while handling your request","exception":"` + echoPassword + `"}}`},
		// Keycloak's 400 inside NOMAD's 500 (§9a): pending required actions, direct grants off, one
		// echoing the password and the access token, a traceback, one without an error object.
		{500, `{"detail":{"reason":"Unexpected exception while handling your request","exception":"400: b'{\"error\":\"invalid_grant\",\"error_description\":\"Account is not fully set up\"}'","exception_class":"KeycloakAuthenticationError","exception_traceback":"Traceback (most recent call last): ..."}}`},
		{500, `{"detail":{"reason":"Unexpected exception while handling your request","exception":"400: b'{\"error\":\"unauthorized_client\",\"error_description\":\"Client not allowed for direct access grants\"}'"}}`},
		{500, `{"detail":{"reason":"x","exception":"400: b'{\"error\":\"invalid_grant\",\"error_description\":\"` + echoPassword + ` ` + echoAccess + `\"}'","exception_traceback":"` + echoPassword + `"}}`},
		{500, `{"detail":{"reason":"x","exception":"400: b''"}}`},
		{500, `{"detail":{"reason":"x","exception":"4000 Keycloak unreachable"}}`},
		{500, `{"detail":{"reason":"x","exception":"b'{\"error\":\"temporarily_unavailable\"}'"}}`},
		// The URL is not the API root: a framework 404 and an ingress 404.
		{404, `{"detail":"Not Found"}`},
		{404, `<html>nginx</html>`},
	} {
		f.Add(s.status, s.body)
	}
	srv := newReplayNomad(f)
	f.Fuzz(func(t *testing.T, status int, body string) {
		status = fuzzStatus(status)
		// Every PAT request succeeds, so that any failure is the login's.
		srv.script(&answer{status: status, body: body}, answer{status: 200,
			body: `{"id":"0123456789abcdef01234567","name":"ci","created_at":"2026-01-02T03:04:05Z"}`})
		c, clk := srv.client(t)
		start := clk.Now()
		if _, err := c.Get(context.Background(), "0123456789abcdef01234567"); err != nil {
			e := checkFailure(t, err, opGet)
			if e.Op != opLogin {
				t.Fatalf("only the login can fail here, got %v", e)
			}
			if e.Code == CodeCredentialsInvalid && e.StatusCode == 500 &&
				!strings.HasPrefix(e.Detail, "Keycloak refused the password grant: ") && e.Detail != withheldDetail {
				t.Fatalf("a refusal found in NOMAD's 500 must be reported as Keycloak's: %v", e)
			}
			return
		}
		c.tokens.mu.Lock()
		tok, expiresAt := c.tokens.token, c.tokens.expiresAt
		c.tokens.mu.Unlock()
		if tok == "" || expiresAt.Before(start) {
			t.Fatalf("login cached token %q expiring at %v, before it started (%v)", tok, expiresAt, start)
		}
	})
}
