package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The token's Secret is created, updated in place (a Secret is never patched), and, after
// spec.secret.name changed, the one it moved from is deleted.
// +kubebuilder:rbac:groups="",resources=secrets,verbs=create;update;delete

// writeSecret creates or updates the token's Secret with raw, then removes the Secret it moved from.
// Creating (not applying) a missing Secret fails if one appeared meanwhile, so a Secret the operator
// does not own is never taken over.
func (r *NomadTokenReconciler) writeSecret(ctx context.Context, sc *reconcileScope, raw []byte, facts tokenSecretFacts) error {
	desired := renderSecret(sc.secret, sc.token, raw, facts)
	var err error
	if sc.secret == nil {
		err = r.Create(ctx, desired, client.FieldOwner(FieldManager))
	} else {
		err = r.updateSecret(ctx, desired)
	}
	if err != nil {
		return err
	}
	sc.secret = desired
	if sc.previous != nil {
		err := r.Delete(ctx, sc.previous, client.Preconditions{UID: &sc.previous.UID})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		sc.previous = nil
	}
	return nil
}

// updateSecret updates s, a changed copy of a cached Secret. The cache keeps only the operator's own
// managedFields entries (trimManagedFields), and a request's managedFields replace the object's, so
// they are left out: the server then keeps everyone's and records this write under FieldManager.
func (r *NomadTokenReconciler) updateSecret(ctx context.Context, s *corev1.Secret) error {
	s.ManagedFields = nil
	return r.Update(ctx, s, client.FieldOwner(FieldManager))
}
