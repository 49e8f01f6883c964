package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// secretConflictRecheck is how soon a SecretConflict is checked again. The conflicting Secret lacks the
// operator's label, so its deletion is not watched; checking costs no NOMAD call.
const secretConflictRecheck = 30 * time.Second

// settledRecheck is how soon a reconcile that settled an interrupted issuance is followed by the one
// that plans on what it left.
const settledRecheck = 100 * time.Millisecond

// report is the one place that tells what a reconcile did: it sets the Ready condition to its verdict
// (readyVerdict), emits the Events, and says when to look again.
func (r *NomadTokenReconciler) report(ctx context.Context, sc *reconcileScope, o *observed, p plan, out outcome) (ctrl.Result, error) {
	token := sc.token
	r.reportRevocations(token, out.revocations)
	r.reportIssuance(token, p, out)
	r.reportConsumers(token, o, p)
	v := readyVerdict(o, p, out)
	if v != nil {
		setReady(token, v.status, v.reason, v.message)
	}
	var result ctrl.Result
	var err error
	failed := failureOf(o, p, out)
	switch {
	case failed != nil:
		result, err = r.fail(ctx, o, failed)
		if p.blocked != nil && p.blocked.reason == v1alpha1.ReasonSecretConflict {
			result.RequeueAfter = min(result.RequeueAfter, secretConflictRecheck)
		}
		if out.unreplaced != "" {
			r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.ReasonRevokedWithoutReplacement, "Revoke", "%s", v.message)
		}
	case o.refusal() != nil:
		if before := o.readyBefore; before == nil || before.Status != v.status || before.Reason != v.reason || before.Message != v.message {
			r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v.reason, "Issue", "%s", v.message)
		}
		result = ctrl.Result{RequeueAfter: r.capWait(token, orDefault(r.UserErrorRetry, DefaultUserErrorRetry))}
	case p.blocked != nil:
		result = ctrl.Result{RequeueAfter: r.capWait(token, o.heldOff.until.Sub(o.now))}
	case p.awaiting != nil:
		result = ctrl.Result{RequeueAfter: r.capWait(token, holdRecheck)}
	case p.settle != nil:
		// The plan is made again on what the settling left, at once.
		result = ctrl.Result{RequeueAfter: settledRecheck}
	default:
		result = r.markReady(token)
		result.RequeueAfter = lookAgain(o, p, &token.Status, result.RequeueAfter)
		if due := rotateRequestDueAt(o); rotateRequested(token) && o.now.Before(due) {
			// A rotate request paced or debounced (rotation_pace.go) is served when that ends.
			result.RequeueAfter = min(result.RequeueAfter, due.Sub(o.now))
		}
		if out.restartWait > 0 {
			result.RequeueAfter = min(result.RequeueAfter, out.restartWait)
		}
		if out.restartErr != nil {
			// The Secret holds a good PAT: Ready stays True, and the restart is retried with backoff.
			r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.EventRestartFailed, "Restart",
				"restarting the workloads of spec.rotation.restartTargets for PAT %s failed, will retry: %s", token.Status.TokenID, out.restartErr)
			err = out.restartErr
		}
	}
	return r.withRevocations(ctx, out.revocations, result, err)
}

// reportIssuance tells of a new PAT and of what happened to get it.
func (r *NomadTokenReconciler) reportIssuance(token *v1alpha1.NomadToken, p plan, out outcome) {
	if out.freedAtPATLimit != "" {
		r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.EventPreviousRevokedAtPATLimit, "Revoke",
			"NOMAD's active PAT limit left no room for a new PAT; replaced PAT %s, still kept for its consumers, was revoked first", out.freedAtPATLimit)
	}
	if out.fellBackToRotate {
		r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.EventFallbackToRotate, "Rotate",
			"NOMAD's active PAT limit left no room for an overlapping PAT; the PAT was rotated in place instead (the old one stopped working at once)")
	}
	if f := out.rotateRefused; f != nil {
		r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.EventRotateFailed, "Rotate",
			"NOMAD's rotate endpoint revoked PAT %s and then refused a successor (%s); a fresh PAT was created", f.reason, f.message)
	}
	if out.issued == nil {
		return
	}
	reason := v1alpha1.EventIssued
	if out.issued.rotated {
		reason = v1alpha1.EventRotated
	}
	r.Recorder.Eventf(token, nil, corev1.EventTypeNormal, reason, "Issue",
		"Issued PAT %s (%s), expires %s", out.issued.id, out.issued.reason, out.issued.expiresAt.UTC().Format(time.RFC3339))
	if p.revokeUnreplaced {
		r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.EventRevokeNowRequested, "Revoke",
			"revoke-now requested: the Secret holds new PAT %s and every earlier PAT is revoked without grace", out.issued.id)
	}
}

