package controllers

import (
	"context"
	"errors"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
// stays active and the Secrets it owns are released from the NomadToken, so garbage collection does
// not take the only copy of a live token with them; PATs nobody holds any more are still revoked.
func (r *NomadTokenReconciler) finalize(ctx context.Context, token *v1alpha1.NomadToken) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(token, v1alpha1.FinalizerRevoke) {
		return ctrl.Result{}, nil
	}
	original := token.Status.DeepCopy()
	sc := &reconcileScope{token: token, now: r.Clock.Now()}
	retain, err := r.effectiveRetain(ctx, sc)
	if err != nil {
		return r.writeStatus(ctx, token, original, ctrl.Result{}, err)
	}
	if retain {
		if err = r.revokeUnheld(ctx, sc); err == nil {
			if err = r.recordRetained(ctx, token); err == nil {
				err = r.releaseSecrets(ctx, token)
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
		msg := reportHeld(token, err, f)
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

// reportHeld is reportUndeletable naming the PAT that holds the deletion (err's heldBy). That is not
// always status.tokenID: the current PAT may be revoked already, and a replaced one, or one of an
// interrupted issuance, still waits.
func reportHeld(token *v1alpha1.NomadToken, err error, f failure) string {
	id := token.Status.TokenID
	var h *heldBy
	if errors.As(err, &h) {
		id = h.id
	}
	return reportUndeletable(token, id, f)
}

// revokeAll revokes every PAT the token may hold, and revokes what it can whatever else fails: the
// current PAT first (the one its consumers hold), then the previous one (same owner), the rest of the
// revoke queue, and any PAT of a pending issuance. It returns why the deletion must wait, naming the
// PAT, in the order of that list. The pending issuance is settled before the queue is worked, since
// settling may queue it (when no connection can look for its PAT).
//
// A queued PAT that no connection can revoke, because none logs in as the NOMAD user that owns it
// (the credentials Secret moved to another user), does not hold the deletion: only a person can
// change that, and deletionPolicy Retain, the way out a held deletion offers, would give it up just
// the same, after a namespace had stayed Terminating until someone found it. Once nothing else
// waits, it is abandoned (abandonUnreachable). Failures retrying can fix (NOMAD down, a connection's
// Secret unreadable) still hold the deletion, as does a current PAT that cannot be revoked.
func (r *NomadTokenReconciler) revokeAll(ctx context.Context, sc *reconcileScope) error {
	token := sc.token
	st := &token.Status
	if st.TokenID == "" && st.PreviousTokenID == "" && len(st.RevokePending) == 0 && st.PendingIssuance == nil {
		return nil // never issued anything
	}
	errCurrent := r.revokeCurrent(ctx, sc)
	previous := st.PreviousTokenID
	r.queuePrevious(token) // deletion waits for no consumer (judgeOldPAT's first rule)
	toFront(st, previous)
	var errPending error
	if p := st.PendingIssuance; p != nil {
		// Nothing here may be adopted: every PAT carrying the marker is revoked.
		if err := r.recoverPendingIssuance(ctx, sc, false); err != nil {
			errPending = &heldBy{id: markedLabel(p.Marker), err: err}
		}
	}
	rev := r.revokeQueue(ctx, sc)
	for _, err := range []error{errCurrent, rev.reachableErr, errPending} {
		if err != nil {
			r.reportRevocations(token, rev)
			return err
		}
	}
	if len(rev.unreachable) > 0 {
		if err := r.abandonUnreachable(ctx, token, rev.unreachable); err != nil {
			r.reportRevocations(token, rev)
			return err
		}
		// Their Warning is RevokeAbandoned, not RevokeWaiting: nothing waits for them any more.
		rev.waiting = slices.DeleteFunc(rev.waiting, func(ref v1alpha1.PATReference) bool {
			return slices.ContainsFunc(rev.unreachable, func(u v1alpha1.PATReference) bool { return sameEntry(u, ref) })
		})
	}
	r.reportRevocations(token, rev)
	return nil
}

// markedLabel names, after "PAT", the PAT an interrupted issuance with marker may have created.
func markedLabel(marker string) string {
	return "marked " + marker + " (of an interrupted issuance, if NOMAD created it)"
}

// sameEntry reports whether a and b are the same revoke-queue entry: the same PAT, or the same
// interrupted issuance.
func sameEntry(a, b v1alpha1.PATReference) bool {
	return a.ID == b.ID && a.Marker == b.Marker
}

// toFront moves the queued PAT id to the head of the revoke queue, so that it is revoked first.
func toFront(st *v1alpha1.NomadTokenStatus, id string) {
	if id == "" {
		return
	}
	if i := slices.IndexFunc(st.RevokePending, func(ref v1alpha1.PATReference) bool { return ref.ID == id }); i > 0 {
		ref := st.RevokePending[i]
		st.RevokePending = slices.Insert(slices.Delete(st.RevokePending, i, i+1), 0, ref)
	}
}

// revokeCurrent revokes the PAT in the Secret of a NomadToken being deleted. Once it is revoked, or
// has expired (it no longer works, so it needs no revocation), it leaves status: a deletion retried
// for another PAT neither revokes nor counts it again.
func (r *NomadTokenReconciler) revokeCurrent(ctx context.Context, sc *reconcileScope) error {
	token := sc.token
	st := &token.Status
	if st.TokenID == "" {
		return nil
	}
	minted := metricsConnectionOf(token.Namespace, currentMinter(token).connection)
	err := r.revokeAsOwner(ctx, sc, currentMinter(token).ref(st.TokenID, st.ExpiresAt))
	switch {
	case err == nil:
		r.pats().Revoked(minted, 1)
		log.FromContext(ctx).Info("revoked PAT of deleted NomadToken", "tokenID", st.TokenID)
		r.Recorder.Eventf(token, nil, corev1.EventTypeNormal, v1alpha1.EventRevoked, "Delete", "Revoked PAT %s: the NomadToken is being deleted", st.TokenID)
	case st.ExpiresAt != nil && sc.now.After(st.ExpiresAt.Add(expirySkew)):
		r.pats().RevokeAbandoned(minted, 1) // the finalizer goes without a revoke
		log.FromContext(ctx).Info("PAT of deleted NomadToken expired before it could be revoked", "tokenID", st.TokenID)
	default:
		return &heldBy{id: st.TokenID, err: err} // still alive: deletion waits
	}
	st.TokenID, st.IssuedAt, st.ExpiresAt, st.RenewalTime = "", nil, nil, nil
	st.TokenFingerprint, st.IssuedSpecHash, st.LastUsedAt = "", "", nil
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
		ids = append(ids, entryLabel(ref))
	}
	// The NomadToken goes with them still queued: nobody will try again.
	if aerr := r.abandonQueued(ctx, token, st.RevokePending); aerr != nil {
		return aerr
	}
	if st.PendingIssuance != nil {
		ids = append(ids, "a PAT marked "+st.PendingIssuance.Marker+" in its description, if NOMAD created it")
	}
	r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.ReasonRevokeFailed, "Delete",
		"deletionPolicy Retain: replaced PATs could not be revoked (%s) and stay active until they expire: %s",
		classify(err).message, strings.Join(ids, ", "))
	return nil
}

// deletionPolicy Retain updates the Secrets it owns to drop their ownerReference and the managed-by
// label.
// +kubebuilder:rbac:groups="",resources=secrets,verbs=update

// releaseSecrets drops the NomadToken's ownership and the operator's label from every Secret the token
// owns, so that they outlive it with deletionPolicy Retain: garbage collection would otherwise take the
// only copy of a live PAT with them. That is the Secret at status.secretName, which holds the current
// PAT and is not the spec's name after a rename that SecretConflict blocked; the one at the spec's
// name; and any other Secret of the namespace with the operator's label that the token controls (a
// rename interrupted between writing the new Secret and deleting the old one). A Secret whose
// controller ownerReference is not this token's (the one the operator sets) is someone else's and
// is never touched.
func (r *NomadTokenReconciler) releaseSecrets(ctx context.Context, token *v1alpha1.NomadToken) error {
	var owned []*corev1.Secret
	add := func(s *corev1.Secret) {
		if s != nil && ownedBy(s, token) && !slices.ContainsFunc(owned, func(o *corev1.Secret) bool { return o.Name == s.Name }) {
			owned = append(owned, s)
		}
	}
	for _, name := range []string{token.Status.SecretName, token.EffectiveSecretName()} {
		if name == "" {
			continue
		}
		s, err := r.getSecret(ctx, r, token.Namespace, name)
		if err != nil {
			return err
		}
		add(s)
	}
	var managed corev1.SecretList
	if err := r.List(ctx, &managed, client.InNamespace(token.Namespace), client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}); err != nil {
		return err
	}
	for i := range managed.Items {
		add(&managed.Items[i])
	}
	for _, s := range owned {
		if err := r.releaseSecret(ctx, token, s); err != nil {
			return err
		}
	}
	return nil
}

// releaseSecret drops token's ownerReference and the operator's label from s, a Secret it owns, and
// marks it retained: the orphan sweep counts the PAT it names as accounted for.
func (r *NomadTokenReconciler) releaseSecret(ctx context.Context, token *v1alpha1.NomadToken, s *corev1.Secret) error {
	s.OwnerReferences = slices.DeleteFunc(s.OwnerReferences, func(ref metav1.OwnerReference) bool { return ref.UID == token.UID })
	delete(s.Labels, v1alpha1.LabelManagedBy)
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.Labels[v1alpha1.LabelRetained] = "true"
	return client.IgnoreNotFound(r.updateSecret(ctx, s))
}

// recordRetained notes the PAT that deletionPolicy Retain leaves active in the status of the connection
// that minted it, before the NomadToken goes: the orphan sweep then never takes it for an orphan. If
// that connection is gone there is no sweep through it to protect the PAT from.
func (r *NomadTokenReconciler) recordRetained(ctx context.Context, token *v1alpha1.NomadToken) error {
	st := token.Status
	if st.TokenID == "" {
		return nil
	}
	entry := v1alpha1.RetainedPAT{ID: st.TokenID, NomadToken: token.Namespace + "/" + token.Name, ExpiresAt: st.ExpiresAt.DeepCopy()}
	// A ClusterNomadConnection this operator does not serve is not swept here either.
	return r.updateConnectionStatus(ctx, token.Namespace, currentMinter(token).connection, func(cst *v1alpha1.NomadConnectionStatus) bool {
		if slices.ContainsFunc(cst.RetainedPATs, func(p v1alpha1.RetainedPAT) bool { return p.ID == entry.ID }) {
			return false
		}
		cst.RetainedPATs = append(cst.RetainedPATs, entry)
		return true
	})
}
