package controllers

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

func TestRolloutFinished(t *testing.T) {
	gen := metav1.ObjectMeta{Generation: 3}
	deploy := func(replicas int32, s appsv1.DeploymentStatus) client.Object {
		return &appsv1.Deployment{ObjectMeta: gen, Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas)}, Status: s}
	}
	sts := func(replicas int32, s appsv1.StatefulSetStatus) client.Object {
		return &appsv1.StatefulSet{ObjectMeta: gen, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(replicas)}, Status: s}
	}
	ds := func(s appsv1.DaemonSetStatus) client.Object { return &appsv1.DaemonSet{ObjectMeta: gen, Status: s} }
	cases := []struct {
		name string
		obj  client.Object
		done bool
	}{
		{"Deployment rolled out", deploy(3, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}), true},
		{"Deployment whose controller has not seen the template", deploy(3, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}), false},
		{"Deployment with pods of the old template", deploy(3, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 4, UpdatedReplicas: 3, AvailableReplicas: 3}), false},
		{"Deployment partly updated", deploy(3, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 3, UpdatedReplicas: 1, AvailableReplicas: 3}), false},
		{"Deployment updated, not available (image pull stuck)", deploy(3, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 2}), false},
		{"Deployment scaled to zero", deploy(0, appsv1.DeploymentStatus{ObservedGeneration: 3}), true},
		{"StatefulSet rolled out", sts(2, appsv1.StatefulSetStatus{ObservedGeneration: 3, UpdatedReplicas: 2, AvailableReplicas: 2, CurrentRevision: "b", UpdateRevision: "b"}), true},
		{"StatefulSet OnDelete, pods not deleted yet", sts(2, appsv1.StatefulSetStatus{ObservedGeneration: 3, UpdatedReplicas: 0, AvailableReplicas: 2, CurrentRevision: "a", UpdateRevision: "b"}), false},
		{"StatefulSet with a partition", sts(2, appsv1.StatefulSetStatus{ObservedGeneration: 3, UpdatedReplicas: 1, AvailableReplicas: 2, CurrentRevision: "a", UpdateRevision: "b"}), false},
		{"DaemonSet rolled out", ds(appsv1.DaemonSetStatus{ObservedGeneration: 3, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 4, NumberAvailable: 4}), true},
		{"DaemonSet partly updated", ds(appsv1.DaemonSetStatus{ObservedGeneration: 3, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 3, NumberAvailable: 4}), false},
		{"DaemonSet updated, not available", ds(appsv1.DaemonSetStatus{ObservedGeneration: 3, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 4, NumberAvailable: 3}), false},
	}
	for _, c := range cases {
		if done, why := rolloutFinished(c.obj); done != c.done || !done && why == "" {
			t.Errorf("%s: finished %v (%q), want %v with a reason when not", c.name, done, why, c.done)
		}
	}
}

// Every list may decide the fate of an old PAT waiting past its grace period: the list wakes its
// token even when nothing about the current PAT changed.
func TestAListWakesATokenWaitingForItsConsumers(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	v := NewVerifier(0)
	token := func(name string, graceEnd time.Time) v1alpha1.NomadToken {
		return v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name},
			Spec: v1alpha1.NomadTokenSpec{ConnectionRef: v1alpha1.ConnectionRef{Name: "oasis"}},
			Status: v1alpha1.NomadTokenStatus{TokenID: "cur-" + name, ConnectionName: "oasis", IssuedAt: &metav1.Time{Time: now.Add(-time.Hour)},
				PreviousTokenID: "old-" + name, PreviousTokenRevokeAt: &metav1.Time{Time: graceEnd},
				PreviousTokenRevokeBy: &metav1.Time{Time: now.Add(time.Hour)}}}
	}
	waiting, inGrace := token("waiting", now.Add(-time.Minute)), token("in-grace", now.Add(time.Minute))
	conn := &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "oasis"}}
	active := []nomad.PAT{{ID: "cur-waiting"}, {ID: "old-waiting"}, {ID: "cur-in-grace"}, {ID: "old-in-grace"}}
	v.record(context.Background(), conn, "acct", active, now, 0, []v1alpha1.NomadToken{waiting, inGrace})
	var woken []string
	for len(v.Events()) > 0 {
		woken = append(woken, (<-v.Events()).Object.GetName())
	}
	if len(woken) != 1 || woken[0] != "waiting" {
		t.Fatalf("woken %v, want only the token waiting past its grace period", woken)
	}
}
