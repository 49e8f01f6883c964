package controllers

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// rollingTargets names the restart targets whose pods may still hold the previous PAT: each one the
// operator restarted for the current PAT whose rollout has not finished, read live. A target that does
// not exist, does not opt in, or was not restarted for this PAT holds nothing (its pods are not being
// replaced for the new token, so waiting on them would only ever end at maxGracePeriod; NOMAD's last
// use covers them). While the restart itself is still owed, every target holds.
func (r *NomadTokenReconciler) rollingTargets(ctx context.Context, token *v1alpha1.NomadToken) []string {
	st := token.Status
	targets := token.Spec.Rotation.RestartTargets
	if len(targets) == 0 || st.LastRotationTime == nil {
		return nil
	}
	key := client.ObjectKeyFromObject(token)
	if done, ok := r.rolloutsDone.Load(key); ok && done == st.TokenID {
		return nil // read as finished for this PAT: not read again on every wake-up of the wait
	}
	var rolling []string
	for _, t := range targets {
		name := t.Kind + " " + t.Name
		if st.RestartedForTokenID != st.TokenID {
			rolling = append(rolling, name+" (restart not done yet)")
			continue
		}
		obj, err := workload(t.Kind)
		if err != nil {
			continue
		}
		err = r.APIReader.Get(ctx, types.NamespacedName{Namespace: token.Namespace, Name: t.Name}, obj)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			rolling = append(rolling, name+" (could not be read: "+err.Error()+")")
			continue
		}
		last, restarted := lastRestart(obj)
		if !restarted || !optsIn(obj.GetAnnotations(), token.Name) || last.Before(st.LastRotationTime.Truncate(time.Second)) {
			continue
		}
		if done, why := rolloutFinished(obj); !done {
			rolling = append(rolling, name+" ("+why+")")
		}
	}
	if len(rolling) == 0 {
		r.rolloutsDone.Store(key, st.TokenID)
	}
	return rolling
}

// rolloutFinished reports whether a workload's status shows its current pod template rolled out:
// every pod of the template, and no other, available. It says what is left when not.
//
// A StatefulSet or DaemonSet with updateStrategy OnDelete replaces a pod only when someone deletes
// it, so it finishes once every old pod was deleted (or at maxGracePeriod). A StatefulSet's
// RollingUpdate partition leaves pods below it on the old template: it is not finished either.
func rolloutFinished(obj client.Object) (bool, string) {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		s, want := w.Status, replicasOf(w.Spec.Replicas)
		switch {
		case s.ObservedGeneration < w.Generation:
			return false, "its controller has not seen the new template yet"
		case s.UpdatedReplicas < want:
			return false, fmt.Sprintf("%d of %d pods updated", s.UpdatedReplicas, want)
		case s.Replicas > s.UpdatedReplicas:
			return false, fmt.Sprintf("%d old pods still running", s.Replicas-s.UpdatedReplicas)
		case s.AvailableReplicas < s.UpdatedReplicas:
			return false, fmt.Sprintf("%d of %d updated pods available", s.AvailableReplicas, s.UpdatedReplicas)
		}
	case *appsv1.StatefulSet:
		s, want := w.Status, replicasOf(w.Spec.Replicas)
		switch {
		case s.ObservedGeneration < w.Generation:
			return false, "its controller has not seen the new template yet"
		case s.UpdatedReplicas < want || s.UpdateRevision != "" && s.CurrentRevision != s.UpdateRevision && want > 0:
			return false, fmt.Sprintf("%d of %d pods updated", s.UpdatedReplicas, want)
		case s.AvailableReplicas < want:
			return false, fmt.Sprintf("%d of %d pods available", s.AvailableReplicas, want)
		}
	case *appsv1.DaemonSet:
		s := w.Status
		switch {
		case s.ObservedGeneration < w.Generation:
			return false, "its controller has not seen the new template yet"
		case s.UpdatedNumberScheduled < s.DesiredNumberScheduled:
			return false, fmt.Sprintf("%d of %d pods updated", s.UpdatedNumberScheduled, s.DesiredNumberScheduled)
		case s.NumberAvailable < s.DesiredNumberScheduled:
			return false, fmt.Sprintf("%d of %d pods available", s.NumberAvailable, s.DesiredNumberScheduled)
		}
	}
	return true, ""
}

func replicasOf(spec *int32) int32 {
	if spec == nil {
		return 1
	}
	return *spec
}
