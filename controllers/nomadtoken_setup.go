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
		Watches(&v1alpha1.NomadConnection{}, handler.EnqueueRequestsFromMapFunc(r.enqueueTokensOfConnection), builder.WithPredicates(readinessChanged{})).
		// A token leaving a connection frees a place under its policy.maxTokens.
		Watches(&v1alpha1.NomadToken{}, handler.EnqueueRequestsFromMapFunc(r.tokensWaitingForAPlace), builder.WithPredicates(placeFreed{}))
	if r.ClusterConnections {
		// A ClusterNomadConnection's allowedNamespaces may select namespaces by label: a label change
		// lets a namespace's tokens in, or out. Namespaces are cached as metadata only.
		b = b.Watches(&v1alpha1.ClusterNomadConnection{}, handler.EnqueueRequestsFromMapFunc(r.enqueueTokensOfConnection), builder.WithPredicates(readinessChanged{})).
			Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.clusterConnectionUsersIn), builder.OnlyMetadata,
				builder.WithPredicates(predicate.LabelChangedPredicate{}))
	}
	if r.Verifier != nil {
		b = b.WatchesRawSource(source.Channel(r.Verifier.events, &handler.EnqueueRequestForObject{}))
	}
	return b.Named("nomadtoken").
		// Several workers, but never two on one NomadToken: the work queue hands a key to one worker
		// at a time, which is what keeps a token's status writes in order.
		WithOptions(controller.Options{RateLimiter: nomadBackoff(), MaxConcurrentReconciles: max(r.Workers, 1)}).Complete(watchedBy(r, r.Progress, "nomadtoken"))
}

// enqueueTokensOfConnection maps a connection to the NomadTokens that depend on it, so that a connection
// turning Ready (or created again) wakes both the tokens waiting to mint and those waiting to revoke.
func (r *NomadTokenReconciler) enqueueTokensOfConnection(ctx context.Context, o client.Object) []reconcile.Request {
	tokens, err := tokensOfConnection(ctx, r, o.(v1alpha1.Connection))
	if err != nil {
		return nil
	}
	return requestsFor(tokens, func(*v1alpha1.NomadToken) bool { return true })
}

// clusterConnectionUsersIn maps a namespace to its NomadTokens that mint through a ClusterNomadConnection.
func (r *NomadTokenReconciler) clusterConnectionUsersIn(ctx context.Context, o client.Object) []reconcile.Request {
	var tokens v1alpha1.NomadTokenList
	if err := r.List(ctx, &tokens, client.InNamespace(o.GetName()), client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	return requestsFor(tokens.Items, func(t *v1alpha1.NomadToken) bool {
		return t.Spec.ConnectionRef.IsCluster()
	})
}

// tokensWaitingForAPlace maps a NomadToken that leaves a connection (deleted, or pointed elsewhere)
// to the tokens of that connection that policy.maxTokens holds back.
func (r *NomadTokenReconciler) tokensWaitingForAPlace(ctx context.Context, o client.Object) []reconcile.Request {
	token := o.(*v1alpha1.NomadToken)
	namespace, key := token.Namespace, token.Spec.ConnectionRef.Key()
	if token.Spec.ConnectionRef.IsCluster() {
		namespace = ""
	}
	tokens, err := tokensDependingOn(ctx, r, namespace, key, client.UnsafeDisableDeepCopy)
	if err != nil {
		return nil
	}
	return requestsFor(tokens, func(t *v1alpha1.NomadToken) bool {
		c := meta.FindStatusCondition(t.Status.Conditions, v1alpha1.ConditionReady)
		return t.UID != token.UID && c != nil && c.Reason == v1alpha1.ReasonPolicyViolation
	})
}

// requestsFor is the reconcile requests of the tokens that pass keep.
func requestsFor(tokens []v1alpha1.NomadToken, keep func(*v1alpha1.NomadToken) bool) []reconcile.Request {
	var reqs []reconcile.Request
	for i := range tokens {
		if keep(&tokens[i]) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&tokens[i])})
		}
	}
	return reqs
}

// placeFreed passes the NomadToken events that free a place on a connection: its deletion (started
// or done), or a connectionRef pointing elsewhere (the old object names the connection left).
type placeFreed struct{ predicate.Funcs }

func (placeFreed) Create(event.CreateEvent) bool   { return false }
func (placeFreed) Generic(event.GenericEvent) bool { return false }
func (placeFreed) Delete(event.DeleteEvent) bool   { return true }
func (placeFreed) Update(e event.UpdateEvent) bool {
	old, cur := e.ObjectOld.(*v1alpha1.NomadToken), e.ObjectNew.(*v1alpha1.NomadToken)
	return old.Spec.ConnectionRef != cur.Spec.ConnectionRef || deletionStarted{}.Update(e)
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

// readinessChanged passes the connection updates its tokens act on: a new spec, a new check result
// (Ready, for its generation), the in-use hold landing, or the start of its deletion. Its other status writes (PAT counts, orphans, held
// Secrets) would wake every token of the connection for nothing.
type readinessChanged struct{ predicate.Funcs }

func (readinessChanged) Update(e event.UpdateEvent) bool {
	old, cur := e.ObjectOld.(v1alpha1.Connection), e.ObjectNew.(v1alpha1.Connection)
	oldSt, curSt := old.ConnectionStatus(), cur.ConnectionStatus()
	oldReady := meta.FindStatusCondition(oldSt.Conditions, v1alpha1.ConditionReady)
	newReady := meta.FindStatusCondition(curSt.Conditions, v1alpha1.ConditionReady)
	// A new generation (allowedNamespaces, policy) is acted on at once: the platform's rules are read
	// from the spec, and must not wait for a check of NOMAD that may fail.
	return old.GetGeneration() != cur.GetGeneration() || oldSt.ObservedGeneration != curSt.ObservedGeneration ||
		(oldReady == nil) != (newReady == nil) || oldReady != nil && (oldReady.Status != newReady.Status || oldReady.Reason != newReady.Reason) ||
		old.GetDeletionTimestamp().IsZero() != cur.GetDeletionTimestamp().IsZero() ||
		holdsItsSecrets(old) != holdsItsSecrets(cur) // tokens waiting for the in-use hold mint once it lands
}
