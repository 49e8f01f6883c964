package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// restartDebounce is the least time between two restarts of one workload. Rotations that land while
// a restart waits are served by it: a burst of rotations (or several NomadTokens feeding one
// Deployment) rolls the workload once per window, not once per token.
const restartDebounce = 30 * time.Second

// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;patch

// restartConsumers rolls spec.rotation.restartTargets after the PAT changed, by stamping their pod
// template with the restart time, so pods that read the token as an environment variable pick up the
// new one. Pods that mount the Secret as a volume need no restart (kubelet refreshes the file; subPath
// mounts excepted). The first PAT restarts nothing: pods read it when they start. It returns how long
// to wait when a target was restarted too recently.
func (r *NomadTokenReconciler) restartConsumers(ctx context.Context, token *v1alpha1.NomadToken) (time.Duration, error) {
	st := &token.Status
	if st.TokenID == "" || st.RestartedForTokenID == st.TokenID {
		return 0, nil
	}
	targets := token.Spec.Rotation.RestartTargets
	if len(targets) == 0 || st.LastRotationTime == nil {
		st.RestartedForTokenID = st.TokenID
		return 0, nil
	}
	now := r.Clock.Now()
	type target struct {
		kind string
		obj  client.Object
	}
	var found []target
	for _, t := range targets {
		obj, err := workload(t.Kind)
		if err != nil {
			return 0, err
		}
		err = r.APIReader.Get(ctx, types.NamespacedName{Namespace: token.Namespace, Name: t.Name}, obj)
		if apierrors.IsNotFound(err) {
			r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.EventRestartTargetNotFound, "Restart",
				"%s %s not found; it was not restarted", t.Kind, t.Name)
			continue
		}
		if err != nil {
			return 0, err
		}
		last, ok := lastRestart(obj)
		if ok && last.After(st.LastRotationTime.Truncate(time.Second)) {
			// Rolled after this PAT reached the Secret (for another token, or for this one before a
			// lost status write): its pods already read the new PAT.
			continue
		}
		if ok && now.Sub(last) < restartDebounce {
			return restartDebounce - now.Sub(last), nil
		}
		found = append(found, target{t.Kind, obj})
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{v1alpha1.AnnotationRestartedAt: now.UTC().Format(time.RFC3339)}}}}})
	for _, t := range found {
		if err := r.Patch(ctx, t.obj, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(FieldManager)); err != nil {
			return 0, err
		}
		log.FromContext(ctx).Info("restarted consumer for new PAT", "kind", t.kind, "name", t.obj.GetName(), "tokenID", st.TokenID)
		r.Recorder.Eventf(token, nil, corev1.EventTypeNormal, v1alpha1.EventRestartedTarget, "Restart",
			"Restarted %s %s for PAT %s", t.kind, t.obj.GetName(), st.TokenID)
	}
	st.RestartedForTokenID = st.TokenID
	return 0, nil
}

func workload(kind string) (client.Object, error) {
	switch kind {
	case "Deployment":
		return &appsv1.Deployment{}, nil
	case "StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "DaemonSet":
		return &appsv1.DaemonSet{}, nil
	}
	return nil, fmt.Errorf("restart target kind %q is not one of Deployment, StatefulSet, DaemonSet", kind)
}

// lastRestart reads the restart stamp of a workload's pod template.
func lastRestart(obj client.Object) (time.Time, bool) {
	var annotations map[string]string
	switch w := obj.(type) {
	case *appsv1.Deployment:
		annotations = w.Spec.Template.Annotations
	case *appsv1.StatefulSet:
		annotations = w.Spec.Template.Annotations
	case *appsv1.DaemonSet:
		annotations = w.Spec.Template.Annotations
	}
	t, err := time.Parse(time.RFC3339, annotations[v1alpha1.AnnotationRestartedAt])
	return t, err == nil
}
