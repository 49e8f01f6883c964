package controllers

import (
	"context"
	"time"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// outcome is what the act steps did, for report to tell.
type outcome struct {
	// learned is a fact that only acting revealed and that changes the plan; when it is set, no step
	// has run yet, and Reconcile decides again with it.
	learned *learnedFact
	// issued is the PAT that became current in this reconcile, nil when none did.
	issued *issuedFact
	// adopted is the restored PAT taken over in this reconcile (nomadtoken_restore.go).
	adopted *issuedFact
	// err is why the plan's main step failed: settling an interrupted issuance, providing the planned
	// PAT, or rewriting the Secret.
	err error
	// staleIntent: the intent write met a conflict, so this reconcile worked from an outdated object;
	// nothing was asked of NOMAD, and the next reconcile starts afresh.
	staleIntent bool
	// unreplaced is the PAT revoke-now revoked although no successor could be minted.
	unreplaced string
	// fellBackToRotate: NOMAD's PAT cap refused the create, so the rotate endpoint was used.
	fellBackToRotate bool
	// freedAtPATLimit is the previous PAT revoked early to make room under NOMAD's PAT cap.
	freedAtPATLimit string
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

// learnedFact is something only acting can reveal that changes the plan.
type learnedFact struct {
	// accountChanged: the connection now logs in as another NOMAD user than the one that owns the
	// current PAT, which that user can neither rotate nor revoke.
	accountChanged bool
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
// rewrite, or the settling of an interrupted issuance); then the revoke queue; then the workloads that
// read the new PAT. It decides nothing: every choice, fallbacks included, is in p.
func (r *NomadTokenReconciler) act(ctx context.Context, sc *reconcileScope, o *observed, p plan) outcome {
	var out outcome
	var nc nomad.Client
	var clientErr error
	if p.mints() {
		// Who the connection logs in as is known only once it is resolved, and it decides what may
		// become of the current PAT: learn it before any step runs.
		if nc, clientErr = r.clientFor(ctx, sc, true); clientErr == nil && mintsAsAnotherUser(o, nc) {
			return outcome{learned: &learnedFact{accountChanged: true}}
		}
	}
	if p.adoptSecret {
		// Nothing is written to the Secret before it is the token's; the revocations go on anyway.
		out.err = r.adoptSecret(ctx, sc)
	}
	if p.previous == revokeAtOnce {
		r.queuePrevious(sc.token)
	}
	switch {
	case p.adoptPAT != nil && out.err == nil:
		r.adoptRestoredPAT(sc, p.adoptPAT)
		out.adopted = &issuedFact{id: p.adoptPAT.pat.ID, expiresAt: sc.token.Status.ExpiresAt.Time}
	case p.settle != nil:
		out.err = r.applySettlement(ctx, sc, p.settle)
	case p.mints():
		if out.err == nil {
			out.err = clientErr
		}
		if out.err == nil {
			out.err = r.mint(ctx, sc, nc, p, &out)
		}
		if out.err != nil && !out.staleIntent {
			r.syncUnminted(ctx, sc, p)
		}
		if out.err != nil && p.revokeUnreplaced && !out.staleIntent {
			out.unreplaced = sc.token.Status.TokenID
			r.revokeUnreplaced(sc.token)
		}
	case p.revokeOnly:
		if p.syncSecret && out.err == nil {
			// Before the revocation clears the current PAT from status: the Secret keeps its dead
			// token, rewritten without the replaced one.
			out.err = r.syncSecret(ctx, sc)
		}
		out.unreplaced = sc.token.Status.TokenID
		r.revokeUnreplaced(sc.token)
	case p.syncSecret && out.err == nil:
		out.err = r.syncSecret(ctx, sc)
	}
	out.revocations = out.revocations.and(r.revokeQueue(ctx, sc))
	if out.err == nil && p.blocked == nil && p.awaiting == nil && o.incomplete == nil && p.settle == nil {
		out.restartWait, out.restartErr = r.restartConsumers(ctx, sc.token)
	}
	return out
}

// mintsAsAnotherUser reports a current PAT that the connection, as it logs in now, did not mint
// (and that the plan did not already take for another user's).
func mintsAsAnotherUser(o *observed, nc nomad.Client) bool {
	token := o.token
	return token.Status.TokenID != "" && !o.accountChanged &&
		!currentMinter(token).is(minter{token.Spec.ConnectionRef.Key(), nc.Account()})
}

// mint obtains the PAT p plans, falling back as p says, and stores its raw token in the Secret in the
// same reconcile.
func (r *NomadTokenReconciler) mint(ctx context.Context, sc *reconcileScope, nc nomad.Client, p plan, out *outcome) error {
	if p.mint.via == viaRotate {
		return r.rotateInNomad(ctx, sc, nc, p.mint, p.currentServes, p.afterRotateRevoked, out)
	}
	err := r.createAndStore(ctx, sc, nc, p.mint, p.currentServes, out)
	if p.freeAtPATLimit && nomad.CodeOf(err) == nomad.CodeTokenLimitReached {
		out.freedAtPATLimit = sc.token.Status.PreviousTokenID
		r.queuePrevious(sc.token)
		if out.revocations = r.revokeQueue(ctx, sc); out.revocations.err == nil {
			err = r.createAndStore(ctx, sc, nc, p.mint, p.currentServes, out)
		}
	}
	if p.atPATLimit != nil && nomad.CodeOf(err) == nomad.CodeTokenLimitReached {
		out.fellBackToRotate = true
		return r.rotateInNomad(ctx, sc, nc, *p.atPATLimit, p.currentServes, p.afterRotateRevoked, out)
	}
	return err
}

// queuePrevious ends the grace period of the previous PAT: it joins the revoke queue.
func (r *NomadTokenReconciler) queuePrevious(token *v1alpha1.NomadToken) {
	st := &token.Status
	if st.PreviousTokenID != "" {
		queueRevoke(st, currentMinter(token).ref(st.PreviousTokenID, st.PreviousTokenExpiresAt))
		r.oldPATLooks.Delete(st.PreviousTokenID)
	}
	st.PreviousTokenID, st.PreviousTokenFingerprint = "", ""
	st.PreviousTokenRevokeAt, st.PreviousTokenRevokeBy, st.PreviousTokenLastUsedAt = nil, nil, nil
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
