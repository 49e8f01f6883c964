package controllers

import (
	"context"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

type countingObserver struct{ started, finished int }

func (o *countingObserver) ReconcileStarted() func() {
	o.started++
	return func() { o.finished++ }
}

func TestWatchedByReportsEachReconcile(t *testing.T) {
	o := &countingObserver{}
	var inside int
	r := watchedBy(reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
		inside = o.started - o.finished // 1 while running
		return reconcile.Result{}, nil
	}), o)
	if _, err := r.Reconcile(context.Background(), reconcile.Request{}); err != nil {
		t.Fatal(err)
	}
	if o.started != 1 || o.finished != 1 || inside != 1 {
		t.Errorf("started %d, finished %d, in flight while running %d; want 1, 1, 1", o.started, o.finished, inside)
	}
	plain := reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) { return reconcile.Result{}, nil })
	if got := watchedBy(plain, nil); got == nil {
		t.Error("a nil observer must leave the reconciler in place")
	}
}
