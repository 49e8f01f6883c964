package controllers

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// reportConsumers sets ConsumersMoved on a token with waitForConsumers, from the verdict on the
// previous PAT (p.oldPAT) and what act left in status. It tells of the wait once, with a Normal
// Event when the previous PAT is first kept past its grace period, and with a Warning when
// maxGracePeriod takes it while its consumers had not moved.
func (r *NomadTokenReconciler) reportConsumers(token *v1alpha1.NomadToken, o *observed, p plan) {
	st := &token.Status
	wc := token.Spec.Rotation.WaitForConsumers
	if wc == nil {
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionConsumersMoved)
		return
	}
	was := o.token.Status
	if p.previous == revokeAtOnce && p.oldPAT.atDeadline && was.PreviousTokenID != "" {
		r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.EventMaxGracePeriodReached, "Revoke",
			"replaced PAT %s revoked at maxGracePeriod (%s after the rotation) although its consumers had not moved: %s",
			was.PreviousTokenID, wc.MaxGracePeriod.Duration, lastUseText(was.PreviousTokenLastUsedAt))
	}
	status, reason, message := consumersMoved(st, wc, o, p)
	before := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionConsumersMoved)
	if status == metav1.ConditionFalse && (before == nil || before.Status != metav1.ConditionFalse) {
		// One Event per wait, whose reason is the condition's first (in use, rolling out, unknown).
		r.Recorder.Eventf(token, nil, corev1.EventTypeNormal, reason, "Revoke", "%s", message)
	}
	setCondition(&st.Conditions, token.Generation, v1alpha1.ConditionConsumersMoved, status, reason, message)
}

// consumersMoved is the ConsumersMoved condition after this reconcile: st is the status act left,
// o.token's the one the plan judged.
func consumersMoved(st *v1alpha1.NomadTokenStatus, wc *v1alpha1.WaitForConsumers, o *observed, p plan) (metav1.ConditionStatus, string, string) {
	id := st.PreviousTokenID
	if id == "" {
		return metav1.ConditionTrue, v1alpha1.ReasonConsumersMoved, "no replaced PAT is waiting for its consumers"
	}
	latest := "at the latest at " + rfc3339(previousRevokedBy(st))
	if id != o.token.Status.PreviousTokenID || p.oldPAT.reason == "" {
		// Inside its grace period (or just swapped in): not judged by use yet.
		return metav1.ConditionUnknown, v1alpha1.ReasonGracePeriod, fmt.Sprintf(
			"replaced PAT %s stays valid until %s (gracePeriod); then it is revoked once NOMAD has seen no use of it for %s, %s",
			id, rfc3339(st.PreviousTokenRevokeAt), wc.UnusedFor.Duration, latest)
	}
	w := o.oldPATWait()
	var why string
	switch p.oldPAT.reason {
	case v1alpha1.ReasonRolloutInProgress:
		why = "restart targets are still rolling out the new PAT: " + strings.Join(w.rolling, "; ")
	case v1alpha1.ReasonOldTokenUseUnknown:
		why = "its use could not be read: " + w.useUnknown
	default:
		why = "NOMAD still sees it used: " + lastUseText(st.PreviousTokenLastUsedAt)
		if w.freshUse() == nil {
			why = "its use since the rotation has not been read yet"
		}
	}
	return metav1.ConditionFalse, p.oldPAT.reason, fmt.Sprintf(
		"replaced PAT %s is kept past its grace period: %s. It is revoked once unused for %s, %s",
		id, why, wc.UnusedFor.Duration, latest)
}

// lastUseText says when NOMAD last saw a PAT used (NOMAD's clock).
func lastUseText(at *metav1.Time) string {
	if at == nil {
		return "NOMAD never saw it used"
	}
	return "last used at " + at.UTC().Format(time.RFC3339) + " (NOMAD's clock)"
}

func rfc3339(t *metav1.Time) string {
	if t == nil {
		return "unknown"
	}
	return t.UTC().Format(time.RFC3339)
}

// lookAgain shortens wait to when the previous PAT's fate may change without any event (a use
// becoming old enough, a rollout to poll, a failed look to retry), while the plan keeps it.
func lookAgain(o *observed, p plan, st *v1alpha1.NomadTokenStatus, wait time.Duration) time.Duration {
	at := p.oldPAT.lookAgainAt
	if p.previous != keep || at.IsZero() || st.PreviousTokenID == "" || st.PreviousTokenID != o.token.Status.PreviousTokenID {
		return wait
	}
	return min(wait, max(at.Sub(o.now), minUseRefresh))
}
