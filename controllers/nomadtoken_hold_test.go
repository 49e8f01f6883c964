package controllers

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// A token mints nothing until its connection holds itself and its Secrets for it, and minting follows
// as soon as the hold lands.
func TestMintingWaitsForTheConnectionsInUseHold(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	conn := w.oasis(t)
	// The connection's workers have not come to it yet: no finalizer, no Secret held.
	conn.Finalizers = nil
	if err := w.client.Update(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	conn.Status.InUseSecrets = nil
	if err := w.client.Status().Update(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	unheld := conn.DeepCopy()
	res := w.mustReconcile(t)
	if got := w.stub.Calls()["create"]; got != 0 {
		t.Fatalf("creates = %d before the connection holds itself for the token", got)
	}
	if c := readyCondition(t, w.token(t)); c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonProgressing || !strings.Contains(c.Message, v1alpha1.FinalizerInUse) {
		t.Fatalf("Ready = %s %s %q, want Progressing, naming the hold", c.Status, c.Reason, c.Message)
	}
	if res.RequeueAfter <= 0 || res.RequeueAfter > holdRecheck {
		t.Fatalf("requeue after %s, want a look again within %s", res.RequeueAfter, holdRecheck)
	}

	// The connection holds its Secret, then itself: the token is woken, and mints.
	conn.Status.InUseSecrets = []string{"bot"}
	if err := w.client.Status().Update(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	conn.Finalizers = []string{v1alpha1.FinalizerInUse}
	if err := w.client.Update(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	if !(readinessChanged{}).Update(event.UpdateEvent{ObjectOld: unheld, ObjectNew: conn}) {
		t.Fatal("the hold landing must wake the connection's tokens")
	}
	w.mustReconcile(t)
	w.assertOneActivePATInSecret(t)
}
