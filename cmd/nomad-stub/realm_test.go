package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

func TestParseRealmFlags(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil || c.realm != "nomad" || len(c.clients) != 0 || c.rotateRefresh || c.authorizeUser != "" {
		t.Fatalf("defaults = %+v, %v", c, err)
	}
	c, err = parseFlags([]string{
		"--realm", "fairdi_nomad_prod", "--client", "ci:ci-secret:service-account-ci", "--client", "web:s3cret",
		"--client", "cli", "--rotate-refresh-tokens", "--authorize-user", "bot",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []nomadstub.RealmClient{{ID: "ci", Secret: "ci-secret", ServiceAccountUser: "service-account-ci"}, {ID: "web", Secret: "s3cret"}, {ID: "cli"}}
	if c.realm != "fairdi_nomad_prod" || len(c.clients) != 3 || c.clients[0] != want[0] || c.clients[1] != want[1] || c.clients[2] != want[2] ||
		!c.rotateRefresh || c.authorizeUser != "bot" || c.options(nil).Realm != "fairdi_nomad_prod" {
		t.Fatalf("parsed = %+v", c)
	}
	for _, bad := range [][]string{
		{"--client", ""},
		{"--client", ":secret"},
		{"--client", "nomad_public:x"},
		{"--client", "ci::service-account-ci"},
		{"--realm", ""},
		{"--realm", "a/b"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%v: want an error", bad)
		}
	}
}

func TestRunServesTheRealm(t *testing.T) {
	addrFile := filepath.Join(t.TempDir(), "addr")
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--addr-file", addrFile, "--client", "ci:ci-secret:service-account-ci",
			"--rotate-refresh-tokens", "--authorize-user", "bot"}, &logs)
	}()
	var addr string
	for deadline := time.Now().Add(5 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(addrFile)
		addr = string(b)
	}
	if addr == "" {
		t.Fatal("no address")
	}
	issuer := addr + "/keycloak/auth/realms/nomad"
	tokenURL := issuer + "/protocol/openid-connect/token"
	postJSON := func(u string, form url.Values, out any) int {
		t.Helper()
		resp, err := http.PostForm(u, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}

	var cc struct {
		AccessToken string `json:"access_token"`
	}
	if code := postJSON(tokenURL, url.Values{"grant_type": {"client_credentials"}, "client_id": {"ci"}, "client_secret": {"ci-secret"}}, &cc); code != 200 {
		t.Fatalf("client_credentials: %d", code)
	}
	req, _ := http.NewRequest(http.MethodGet, addr+"/nomad-oasis/api/v1/pats", nil)
	req.Header.Set("Authorization", "Bearer "+cc.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PAT list with the service account's token: %d", resp.StatusCode)
	}

	var issued struct {
		RefreshToken string `json:"refresh_token"`
	}
	if code := postJSON(addr+"/_stub/realm/refresh-tokens?username=bot", nil, &issued); code != 200 {
		t.Fatalf("issue refresh token: %d", code)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {"nomad_public"}, "refresh_token": {issued.RefreshToken}}
	if code := postJSON(tokenURL, refresh, nil); code != 200 {
		t.Fatalf("refresh: %d", code)
	}
	if code := postJSON(tokenURL, refresh, nil); code != 400 {
		t.Fatalf("reuse with --rotate-refresh-tokens: %d, want 400", code)
	}

	var st nomadstub.State
	resp, err = http.Get(addr + "/_stub/state")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Realm.Issuer != issuer || st.Realm.AuthorizeUser != "bot" || !st.Realm.RotateRefreshTokens ||
		st.Realm.Grants["client_credentials"] != 1 || st.Realm.Grants["refresh_token"] != 1 || st.Realm.GrantFailures["refresh_token"] != 1 {
		t.Fatalf("realm state = %+v", st.Realm)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	out := logs.String()
	if !strings.Contains(out, "issuer "+issuer) || !strings.Contains(out, "clients ci;") {
		t.Errorf("log lacks the issuer or clients:\n%s", out)
	}
	for _, secret := range []string{"ci-secret", cc.AccessToken, issued.RefreshToken} {
		if strings.Contains(out, secret) {
			t.Errorf("log leaks a secret:\n%s", out)
		}
	}
}
