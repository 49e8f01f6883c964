package controllers

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// A burst of token events for a connection that holds its dependents makes one reconcile request,
// after dependencyBatch; the first dependent of one that does not is enqueued at once.
func TestBatchedEnqueueJoinsABurst(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1e9, 0))
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request](),
		workqueue.TypedRateLimitingQueueConfig[reconcile.Request]{Clock: clk})
	defer q.ShutDown()
	conn := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "team", Name: "oasis"}}
	var holding bool
	h := batchedEnqueue(func(context.Context, client.Object) []reconcile.Request { return []reconcile.Request{conn} },
		func(context.Context, reconcile.Request) bool { return !holding })
	ctx := context.Background()

	// The first dependent of a connection that holds nothing yet is not kept waiting.
	h.Create(ctx, event.CreateEvent{Object: &metav1.PartialObjectMetadata{}}, q)
	if q.Len() != 1 {
		t.Fatalf("%d requests queued for a connection not holding yet, want 1 at once", q.Len())
	}
	got, _ := q.Get()
	q.Done(got)
	holding = true
	for i := 0; i < 100; i++ {
		h.Create(ctx, event.CreateEvent{Object: &metav1.PartialObjectMetadata{}}, q)
		h.Delete(ctx, event.DeleteEvent{Object: &metav1.PartialObjectMetadata{}}, q)
	}
	if q.Len() != 0 {
		t.Fatalf("%d requests queued before the batch delay passed", q.Len())
	}
	clk.Step(dependencyBatch)
	deadline := time.Now().Add(10 * time.Second)
	for q.Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if q.Len() != 1 {
		t.Fatalf("%d requests queued after the batch delay, want 1", q.Len())
	}
	if got, _ := q.Get(); got != conn {
		t.Fatalf("queued %v, want %v", got, conn)
	}
}
