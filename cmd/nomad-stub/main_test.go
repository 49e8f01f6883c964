package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(t *testing.T, c config)
		wantErr bool
	}{
		{"defaults", nil, func(t *testing.T, c config) {
			if c.listen != "127.0.0.1:8000" || c.basePath != "/nomad-oasis/api" || c.maxActive != 100 ||
				c.accessTokenTTL != 5*time.Minute || c.maxLifetimeDays == nil || *c.maxLifetimeDays != 365 ||
				len(c.users) != 1 || c.users[0] != (userFlag{"bot", "bot-password"}) || c.disablePats || c.disableAuthPats || c.legacyList {
				t.Fatalf("defaults = %+v", c)
			}
		}, false},
		{"everything", []string{
			"--listen", "127.0.0.1:0", "--user", "a:p:with:colons", "--user", "b:", "--base-path", "/prod/v1/api",
			"--max-lifetime-days", "90", "--max-active", "3", "--access-token-ttl", "30s",
			"--disable-pats", "--disable-auth-pats", "--legacy-list", "--addr-file", "/tmp/x",
		}, func(t *testing.T, c config) {
			if c.listen != "127.0.0.1:0" || len(c.users) != 2 || c.users[0] != (userFlag{"a", "p:with:colons"}) || c.users[1] != (userFlag{"b", ""}) ||
				c.basePath != "/prod/v1/api" || *c.maxLifetimeDays != 90 || c.maxActive != 3 || c.accessTokenTTL != 30*time.Second ||
				!c.disablePats || !c.disableAuthPats || !c.legacyList || c.addrFile != "/tmp/x" {
				t.Fatalf("parsed = %+v", c)
			}
		}, false},
		{"none lifetime", []string{"--max-lifetime-days", "none"}, func(t *testing.T, c config) {
			if c.maxLifetimeDays != nil {
				t.Fatal("want nil")
			}
		}, false},
		{"zero lifetime means none", []string{"--max-lifetime-days=0"}, func(t *testing.T, c config) {
			if c.maxLifetimeDays != nil {
				t.Fatal("want nil")
			}
		}, false},
		{"bad lifetime", []string{"--max-lifetime-days", "-3"}, nil, true},
		{"user without colon", []string{"--user", "bot"}, nil, true},
		{"user without name", []string{"--user", ":pw"}, nil, true},
		{"max active zero", []string{"--max-active", "0"}, nil, true},
		{"tiny ttl", []string{"--access-token-ttl", "10ms"}, nil, true},
		{"stray argument", []string{"serve"}, nil, true},
		{"unknown flag", []string{"--nope"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, io.Discard)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
}

// syncBuffer is a log sink the server goroutine and the test can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunServesLogsAndStops(t *testing.T) {
	addrFile := filepath.Join(t.TempDir(), "addr")
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--addr-file", addrFile, "--user", "ci:s3cret-pw", "--max-lifetime-days", "none"}, &logs)
	}()

	var addr string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(addrFile); err == nil {
			addr = string(b)
			break
		}
	}
	if !strings.HasPrefix(addr, "http://127.0.0.1:") {
		t.Fatalf("addr file = %q", addr)
	}

	form := url.Values{"grant_type": {"password"}, "username": {"ci"}, "password": {"s3cret-pw"}}
	resp, err := http.PostForm(addr+"/nomad-oasis/api/v1/auth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("login: %d", resp.StatusCode)
	}

	body := `{"metadata":{"name":"n","scopes":["uploads:read"]},"expires_in_days":null}`
	req, _ := http.NewRequest(http.MethodPost, addr+"/nomad-oasis/api/v1/pats", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create (infinite allowed by --max-lifetime-days none): %d %s", resp.StatusCode, raw)
	}
	var created struct {
		RawToken string `json:"raw_token"`
		PAT      struct {
			ID string `json:"id"`
		} `json:"pat"`
	}
	_ = json.Unmarshal(raw, &created)

	// The binary's clock is an OffsetClock, so the admin route can move it.
	resp, err = http.Post(addr+"/_stub/clock/advance?by=1h", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("clock advance: %d", resp.StatusCode)
	}

	// LoseResponse must still drop the connection behind the logging wrapper.
	resp, err = http.Post(addr+"/_stub/faults?op=list&lose_response=true", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodGet, addr+"/nomad-oasis/api/v1/pats", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("want a dropped connection, got %d", resp.StatusCode)
	}
	// The handler logs after it dropped the connection, so the client may see the drop first; and
	// shutdown does not wait for a hijacked connection's handler. Wait for the line.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "GET /nomad-oasis/api/v1/pats dropped") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop")
	}
	if _, err := os.Stat(addrFile); !os.IsNotExist(err) {
		t.Fatal("addr file left behind")
	}

	out := logs.String()
	for _, want := range []string{
		"POST /nomad-oasis/api/v1/auth/token 200",
		"POST /nomad-oasis/api/v1/pats 201",
		"POST /_stub/clock/advance 200",
		"GET /nomad-oasis/api/v1/pats dropped",
		"users ci;",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"s3cret-pw", tok.AccessToken, created.RawToken, "Bearer", "nomad_pat_"} {
		if strings.Contains(out, secret) {
			t.Errorf("log leaks %q:\n%s", secret, out)
		}
	}
}

func TestRunFailsOnBusyPort(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrFile := filepath.Join(t.TempDir(), "addr")
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--addr-file", addrFile}, io.Discard) }()
	var addr string
	for deadline := time.Now().Add(5 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(addrFile)
		addr = string(b)
	}
	err := run(context.Background(), []string{"--listen", strings.TrimPrefix(addr, "http://")}, io.Discard)
	if err == nil {
		t.Fatal("second listener on the same port should fail")
	}
	cancel()
	<-done
}
