package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// DefaultStallTimeout is --liveness-stall-timeout's default. A reconcile makes a handful of NOMAD
// requests, each bounded by the request timeout (30 s), so ten minutes without one finished reconcile
// while some are running is far beyond any legitimate one, and short enough that a wedged manager
// is restarted within the quarter hour.
const DefaultStallTimeout = 10 * time.Minute

// cacheSyncTimeout bounds how long one /readyz request waits for the caches: kubelet's probe gives
// up after a second, and a synced cache answers at once.
const cacheSyncTimeout = 500 * time.Millisecond

// cacheSynced is the part of the manager's cache readiness depends on.
type cacheSynced interface {
	WaitForCacheSync(ctx context.Context) bool
}

// cacheSyncedCheck is the readiness check: it fails until the manager's cache has started and every
// informer in it has synced, so a replica is not Ready while it would act on an empty cache. It asks
// again on each probe, because the leader adds informers when its controllers start.
//
// A standby replica (leader election lost to another) is Ready as soon as its cache has started:
// it is healthy and only waiting for the lease; failing it would page someone for a replica that is
// doing what it should, and Ready says nothing about leadership (the Lease does).
func cacheSyncedCheck(c cacheSynced, timeout time.Duration) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), timeout)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return errors.New("the caches have not synced yet")
		}
		return nil
	}
}

// progressWatchdog is the liveness check: it fails when reconciles are running but none has
// finished for stallAfter, i.e. every busy worker is stuck (a deadlock, a call that never returns).
//
// It looks at finished reconciles, not at the queue's length, so that it cannot flap under load: a
// burst of 10,000 tokens keeps every worker busy and the queue long for a long time, but workers
// keep finishing items, and each finish counts as progress. An idle manager (nothing in flight) and
// a standby replica (no controllers running) are always live. When work starts after an idle spell,
// the clock starts then, not at the last finish before the spell.
type progressWatchdog struct {
	clock      clock.PassiveClock
	stallAfter time.Duration

	mu         sync.Mutex
	inFlight   int
	progressAt time.Time // the last finish, or the start of work after an idle spell
}

func newProgressWatchdog(c clock.PassiveClock, stallAfter time.Duration) *progressWatchdog {
	return &progressWatchdog{clock: c, stallAfter: stallAfter, progressAt: c.Now()}
}

// ReconcileStarted records a reconcile starting; the returned function records it finishing (once,
// however often it is called).
func (w *progressWatchdog) ReconcileStarted() (finished func()) {
	w.mu.Lock()
	if w.inFlight == 0 {
		w.progressAt = w.clock.Now()
	}
	w.inFlight++
	w.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			w.inFlight--
			w.progressAt = w.clock.Now()
			w.mu.Unlock()
		})
	}
}

// Check is a healthz.Checker.
func (w *progressWatchdog) Check(*http.Request) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if stalled := w.clock.Since(w.progressAt); w.inFlight > 0 && stalled > w.stallAfter {
		return fmt.Errorf("%d reconciles running and none finished for %s (--liveness-stall-timeout=%s)",
			w.inFlight, stalled.Truncate(time.Second), w.stallAfter)
	}
	return nil
}

// addProbes registers /readyz (the caches have synced) and /healthz (the watchdog, or only an
// answer when the watchdog is off).
func addProbes(mgr manager.Manager, watchdog *progressWatchdog, watch bool) {
	live := healthz.Ping
	if watch {
		live = watchdog.Check
	}
	must(mgr.AddHealthzCheck("reconciles-progress", live))
	must(mgr.AddReadyzCheck("caches-synced", cacheSyncedCheck(mgr.GetCache(), cacheSyncTimeout)))
}
