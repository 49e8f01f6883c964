package controllers

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// Why a new PAT is owed. The first check that fires names the reason (an ordered policy chain, as in
// cert-manager); the reason is what the Event and the log say.
const (
	IssueNotIssued      = "NotIssued"          // no PAT was ever issued for this NomadToken
	IssueSpecChanged    = "SpecChanged"        // a material field changed: NOMAD cannot edit a PAT
	IssueSecretMissing  = "SecretMissing"      // the Secret is gone and the raw token with it
	IssueSecretEdited   = "SecretEdited"       // the Secret no longer holds the token the operator wrote
	IssueRevokeNow      = "RevokeNowRequested" // the revoke-now annotation has a new value
	IssueExpired        = "Expired"            // the PAT expired (the operator was down past renewal)
	IssueAccountChanged = "AccountChanged"     // the connection now logs in as another NOMAD user
	IssueGoneInNomad    = "RevokedInNomad"     // someone revoked the PAT in NOMAD, or it was pruned
	IssueRotateRequest  = "RotateRequested"    // the rotate annotation has a new value
	IssueRenewalDue     = "RenewalDue"         // the planned renewal time has come
	// IssueRotateFailed: NOMAD's rotate endpoint revoked the old PAT and then refused its successor
	// (nomad-pat-api.md §5, the rotate hazard); a fresh PAT is created at once.
	IssueRotateFailed = "RotateFailed"
)

// fate is what becomes of a PAT that a reconcile replaces (or, for the previous PAT of an Overlap
// rotation, whose grace period it looks at).
type fate int

const (
	// keep: the PAT stays as it is (the current one serves; a previous one waits for its grace to end).
	keep fate = iota
	// revokeAfterGrace: an Overlap rotation; the PAT stays valid for the grace period, then is revoked.
	revokeAfterGrace
	// revokeAtOnce: the PAT is queued for revocation in this reconcile.
	revokeAtOnce
	// alreadyRevoked: NOMAD has revoked it (its rotate endpoint does, or verification found it gone).
	alreadyRevoked
)

// mintVia is how a new PAT is obtained.
type mintVia int

const (
	viaCreate mintVia = iota // a fresh create; what happens to the old PAT is its fate
	viaRotate                // NOMAD's rotate endpoint, which revokes the old PAT first
)

// attempt is one way to obtain a new PAT, and what then becomes of the PAT it replaces.
type attempt struct {
	// reason is why a new PAT is owed (an Issue* reason); "" when the current PAT serves.
	reason string
	via    mintVia
	// replaced is what becomes of the current PAT once the new one is in the Secret.
	replaced fate
	// restartsConsumers: the Secret holds a token now, which consumers that read it at start (env-var
	// pods) keep; the new PAT owes them a restart, whatever status tracked before it (revoke-now may
	// have cleared the PAT that token belonged to, or an earlier NomadToken of this name wrote it).
	restartsConsumers bool
}

