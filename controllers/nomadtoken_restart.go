package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// restartTarget is an entry of spec.rotation.restartTargets as the API server has it now.
type restartTarget struct {
	kind string
	obj  client.Object // nil when the workload does not exist
}

// restartConsumers rolls spec.rotation.restartTargets after the PAT changed, by stamping their pod
// template with the restart time, so pods that read the token as an environment variable pick up the
// new one. Pods that mount the Secret as a volume need no restart (kubelet refreshes the file; subPath
// mounts excepted). A restart is owed when the new PAT replaced another token in the Secret
// (status.lastRotationTime, set by store even when status tracked no PAT before, as after revoke-now
// without a successor): the first token a Secret holds restarts nothing, pods read it when they start.
//
// Only workloads that opt in (AnnotationRestartOnRotation naming this token) are rolled: otherwise
// whoever may create a NomadToken could restart any workload of the namespace through the operator.
// The RestartTargets condition says which targets lack the opt-in. The workloads are read live (they
// are not cached or watched) when a restart is owed, and otherwise only when the opt-in check is due
// (optInCheckDue), so steady reconciles cost no reads.
//
// It returns how long to wait: for a target restarted too recently, or, while a target lacks the
// opt-in, until the next check, so that annotating it is noticed without a rotation.
func (r *NomadTokenReconciler) restartConsumers(ctx context.Context, token *v1alpha1.NomadToken) (time.Duration, error) {
	st := &token.Status
	targets := token.Spec.Rotation.RestartTargets
	owed := st.TokenID != "" && st.RestartedForTokenID != st.TokenID
	if owed && (len(targets) == 0 || st.LastRotationTime == nil) {
		st.RestartedForTokenID = st.TokenID
		owed = false
	}
	if len(targets) == 0 {
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionRestartTargets)
		r.optInChecks.Delete(client.ObjectKeyFromObject(token))
		return 0, nil
	}
	if !owed && !r.optInCheckDue(token) {
		return r.optInRecheck(token), nil
	}
	current, err := r.readRestartTargets(ctx, token, owed)
	if err != nil {
		return 0, err
	}
	r.reportOptIn(token, current)
	if !owed {
		return r.optInRecheck(token), nil
	}
	if wait, err := r.restart(ctx, token, current); wait > 0 || err != nil {
		return wait, err
	}
	st.RestartedForTokenID = st.TokenID
	return r.optInRecheck(token), nil
}

// readRestartTargets reads every restart target live. A missing one is reported when a restart is owed.
func (r *NomadTokenReconciler) readRestartTargets(ctx context.Context, token *v1alpha1.NomadToken, owed bool) ([]restartTarget, error) {
	var current []restartTarget
	for _, t := range token.Spec.Rotation.RestartTargets {
		obj, err := workload(t.Kind)
		if err != nil {
			return nil, err
		}
		err = r.APIReader.Get(ctx, types.NamespacedName{Namespace: token.Namespace, Name: t.Name}, obj)
		if apierrors.IsNotFound(err) {
			if owed {
				r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.EventRestartTargetNotFound, "Restart",
					"%s %s not found; it was not restarted", t.Kind, t.Name)
			}
			obj = nil
		} else if err != nil {
			return nil, err
		}
		current = append(current, restartTarget{t.Kind, obj})
	}
	r.optInChecks.Store(client.ObjectKeyFromObject(token), r.Clock.Now())
	return current, nil
}

// restart rolls the opted-in targets not yet served since the last rotation. It returns how long to
// wait when one of them was restarted too recently.
func (r *NomadTokenReconciler) restart(ctx context.Context, token *v1alpha1.NomadToken, current []restartTarget) (time.Duration, error) {
	st := &token.Status
	now := r.Clock.Now()
	var due []restartTarget
	for _, t := range current {
		if t.obj == nil {
			continue
		}
		if !optsIn(t.obj.GetAnnotations(), token.Name) {
			log.FromContext(ctx).Info("restart target does not opt in; not restarted for the new PAT", "kind", t.kind, "name", t.obj.GetName(), "tokenID", st.TokenID)
			continue
		}
		last, ok := lastRestart(t.obj)
		if ok && last.After(st.LastRotationTime.Truncate(time.Second)) {
			// Rolled after this PAT reached the Secret (for another token, or for this one before a
			// lost status write): its pods already read the new PAT.
			continue
		}
		if ok && now.Sub(last) < restartDebounce {
			return restartDebounce - now.Sub(last), nil
		}
		due = append(due, t)
	}
	for _, t := range due {
		// The resourceVersion read makes the patch fail if the workload changed since, such as its
		// opt-in annotation being removed: the retry reads it again.
		patch, _ := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": t.obj.GetResourceVersion()},
			"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
				"annotations": map[string]string{v1alpha1.AnnotationRestartedAt: now.UTC().Format(time.RFC3339)}}}}})
		if err := r.Patch(ctx, t.obj, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(FieldManager)); err != nil {
			return 0, err
		}
		log.FromContext(ctx).Info("restarted consumer for new PAT", "kind", t.kind, "name", t.obj.GetName(), "tokenID", st.TokenID)
		r.Recorder.Eventf(token, nil, corev1.EventTypeNormal, v1alpha1.EventRestartedTarget, "Restart",
			"Restarted %s %s for PAT %s", t.kind, t.obj.GetName(), st.TokenID)
	}
	return 0, nil
}

