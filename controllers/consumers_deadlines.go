package controllers

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// swapDeadlines are the two times an Overlap rotation sets for the PAT it replaced: revokeAt, the end
// of gracePeriod, before which it is never revoked (save by revoke-now or deletion); and revokeBy,
// the swap plus waitForConsumers.maxGracePeriod, by which it is revoked whatever its use (nil without
// waitForConsumers: it is then revoked at revokeAt). Computed once per swap: the Secret's
// AnnotationPreviousRevokeBy and status must agree.
type swapDeadlines struct {
	revokeAt metav1.Time
	revokeBy *metav1.Time
}

// oldPATDeadlines are the deadlines of a swap at swap, rounded up to whole seconds, as status keeps
// them: a grace period must not end early.
func oldPATDeadlines(rot v1alpha1.Rotation, swap time.Time) swapDeadlines {
	d := swapDeadlines{revokeAt: metav1.Time{Time: ceilSecond(swap.Add(gracePeriod(rot)))}}
	if w := rot.WaitForConsumers; w != nil {
		d.revokeBy = &metav1.Time{Time: ceilSecond(swap.Add(max(w.MaxGracePeriod.Duration, gracePeriod(rot))))}
	}
	return d
}

// landed returns d for a Secret write that landed at t. gracePeriod is a promise of at least that
// long after the swap, so its end runs from t; the latest revoke time stays what the Secret's
// annotation already told consumers (a retried write can only make a consumer move earlier).
func (d swapDeadlines) landed(rot v1alpha1.Rotation, t time.Time) swapDeadlines {
	if at := oldPATDeadlines(rot, t).revokeAt; at.After(d.revokeAt.Time) {
		d.revokeAt = at
	}
	return d
}

// latest is when the replaced PAT is revoked at the latest.
func (d swapDeadlines) latest() time.Time { return latestRevoke(&d.revokeAt, d.revokeBy).Time }

// previousRevokedBy is when the previous PAT is revoked at the latest, as status says: what the
// Secret's AnnotationPreviousRevokeBy and the ConsumersMoved condition tell consumers.
func previousRevokedBy(st *v1alpha1.NomadTokenStatus) *metav1.Time {
	return latestRevoke(st.PreviousTokenRevokeAt, st.PreviousTokenRevokeBy)
}

// latestRevoke is revokeBy, or without waitForConsumers the end of the grace period.
func latestRevoke(revokeAt, revokeBy *metav1.Time) *metav1.Time {
	if revokeBy != nil {
		return revokeBy
	}
	return revokeAt
}
