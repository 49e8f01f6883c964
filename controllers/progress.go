package controllers

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// ReconcileObserver is told when each reconcile of every controller starts and finishes; the
// manager's liveness check (cmd/manager/health.go) uses it to tell a busy manager from a wedged one.
type ReconcileObserver interface {
	// ReconcileStarted is called as a reconcile starts; the function it returns as it finishes.
	ReconcileStarted() (finished func())
}

// watchedBy wraps r so that o sees each of its reconciles; a nil o leaves r as it is.
func watchedBy(r reconcile.Reconciler, o ReconcileObserver) reconcile.Reconciler {
	if o == nil {
		return r
	}
	return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		defer o.ReconcileStarted()()
		return r.Reconcile(ctx, req)
	})
}
