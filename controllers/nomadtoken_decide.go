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

// plan is everything one reconcile owes a NomadToken, decided by decide from what was observed and
// nothing else. The act steps carry it out; report turns it and their outcome into conditions.
type plan struct {
	// mint is why a new PAT is owed (an Issue* reason); "" when the current PAT serves. It is minted
	// now unless blocked says why not.
	mint string
	// via is how the new PAT is obtained.
	via mintVia
	// current is what becomes of the current PAT: with mint, once its successor is in the Secret;
	// without one, it is keep (or revokeAtOnce for a revoke-now that cannot be replaced).
	current fate
	// previous is what becomes of the previous PAT of an Overlap rotation (previousTokenID).
	previous fate
	// currentServes says the Secret's PAT stays good for the spec while a successor is minted (a
	// planned or requested rotation): a failed mint then leaves Ready True until it expires.
	currentServes bool
	// rotateAtLimit: if NOMAD's active-PAT cap refuses the create, use the rotate endpoint instead,
	// which frees the old PAT's slot first (only for a PAT this connection's account owns).
	rotateAtLimit bool
	// revokeUnreplaced: revoke-now; if no successor can be minted, the current PAT is revoked anyway.
	revokeUnreplaced bool
	// revokeOnly: revoke-now while nothing can be minted at all (a conflicting Secret, an incomplete
	// observation): the current PAT is revoked without trying for a successor.
	revokeOnly bool
	// blocked is why the PAT that mint names (or any) may not be minted now.
	blocked *failure
	// syncSecret: rewrite the Secret with the PAT it holds (labels, annotations, key or name changed).
	syncSecret bool
}

