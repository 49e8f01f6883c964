package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// retainForbidden says which policy of the connection that minted the current PAT forbids
// deletionPolicy: Retain (policy.allowRetain: false), or "" when none does. Minting already refuses a
// token that asks for Retain; this covers one switched to Retain after its PAT was minted, which would
// otherwise leave an untracked PAT on the shared account. A connection that cannot be read forbids
// nothing: its rules cannot be known.
func (r *NomadTokenReconciler) retainForbidden(ctx context.Context, sc *reconcileScope) (string, error) {
	by := currentMinter(sc.token)
	if sc.token.Status.TokenID == "" && sc.token.Status.PendingIssuance != nil {
		by = pendingMinter(sc.token) // its PAT, if the Secret holds it, would be adopted and retained
	}
	rc, err := r.connectionOf(ctx, sc, by.connection)
	if err != nil {
		if isKubernetesError(err) {
			return "", err
		}
		return "", nil
	}
	ceilings, err := r.ceilingsOf(ctx, rc.conn, sc.token.Namespace)
	if err != nil {
		return "", err
	}
	for _, c := range ceilings {
		if p := c.policy; p.AllowRetain != nil && !*p.AllowRetain {
			return fmt.Sprintf("%s %q %s", rc.conn.ConnectionKind(), rc.conn.GetName(), c.field), nil
		}
	}
	return "", nil
}

// effectiveRetain reports whether the token is deleted with Retain: asked for, and not forbidden.
func (r *NomadTokenReconciler) effectiveRetain(ctx context.Context, sc *reconcileScope) (bool, error) {
	st := sc.token.Status
	if sc.token.EffectiveDeletionPolicy() != v1alpha1.DeletionRetain || st.TokenID == "" && st.PendingIssuance == nil {
		return sc.token.EffectiveDeletionPolicy() == v1alpha1.DeletionRetain, nil
	}
	forbidden, err := r.retainForbidden(ctx, sc)
	if err != nil || forbidden == "" {
		return err == nil, err
	}
	r.Recorder.Eventf(sc.token, nil, corev1.EventTypeWarning, v1alpha1.ReasonPolicyViolation, "Delete",
		"deletionPolicy Retain is not allowed by %s (allowRetain: false): the token's PATs are revoked", forbidden)
	return false, nil
}