// plan is everything one reconcile owes a NomadToken, decided by decide from what was observed and
// nothing else. The act steps carry it out, including its fallbacks, without deciding anything; report
// turns it and their outcome into conditions.
type plan struct {
	// settle is the verdict on an interrupted issuance. Such a reconcile settles it and nothing else
	// (besides ending a grace period): the next one plans on what it left.
	settle *settlement
	// mint is the PAT owed; it is minted now unless blocked says why not.
	mint attempt
	// freeAtPATLimit: if NOMAD's active-PAT cap refuses the create while the previous PAT is kept (its
	// grace period, or its consumers' wait), that PAT is revoked first and the create tried once more:
	// the laggards of the previous rotation lose it a little early, instead of every consumer losing the
	// current PAT to the rotate endpoint. atPATLimit follows if the cap still refuses.
	freeAtPATLimit bool
	// atPATLimit is what to do if NOMAD's active-PAT cap refuses the create: NOMAD's rotate endpoint,
	// which frees the old PAT's slot first (only for a PAT this connection's account owns). nil: the
	// refusal is reported.
	atPATLimit *attempt
	// afterRotateRevoked is what to do if NOMAD's rotate endpoint revokes the old PAT and then refuses
	// its successor (nomad-pat-api.md §5, the rotate hazard): nothing valid is left, so a fresh PAT is
	// created at once. nil when no rotate is planned.
	afterRotateRevoked *attempt
	// previous is what becomes of the previous PAT of an Overlap rotation (previousTokenID).
	previous fate
	// currentServes says the Secret's PAT stays good for the spec while a successor is minted (a
	// planned or requested rotation): a failed mint then leaves Ready True until it expires.
	currentServes bool
	// revokeUnreplaced: revoke-now; if no successor can be minted, the current PAT is revoked anyway.
	revokeUnreplaced bool
	// revokeOnly: revoke-now while nothing can be minted at all (a conflicting Secret, an incomplete
	// observation): the current PAT is revoked without trying for a successor.
	revokeOnly bool
	// blocked is why the PAT that mint names (or any) may not be minted now.
	blocked *failure
	// syncSecret: rewrite the Secret with the PAT it holds (labels, annotations, key or name changed).
	syncSecret bool
	// adoptSecret: become the controller of the Secret (see observed.adoptSecret) before any write.
	adoptSecret bool
	// adoptPAT: take over the valid PAT a restored Secret holds instead of minting one.
	adoptPAT *restoredPAT
	// awaiting is a precondition of minting that passes by itself (the connection's in-use hold):
	// the mint waits for it, and Ready says so unless the current PAT still serves.
	awaiting *failure
	// oldPAT is the verdict on the previous PAT (judgeOldPAT), which previous carries out; report
	// tells of the wait and when to look again.
	oldPAT oldPATVerdict
}

// mints reports a PAT owed and allowed now.
func (p plan) mints() bool { return p.mint.reason != "" && p.blocked == nil && p.awaiting == nil }

// decide is the whole lifecycle of a NomadToken on one screen: what is owed, given what was seen.
func decide(o *observed) plan {
	p := decideOwed(o)
	// A Secret left by a NomadToken that is gone is adopted whatever else is owed.
	p.adoptSecret = o.adoptSecret && o.incomplete == nil
	p.oldPAT = o.oldPATVerdict()
	// A replaced PAT that leaves status leaves the Secret's previousKey in the same reconcile.
	p.syncSecret = p.syncSecret || previousLeavesSecret(o, p)
	return p
}

