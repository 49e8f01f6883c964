package controllers

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// Why a new PAT is owed. The first check that fails names the reason (an ordered policy chain, as in
// cert-manager); the reason is what the Event and the log say.
const (
	IssueNotIssued      = "NotIssued"          // no PAT was ever issued for this NomadToken
	IssueSpecChanged    = "SpecChanged"        // a material field changed: NOMAD cannot edit a PAT
	IssueSecretMissing  = "SecretMissing"      // the Secret is gone and the raw token with it
	IssueSecretEdited   = "SecretEdited"       // the Secret no longer holds the token the operator wrote
	IssueRevokeNow      = "RevokeNowRequested" // the revoke-now annotation has a new value
	IssueExpired        = "Expired"            // the PAT expired (the operator was down past renewal)
	IssueGoneInNomad    = "RevokedInNomad"     // someone revoked the PAT in NOMAD, or it was pruned
	IssueAccountChanged = "AccountChanged"     // the connection now logs in as another NOMAD user
	IssueRotateRequest  = "RotateRequested"    // the rotate annotation has a new value
	IssueRenewalDue     = "RenewalDue"         // the planned renewal time has come
	// IssueRotateFailed: NOMAD's rotate endpoint revoked the old PAT and then refused its successor
	// (nomad-pat-api.md §5, the rotate hazard); a fresh PAT is created at once.
	IssueRotateFailed = "RotateFailed"
)

// replacement says what happens to the PAT a new one replaces.
type replacement int

const (
	// revokeAtOnce: the old PAT must stop working now (spec or Secret changed, incident response).
	revokeAtOnce replacement = iota
	// rotation: a scheduled or requested rotation; the strategy decides (Overlap keeps the old PAT
	// for the grace period, Rotate uses NOMAD's rotate endpoint).
	rotation
)

// replacementFor tells how the reason for a new PAT treats the old one.
func replacementFor(reason string) replacement {
	switch reason {
	case IssueRenewalDue, IssueRotateRequest, IssueExpired:
		return rotation
	default:
		return revokeAtOnce
	}
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
	// accountChanged is set when the connection's verification ran as another NOMAD user than the
	// one owning the current PAT (the connection's credentials changed).
	accountChanged bool
	now            time.Time

	// connections caches, by name, the connections and NOMAD clients this reconcile used (clientOf).
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
	if v := o.token.Annotations[v1alpha1.AnnotationRevokeNow]; v != "" && v != st.RevokeNowRequestHandled {
		return IssueRevokeNow
	}
	if !o.now.Before(st.ExpiresAt.Time) {
		return IssueExpired
	}
	if o.accountChanged {
		return IssueAccountChanged
	}
	if o.goneInNomad {
		return IssueGoneInNomad
	}
	if v := o.token.Annotations[v1alpha1.AnnotationRotate]; v != "" && v != st.RotateRequestHandled {
		return IssueRotateRequest
	}
	if !o.now.Before(tokenRenewalTime(o.token)) {
		return IssueRenewalDue
	}
	return ""
}

// facts returns what the Secret annotations should say about the current PAT.
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
