package controllers

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// oldPATWaitOf is what status and spec say about the previous PAT's wait, before any look at NOMAD
// or the restart targets. Deletion and revoke-now are read from the token.
func oldPATWaitOf(token *v1alpha1.NomadToken) oldPATWait {
	st := token.Status
	w := oldPATWait{revokeNow: revokeNowRequested(token), deleting: !token.DeletionTimestamp.IsZero()}
	if st.PreviousTokenRevokeAt != nil {
		w.revokeAt = &st.PreviousTokenRevokeAt.Time
	}
	if wc := token.Spec.Rotation.WaitForConsumers; wc != nil && st.PreviousTokenRevokeBy != nil {
		// Removing waitForConsumers from the spec ends the wait: the PAT goes with gracePeriod.
		w.revokeBy, w.unusedFor = &st.PreviousTokenRevokeBy.Time, wc.UnusedFor.Duration
	}
	if st.LastRotationTime != nil {
		w.swap = st.LastRotationTime.Time
	}
	return w
}

// oldPATLook is what observe saw of the previous PAT's consumers: the part of oldPATWait that status
// does not hold.
type oldPATLook struct {
	use          *patUse
	useUnknown   string
	rolling      []string
	accountMoved bool
}

// oldPATWait is the previous PAT's wait as observed: status, and what was seen of its consumers.
func (o *observed) oldPATWait() oldPATWait {
	w := oldPATWaitOf(o.token)
	w.use, w.useUnknown, w.rolling = o.oldPAT.use, o.oldPAT.useUnknown, o.oldPAT.rolling
	w.accountMoved = o.oldPAT.accountMoved || o.accountChanged
	return w
}

// observeOldPAT gathers what the previous PAT's fate depends on: the freshest look at its use, and,
// once its grace period is over, the rollout of the restart targets. When the rule says the freshest
// look is too old to decide on, it makes one narrow request (a GET of that PAT) and records it.
func (r *NomadTokenReconciler) observeOldPAT(ctx context.Context, sc *reconcileScope) oldPATLook {
	token := sc.token
	st := &token.Status
	w := oldPATWaitOf(token)
	if st.PreviousTokenID == "" || w.revokeBy == nil || w.revokeNow {
		return oldPATLook{}
	}
	w.use = r.oldPATUse(token)
	if !sc.now.Before(*w.revokeAt) {
		w.rolling = r.rollingTargets(ctx, token)
	}
	if judgeOldPAT(sc.now, w).wantsLook {
		if use, unknown, moved, deferred := r.lookAtOldPAT(ctx, sc); !deferred {
			w.use, w.useUnknown, w.accountMoved = use, unknown, moved
		}
	}
	if w.use != nil && w.use.lastUsedAt != nil {
		// Whole seconds, as status keeps times: one status write per change of the last use.
		st.PreviousTokenLastUsedAt = &metav1.Time{Time: w.use.lastUsedAt.UTC().Truncate(time.Second)}
	}
	return oldPATLook{use: w.use, useUnknown: w.useUnknown, rolling: w.rolling, accountMoved: w.accountMoved}
}

// oldPATUse is the freshest look at the previous PAT's use: the minting connection's last list, or a
// GET of it made since.
func (r *NomadTokenReconciler) oldPATUse(token *v1alpha1.NomadToken) *patUse {
	st := token.Status
	var best *patUse
	if v, ok := r.oldPATLooks.Load(st.PreviousTokenID); ok {
		u := v.(patUse)
		best = &u
	}
	if r.Verifier == nil {
		return best
	}
	_, conn := connectionObjectKey(token.Namespace, currentMinter(token).connection)
	list, known := r.Verifier.lookup(conn)
	if !known || !sameAccount(list.account, st.Account) || best != nil && !list.takenAt.After(best.seenAt) {
		return best
	}
	pat, listed := list.byID[st.PreviousTokenID]
	if !listed {
		// Gone, or a list that missed it: a GET tells (a 404 is gone), as verifyInNomad confirms a
		// missing current PAT, before anything is revoked on its say.
		return best
	}
	return &patUse{lastUsedAt: pat.LastUsedAt, seenAt: list.takenAt, nomadOffset: list.nomadOffset}
}

// lookAtOldPAT asks NOMAD for the previous PAT (one GET) and remembers the answer. A failure is told
// in useUnknown; accountMoved says the connection now signs in as a user who cannot see it. deferred
// says the connection's own limits held the GET back (busy with other tokens' calls): nothing was
// learned or went wrong, and the verdict asks to look again shortly.
func (r *NomadTokenReconciler) lookAtOldPAT(ctx context.Context, sc *reconcileScope) (use *patUse, useUnknown string, accountMoved, deferred bool) {
	token := sc.token
	st := token.Status
	nc, err := r.clientOf(ctx, sc, currentMinter(token).connection, false)
	if err != nil {
		return nil, classify(err).message, false, false
	}
	seenAt := r.Clock.Now()
	pat, err := nc.Get(ctx, st.PreviousTokenID)
	offset, _ := nc.ClockOffset()
	u := patUse{seenAt: seenAt, nomadOffset: offset}
	switch {
	case nomad.Deferred(err):
		return nil, "", false, true
	case nomad.IsNotFound(err) && !sameAccount(st.Account, nc.Account()):
		return nil, "", true, false
	case nomad.IsNotFound(err):
		u.gone = true
	case err != nil:
		log.FromContext(ctx).Info("could not read the replaced PAT's last use", "tokenID", st.PreviousTokenID, "message", classify(err).message)
		return nil, classify(err).message, false, false
	default:
		u.lastUsedAt, u.gone = pat.LastUsedAt, !pat.Active(seenAt)
	}
	r.oldPATLooks.Store(st.PreviousTokenID, u)
	return &u, "", false, false
}
