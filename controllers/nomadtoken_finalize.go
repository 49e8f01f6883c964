package controllers

import (
	"context"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// finalize runs when a NomadToken is being deleted. With deletionPolicy Revoke every PAT the token may
// hold (current, replaced, and one whose creation answer was lost) is revoked before the finalizer goes;
// if that is impossible (the connection is gone), the token stays, and its Ready condition says how to
// let it go: restore the connection, or set spec.deletionPolicy: Retain. With Retain, the current PAT
// stays active and its Secret is released from the NomadToken, so garbage collection does not take the
// only copy of a live token with it; PATs nobody holds any more are still revoked.
func (r *NomadTokenReconciler) finalize(ctx context.Context, token *v1alpha1.NomadToken) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(token, v1alpha1.FinalizerRevoke) {
		return ctrl.Result{}, nil
	}
	original := token.Status.DeepCopy()
	sc := &reconcileScope{token: token, now: r.Clock.Now()}
	var err error
	if token.EffectiveDeletionPolicy() == v1alpha1.DeletionRetain {
		if err = r.revokeUnheld(ctx, sc); err == nil {
			if err = r.recordRetained(ctx, token); err == nil {
				err = r.releaseSecret(ctx, token)
			}
		}
	} else {
		err = r.revokeAll(ctx, sc)
	}
	if nomad.Deferred(err) {
		// Held back by the connection's own limits, not refused: try again when they allow.
		return r.writeStatus(ctx, token, original, ctrl.Result{RequeueAfter: nomad.RetryAfterOf(err)}, nil)
	}
	if err != nil {
		f := classify(err)
		msg := reportUndeletable(token, f)
		if !f.transient {
			r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.ReasonRevokeFailed, "Delete", "%s", msg)
			err = nil
		}
		res := ctrl.Result{}
		if err == nil {
			res.RequeueAfter = orDefault(r.UserErrorRetry, DefaultUserErrorRetry)
		}
		return r.writeStatus(ctx, token, original, res, err)
	}
	controllerutil.RemoveFinalizer(token, v1alpha1.FinalizerRevoke)
	return ctrl.Result{}, client.IgnoreNotFound(r.Update(ctx, token))
}

// revokeAll revokes the current PAT, replaced ones not yet revoked, and any PAT of a pending issuance.
func (r *NomadTokenReconciler) revokeAll(ctx context.Context, sc *reconcileScope) error {
	token := sc.token
	st := &token.Status
	if st.TokenID == "" && st.PreviousTokenID == "" && len(st.RevokePending) == 0 && st.PendingIssuance == nil {
		return nil // never issued anything
	}
	if st.PendingIssuance != nil {
		// Nothing here may be adopted: every PAT carrying the marker is revoked.
		if err := r.recoverPendingIssuance(ctx, sc, false); err != nil {
			return err
		}
	}
	r.queuePrevious(token)
	rev := r.revokeQueue(ctx, sc)
	r.reportRevocations(token, rev)
	if rev.err != nil {
		return rev.err
	}
	if st.TokenID == "" {
		return nil
	}
	err := r.revokeAsOwner(ctx, sc, currentMinter(token).ref(st.TokenID, st.ExpiresAt))
	if err != nil && (st.ExpiresAt == nil || !sc.now.After(st.ExpiresAt.Add(expirySkew))) {
		return err // still alive: deletion waits (an expired PAT needs no revocation)
	}
	if minted := metricsConnectionOf(token.Namespace, currentMinter(token).connection); err == nil {
		r.pats().Revoked(minted, 1)
	} else {
		r.pats().RevokeAbandoned(minted, 1) // expired: the finalizer goes without a revoke
	}
	log.FromContext(ctx).Info("revoked PAT of deleted NomadToken", "tokenID", st.TokenID)
	r.Recorder.Eventf(token, nil, corev1.EventTypeNormal, v1alpha1.EventRevoked, "Delete", "Revoked PAT %s: the NomadToken is being deleted", st.TokenID)
	return nil
}

