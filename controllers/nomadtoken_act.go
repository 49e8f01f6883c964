package controllers

import (
	"context"
	"time"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// outcome is what the act steps did, for report to tell.
type outcome struct {
	// issued is the PAT that became current in this reconcile, nil when none did.
	issued *issuedFact
	// mintErr is why the planned PAT (or Secret rewrite) could not be provided.
	mintErr error
	// unreplaced is the PAT revoke-now revoked although no successor could be minted.
	unreplaced string
	// fellBackToRotate: NOMAD's PAT cap refused the create, so the rotate endpoint was used.
	fellBackToRotate bool
	// rotateRefused is set when NOMAD's rotate endpoint revoked the old PAT and refused its successor
	// (the hazard of nomad-pat-api.md §5): its id and NOMAD's words; a fresh PAT was created then.
	rotateRefused *failure
	// rotateUnsettled is the PAT a rotate left in an unknown state (the answer was lost, or the
	// Secret write failed after it): it may already be revoked, so the Secret is not reported Ready.
	rotateUnsettled string
	// revocations is what the revoke queue did.
	revocations revocations
	// restartWait is how long a debounced restart target waits, or until the opt-in of restart
	// targets that lack it is checked again; restartErr a failed restart (or read of a target).
	restartWait time.Duration
	restartErr  error
}

// issuedFact describes a PAT that became current.
type issuedFact struct {
	id        string
	reason    string
	rotated   bool // it replaced an earlier PAT by rotation
	expiresAt time.Time
}

// act carries out p, step by step, in the order that keeps every PAT accounted for: PATs whose time
// is up are queued first, so they are revoked even if minting fails; then the new PAT (or the Secret
// rewrite); then the revoke queue; then the workloads that read the new PAT.
func (r *NomadTokenReconciler) act(ctx context.Context, obs *observed, p *plan) outcome {
	var out outcome
	if p.previous == revokeAtOnce {
		r.queuePrevious(obs.token)
	}
	switch {
	case p.mint != "" && p.blocked == nil:
		out.mintErr = r.mint(ctx, obs, p, &out)
		if out.mintErr != nil && p.revokeUnreplaced && !isKubernetesError(out.mintErr) {
			out.unreplaced = obs.token.Status.TokenID
			r.revokeUnreplaced(obs.token)
		}
	case p.revokeOnly:
		out.unreplaced = obs.token.Status.TokenID
		r.revokeUnreplaced(obs.token)
	case p.syncSecret:
		out.mintErr = r.syncSecret(ctx, obs)
	}
	out.revocations = r.revokeQueue(ctx, obs)
	if out.mintErr == nil && p.blocked == nil && obs.incomplete == nil {
		out.restartWait, out.restartErr = r.restartConsumers(ctx, obs.token)
	}
	return out
}

// mint obtains the PAT p plans and stores its raw token in the Secret in the same reconcile. The
// connection's account is known only now: if it no longer owns the current PAT, the plan is decided
// again with that fact (the old PAT must then be revoked by its owner, not rotated by another user).
func (r *NomadTokenReconciler) mint(ctx context.Context, obs *observed, p *plan, out *outcome) error {
	token := obs.token
	if !p.currentServes {
		// Until the new PAT is in the Secret, the Secret holds no usable PAT for this spec; say so
		// before anything can fail (a connection that is down must not leave Ready=True behind).
		reportIssuing(token, p.mint)
	}
	nc, err := r.clientFor(ctx, obs, true)
	if err != nil {
		return err
	}
	if token.Status.TokenID != "" && !obs.accountChanged && !currentMinter(token).is(minter{token.Spec.ConnectionRef.Key(), nc.Account()}) {
		obs.accountChanged = true
		*p = decide(obs)
		if p.mint == "" || p.blocked != nil {
			return nil
		}
	}
	if p.via == viaRotate {
		return r.rotateInNomad(ctx, obs, nc, p, out)
	}
	err = r.createAndStore(ctx, obs, nc, p.mint, p.current, out)
	if p.rotateAtLimit && nomad.CodeOf(err) == nomad.CodeTokenLimitReached {
		out.fellBackToRotate = true
		return r.rotateInNomad(ctx, obs, nc, p, out)
	}
	return err
}

// queuePrevious ends the grace period of the previous PAT: it joins the revoke queue.
func (r *NomadTokenReconciler) queuePrevious(token *v1alpha1.NomadToken) {
	st := &token.Status
	if st.PreviousTokenID != "" {
		queueRevoke(st, currentMinter(token).ref(st.PreviousTokenID, st.PreviousTokenExpiresAt))
	}
	st.PreviousTokenID = ""
	st.PreviousTokenRevokeAt = nil
}

// revokeUnreplaced is revoke-now without a successor: the current PAT joins the revoke queue and the
// token holds no PAT any more, so the next reconcile mints one as soon as NOMAD allows. The Secret
// keeps the dead token (docs/rotation.md says why).
func (r *NomadTokenReconciler) revokeUnreplaced(token *v1alpha1.NomadToken) {
	st := &token.Status
	if st.TokenID != "" {
		queueRevoke(st, currentMinter(token).ref(st.TokenID, st.ExpiresAt))
	}
	st.TokenID, st.IssuedAt, st.ExpiresAt, st.RenewalTime = "", nil, nil, nil
	st.TokenFingerprint, st.IssuedSpecHash, st.LastUsedAt = "", "", nil
	st.RevokeNowRequestHandled = token.Annotations[v1alpha1.AnnotationRevokeNow]
}
