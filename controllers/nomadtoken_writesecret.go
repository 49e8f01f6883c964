package controllers

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// The token's Secret is created, updated in place (a Secret is never patched), and, after
// spec.secret.name changed, the one it moved from is deleted.
// +kubebuilder:rbac:groups="",resources=secrets,verbs=create;update;delete

// writeSecret creates or updates the token's Secret to hold c, then removes the Secret it moved from.
// Creating (not applying) a missing Secret fails if one appeared meanwhile, so a Secret the operator
// does not own is never taken over. A template that does not render with c is SecretTemplateInvalid,
// and nothing is written.
func (r *NomadTokenReconciler) writeSecret(ctx context.Context, sc *reconcileScope, c secretContent) error {
	want, err := desiredSecret(sc.token, c)
	if err != nil {
		return asTemplateRefusal(err)
	}
	desired := renderSecret(sc.secret, sc.token, want)
	if sc.secret == nil {
		err = r.Create(ctx, desired, client.FieldOwner(FieldManager))
	} else {
		err = r.updateSecret(ctx, desired)
	}
	if err != nil {
		return withoutTokenValues(err, c, want.data)
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

// asTemplateRefusal turns a template that does not render into the SecretTemplateInvalid condition
// (its message names the key and holds no raw token); any other error stays as it is.
func asTemplateRefusal(err error) error {
	var te *templateError
	if errors.As(err, &te) {
		return &conditionError{v1alpha1.ReasonSecretTemplateInvalid, te.Error() + "; fix spec.secret.template.data"}
	}
	return err
}

// withoutTokenValues cuts from a refused write's message every value of the Secret's data, and the
// raw tokens themselves, as written or base64-encoded: an admission webhook may quote the object it
// refused, and a template may have encoded the token beyond recognition (b64enc, a Basic credential),
// so no value is judged harmless by whether it contains the token.
func withoutTokenValues(err error, c secretContent, data map[string][]byte) error {
	values := [][]byte{c.raw}
	if c.previous != nil {
		values = append(values, c.previous.raw)
	}
	for _, v := range data {
		values = append(values, v)
	}
	return withoutSecretData(err, values...)
}

// withoutSecretData cuts each value of at least minRedacted bytes from err's message (shorter ones,
// like "1", would garble the message and hide nothing: every token is longer).
func withoutSecretData(err error, values ...[]byte) error {
	for _, v := range values {
		if len(v) >= minRedacted {
			err = withoutRawToken(err, string(v))
		}
	}
	return err
}

// minRedacted is the shortest Secret value cut from error messages.
const minRedacted = 8
