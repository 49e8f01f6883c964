package harness

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// A syntactically valid PAT that was never issued anywhere.
const fakePAT = "nomad_pat_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde"

func TestScanFileFindsPATsAndSecretsWithoutRepeatingThem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	log := strings.Join([]string{
		`{"msg":"issued PAT","tokenID":"665f1c"}`,
		`{"msg":"oops","token":"` + fakePAT + `"}`,
		`{"msg":"login","password":"bot-password"}`,
		`{"msg":"short","token":"nomad_pat_tooShort"}`,
	}, "\n")
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	leaks, err := ScanFile(path, "", "bot-password")
	if err != nil {
		t.Fatal(err)
	}
	want := []Leak{{path, 2, "a raw PAT"}, {path, 3, "secret #1"}}
	if !reflect.DeepEqual(leaks, want) {
		t.Fatalf("leaks = %v, want %v", leaks, want)
	}
	for _, l := range leaks {
		if strings.Contains(l.String(), "nomad_pat_A") || strings.Contains(l.String(), "bot-password") {
			t.Fatalf("a Leak repeats the secret: %s", l)
		}
	}
}

func TestRedact(t *testing.T) {
	got := Redact("Bearer " + fakePAT + ".")
	if got != "Bearer nomad_pat_<redacted>." {
		t.Fatalf("Redact = %q", got)
	}
	if d := Describe([]byte(fakePAT)); d != "<53 bytes, redacted>" {
		t.Fatalf("Describe = %q", d)
	}
}

func TestParseStatCountsFieldsFromTheLastParenthesis(t *testing.T) {
	for _, tc := range []struct {
		name, stat, comm string
		ppid, pgrp       int
	}{
		{"plain", "4046 (etcd) S 4031 4046 3300 0 -1", "etcd", 4031, 4046},
		{"comm with space and paren", "17 (a) b (c) R 1 17 17 0", "a) b (c", 1, 17},
	} {
		t.Run(tc.name, func(t *testing.T) {
			comm, ppid, pgrp, ok := parseStat(tc.stat)
			if !ok || comm != tc.comm || ppid != tc.ppid || pgrp != tc.pgrp {
				t.Fatalf("parseStat = %q %d %d %v", comm, ppid, pgrp, ok)
			}
		})
	}
	if _, _, _, ok := parseStat("garbage"); ok {
		t.Fatal("parseStat accepted garbage")
	}
}

func TestLoadKustomizationReadsTheSamplesInOrder(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := LoadKustomization(filepath.Join(root, "config", "samples"))
	if err != nil {
		t.Fatal(err)
	}
	if err := PrepareSamples(objs, "team-a", "http://127.0.0.1:1/nomad-oasis/api"); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, u := range objs {
		kinds = append(kinds, u.GetKind())
		if u.GetNamespace() != "team-a" {
			t.Errorf("%s %s: namespace %q", u.GetKind(), u.GetName(), u.GetNamespace())
		}
		if u.GetKind() == "NomadConnection" {
			if url := u.Object["spec"].(map[string]any)["url"]; url != "http://127.0.0.1:1/nomad-oasis/api" {
				t.Errorf("NomadConnection url = %v", url)
			}
		}
	}
	if want := []string{"Secret", "NomadConnection", "NomadToken"}; !reflect.DeepEqual(kinds, want) {
		t.Fatalf("kinds = %v, want %v", kinds, want)
	}
}

func TestStubAdminHelpers(t *testing.T) {
	srv := nomadstub.New(nomadstub.DefaultOptions())
	srv.AddUser(DefaultStubUser, DefaultStubPassword)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	s := &Stub{Addr: ts.URL, User: DefaultStubUser, Password: DefaultStubPassword}
	ctx := context.Background()

	id, err := s.AddUser(ctx, "second bot", "p&w=?")
	if err != nil || id == "" {
		t.Fatalf("AddUser = %q, %v", id, err)
	}
	st, err := s.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Users["second bot"].UserID; got != id {
		t.Fatalf("state has user id %q for the new account, want %q", got, id)
	}
	if err := s.RevokePAT(ctx, "000000000000000000000000"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("RevokePAT of an unknown id = %v, want a 404 error", err)
	}
	calls, err := s.Calls(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := calls["rotate"]; !ok {
		t.Fatalf("Calls = %v, want a count per operation", calls)
	}
}

func TestStubRealmHelpers(t *testing.T) {
	srv := nomadstub.New(nomadstub.DefaultOptions())
	srv.AddUser(DefaultStubUser, DefaultStubPassword)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	s := &Stub{Addr: ts.URL, User: DefaultStubUser, Password: DefaultStubPassword}
	ctx := context.Background()

	issuer, err := s.Issuer(ctx)
	if err != nil || issuer != srv.IssuerURL(ts.URL) {
		t.Fatalf("Issuer = %q, %v", issuer, err)
	}
	rt, err := s.IssueRefreshToken(ctx, DefaultStubUser, true)
	if err != nil || rt == "" {
		t.Fatalf("IssueRefreshToken = %v", err)
	}
	if _, err := s.IssueRefreshToken(ctx, "ghost", false); err == nil {
		t.Fatal("IssueRefreshToken for an unknown user")
	}
	if st, err := s.State(ctx); err != nil || st.Realm.Sessions[DefaultStubUser] != 1 {
		t.Fatalf("State.Realm = %+v, %v", st.Realm, err)
	}
	if err := s.RevokeSessions(ctx, DefaultStubUser); err != nil {
		t.Fatal(err)
	}
	if st, err := s.State(ctx); err != nil || st.Realm.Sessions[DefaultStubUser] != 0 {
		t.Fatalf("sessions after RevokeSessions = %+v, %v", st.Realm.Sessions, err)
	}
}