// optInCheckDue says whether the targets' opt-in must be read again although no restart is owed:
// the condition is missing or older than the spec (restartTargets may have changed), or the last
// read is older than the recheck interval (a target may have been annotated, or its annotation
// removed). The workloads are not watched: the operator would need list and watch on every
// Deployment, StatefulSet and DaemonSet of the cluster for a change that is rare. The time of the
// last read is kept in memory; after a restart of the operator one more read is cheap.
func (r *NomadTokenReconciler) optInCheckDue(token *v1alpha1.NomadToken) bool {
	c := meta.FindStatusCondition(token.Status.Conditions, v1alpha1.ConditionRestartTargets)
	if c == nil || c.ObservedGeneration != token.Generation {
		return true
	}
	last, ok := r.optInChecks.Load(client.ObjectKeyFromObject(token))
	return !ok || r.Clock.Since(last.(time.Time)) >= r.optInRecheckInterval()
}

// optInRecheck is when to read the targets again although nothing else wakes the token: only while
// one lacks the opt-in. A token whose targets all opted in is checked again on its next reconcile
// after the interval (or at its next rotation), with no wake-up of its own.
func (r *NomadTokenReconciler) optInRecheck(token *v1alpha1.NomadToken) time.Duration {
	if meta.IsStatusConditionFalse(token.Status.Conditions, v1alpha1.ConditionRestartTargets) {
		return r.optInRecheckInterval()
	}
	return 0
}

func (r *NomadTokenReconciler) optInRecheckInterval() time.Duration {
	return orDefault(r.RestartTargetsRecheck, DefaultVerificationInterval)
}

// reportOptIn sets the RestartTargets condition and, when it changed, emits a Warning per target
// that lacks the opt-in, so the same finding is told once, not on every check.
func (r *NomadTokenReconciler) reportOptIn(token *v1alpha1.NomadToken, current []restartTarget) {
	notOptedIn, changed := setRestartTargetsCondition(token, current)
	if !changed {
		return
	}
	for _, t := range notOptedIn {
		r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.EventRestartTargetNotOptedIn, "Restart",
			"%s %s is not restarted after rotations: it does not opt in (%s)", t.kind, t.obj.GetName(), optInFix(token, t))
	}
}

// setRestartTargetsCondition sets RestartTargets from the existing targets' opt-in (a missing target
// has no say). It returns the targets that lack it and whether the condition changed.
func setRestartTargetsCondition(token *v1alpha1.NomadToken, current []restartTarget) ([]restartTarget, bool) {
	var notOptedIn []restartTarget
	var fixes []string
	for _, t := range current {
		if t.obj != nil && !optsIn(t.obj.GetAnnotations(), token.Name) {
			notOptedIn = append(notOptedIn, t)
			fixes = append(fixes, fmt.Sprintf("%s %s (%s)", t.kind, t.obj.GetName(), optInFix(token, t)))
		}
	}
	status, reason := metav1.ConditionTrue, v1alpha1.ReasonRestartTargetsOptedIn
	msg := fmt.Sprintf("every existing restart target lists %s in its %s annotation", token.Name, v1alpha1.AnnotationRestartOnRotation)
	if len(notOptedIn) > 0 {
		status, reason = metav1.ConditionFalse, v1alpha1.ReasonRestartTargetNotOptedIn
		msg = "these restart targets are not restarted after rotations until they opt in: " + strings.Join(fixes, "; ")
	}
	before := meta.FindStatusCondition(token.Status.Conditions, v1alpha1.ConditionRestartTargets)
	changed := before == nil || before.Status != status || before.Reason != reason || before.Message != msg
	setCondition(&token.Status.Conditions, token.Generation, v1alpha1.ConditionRestartTargets, status, reason, msg)
	return notOptedIn, changed
}

// optsIn reports whether a workload's annotations opt it in to restarts by the NomadToken named
// token: AnnotationRestartOnRotation lists it, comma-separated. "*" is no wildcard (it names no
// token): a workload opts in to each token by name, so a new NomadToken cannot restart it unasked.
func optsIn(annotations map[string]string, token string) bool {
	for _, name := range strings.Split(annotations[v1alpha1.AnnotationRestartOnRotation], ",") {
		if strings.TrimSpace(name) == token {
			return true
		}
	}
	return false
}

// optInFix is the command that opts target t in to token's restarts, keeping the tokens it names.
func optInFix(token *v1alpha1.NomadToken, t restartTarget) string {
	key := v1alpha1.AnnotationRestartOnRotation
	ref := fmt.Sprintf("-n %s %s/%s", token.Namespace, strings.ToLower(t.kind), t.obj.GetName())
	value, annotated := t.obj.GetAnnotations()[key]
	if !annotated {
		return fmt.Sprintf("kubectl annotate %s %s=%s", ref, key, token.Name)
	}
	var names []string
	for _, n := range strings.Split(value, ",") {
		if n = strings.TrimSpace(n); n != "" && n != "*" {
			names = append(names, n)
		}
	}
	hint := fmt.Sprintf("add %s to the existing list", token.Name)
	switch {
	case strings.Contains(value, "*"):
		hint = `"*" is not accepted: name each NomadToken`
	case len(names) == 0:
		hint = "its value names no NomadToken"
	}
	return fmt.Sprintf("%s: kubectl annotate --overwrite %s %s=%s", hint, ref, key, strings.Join(append(names, token.Name), ","))
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
