package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// revokeReplaced revokes the PATs queued in revokePending, and the previous PAT once its grace period
// has ended. Revoke is idempotent and a pruned PAT (404) counts as revoked, so a retry after a crash is
// harmless; the queue lives in status, so a crash never forgets a PAT that must go.
func (r *NomadTokenReconciler) revokeReplaced(ctx context.Context, obs *observed) error {
	token := obs.token
	st := &token.Status
	if st.PreviousTokenRevokeAt != nil && !r.Clock.Now().Before(st.PreviousTokenRevokeAt.Time) {
		r.revokePreviousNow(token)
	}
	if len(st.RevokePending) == 0 {
		return nil
	}
	nc, err := r.clientFor(ctx, obs, false)
	if err != nil {
		return err
	}
	for len(st.RevokePending) > 0 {
		id := st.RevokePending[0]
		if err := nc.Revoke(ctx, id); err != nil {
			return err
		}
		st.RevokePending = st.RevokePending[1:]
		log.FromContext(ctx).Info("revoked replaced PAT", "tokenID", id)
		r.Recorder.Eventf(token, nil, corev1.EventTypeNormal, "PreviousRevoked", "Revoke", "Revoked replaced PAT %s", id)
	}
	return nil
}

// nextWake is when the token needs attention again without any event: its renewal, or the end of the
// previous PAT's grace period, whichever comes first.
func (r *NomadTokenReconciler) nextWake(token *v1alpha1.NomadToken) time.Duration {
	next := tokenRenewalTime(token)
	if at := token.Status.PreviousTokenRevokeAt; at != nil && at.Time.Before(next) {
		next = at.Time
	}
	return max(next.Sub(r.Clock.Now()), time.Second)
}
