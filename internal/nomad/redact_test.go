package nomad

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
)

// TestRedactWithholdsDetailsThatContainAClientSecret: a detail holding the client's password or
// access token is replaced as a whole, because an in-place marker shows by its context what the
// secret is; raw PATs and JWTs, matched by shape, are still replaced in place.
func TestRedactWithholdsDetailsThatContainAClientSecret(t *testing.T) {
	const opaque = "opaque-access-token-7-zzzz"
	for _, tc := range []struct {
		name     string
		password string
		token    string // the client's current access token, "" for none
		detail   string
		want     string
	}{
		{name: "a password that is also part of the URL", password: "oasis",
			detail: `Post "http://h/nomad-oasis/api/v1/auth/token": dial tcp 10.0.0.1:80: connect: connection refused`,
			want:   withheldDetail},
		{name: "a password echoed verbatim", password: testPass,
			detail: "echo " + testPass, want: withheldDetail},
		{name: "a password echoed form-encoded", password: testPass,
			detail: "grant_type=password&username=bot&password=s3cret-Passw0rd%21", want: withheldDetail},
		{name: "a password echoed path-escaped", password: "pass word/1",
			detail: "GET /x/pass%20word%2F1 failed", want: withheldDetail},
		{name: "the current opaque access token", password: testPass, token: opaque,
			detail: "invalid bearer " + opaque, want: withheldDetail},
		{name: "the current JWT access token", password: testPass, token: accessToken(3),
			detail: "invalid bearer " + accessToken(3), want: withheldDetail},
		{name: "a raw PAT alone is replaced in place", password: testPass,
			detail: "bad token " + testRaw, want: "bad token nomad_pat_<redacted>"},
		{name: "another JWT alone is replaced in place", password: testPass, token: opaque,
			detail: "bad bearer " + accessToken(9), want: "bad bearer <redacted-jwt>"},
		{name: "a password shorter than 4 characters is not looked for", password: "api",
			detail: `Post "http://h/api/v1/auth/token": EOF`, want: `Post "http://h/api/v1/auth/token": EOF`},
		{name: "a detail without secrets is kept", password: "oasis",
			detail: "Token not found or does not belong to the user.", want: "Token not found or does not belong to the user."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Config{URL: "http://h/nomad-oasis/api", PATPath: PATPathPats, Username: testUser, Password: tc.password})
			if err != nil {
				t.Fatal(err)
			}
			c.tokens.token = tc.token
			got := c.newError(opLogin, CodeTransient, 0, tc.detail)
			if got.Detail != tc.want {
				t.Fatalf("detail = %q, want %q", got.Detail, tc.want)
			}
			if tc.want == withheldDetail && strings.Contains(got.Error(), "redacted") {
				t.Fatalf("a withheld detail must not carry a redaction marker: %q", got.Error())
			}
		})
	}
}

// TestTransportErrorWithThePasswordInTheURL drives the reported case end to end: the URL contains
// the password, and the refused connection's error must not point at it.
func TestTransportErrorWithThePasswordInTheURL(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now: the login is refused

	c, err := New(Config{URL: "http://" + addr + "/nomad-oasis/api", PATPath: PATPathPats, Username: testUser, Password: "oasis"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), patID(1))
	e := asError(t, err)
	if e.Code != CodeTransient || e.Detail != withheldDetail {
		t.Fatalf("got %+v, want a transient error with the detail withheld", *e)
	}
	if msg := e.Error(); strings.Contains(msg, "redacted") || strings.Contains(msg, "nomad-") {
		t.Fatalf("the message must not show where the password was: %q", msg)
	}
}

// TestRedactWithholdsTheRealmSecrets: the client secret, every refresh token the client holds and
// an access token held back by a pending rotation are withheld like the password.
func TestRedactWithholdsTheRealmSecrets(t *testing.T) {
	const (
		first   = "opaque-refresh-token-1"
		rotated = "opaque-refresh-token-2"
		held    = "opaque-held-access-token"
	)
	c, err := New(Config{URL: "https://h/api", PATPath: PATPathPats, Method: MethodRefreshToken,
		OIDC: OIDCConfig{IssuerURL: "https://kc/realms/nomad", ClientSecret: testClientSecret, RefreshToken: first}})
	if err != nil {
		t.Fatal(err)
	}
	c.refresh.receive(rotated)
	c.refresh.setPending(&pendingRotation{previous: first, current: rotated, g: grant{accessToken: held}})
	for _, secret := range []string{testClientSecret, first, rotated, held} {
		for _, detail := range []string{"echo " + secret, "form: refresh_token=" + url.QueryEscape(secret)} {
			if got := c.newError(opLogin, CodeTransient, 0, detail).Detail; got != withheldDetail {
				t.Errorf("detail %q: got %q, want it withheld", detail, got)
			}
		}
	}
	if got := c.newError(opLogin, CodeTransient, 0, "the realm is down").Detail; got != "the realm is down" {
		t.Errorf("a detail without secrets must be kept, got %q", got)
	}
}
