package controllers

import (
	"context"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

type countingObserver struct {
	started, finished int
	controller        string
}

func (o *countingObserver) ReconcileStarted(controller string) func() {
	o.started++
	o.controller = controller
	return func() { o.finished++ }
}

func TestWatchedByReportsEachReconcile(t *testing.T) {
	o := &countingObserver{}
	var inside int
	r := watchedBy(reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
		inside = o.started - o.finished // 1 while running
		return reconcile.Result{}, nil
	}), o, "nomadtoken")
	if _, err := r.Reconcile(context.Background(), reconcile.Request{}); err != nil {
		t.Fatal(err)
	}
	if o.started != 1 || o.finished != 1 || inside != 1 || o.controller != "nomadtoken" {
		t.Errorf("started %d, finished %d, in flight while running %d, controller %q; want 1, 1, 1, nomadtoken",
			o.started, o.finished, inside, o.controller)
	}
}