// decideOwed is decide before the Secret's adoption.
func decideOwed(o *observed) plan {
	if o.incomplete == nil && o.pending != nil {
		// An interrupted issuance is settled before anything else, whatever else holds.
		return plan{settle: settle(o, true), previous: previousFate(o)}
	}
	if o.incomplete != nil || o.secretConflict() {
		// Nothing is minted on partial knowledge, nor for a Secret that is not ours; replaced PATs
		// are still revoked on time, and the incident button still revokes.
		p := plan{previous: previousFate(o)}
		if o.incomplete == nil {
			p.blocked = &failure{reason: v1alpha1.ReasonSecretConflict, message: secretConflictMessage(o.secret.Name)}
		}
		p.revokeOnly = revokeNowRequested(o.token)
		return p
	}
	reason := issuanceReason(o)
	if reason == IssueNotIssued && o.restored != nil {
		// Restored without status: the PAT the Secret holds is taken over, not replaced.
		return plan{adoptPAT: o.restored, previous: previousFate(o)}
	}
	if refused := o.refusal(); refused != nil {
		// The platform's rules (the connection's allowedNamespaces or policy) or a template that
		// does not render forbid minting, so NOMAD is not asked. The current PAT serves until it is
		// due; replaced PATs are still revoked, and revoke-now still revokes. A PAT whose raw token
		// left the Secret serves nobody: it is revoked too, successor or not.
		p := plan{mint: attempt{reason: reason}, previous: previousFate(o), blocked: refused, currentServes: reason == "" || isRotation(reason)}
		p.syncSecret = reason == "" && secretNeedsSync(o)
		if revokeNowRequested(o.token) || o.rawTokenLost() {
			p.previous, p.revokeOnly = revokeAtOnce, true
		}
		return p
	}
	if o.heldOff != nil && !o.heldOff.bypassedBy(o.token) {
		// NOMAD (or the cluster, for the Secret) refused this generation recently: ask again only
		// when the hold-off ends, or when a person asks anew (a request annotation value not yet
		// refused).
		return plan{mint: attempt{reason: reason}, previous: previousFate(o), blocked: &o.heldOff.refusal, currentServes: reason == "" || isRotation(reason)}
	}
	if reason == "" {
		return plan{previous: previousFate(o), syncSecret: secretNeedsSync(o)}
	}
	revokeNow := revokeNowRequested(o.token)
	if o.awaitingHold != nil && !revokeNow {
		// Moments, normally: the connection's update that adds the hold wakes the token.
		return plan{mint: attempt{reason: reason}, previous: previousFate(o), currentServes: isRotation(reason), awaiting: o.awaitingHold}
	}
	p := plan{mint: attempt{reason: reason}, previous: previousFate(o), currentServes: isRotation(reason)}
	if isRotation(reason) && effectiveStrategy(o.token.Spec.Rotation) == v1alpha1.RotationRotate {
		p.mint.via = viaRotate
	}
	// The successor is minted through spec.connectionRef, as the user it logs in as; the current PAT
	// was minted by status.connectionName as status.account (act learns the account only when it
	// resolves the connection, and then asks again with accountChanged set).
	sameMinter := !o.accountChanged && currentMinter(o.token).connection == o.token.Spec.ConnectionRef.Key()
	p.mint.replaced = fateOfReplaced(reason, p.mint.via, revokeNow, sameMinter)
	restarts := o.secretHoldsAToken()
	p.mint.restartsConsumers = restarts
	if p.mint.via == viaCreate && (isRotation(reason) || reason == IssueRevokeNow) && !o.accountChanged {
		// Rotating in place needs the account that owns the PAT.
		p.atPATLimit = &attempt{reason: reason, via: viaRotate, replaced: alreadyRevoked, restartsConsumers: restarts}
	}
	// The previous PAT is sent to the revoke queue by the swap anyway (one previous slot).
	p.freeAtPATLimit = p.mint.via == viaCreate && o.token.Status.PreviousTokenID != "" && p.previous == keep
	if p.mint.via == viaRotate || p.atPATLimit != nil {
		p.afterRotateRevoked = &attempt{reason: IssueRotateFailed, via: viaCreate, replaced: alreadyRevoked, restartsConsumers: restarts}
	}
	// Incident response, satisfied by any new PAT whatever reason came first in the chain: no grace
	// for any earlier PAT (judgeOldPAT), and no waiting for a successor.
	p.revokeUnreplaced = revokeNow
	return p
}

// fateOfReplaced is what becomes of the current PAT once a successor, minted for reason via via, is
// in the Secret; sameMinter says the successor comes from the connection and NOMAD user that minted
// the current PAT. Crash recovery uses it too, for a successor adopted after a lost status write.
func fateOfReplaced(reason string, via mintVia, revokeNow, sameMinter bool) fate {
	switch {
	case reason == IssueNotIssued:
		return keep // there is none
	case via == viaRotate || reason == IssueGoneInNomad || reason == IssueRotateFailed:
		return alreadyRevoked // NOMAD's rotate endpoint revoked it first, or it is gone in NOMAD
	case revokeNow:
		return revokeAtOnce // incident response allows no grace
	case !sameMinter:
		// The previous slot is recorded under the current minter, so a PAT of another minter is
		// queued at once, with the connection and account that can revoke it.
		return revokeAtOnce
	case isRotation(reason):
		return revokeAfterGrace
	}
	// A changed spec or Secret, an expired PAT, another account: the old PAT must stop working now.
	return revokeAtOnce
}

