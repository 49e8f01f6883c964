package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// SetupWithManager wires the watches: NomadTokens (spec changes, deletion and the periodic resync
// only, so GitOps label churn and our own status writes cause nothing), the Secrets they own (through a cache the manager
// restricts to the operator's label), and NomadConnections (a connection turning Ready releases the
// tokens waiting for it).
func (r *NomadTokenReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.NomadToken{}, dependsOnIndex,
		func(o client.Object) []string { return connectionsNeededBy(o.(*v1alpha1.NomadToken)) }); err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.NomadToken{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionStarted{}, resync{}, requestAnnotationChanged{}))).
		Owns(&corev1.Secret{}).
		Watches(&v1alpha1.NomadConnection{}, handler.EnqueueRequestsFromMapFunc(r.tokensOfConnection), builder.WithPredicates(readinessChanged{}))
	if r.Verifier != nil {
		b = b.WatchesRawSource(source.Channel(r.Verifier.events, &handler.EnqueueRequestForObject{}))
	}
	return b.Named("nomadtoken").
		WithOptions(controller.Options{RateLimiter: nomadBackoff()}).Complete(r)
}

// tokensOfConnection maps a connection to the NomadTokens that depend on it, so that a connection
// turning Ready (or created again) wakes both the tokens waiting to mint and those waiting to revoke.
func (r *NomadTokenReconciler) tokensOfConnection(ctx context.Context, o client.Object) []reconcile.Request {
	tokens, err := tokensOfConnection(ctx, r, client.ObjectKeyFromObject(o))
	if err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(tokens))
	for _, t := range tokens {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&t)})
	}
	return reqs
}

// deletionStarted passes the update that sets deletionTimestamp, which changes no generation.
type deletionStarted struct{ predicate.Funcs }

func (deletionStarted) Update(e event.UpdateEvent) bool {
	return e.ObjectOld.GetDeletionTimestamp() == nil && e.ObjectNew.GetDeletionTimestamp() != nil
}

// resync passes the informer's periodic resync (the same object delivered again), so every token is
// re-examined now and then even if an event was missed; a healthy token costs nothing then.
type resync struct{ predicate.Funcs }

func (resync) Update(e event.UpdateEvent) bool {
	return e.ObjectOld.GetResourceVersion() == e.ObjectNew.GetResourceVersion()
}

// requestAnnotationChanged passes a new value of the rotate or revoke-now annotation; other metadata
// changes (GitOps labels, last-applied-configuration) stay silent.
type requestAnnotationChanged struct{ predicate.Funcs }

func (requestAnnotationChanged) Update(e event.UpdateEvent) bool {
	for _, key := range []string{v1alpha1.AnnotationRotate, v1alpha1.AnnotationRevokeNow} {
		if e.ObjectOld.GetAnnotations()[key] != e.ObjectNew.GetAnnotations()[key] {
			return true
		}
	}
	return false
}

// readinessChanged passes the NomadConnection updates its tokens act on: a new check result (Ready,
// for its generation) or the start of its deletion. Its other status writes (PAT counts, orphans, held
// Secrets) would wake every token of the connection for nothing.
type readinessChanged struct{ predicate.Funcs }

func (readinessChanged) Update(e event.UpdateEvent) bool {
	old, cur := e.ObjectOld.(*v1alpha1.NomadConnection), e.ObjectNew.(*v1alpha1.NomadConnection)
	oldReady := meta.FindStatusCondition(old.Status.Conditions, v1alpha1.ConditionReady)
	newReady := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady)
	return old.Status.ObservedGeneration != cur.Status.ObservedGeneration ||
		(oldReady == nil) != (newReady == nil) || oldReady != nil && (oldReady.Status != newReady.Status || oldReady.Reason != newReady.Reason) ||
		old.DeletionTimestamp.IsZero() != cur.DeletionTimestamp.IsZero()
}
