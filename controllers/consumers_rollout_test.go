package controllers

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
