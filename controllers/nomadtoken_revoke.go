package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// revokeReplaced revokes the PATs queued in revokePending, and the previous PAT once its grace period
// has ended, each through the connection that minted it. Revoke is idempotent and a pruned PAT (404)
// counts as revoked, so a retry after a crash is harmless; the queue lives in status, so a crash never
// forgets a PAT that must go. A PAT that cannot be revoked stays queued, and the others are still tried.
func (r *NomadTokenReconciler) revokeReplaced(ctx context.Context, obs *observed) error {
	token := obs.token
	st := &token.Status
	if st.PreviousTokenRevokeAt != nil && !r.Clock.Now().Before(st.PreviousTokenRevokeAt.Time) {
		r.revokePreviousNow(token)
	}
	var firstErr error
	var left []v1alpha1.PATReference
	for _, ref := range st.RevokePending {
		err := r.revokeThrough(ctx, obs, ref)
		var lost *unrevokableError
		if errors.As(err, &lost) {
			// Nothing the operator holds can revoke it: say so once, and stop tracking it.
			r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, lost.reason, "Revoke", "%s", lost.message)
			continue
		}
		if err != nil {
			left = append(left, ref)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		log.FromContext(ctx).Info("revoked replaced PAT", "tokenID", ref.ID, "connection", ref.ConnectionName)
		r.Recorder.Eventf(token, nil, corev1.EventTypeNormal, "PreviousRevoked", "Revoke", "Revoked replaced PAT %s", ref.ID)
	}
	st.RevokePending = left
	return firstErr
}

// revokeThrough revokes a PAT with the bot account that minted it. Any other account gets NOMAD's 404,
// which would look like success. When that account cannot be reached any more (its connection is
// gone, or the connection now logs in as another NOMAD user) it returns an *unrevokableError.
func (r *NomadTokenReconciler) revokeThrough(ctx context.Context, obs *observed, ref v1alpha1.PATReference) error {
	name := orSpecConnection(obs.token, ref.ConnectionName)
	nc, err := r.clientOf(ctx, obs, name, false)
	if err != nil {
		if f := classify(err); f.reason == v1alpha1.ReasonConnectionNotFound {
			return &unrevokableError{&conditionError{v1alpha1.ReasonRevokeFailed, fmt.Sprintf(
				"NomadConnection %q, whose bot account minted PAT %s, is gone: the PAT stays active until it expires unless it is revoked in NOMAD",
				name, ref.ID)}}
		}
		return err
	}
	if !sameAccount(ref.Account, nc.Account()) {
		// The hash also changes when only the connection's address does. The PAT shows whether this
		// user still owns it: NOMAD answers 404 to anyone else.
		if _, err := nc.Get(ctx, ref.ID); nomad.IsNotFound(err) {
			return &unrevokableError{&conditionError{v1alpha1.ReasonAccountChanged, fmt.Sprintf(
				"PAT %s belongs to the NOMAD user NomadConnection %q logged in as before its credentials changed (or was pruned): only that user can revoke it, in NOMAD",
				ref.ID, name)}}
		} else if err != nil {
			return err
		}
	}
	return nc.Revoke(ctx, ref.ID)
}

// unrevokableError says a PAT cannot be revoked with anything the operator holds. It is reported like
// any condition error (classify unwraps it).
type unrevokableError struct{ *conditionError }

func (e *unrevokableError) Unwrap() error { return e.conditionError }

// nextWake is when the token needs attention again without any event: its renewal, or the end of the
// previous PAT's grace period, whichever comes first.
func (r *NomadTokenReconciler) nextWake(token *v1alpha1.NomadToken) time.Duration {
	next := tokenRenewalTime(token)
	if at := token.Status.PreviousTokenRevokeAt; at != nil && at.Time.Before(next) {
		next = at.Time
	}
	return max(next.Sub(r.Clock.Now()), time.Second)
}

// capWait shortens a wait so that it ends by the next deadline that cannot be postponed by a failure
// elsewhere: the end of the previous PAT's grace period, and the current PAT's expiry (Ready must turn
// False then). Deadlines already past do not count, so a failing step is not retried hot.
func (r *NomadTokenReconciler) capWait(token *v1alpha1.NomadToken, wait time.Duration) time.Duration {
	now := r.Clock.Now()
	for _, at := range []*metav1.Time{token.Status.PreviousTokenRevokeAt, token.Status.ExpiresAt} {
		if at == nil {
			continue
		}
		if until := at.Sub(now); until > 0 && until < wait {
			wait = until
		}
	}
	return wait
}
