package main

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestProgressWatchdog(t *testing.T) {
	const stall = 10 * time.Minute
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Each step runs against a fresh watchdog: steps drive it, then Check is asked.
	for _, tc := range []struct {
		name  string
		steps func(w *progressWatchdog, c *clocktesting.FakePassiveClock)
		live  bool
	}{
		{"a fresh manager is live", func(*progressWatchdog, *clocktesting.FakePassiveClock) {}, true},
		{"idle for an hour (nothing in flight) is live", func(w *progressWatchdog, c *clocktesting.FakePassiveClock) {
			w.ReconcileStarted("nomadtoken")()
			c.SetTime(start.Add(time.Hour))
		}, true},
		{"a standby never reconciles and is live", func(_ *progressWatchdog, c *clocktesting.FakePassiveClock) {
			c.SetTime(start.Add(24 * time.Hour))
		}, true},
		{"work starting after an idle spell gets the full timeout", func(w *progressWatchdog, c *clocktesting.FakePassiveClock) {
			w.ReconcileStarted("nomadtoken")()
			c.SetTime(start.Add(time.Hour))
			w.ReconcileStarted("nomadtoken")
			c.SetTime(start.Add(time.Hour + stall - time.Second))
		}, true},
		{"one reconcile stuck beyond the timeout is wedged", func(w *progressWatchdog, c *clocktesting.FakePassiveClock) {
			w.ReconcileStarted("nomadtoken")
			c.SetTime(start.Add(stall + time.Second))
		}, false},
		{"every worker stuck, nothing finishing, is wedged", func(w *progressWatchdog, c *clocktesting.FakePassiveClock) {
			for range 16 {
				w.ReconcileStarted("nomadtoken")
			}
			c.SetTime(start.Add(stall + time.Second))
		}, false},
		{"a burst that keeps every worker busy for hours but keeps finishing items is live", func(w *progressWatchdog, c *clocktesting.FakePassiveClock) {
			// 16 workers, 10,000 items of up to 30 s each: the queue stays long for hours, and
			// every few seconds one finishes and the next starts.
			running := make([]func(), 16)
			for i := range running {
				running[i] = w.ReconcileStarted("nomadtoken")
			}
			now := start
			for i := range 10000 {
				now = now.Add(3 * time.Second)
				c.SetTime(now)
				running[i%16]()
				running[i%16] = w.ReconcileStarted("nomadtoken")
				if err := w.Check(nil); err != nil {
					t.Fatalf("after %d items: %v", i, err)
				}
			}
		}, true},
		{"one stuck worker while the others keep finishing is live (progress is made)", func(w *progressWatchdog, c *clocktesting.FakePassiveClock) {
			w.ReconcileStarted("nomadtoken") // never finishes
			for i := range 100 {
				c.SetTime(start.Add(time.Duration(i) * time.Minute))
				w.ReconcileStarted("nomadtoken")()
			}
		}, true},
		{"a stuck reconcile is noticed once the others went quiet", func(w *progressWatchdog, c *clocktesting.FakePassiveClock) {
			w.ReconcileStarted("nomadtoken") // never finishes
			c.SetTime(start.Add(time.Minute))
			w.ReconcileStarted("nomadtoken")()
			c.SetTime(start.Add(time.Minute + stall + time.Second))
		}, false},
		{"wedged token workers are noticed although connection checks keep finishing", func(w *progressWatchdog, c *clocktesting.FakePassiveClock) {
			w.ReconcileStarted("nomadtoken") // never finishes
			for i := range 20 {
				c.SetTime(start.Add(time.Duration(i) * time.Minute))
				w.ReconcileStarted("nomadconnection")()
			}
		}, false},
		{"calling finished twice counts once", func(w *progressWatchdog, c *clocktesting.FakePassiveClock) {
			w.ReconcileStarted("nomadtoken")
			done := w.ReconcileStarted("nomadtoken")
			done()
			done()
			c.SetTime(start.Add(stall + time.Second))
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clocktesting.NewFakePassiveClock(start)
			w := newProgressWatchdog(c, stall)
			tc.steps(w, c)
			err := w.Check(httptest.NewRequest("GET", "/healthz", nil))
			if live := err == nil; live != tc.live {
				t.Errorf("live = %v (%v), want %v", live, err, tc.live)
			}
		})
	}
}

// fakeCache syncs when synced is closed.
type fakeCache struct{ synced chan struct{} }

func (f fakeCache) WaitForCacheSync(ctx context.Context) bool {
	select {
	case <-f.synced:
		return true
	case <-ctx.Done():
		return false
	}
}

func TestCacheSyncedCheck(t *testing.T) {
	c := fakeCache{synced: make(chan struct{})}
	check := cacheSyncedCheck(c, 10*time.Millisecond)
	if err := check(httptest.NewRequest("GET", "/readyz", nil)); err == nil {
		t.Fatal("ready before the caches synced")
	}
	close(c.synced)
	if err := check(httptest.NewRequest("GET", "/readyz", nil)); err != nil {
		t.Fatalf("not ready once the caches synced: %v", err)
	}
}

func TestValidateStallTimeout(t *testing.T) {
	for _, tc := range []struct {
		stall, request time.Duration
		ok             bool
	}{
		{DefaultStallTimeout, 30 * time.Second, true},
		{0, 30 * time.Second, true},
		{2 * time.Minute, 30 * time.Second, true},
		{time.Minute, 30 * time.Second, false},
		{10 * time.Minute, 5 * time.Minute, false},
		{-time.Second, 30 * time.Second, false},
	} {
		if err := validateStallTimeout(tc.stall, tc.request); (err == nil) != tc.ok {
			t.Errorf("stall %s, request %s: %v, want ok=%v", tc.stall, tc.request, err, tc.ok)
		}
	}
}
