package nomad

import (
	"context"
	"encoding/pem"
	"fmt"
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
		// api_base_path "/" (nomad-pat-api.md §9b): the API root is right below the host.
		{name: "an API root at / is kept", in: "https://host/api", want: "https://host/api"},
		{name: "an API root at / with /v1", in: "https://host/api/v1", want: "https://host/api"},
		{name: "an API root at / with a trailing slash", in: "https://host/api/", want: "https://host/api"},
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

func TestConfigStringHidesOIDCSecrets(t *testing.T) {
	const refresh = "refresh-token-secret-value"
	cfg := Config{URL: "https://h/api", Method: MethodRefreshToken,
		OIDC: OIDCConfig{IssuerURL: "https://kc/realms/nomad", ClientSecret: testClientSecret, RefreshToken: refresh}}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{cfg.String(), cfg.GoString(), cfg.OIDC.String(), fmt.Sprintf("%v %+v %#v", cfg.OIDC, cfg.OIDC, cfg.OIDC),
		fmt.Sprintf("%v %+v %#v %v", c, c, c, *c)} {
		if strings.Contains(s, refresh) || strings.Contains(s, testClientSecret) {
			t.Fatalf("formatting leaks an OIDC secret: %s", s)
		}
	}
	if !strings.Contains(cfg.String(), "https://kc/realms/nomad") || !strings.Contains(c.String(), "RefreshToken") {
		t.Fatalf("formatting should still name the issuer and method: %s / %s", cfg, c)
	}
}

func TestNewValidatesTheSignInMethod(t *testing.T) {
	const issuer = "https://nomad-lab.eu/fairdi/keycloak/auth/realms/fairdi_nomad_prod"
	refresh := func(issuerURL string) Config {
		return Config{URL: "https://h/api", Method: MethodRefreshToken, OIDC: OIDCConfig{IssuerURL: issuerURL, RefreshToken: "rt"}}
	}
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string // "" means valid
	}{
		{name: "password is the default", cfg: Config{URL: "https://h/api", Username: "u", Password: "p"}},
		{name: "password needs a password", cfg: Config{URL: "https://h/api", Method: MethodPassword, Username: "u"}, wantErr: "username and password"},
		{name: "an unknown method", cfg: Config{URL: "https://h/api", Method: "Device"}, wantErr: `credentials method "Device"`},
		{name: "refresh token", cfg: refresh(issuer)},
		{name: "refresh token without the token", cfg: Config{URL: "https://h/api", Method: MethodRefreshToken,
			OIDC: OIDCConfig{IssuerURL: issuer}}, wantErr: "needs a refresh token"},
		{name: "refresh token without issuer", cfg: refresh(""), wantErr: "needs the realm's issuer URL"},
		{name: "client credentials", cfg: Config{URL: "https://h/api", Method: MethodClientCredentials,
			OIDC: OIDCConfig{IssuerURL: issuer, ClientID: "bot", ClientSecret: "s"}}},
		{name: "client credentials without secret", cfg: Config{URL: "https://h/api", Method: MethodClientCredentials,
			OIDC: OIDCConfig{IssuerURL: issuer}}, wantErr: "needs a client secret"},
		{name: "client credentials without issuer", cfg: Config{URL: "https://h/api", Method: MethodClientCredentials,
			OIDC: OIDCConfig{ClientSecret: "s"}}, wantErr: "needs the realm's issuer URL"},
		{name: "http on localhost", cfg: refresh("http://localhost:8080/realms/nomad")},
		{name: "http on 127.0.0.1", cfg: refresh("http://127.0.0.1:8080/realms/nomad")},
		{name: "http on 127.1.2.3", cfg: refresh("http://127.1.2.3/realms/nomad")},
		{name: "http on ::1", cfg: refresh("http://[::1]:8080/realms/nomad")},
		{name: "http elsewhere", cfg: refresh("http://keycloak.example.org/realms/nomad"), wantErr: "must use https"},
		{name: "http on a name that only starts like localhost", cfg: refresh("http://localhost.example.org/realms/nomad"), wantErr: "must use https"},
		{name: "http on 10.0.0.1", cfg: refresh("http://10.0.0.1/realms/nomad"), wantErr: "must use https"},
		{name: "another scheme", cfg: refresh("ftp://kc/realms/nomad"), wantErr: "must use https"},
		{name: "no host", cfg: refresh("https:///realms/nomad"), wantErr: "has no host"},
		{name: "credentials in the issuer", cfg: refresh("https://u:p@kc/realms/nomad"), wantErr: "must not contain credentials"},
		{name: "a query in the issuer", cfg: refresh("https://kc/realms/nomad?x=1"), wantErr: "query or fragment"},
		{name: "an unparsable issuer", cfg: refresh("https://kc/%zz"), wantErr: "cannot be parsed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || CodeOf(err) != CodeInvalidConfig {
				t.Fatalf("New = %v, %v; want an InvalidConfig error containing %q", c, err, tc.wantErr)
			}
		})
	}
	c, err := New(refresh(issuer + "/"))
	if err != nil || c.clientID != DefaultClientID || c.issuer != issuer {
		t.Fatalf("client %q, issuer %q, %v; want the default client and the issuer without its trailing slash", c.clientID, c.issuer, err)
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
