package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// These tests put a NomadToken behind its connection's guard (internal/nomad/guard.go): an open
// circuit breaker is a fast, visible NomadUnavailable; the connection's own limits (its rate limit
// here) are a quiet requeue that leaves no intent behind.

func TestOpenBreakerFailsTheTokenFastAndSaysSo(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.r.Resolver.Pool.Guard = &nomad.GuardOptions{BreakerFailures: 1, BreakerCooldown: time.Hour}
	w.stub.InjectFault(nomadstub.OpCreate, 1, nomadstub.Fault{Status: 503})
	if err := w.reconcile(t); !nomad.IsTransient(err) {
		t.Fatalf("reconcile = %v; want NOMAD's 503", err)
	}
	before := w.stub.Calls()

	res, err := w.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: w.key})
	if err != nil || res.RequeueAfter < 59*time.Minute || res.RequeueAfter > time.Hour {
		t.Fatalf("reconcile = %+v, %v; want a requeue at the end of the breaker's cool-down", res, err)
	}
	ready := meta.FindStatusCondition(w.token(t).Status.Conditions, v1alpha1.ConditionReady)
	if ready == nil || ready.Status != "False" || ready.Reason != v1alpha1.ReasonNomadUnavailable || !strings.Contains(ready.Message, "circuit breaker open") {
		t.Fatalf("Ready = %+v; want NomadUnavailable saying the breaker is open", ready)
	}
	for op, n := range w.stub.Calls() {
		if n != before[op] {
			t.Errorf("%s calls went from %d to %d: nothing may reach a NOMAD behind an open breaker", op, before[op], n)
		}
	}
}

func TestRateLimitedCreateIsRequeuedQuietlyWithoutAnIntent(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	// One request a second, and no wait for it at all: the first request takes the only token, and
	// the next is refused with the time until the limiter has one again.
	w.r.Resolver.Pool.Guard = &nomad.GuardOptions{MaxRateWait: time.Nanosecond}
	ctx := context.Background()
	conn := &v1alpha1.NomadConnection{}
	key := types.NamespacedName{Namespace: w.key.Namespace, Name: "oasis"}
	if err := w.client.Get(ctx, key, conn); err != nil {
		t.Fatal(err)
	}
	conn.Spec.RateLimit = &v1alpha1.RateLimit{QPS: 1, Burst: 1}
	if err := w.client.Update(ctx, conn); err != nil {
		t.Fatal(err)
	}
	conn.Status.ObservedGeneration = conn.Generation
	if err := w.client.Status().Update(ctx, conn); err != nil {
		t.Fatal(err)
	}

	res, err := w.r.Reconcile(ctx, ctrl.Request{NamespacedName: w.key})
	if err != nil || res.RequeueAfter <= 0 || res.RequeueAfter > 2*time.Second {
		t.Fatalf("reconcile = %+v, %v; want a requeue when the rate limit allows, and no error (no backoff)", res, err)
	}
	tok := w.token(t)
	if tok.Status.PendingIssuance != nil {
		t.Errorf("pendingIssuance = %+v; a create never sent must leave no intent", tok.Status.PendingIssuance)
	}
	if ready := meta.FindStatusCondition(tok.Status.Conditions, v1alpha1.ConditionReady); ready == nil || ready.Reason != v1alpha1.ReasonProgressing {
		t.Errorf("Ready = %+v; want Progressing: nothing is wrong with NOMAD", ready)
	}
	if n := w.stub.Calls()[nomadstub.OpCreate]; n != 0 {
		t.Errorf("%d creates reached NOMAD, want 0", n)
	}
}
