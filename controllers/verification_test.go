package controllers

import (
	"context"
	"net/http"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// These tests hold the cost of verification: one paged list per connection and interval checks every
// token, a new token costs no GET, and a token in constant use costs one status write per
// --last-used-granularity.

// listNow is the connection's periodic check: the bot's active PATs as NOMAD lists them now.
func (w *crashWorld) listNow(t *testing.T) {
	t.Helper()
	conn := w.oasis(t)
	nc, err := nomad.New(nomad.Config{URL: conn.Spec.URL, Username: "bot", Password: "pw", Clock: w.clock})
	if err != nil {
		t.Fatal(err)
	}
	takenAt := w.clock.Now()
	active, err := nc.List(context.Background(), nomad.ListOptions{State: "active"})
	if err != nil {
		t.Fatal(err)
	}
	offset, _ := nc.ClockOffset()
	w.r.Verifier.record(context.Background(), conn, nc.Account(), active, takenAt, offset, nil)
}

// usePAT authenticates at NOMAD with the Secret's PAT, which sets its last_used_at.
func (w *crashWorld) usePAT(t *testing.T) {
	t.Helper()
	conn := w.oasis(t)
	s := w.secret()
	if err := w.client.Get(context.Background(), client.ObjectKeyFromObject(s), s); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, conn.Spec.URL+"/v1/pats/000000000000000000000000", nil)
	req.Header.Set("Authorization", "Bearer "+string(s.Data["token"]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("probe with the PAT: %d, want 403 (authenticated, lacking tokens:read)", resp.StatusCode)
	}
}

func TestANewTokenCostsNoGetAfterAnOlderList(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.r.Verifier = NewVerifier(0)
	// The connection's list is requested before the token's PAT exists, in the same second: status
	// keeps issuedAt in whole seconds, so that must not make the PAT look older than the list.
	w.clock.SetTime(issuedAt.Add(500 * time.Millisecond))
	w.listNow(t)
	w.clock.SetTime(issuedAt.Add(900 * time.Millisecond))
	w.mustReconcile(t)
	w.assertOneActivePATInSecret(t)
	w.stub.ResetCalls()
	for range 3 { // the Secret's creation, resyncs: none may ask NOMAD about the new PAT
		w.mustReconcile(t)
	}
	if calls := w.stub.Calls(); calls["get"] != 0 || calls["create"] != 0 {
		t.Fatalf("NOMAD calls %v after the PAT was issued: a PAT newer than the list is not missing from it", calls)
	}
	// A PAT the list should hold and does not is still confirmed, and replaced if gone.
	w.clock.Step(2 * time.Second)
	w.listNow(t)
	tok := w.token(t)
	w.stub.RevokePAT(tok.Status.TokenID)
	w.clock.Step(2 * time.Second)
	w.listNow(t)
	w.mustReconcile(t)
	if w.token(t).Status.TokenID == tok.Status.TokenID {
		t.Fatal("a PAT revoked in NOMAD was not replaced")
	}
}

func TestLastUseCostsOneStatusWritePerGranularity(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.r.Verifier = NewVerifier(time.Hour)
	w.mustReconcile(t)
	w.assertOneActivePATInSecret(t)
	w.clock.SetTime(issuedAt.Add(10 * time.Minute))

	versions := map[string]bool{}
	// Used before each of six verifications in one hour, then once more in the next hour.
	for i := range 7 {
		w.clock.Step(10 * time.Minute)
		w.usePAT(t)
		w.listNow(t)
		w.mustReconcile(t)
		tok := w.token(t)
		if tok.Status.LastUsedAt == nil {
			t.Fatalf("verification %d: lastUsedAt not recorded", i)
		}
		if got := tok.Status.LastUsedAt.Time; !got.Equal(got.Truncate(time.Hour)) || w.clock.Now().Sub(got) > time.Hour {
			t.Fatalf("lastUsedAt %v at %v: want the last use rounded down to the hour", got, w.clock.Now())
		}
		versions[tok.ResourceVersion] = true
	}
	// The token's resource version changes only when lastUsedAt does: once per hour of use.
	if len(versions) > 2 {
		t.Fatalf("%d distinct token versions over 7 verifications across two hours: want at most 2", len(versions))
	}
}