// rawTokenLost reports a current PAT whose raw token is in no Secret any more (deleted or edited):
// nobody holds it, whatever else changed (a spec edit comes first in the chain of reasons).
func (o *observed) rawTokenLost() bool {
	if o.token.Status.TokenID == "" {
		return false
	}
	_, ok := o.currentRawToken()
	return !ok
}

// isRotation reports a planned or requested rotation: the PAT it replaces is fine until then, and is
// replaced with the rotation strategy.
func isRotation(reason string) bool {
	return reason == IssueRenewalDue || reason == IssueRotateRequest
}

// previousFate says whether the previous PAT of an Overlap rotation goes now (judgeOldPAT: its grace
// period ended and, with waitForConsumers, its consumers moved or maxGracePeriod came). A new PAT
// that becomes current sends it to the revoke queue in any case: there is one previous slot.
func previousFate(o *observed) fate {
	return o.oldPATVerdict().fate
}

// oldPATVerdict judges the previous PAT on what was observed. Without one there is nothing to keep:
// revoke-now still says revokeAtOnce, for every earlier PAT.
func (o *observed) oldPATVerdict() oldPATVerdict {
	w := o.oldPATWait()
	if o.token.Status.PreviousTokenID == "" && !w.revokeNow {
		return oldPATVerdict{fate: keep}
	}
	return judgeOldPAT(o.now, w)
}

// issuanceReason returns why a new PAT is owed, or "" when the current one serves.
func issuanceReason(o *observed) string {
	st := o.token.Status
	switch {
	case st.TokenID == "" || st.IssuedAt == nil || st.ExpiresAt == nil:
		return IssueNotIssued
	case st.IssuedSpecHash != materialHash(o.token):
		return IssueSpecChanged
	case o.secret == nil && o.previous == nil:
		return IssueSecretMissing
	}
	if _, ok := o.currentRawToken(); !ok {
		return IssueSecretEdited
	}
	switch {
	case revokeNowRequested(o.token):
		return IssueRevokeNow
	case !o.now.Before(st.ExpiresAt.Time):
		return IssueExpired
	case o.accountChanged:
		return IssueAccountChanged
	case o.goneInNomad:
		return IssueGoneInNomad
	case o.now.Before(o.rotationAllowedAt):
		return "" // a rotation waits for the policy's minRotationInterval (rotation_pace.go)
	case rotateRequested(o.token) && o.now.Before(rotateRequestDueAt(o)):
		return "" // a rotate request right after a rotation is debounced (rotation_pace.go)
	case rotateRequested(o.token):
		return IssueRotateRequest
	case !o.now.Before(tokenRenewalTime(o.token)):
		return IssueRenewalDue
	}
	return ""
}

// revokeNowRequested reports a revoke-now annotation value not yet acted on.
func revokeNowRequested(token *v1alpha1.NomadToken) bool {
	v := token.Annotations[v1alpha1.AnnotationRevokeNow]
	return v != "" && v != token.Status.RevokeNowRequestHandled
}

// rotateRequested reports a rotate annotation value not yet acted on.
func rotateRequested(token *v1alpha1.NomadToken) bool {
	v := token.Annotations[v1alpha1.AnnotationRotate]
	return v != "" && v != token.Status.RotateRequestHandled
}