// revokeUnheld is deletion with Retain: the current PAT stays, but replaced PATs (including the
// previous one of an Overlap rotation) and one whose creation answer was lost are revoked. Retain must
// never block deletion, so a PAT that cannot be revoked is named in a Warning Event and left to expire.
// Only the connection's own limits (its slots busy, its rate limit) are waited for: they refused
// nothing, and giving up on them would leave PATs active just because many tokens go at once.
func (r *NomadTokenReconciler) revokeUnheld(ctx context.Context, sc *reconcileScope) error {
	token := sc.token
	st := &token.Status
	var err error
	if st.PendingIssuance != nil {
		// A PAT the Secret already holds is adopted, and so retained with it; any other is revoked.
		if err = r.loadSecrets(ctx, sc, r.APIReader); err == nil {
			err = r.recoverPendingIssuance(ctx, sc, true)
		}
	}
	r.queuePrevious(token)
	rev := r.revokeQueue(ctx, sc)
	r.reportRevocations(token, rev)
	if err == nil {
		err = rev.err
	}
	if err == nil {
		return nil
	}
	if nomad.Deferred(err) {
		return err
	}
	var ids []string
	for _, ref := range st.RevokePending {
		ids = append(ids, ref.ID)
		// The NomadToken goes with them still queued: nobody will try again.
		r.pats().RevokeAbandoned(queuedMinter(token, ref), 1)
	}
	if st.PendingIssuance != nil {
		ids = append(ids, "a PAT marked "+st.PendingIssuance.Marker+" in its description, if NOMAD created it")
	}
	r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.ReasonRevokeFailed, "Delete",
		"deletionPolicy Retain: replaced PATs could not be revoked (%s) and stay active until they expire: %s",
		classify(err).message, strings.Join(ids, ", "))
	return nil
}

// deletionPolicy Retain updates the Secret to drop its ownerReference and the managed-by label.
// +kubebuilder:rbac:groups="",resources=secrets,verbs=update

// releaseSecret drops the NomadToken's ownership and the operator's label from the Secret, so it
// outlives the NomadToken with deletionPolicy Retain.
func (r *NomadTokenReconciler) releaseSecret(ctx context.Context, token *v1alpha1.NomadToken) error {
	s, err := r.getSecret(ctx, r, token.Namespace, token.EffectiveSecretName())
	if err != nil || s == nil || !ownedBy(s, token) {
		return err
	}
	refs := s.OwnerReferences[:0]
	for _, ref := range s.OwnerReferences {
		if ref.UID != token.UID {
			refs = append(refs, ref)
		}
	}
	s.OwnerReferences = refs
	delete(s.Labels, v1alpha1.LabelManagedBy)
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.Labels[v1alpha1.LabelRetained] = "true"
	return r.updateSecret(ctx, s)
}

// recordRetained notes the PAT that deletionPolicy Retain leaves active in the status of the connection
// that minted it, before the NomadToken goes: the orphan sweep then never takes it for an orphan. If
// that connection is gone there is no sweep through it to protect the PAT from.
func (r *NomadTokenReconciler) recordRetained(ctx context.Context, token *v1alpha1.NomadToken) error {
	st := token.Status
	if st.TokenID == "" {
		return nil
	}
	kind, key := connectionObjectKey(token.Namespace, currentMinter(token).connection)
	if kind == v1alpha1.KindClusterNomadConnection && !r.ClusterConnections {
		return nil // not served here, so not swept here either
	}
	entry := v1alpha1.RetainedPAT{ID: st.TokenID, NomadToken: token.Namespace + "/" + token.Name, ExpiresAt: st.ExpiresAt.DeepCopy()}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var conn v1alpha1.Connection = &v1alpha1.NomadConnection{}
		if kind == v1alpha1.KindClusterNomadConnection {
			conn = &v1alpha1.ClusterNomadConnection{}
		}
		if err := r.APIReader.Get(ctx, key, conn); err != nil {
			return client.IgnoreNotFound(err)
		}
		cst := conn.ConnectionStatus()
		if slices.ContainsFunc(cst.RetainedPATs, func(p v1alpha1.RetainedPAT) bool { return p.ID == entry.ID }) {
			return nil
		}
		cst.RetainedPATs = append(cst.RetainedPATs, entry)
		return r.Status().Update(ctx, conn)
	})
}
