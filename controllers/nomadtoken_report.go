package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// secretConflictRecheck is how soon a SecretConflict is checked again. The conflicting Secret lacks the
// operator's label, so its deletion is not watched; checking costs no NOMAD call.
const secretConflictRecheck = 30 * time.Second

// report is the one place that tells what a reconcile did: it sets the Ready condition and emits the
// Events from the plan and the outcome of its steps, and says when to look again.
func (r *NomadTokenReconciler) report(ctx context.Context, obs *observed, p plan, out outcome) (ctrl.Result, error) {
	token := obs.token
	r.reportRevocations(token, out.revocations)
	r.reportIssuance(token, p, out)
	if out.rotateUnsettled != "" {
		setReady(token, metav1.ConditionFalse, v1alpha1.ReasonProgressing,
			fmt.Sprintf("rotating PAT %s in NOMAD did not complete; it may already be revoked", out.rotateUnsettled))
	}
	var failed error
	switch {
	case obs.incomplete != nil:
		failed = obs.incomplete
	case out.mintErr != nil:
		failed = out.mintErr
	case p.blocked != nil && p.blocked.reason == v1alpha1.ReasonSecretConflict:
		failed = &conditionError{p.blocked.reason, p.blocked.message}
	}
	var result ctrl.Result
	var err error
	switch {
	case failed != nil:
		result, err = r.fail(ctx, obs, failed)
		if p.blocked != nil && p.blocked.reason == v1alpha1.ReasonSecretConflict {
			result.RequeueAfter = min(result.RequeueAfter, secretConflictRecheck)
		}
		if out.unreplaced != "" {
			r.reportUnreplaced(token, out.unreplaced, failed, out.revocations)
		}
	case obs.refused != nil:
		r.reportRefused(obs, p, out)
		result = ctrl.Result{RequeueAfter: r.capWait(token, orDefault(r.UserErrorRetry, DefaultUserErrorRetry))}
	case p.blocked != nil:
		r.reportHeldOff(token, p, obs.heldOff)
		result = ctrl.Result{RequeueAfter: r.capWait(token, obs.heldOff.until.Sub(obs.now))}
	default:
		result = r.markReady(token)
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
	for _, id := range rev.expired {
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

// reportUnreplaced says that revoke-now revoked PAT id (or queued it, if NOMAD did not answer the
// revoke either) although no successor could be minted.
func (r *NomadTokenReconciler) reportUnreplaced(token *v1alpha1.NomadToken, id string, why error, rev revocations) {
	done := "revoked PAT " + id + " (and any earlier PAT)"
	if !slices.Contains(rev.revoked, id) {
		done = "queued PAT " + id + " for revocation (and any earlier PAT); it is retried until NOMAD confirms"
	}
	msg := fmt.Sprintf("revoke-now %s without a replacement: %s. The Secret holds the revoked token until a new PAT is minted, which is retried",
		done, classify(why).message)
	setReady(token, metav1.ConditionFalse, v1alpha1.ReasonRevokedWithoutReplacement, msg)
	r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.ReasonRevokedWithoutReplacement, "Revoke", "%s", msg)
}

// reportHeldOff keeps the conditions while NOMAD's refusal holds, unless the Secret's PAT no longer
// serves: it expired, or it is missing, edited or revoked (the replacement owed is no rotation).
func (r *NomadTokenReconciler) reportHeldOff(token *v1alpha1.NomadToken, p plan, h *holdOff) {
	st := &token.Status
	if revokedUnreplaced(token) || !isReady(st.Conditions) {
		return
	}
	switch {
	case st.ExpiresAt != nil && !r.Clock.Now().Before(st.ExpiresAt.Time):
		setReady(token, metav1.ConditionFalse, h.refusal.reason, fmt.Sprintf("PAT %s expired at %s and its replacement was refused: %s",
			st.TokenID, st.ExpiresAt.UTC().Format(time.RFC3339), h.refusal.message))
	case !p.currentServes:
		setReady(token, metav1.ConditionFalse, h.refusal.reason, fmt.Sprintf("the Secret's PAT %s no longer serves (%s) and NOMAD refused its replacement: %s",
			st.TokenID, p.mint, h.refusal.message))
	}
}

// reportRefused says that the platform's rules forbid minting, and what becomes of the current PAT:
// it keeps working until it expires, and is not renewed. Ready is False even while it works, so that
// someone acts before it expires. The rules are re-evaluated on every change of the connection, of the
// namespace's labels, and of the tokens sharing a maxTokens ceiling, so there is no hold-off.
func (r *NomadTokenReconciler) reportRefused(obs *observed, p plan, out outcome) {
	token, f := obs.token, *obs.refused
	if out.unreplaced != "" && p.mint == IssueRevokeNow {
		r.reportUnreplaced(token, out.unreplaced, &conditionError{f.reason, f.message}, out.revocations)
		return
	}
	st := &token.Status
	msg := f.message + ": no new PAT is minted"
	switch {
	case out.unreplaced != "":
		done := "is revoked"
		if !slices.Contains(out.revocations.revoked, out.unreplaced) {
			done = "is queued for revocation"
		}
		msg = fmt.Sprintf("%s: no new PAT is minted, and PAT %s, whose raw token left the Secret, %s", f.message, out.unreplaced, done)
	case st.TokenID != "" && p.currentServes && st.ExpiresAt != nil && obs.now.Before(st.ExpiresAt.Time):
		msg = fmt.Sprintf("%s: PAT %s keeps working until it expires at %s, and is not renewed", f.message, st.TokenID, st.ExpiresAt.UTC().Format(time.RFC3339))
	}
	before := obs.readyBefore
	if before == nil || before.Status != metav1.ConditionFalse || before.Reason != f.reason || before.Message != msg {
		r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, f.reason, "Issue", "%s", msg)
	}
	setReady(token, metav1.ConditionFalse, f.reason, msg)
}

// markReady records success: the Secret holds the current PAT. It returns when to look again.
func (r *NomadTokenReconciler) markReady(token *v1alpha1.NomadToken) ctrl.Result {
	st := &token.Status
	st.RenewalTime = &metav1.Time{Time: tokenRenewalTime(token)}
	st.SecretName = token.EffectiveSecretName()
	st.ObservedGeneration = token.Generation
	setReady(token, metav1.ConditionTrue, v1alpha1.ReasonIssued,
		fmt.Sprintf("Secret %s holds PAT %s, valid until %s", st.SecretName, st.TokenID, st.ExpiresAt.UTC().Format(time.RFC3339)))
	return ctrl.Result{RequeueAfter: r.nextWake(token)}
}

// fail reports err. Errors only a person can fix set Ready=False and wait (no hot retry); transient
// ones back off exponentially (or as NOMAD's Retry-After says). A PAT that is still valid and matches
// the spec keeps Ready=True: consumers are fine, only its replacement is late.
func (r *NomadTokenReconciler) fail(ctx context.Context, obs *observed, err error) (ctrl.Result, error) {
	token := obs.token
	if isKubernetesError(err) {
		// Not NOMAD's doing, and not the user's: the conditions stay as they are.
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
	st := &token.Status
	stillValid := st.ExpiresAt != nil && r.Clock.Now().Before(st.ExpiresAt.Time) && st.IssuedSpecHash == materialHash(token) &&
		isReady(st.Conditions) && f.reason != v1alpha1.ReasonSecretConflict
	// The same refusal reported again (a retry, or a SecretConflict re-checked) adds no new Event.
	before := obs.readyBefore
	repeated := before != nil && before.Status == metav1.ConditionFalse && before.Reason == f.reason && before.Message == f.message
	if !stillValid && !revokedUnreplaced(token) {
		setReady(token, metav1.ConditionFalse, f.reason, f.message)
	}
	log.FromContext(ctx).Info("NomadToken step failed", "reason", f.reason, "message", f.message, "transient", f.transient)
	if f.transient {
		if after := nomad.RetryAfterOf(err); after > 0 {
			return ctrl.Result{RequeueAfter: r.capWait(token, after)}, nil
		}
		return ctrl.Result{}, err
	}
	if !repeated {
		r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, f.reason, "Reconcile", "%s", f.message)
	}
	retry := orDefault(r.UserErrorRetry, DefaultUserErrorRetry)
	if nomad.CodeOf(err) != nomad.CodeTransient {
		// NOMAD itself said no: do not ask again for this generation until the retry time.
		r.holdOffFor(token, f, retry)
	}
	return ctrl.Result{RequeueAfter: r.capWait(token, retry)}, nil
}

// reportIssuing says that the Secret holds no usable PAT for the spec until a new one is issued.
func reportIssuing(token *v1alpha1.NomadToken, reason string) {
	if !revokedUnreplaced(token) {
		setReady(token, metav1.ConditionFalse, v1alpha1.ReasonProgressing, fmt.Sprintf("issuing a PAT (%s)", reason))
	}
}

// revokedUnreplaced reports a token that revoke-now left without a PAT: Ready keeps saying so (with
// NOMAD's refusal) while minting a successor fails, rather than the next refusal's reason alone.
func revokedUnreplaced(token *v1alpha1.NomadToken) bool {
	c := meta.FindStatusCondition(token.Status.Conditions, v1alpha1.ConditionReady)
	return token.Status.TokenID == "" && c != nil && c.Reason == v1alpha1.ReasonRevokedWithoutReplacement
}

// reportUndeletable says why a NomadToken being deleted cannot let go of its PAT, and how to proceed.
func reportUndeletable(token *v1alpha1.NomadToken, f failure) string {
	msg := fmt.Sprintf("cannot revoke PAT %s on deletion: %s. Fix that, or set spec.deletionPolicy: Retain to delete without revoking (the PAT then stays valid until it expires)",
		token.Status.TokenID, f.message)
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
