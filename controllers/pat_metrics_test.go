package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/metrics"
)

// patEventLog is a PATRecorder that remembers each event as "event kind/namespace/name".
type patEventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *patEventLog) add(event string, conn metrics.Connection, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range n {
		l.events = append(l.events, fmt.Sprintf("%s %s/%s/%s", event, conn.Kind, conn.Namespace, conn.Name))
	}
}

func (l *patEventLog) Issued(conn metrics.Connection, rotated bool) {
	l.add("issued", conn, 1)
	if rotated {
		l.add("rotated", conn, 1)
	}
}
func (l *patEventLog) Revoked(conn metrics.Connection, n int)         { l.add("revoked", conn, n) }
func (l *patEventLog) RevokeAbandoned(conn metrics.Connection, n int) { l.add("abandoned", conn, n) }

func (l *patEventLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

const oasis = "NomadConnection/team-a/oasis"

// Issue, rotate (Overlap), revoke after the grace period, delete: one event each, for the
// connection that minted the PAT.
func TestPATCountersFollowTheLifecycle(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	log := &patEventLog{}
	w.r.PATs = log
	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"issue", func() error { return w.reconcile(t) }, []string{"issued " + oasis}},
		{"renew", func() error {
			tok := &v1alpha1.NomadToken{}
			_ = w.client.Get(context.Background(), w.key, tok)
			w.clock.SetTime(tokenRenewalTime(tok).Add(time.Second))
			return w.reconcile(t)
		}, []string{"issued " + oasis, "rotated " + oasis}},
		{"grace period over", func() error {
			w.clock.Step(v1alpha1.DefaultGracePeriod + time.Second)
			return w.reconcile(t)
		}, []string{"revoked " + oasis}},
		{"steady state", func() error { return w.reconcile(t) }, nil},
		{"delete", func() error {
			tok := &v1alpha1.NomadToken{}
			_ = w.client.Get(context.Background(), w.key, tok)
			if err := w.client.Delete(context.Background(), tok); err != nil {
				return err
			}
			return w.reconcile(t)
		}, []string{"revoked " + oasis}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := log.take(); !slices.Equal(got, s.want) {
			t.Errorf("%s: events %q, want %q", s.name, got, s.want)
		}
	}
}

// A PAT whose raw token reached no Secret is revoked at once: issued is not counted, revoked is.
func TestPATCountersCountARevokedUnstoredPAT(t *testing.T) {
	w := newCrashWorld(t, failFirstSecretCreate())
	log := &patEventLog{}
	w.r.PATs = log
	if err := w.reconcile(t); !errors.Is(err, errInjected) {
		t.Fatalf("first reconcile: %v", err)
	}
	if got, want := log.take(), []string{"revoked " + oasis}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// A queued PAT that expired before it could be revoked leaves the queue as abandoned.
func TestPATCountersCountAnExpiredQueuedPATAsAbandoned(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	log := &patEventLog{}
	w.r.PATs = log
	if err := w.reconcile(t); err != nil {
		t.Fatal(err)
	}
	log.take()
	tok := &v1alpha1.NomadToken{}
	_ = w.client.Get(context.Background(), w.key, tok)
	// A replaced PAT minted by a connection that no longer exists, long expired.
	gone := v1alpha1.PATReference{ID: "0123456789abcdef01234567", ConnectionName: "gone", Account: "other",
		ExpiresAt: tok.Status.IssuedAt.DeepCopy()}
	gone.ExpiresAt.Time = gone.ExpiresAt.Add(-time.Hour)
	tok.Status.RevokePending = []v1alpha1.PATReference{gone}
	if err := w.client.Status().Update(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if err := w.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if got, want := log.take(), []string{"abandoned NomadConnection/team-a/gone"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}