// decide is the whole lifecycle of a NomadToken on one screen: what is owed, given what was seen.
func decide(o *observed) plan {
	if o.incomplete != nil || o.secretConflict() {
		// Nothing is minted on partial knowledge, nor for a Secret that is not ours; replaced PATs
		// are still revoked on time, and the incident button still revokes.
		p := plan{previous: previousFate(o)}
		if o.incomplete == nil {
			p.blocked = &failure{reason: v1alpha1.ReasonSecretConflict, message: secretConflictMessage(o.secret.Name)}
		}
		if revokeNowRequested(o.token) {
			p.previous, p.revokeOnly = revokeAtOnce, true
		}
		return p
	}
	reason := issuanceReason(o)
	if o.refused != nil {
		// The platform's rules (the connection's allowedNamespaces or policy) forbid minting, so
		// NOMAD is not asked. The current PAT serves until it is due; replaced PATs are still
		// revoked, and revoke-now still revokes. A PAT whose raw token left the Secret serves
		// nobody: it is revoked too, successor or not.
		p := plan{mint: reason, previous: previousFate(o), blocked: o.refused, currentServes: reason == "" || isRotation(reason)}
		p.syncSecret = reason == "" && secretNeedsSync(o)
		if revokeNowRequested(o.token) || o.rawTokenLost() {
			p.previous, p.revokeOnly = revokeAtOnce, true
		}
		return p
	}
	if o.heldOff != nil && !o.heldOff.bypassedBy(o.token) {
		// NOMAD refused this generation recently: ask again only when the hold-off ends, or when a
		// person asks anew (a request annotation value NOMAD has not refused yet).
		return plan{mint: reason, previous: previousFate(o), blocked: &o.heldOff.refusal, currentServes: reason == "" || isRotation(reason)}
	}
	if reason == "" {
		return plan{previous: previousFate(o), syncSecret: secretNeedsSync(o)}
	}
	strategy := effectiveStrategy(o.token.Spec.Rotation)
	p := plan{mint: reason, current: replacedFate(reason, strategy), previous: previousFate(o)}
	switch {
	case isRotation(reason):
		p.currentServes, p.rotateAtLimit = true, true
		if strategy == v1alpha1.RotationRotate {
			p.via = viaRotate
		}
	case reason == IssueRevokeNow:
		p.rotateAtLimit = true
	}
	if revokeNowRequested(o.token) {
		// Incident response, satisfied by any new PAT whatever reason came first in the chain: no
		// grace for any earlier PAT, and no waiting for a successor.
		p.current, p.previous, p.revokeUnreplaced = revokeAtOnce, revokeAtOnce, true
	}
	// Rotating in place needs the account that owns the PAT.
	p.rotateAtLimit = p.rotateAtLimit && !o.accountChanged
	return p
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

// replacedFate is what becomes of the current PAT once a successor minted for reason is in the
// Secret. Crash recovery uses it too, for a successor adopted after a lost status write.
func replacedFate(reason string, strategy v1alpha1.RotationStrategy) fate {
	switch {
	case reason == IssueNotIssued:
		return keep // there is none
	case reason == IssueGoneInNomad:
		return alreadyRevoked
	case isRotation(reason) && strategy == v1alpha1.RotationRotate:
		return alreadyRevoked // NOMAD's rotate endpoint revokes it first
	case isRotation(reason):
		return revokeAfterGrace
	}
	// A changed spec or Secret, an expired PAT, another account: the old PAT must stop working now.
	return revokeAtOnce
}

// previousFate says whether the previous PAT of an Overlap rotation goes now: its grace period has
// ended. (A new PAT that becomes current sends it to the revoke queue in any case: there is one
// previous slot.)
func previousFate(o *observed) fate {
	st := o.token.Status
	switch {
	case st.PreviousTokenID == "":
		return keep
	case st.PreviousTokenRevokeAt == nil || !o.now.Before(st.PreviousTokenRevokeAt.Time):
		return revokeAtOnce
	}
	return keep
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

// observed is everything a decision looks at, loaded once per reconcile.
type observed struct {
	token *v1alpha1.NomadToken
	// secret is the Secret at the token's current secret name, nil when there is none.
	secret *corev1.Secret
	// previous is the owned Secret at status.secretName when spec.secret.name moved away from it.
	previous *corev1.Secret
	// goneInNomad is set when the connection's verification found the current PAT inactive in NOMAD.
	goneInNomad bool
	// accountChanged is set when the spec connection logs in as another NOMAD user than the one
	// owning the current PAT (the connection's credentials changed).
	accountChanged bool
	// heldOff is NOMAD's recent refusal of this generation, while its hold-off lasts.
	heldOff *holdOff
	// refused is why the platform's rules (allowedNamespaces, policy) forbid minting now; nil when
	// they allow it.
	refused *failure
	// nsLabels are the labels of the token's namespace, read when its connection is a
	// ClusterNomadConnection (whose rules may select namespaces by label).
	nsLabels map[string]string
	// incomplete is why the observation could not be completed (a Secret could not be read, an
	// interrupted issuance not settled, the PAT not verified): nothing is minted then.
	incomplete error
	now        time.Time

	// connections caches, by connection key, the connections and NOMAD clients this reconcile used (clientOf).
	connections map[string]*resolvedConnection

	// stored is the status as the API server has it: as read, then as the intent write left it.
	stored *v1alpha1.NomadTokenStatus
	// readyBefore is the Ready condition at the start of the reconcile (what was last reported).
	readyBefore *metav1.Condition
}

// secretConflict reports a Secret of the wanted name that this NomadToken does not own. It must never
// be overwritten, and no PAT may be minted for it.
func (o *observed) secretConflict() bool {
	return o.secret != nil && !ownedBy(o.secret, o.token)
}

// currentRawToken finds the raw PAT the operator last wrote, in the current Secret or, after a rename,
// in the previous one.
func (o *observed) currentRawToken() ([]byte, bool) {
	st := o.token.Status
	key := o.token.EffectiveSecretKey()
	if raw, ok := findRawToken(o.secret, key, st.TokenFingerprint); ok {
		return raw, true
	}
	return findRawToken(o.previous, key, st.TokenFingerprint)
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
// annotations, key or name changed) although no new PAT is owed.
func secretNeedsSync(o *observed) bool {
	raw, ok := o.currentRawToken()
	if !ok {
		return false
	}
	return o.previous != nil || !secretInSync(o.secret, o.token, raw, currentFacts(o.token))
}