// observed is everything a decision looks at: a snapshot taken by observe, which no act step
// changes (the steps work on the reconcileScope).
type observed struct {
	token *v1alpha1.NomadToken
	// secret is the Secret at the token's current secret name, nil when there is none.
	secret *corev1.Secret
	// previous is the owned Secret at status.secretName when spec.secret.name moved away from it.
	previous *corev1.Secret
	// pending is what NOMAD shows of an interrupted issuance (status.pendingIssuance).
	pending *pendingFindings
	// goneInNomad is set when the connection's verification found the current PAT inactive in NOMAD.
	goneInNomad bool
	// accountChanged is set when the spec connection logs in as another NOMAD user than the one
	// owning the current PAT (the connection's credentials changed).
	accountChanged bool
	// heldOff is a recent refusal of this generation, while its hold-off lasts.
	heldOff *holdOff
	// refused is why the platform's rules (allowedNamespaces, policy) forbid minting now; nil when
	// they allow it.
	refused *failure
	// adoptSecret says that the Secret of the token's name, which it does not control, is one the
	// operator wrote for a NomadToken that is gone (a restore, a re-create): it is adopted, not a
	// conflict (nomadtoken_restore.go).
	adoptSecret bool
	// restored is the valid PAT the Secret holds while the token tracks none: it is taken over.
	restored *restoredPAT
	// awaitingHold says that the connection does not hold itself and its Secrets for the token yet
	// (nomadtoken_hold.go): nothing may be minted through it before it does.
	awaitingHold *failure
	// oldPAT is what was seen of the previous PAT's consumers (observeOldPAT).
	oldPAT oldPATLook
	// apiRoots are the API roots of the connections a Secret write may render .URL with, by
	// connection key (secret_template_url.go); nil for a token without templates.
	apiRoots map[string]string
	// rotationAllowedAt is when the connection's policies let a rotation give a new PAT (zero: now).
	rotationAllowedAt time.Time
	// incomplete is why the observation could not be completed (a Secret could not be read, an
	// interrupted issuance not looked up, the PAT not verified): nothing is minted then.
	incomplete error
	now        time.Time
	// readyBefore is the Ready condition at the start of the reconcile (what was last reported).
	readyBefore *metav1.Condition
}

// learned returns the snapshot with a fact that only acting revealed.
func (o *observed) learned(f learnedFact) *observed {
	c := *o
	c.accountChanged = c.accountChanged || f.accountChanged
	return &c
}

// secretConflict reports a Secret of the wanted name that this NomadToken does not own. It must never
// be overwritten, and no PAT may be minted for it.
func (o *observed) secretConflict() bool {
	return o.secret != nil && !ownedBy(o.secret, o.token) && !o.adoptSecret
}

// currentRawToken finds the raw PAT the operator last wrote, in the current Secret or, after a rename,
// in the previous one.
func (o *observed) currentRawToken() ([]byte, bool) {
	return currentRawToken(o.token, o.secret, o.previous)
}

func currentRawToken(token *v1alpha1.NomadToken, secret, previous *corev1.Secret) ([]byte, bool) {
	key, fingerprint := token.EffectiveSecretKey(), token.Status.TokenFingerprint
	if raw, ok := findRawToken(secret, key, fingerprint); ok {
		return raw, true
	}
	return findRawToken(previous, key, fingerprint)
}

// secretHoldsAToken reports whether the Secret a new PAT is written to (or the one it moves from)
// holds a token under the key consumers read.
func (o *observed) secretHoldsAToken() bool {
	key := o.token.EffectiveSecretKey()
	return o.secret != nil && len(o.secret.Data[key]) > 0 || o.previous != nil && len(o.previous.Data[key]) > 0
}

// currentFacts returns what the Secret annotations should say about the current PAT.
func currentFacts(t *v1alpha1.NomadToken) tokenSecretFacts {
	f := tokenSecretFacts{TokenID: t.Status.TokenID}
	if t.Status.IssuedAt != nil {
		f.IssuedAt = t.Status.IssuedAt.Time
	}
	if t.Status.ExpiresAt != nil {
		f.ExpiresAt = t.Status.ExpiresAt.Time
	}
	return f
}

// secretNeedsSync reports whether the Secret must be rewritten with the current PAT (labels,
// annotations, key, name, templates or previousKey changed) although no new PAT is owed. A template
// that does not render is refused (secretTemplateRefusal), and the Secret is left as it is.
func secretNeedsSync(o *observed) bool {
	c, ok := o.secretContent()
	if !ok {
		return false
	}
	want, err := desiredSecret(o.token, c)
	return err == nil && (o.previous != nil || !secretInSync(o.secret, o.token, want))
}