// reportRevocations tells what the revoke queue did.
func (r *NomadTokenReconciler) reportRevocations(token *v1alpha1.NomadToken, rev revocations) {
	for _, id := range rev.revoked {
		r.Recorder.Eventf(token, nil, corev1.EventTypeNormal, v1alpha1.EventPreviousRevoked, "Revoke", "Revoked replaced PAT %s", id)
	}
	for _, id := range rev.expired { // entryLabel: an id, or an interrupted issuance's marker
		r.Recorder.Eventf(token, nil, corev1.EventTypeNormal, v1alpha1.EventPreviousExpired, "Revoke",
			"Replaced PAT %s could not be revoked and has expired; it no longer works", id)
	}
	for _, ref := range rev.waiting {
		r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.EventRevokeWaiting, "Revoke", "%s", ref.LastError)
	}
}

// withRevocations retries, with backoff, a token whose revoke queue still holds a live PAT. Ready is
// not affected: the Secret's PAT is fine.
func (r *NomadTokenReconciler) withRevocations(ctx context.Context, rev revocations, result ctrl.Result, err error) (ctrl.Result, error) {
	if rev.err == nil || err != nil {
		return result, err
	}
	if isKubernetesError(rev.err) {
		return r.kubernetesError(ctx, rev.err)
	}
	log.FromContext(ctx).Info("a replaced PAT could not be revoked yet; retrying with backoff", "message", classify(rev.err).message)
	return result, rev.err
}

// markReady records in status what a success means (Ready says it): the Secret holds the current PAT,
// renewed at its renewal time. It returns when to look again.
func (r *NomadTokenReconciler) markReady(token *v1alpha1.NomadToken) ctrl.Result {
	st := &token.Status
	st.RenewalTime = &metav1.Time{Time: tokenRenewalTime(token)}
	st.SecretName = token.EffectiveSecretName()
	st.ObservedGeneration = token.Generation
	return ctrl.Result{RequeueAfter: r.nextWake(token)}
}

// fail says when to try again after err, and tells of it once. Errors only a person can fix wait (no
// hot retry; NOMAD's and the cluster's refusals hold this generation off); transient ones back off
// exponentially (or as NOMAD's Retry-After says). Ready was set by readyVerdict.
func (r *NomadTokenReconciler) fail(ctx context.Context, o *observed, err error) (ctrl.Result, error) {
	token := o.token
	if isKubernetesError(err) {
		// Not NOMAD's doing, and not the user's.
		return r.kubernetesError(ctx, err)
	}
	if nomad.Deferred(err) {
		// The connection's own limits held the request back (its slots are busy with other tokens'
		// calls, or its rate limit): nothing is wrong that anyone should see; come back when it
		// says. Not an error, so the per-token backoff does not grow while NOMAD is merely busy.
		log.FromContext(ctx).V(1).Info("NomadToken step deferred by the connection's limits", "message", err.Error())
		return ctrl.Result{RequeueAfter: nomad.RetryAfterOf(err)}, nil
	}
	f := classify(err)
	log.FromContext(ctx).Info("NomadToken step failed", "reason", f.reason, "message", f.message, "transient", f.transient)
	if f.transient {
		if after := nomad.RetryAfterOf(err); after > 0 {
			return ctrl.Result{RequeueAfter: r.capWait(token, after)}, nil
		}
		return ctrl.Result{}, err
	}
	// The same refusal reported again (a retry, or a SecretConflict re-checked) adds no new Event.
	before := o.readyBefore
	if before == nil || before.Status != metav1.ConditionFalse || before.Reason != f.reason || before.Message != f.message {
		r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, f.reason, "Reconcile", "%s", f.message)
	}
	retry := orDefault(r.UserErrorRetry, DefaultUserErrorRetry)
	if nomad.CodeOf(err) != nomad.CodeTransient || isSecretRejection(err) {
		// NOMAD itself said no, or the API server refuses the Secret: do not ask again for this
		// generation until the retry time.
		r.holdOffFor(token, f, retry)
	}
	return ctrl.Result{RequeueAfter: r.capWait(token, retry)}, nil
}

// reportUndeletable says why a NomadToken being deleted cannot let go of its PAT, and how to proceed.
func reportUndeletable(token *v1alpha1.NomadToken, id string, f failure) string {
	msg := fmt.Sprintf("cannot revoke PAT %s on deletion: %s. Fix that, or set spec.deletionPolicy: Retain to delete without revoking (the PAT then stays valid until it expires)",
		id, f.message)
	setReady(token, metav1.ConditionFalse, v1alpha1.ReasonRevokeFailed, msg)
	return msg
}

func secretConflictMessage(name string) string {
	return fmt.Sprintf("Secret %q exists and is not owned by this NomadToken; it is never overwritten: delete or rename it, or set spec.secret.name", name)
}

// setReady sets the NomadToken's Ready condition, and Reconciling and Stalled with it; only this file
// calls it. A Stalled verdict is about the current spec, so its generation counts as observed.
func setReady(token *v1alpha1.NomadToken, status metav1.ConditionStatus, reason, message string) {
	if setReadyCondition(&token.Status.Conditions, token.Generation, status, reason, message) {
		token.Status.ObservedGeneration = token.Generation
	}
}
