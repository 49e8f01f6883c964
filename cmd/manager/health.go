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

// stallRequestsFactor is how many NOMAD requests, each up to --nomad-request-timeout, one
// reconcile may legitimately wait for (a login, a create, a revoke, a retry): a stall timeout
// below that many timeouts would restart a manager that is only slow.
const stallRequestsFactor = 4

// validateStallTimeout refuses a --liveness-stall-timeout that a legitimate reconcile can exceed.
func validateStallTimeout(stall, requestTimeout time.Duration) error {
	if stall < 0 || stall > 0 && stall < stallRequestsFactor*requestTimeout {
		return fmt.Errorf("--liveness-stall-timeout %s must be 0 (off) or at least %d × --nomad-request-timeout (%s)",
			stall, stallRequestsFactor, stallRequestsFactor*requestTimeout)
	}
	return nil
}

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

// progressWatchdog is the liveness check: it fails when a controller has reconciles running but none
// of them has finished for stallAfter, i.e. every busy worker of that controller is stuck (a
// deadlock, a call that never returns). Each controller is watched on its own, so that wedged
// NomadToken workers are not hidden by connection checks that still finish.
//
// It looks at finished reconciles, not at the queue's length, so that it cannot flap under load: a
// burst of 10,000 tokens keeps every worker busy and the queue long for a long time, but workers
// keep finishing items, and each finish counts as progress. An idle controller (nothing in flight)
// and a standby replica (no controllers running) are always live. When work starts after an idle
// spell, the clock starts then, not at the last finish before the spell.
type progressWatchdog struct {
	clock      clock.PassiveClock
	stallAfter time.Duration

	mu          sync.Mutex
	controllers map[string]*progress
}

// progress is one controller's: its reconciles in flight, and the last finish (or the start of work
// after an idle spell).
type progress struct {
	inFlight int
	at       time.Time
}

func newProgressWatchdog(c clock.PassiveClock, stallAfter time.Duration) *progressWatchdog {
	return &progressWatchdog{clock: c, stallAfter: stallAfter, controllers: map[string]*progress{}}
}

// ReconcileStarted records a reconcile of controller starting; the returned function records it
// finishing (once, however often it is called).
func (w *progressWatchdog) ReconcileStarted(controller string) (finished func()) {
	w.mu.Lock()
	p := w.controllers[controller]
	if p == nil {
		p = &progress{}
		w.controllers[controller] = p
	}
	if p.inFlight == 0 {
		p.at = w.clock.Now()
	}
	p.inFlight++
	w.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			p.inFlight--
			p.at = w.clock.Now()
			w.mu.Unlock()
		})
	}
}

// Check is a healthz.Checker.
func (w *progressWatchdog) Check(*http.Request) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, p := range w.controllers {
		if stalled := w.clock.Since(p.at); p.inFlight > 0 && stalled > w.stallAfter {
			return fmt.Errorf("controller %s: %d reconciles running and none finished for %s (--liveness-stall-timeout=%s)",
				name, p.inFlight, stalled.Truncate(time.Second), w.stallAfter)
		}
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
