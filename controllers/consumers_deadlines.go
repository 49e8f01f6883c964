package controllers

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// oldPATDeadlines are the two times an Overlap rotation at swap sets for the PAT it replaced:
// revokeAt, the end of gracePeriod, before which it is never revoked (save by revoke-now or
// deletion); and revokeBy, the swap plus waitForConsumers.maxGracePeriod, by which it is revoked
// whatever its use (nil without waitForConsumers: it is then revoked at revokeAt). Both are rounded
// up to whole seconds, as status keeps them: a grace period must not end early.
func oldPATDeadlines(rot v1alpha1.Rotation, swap time.Time) (revokeAt metav1.Time, revokeBy *metav1.Time) {
	revokeAt = metav1.Time{Time: ceilSecond(swap.Add(gracePeriod(rot)))}
	if w := rot.WaitForConsumers; w != nil {
		by := ceilSecond(swap.Add(max(w.MaxGracePeriod.Duration, gracePeriod(rot))))
		revokeBy = &metav1.Time{Time: by}
	}
	return revokeAt, revokeBy
}

// previousRevokedBy is when the previous PAT is revoked at the latest, as status says: what the
// Secret's AnnotationPreviousRevokeBy and the ConsumersMoved condition tell consumers.
func previousRevokedBy(st *v1alpha1.NomadTokenStatus) *metav1.Time {
	if st.PreviousTokenRevokeBy != nil {
		return st.PreviousTokenRevokeBy
	}
	return st.PreviousTokenRevokeAt
}
