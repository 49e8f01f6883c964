package controllers

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// ReconcileObserver is told when each reconcile of every controller starts and finishes; the
// manager's liveness check (cmd/manager/health.go) uses it to tell a busy manager from a wedged one.
type ReconcileObserver interface {
	// ReconcileStarted is called as a reconcile of the named controller starts; the function it
	// returns as it finishes.
	ReconcileStarted(controller string) (finished func())
}

// watchedBy wraps r, the reconciler of the named controller, so that o sees each of its reconciles;
// a nil o leaves r as it is.
func watchedBy(r reconcile.Reconciler, o ReconcileObserver, controller string) reconcile.Reconciler {
	if o == nil {
		return r
	}
	return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		defer o.ReconcileStarted(controller)()
		return r.Reconcile(ctx, req)
	})
}
