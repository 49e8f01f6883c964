package nomad

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestNormalizeURL(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, wantErr string
	}{
		{name: "an API root is kept", in: "https://nomad.example.org/nomad-oasis/api", want: "https://nomad.example.org/nomad-oasis/api"},
		{name: "a trailing slash is removed", in: "https://nomad.example.org/nomad-oasis/api/", want: "https://nomad.example.org/nomad-oasis/api"},
		{name: "a trailing /v1 is removed", in: "https://nomad-lab.eu/prod/v1/api/v1", want: "https://nomad-lab.eu/prod/v1/api"},
		{name: "a trailing /v1/ is removed", in: "http://localhost:8000/nomad-oasis/api/v1/", want: "http://localhost:8000/nomad-oasis/api"},
		{name: "surrounding space is ignored", in: "  https://h/api \n", want: "https://h/api"},
		{name: "a bare host is allowed", in: "https://h", want: "https://h"},
		{name: "an empty URL is rejected", in: "", wantErr: "URL is empty"},
		{name: "ftp is rejected", in: "ftp://h/api", wantErr: `scheme "ftp" is not supported`},
		{name: "a scheme-less URL is rejected", in: "nomad.example.org/api", wantErr: `scheme "" is not supported`},
		{name: "an unparsable URL is rejected", in: "https://h/%zz", wantErr: "cannot be parsed"},
		{name: "a URL without host is rejected", in: "https:///api", wantErr: "no host"},
		{name: "credentials in the URL are rejected", in: "https://bot:hunter22@h/api", wantErr: "must not contain credentials"},
		{name: "a query is rejected", in: "https://h/api?x=1", wantErr: "query or fragment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NormalizeURL(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || CodeOf(err) != CodeInvalidConfig {
					t.Fatalf("NormalizeURL(%q) error = %v, want an InvalidConfig error containing %q", tc.in, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "hunter22") {
					t.Fatalf("error leaks the password in the URL: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("NormalizeURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	base := Config{URL: "https://h/api", Username: "u", Password: "p"}
	for _, tc := range []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{name: "unknown PAT path", mutate: func(c *Config) { c.PATPath = "Pat" }, wantErr: `PAT path "Pat"`},
		{name: "no username", mutate: func(c *Config) { c.Username = "" }, wantErr: "username and password"},
		{name: "no password", mutate: func(c *Config) { c.Password = "" }, wantErr: "username and password"},
		{name: "CA bundle without certificate", mutate: func(c *Config) { c.CABundle = []byte("not pem") }, wantErr: "no PEM certificate"},
		{name: "CA bundle with custom HTTP client", mutate: func(c *Config) {
			c.CABundle = []byte("x")
			c.HTTPClient = &http.Client{}
		}, wantErr: "cannot be combined"},
		{name: "bad URL", mutate: func(c *Config) { c.URL = "gopher://h" }, wantErr: "not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.mutate(&cfg)
			if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.wantErr) || CodeOf(err) != CodeInvalidConfig {
				t.Fatalf("New error = %v, want an InvalidConfig error containing %q", err, tc.wantErr)
			}
		})
	}
	c, err := New(base)
	if err != nil {
		t.Fatal(err)
	}
	if c.ResolvedPATPath() != "" {
		t.Fatalf("an empty PATPath means Auto, which has resolved nothing yet; got %q", c.ResolvedPATPath())
	}
}

// The CA bundle is what makes a private-CA Oasis reachable: without it TLS fails, with it login works.
func TestCABundleIsTrusted(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"access_token":"at","token_type":"bearer"}`)
	}))
	defer ts.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})

	without, err := New(Config{URL: ts.URL + "/api", PATPath: PATPathPats, Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if err := without.tokensErr(context.Background()); CodeOf(err) != CodeTransient {
		t.Fatalf("without the CA the TLS handshake must fail (transient), got %v", err)
	}
	with, err := New(Config{URL: ts.URL + "/api", PATPath: PATPathPats, Username: "u", Password: "p", CABundle: caPEM})
	if err != nil {
		t.Fatal(err)
	}
	if err := with.tokensErr(context.Background()); err != nil {
		t.Fatalf("with the CA the login must succeed, got %v", err)
	}
}

func (c *HTTPClient) tokensErr(ctx context.Context) error {
	_, err := c.tokens.get(ctx)
	return err
}

func TestConfigStringHidesPassword(t *testing.T) {
	cfg := Config{URL: "https://h/api", Username: "bot", Password: testPass}
	for _, s := range []string{cfg.String(), cfg.GoString()} {
		if strings.Contains(s, testPass) || !strings.Contains(s, "<redacted>") {
			t.Fatalf("Config formatting must redact the password: %s", s)
		}
	}
}

func TestAccountIdentifiesTheUserWithoutNamingIt(t *testing.T) {
	account := func(url, user, password string) string {
		t.Helper()
		c, err := New(Config{URL: url, Username: user, Password: password})
		if err != nil {
			t.Fatal(err)
		}
		return c.Account()
	}
	base := account("https://h/nomad-oasis/api", "team-a-bot", "pw")
	if got := account("https://h/nomad-oasis/api/v1/", "team-a-bot", "another password"); got != base {
		t.Errorf("same user, same API root (written differently), new password: %q != %q", got, base)
	}
	if account("https://h/nomad-oasis/api", "team-b-bot", "pw") == base {
		t.Error("another user must be another account")
	}
	if account("https://other/nomad-oasis/api", "team-a-bot", "pw") == base {
		t.Error("the same name on another NOMAD must be another account")
	}
	if strings.Contains(base, "team-a-bot") || len(base) != 16 {
		t.Errorf("account %q must be a short hash, not the username", base)
	}
}
