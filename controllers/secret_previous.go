package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// spec.secret.previousKey keeps, from an Overlap swap until the replaced PAT is revoked, its raw token
// beside the new one, so that a consumer that meets a 401 with one can try the other. The value is only
// ever the PAT this NomadToken replaced, found by the fingerprint status recorded at the swap: a value
// someone else wrote under that key is never taken for it.

// previousToken is the replaced PAT as the Secret keeps it.
type previousToken struct {
	id       string
	raw      []byte
	revokeBy time.Time // AnnotationPreviousRevokeBy: when it is revoked at the latest
}

// previousAtSwap is what previousKey keeps once a new PAT replaces the current one with fate
// replaced: the current raw token the Secret holds, if that PAT stays valid for a grace period. nil
// when previousKey is unset, the replaced PAT goes at once, or its raw token is lost.
func previousAtSwap(sc *reconcileScope, replaced fate, d swapDeadlines) *previousToken {
	token := sc.token
	if replaced != revokeAfterGrace || token.Spec.Secret.PreviousKey == "" || token.Status.TokenID == "" {
		return nil
	}
	raw, ok := currentRawToken(token, sc.secret, sc.previous)
	if !ok {
		return nil
	}
	return &previousToken{id: token.Status.TokenID, raw: raw, revokeBy: d.latest()}
}

// keptPrevious is what previousKey keeps after the swap: status's previous PAT, whose raw token is
// found in the Secret (or the one it moves from) by its fingerprint. nil when previousKey is unset,
// no previous PAT waits, or its raw token is in no Secret (previousKey was set after the swap): the
// Secret then simply has no previous key.
func keptPrevious(token *v1alpha1.NomadToken, secret, moved *corev1.Secret) *previousToken {
	st := &token.Status
	key, by := token.Spec.Secret.PreviousKey, previousRevokedBy(st)
	if key == "" || st.PreviousTokenID == "" || by == nil {
		return nil
	}
	raw, ok := findRawToken(secret, key, st.PreviousTokenFingerprint)
	if !ok {
		if raw, ok = findRawToken(moved, key, st.PreviousTokenFingerprint); !ok {
			return nil
		}
	}
	return &previousToken{id: st.PreviousTokenID, raw: raw, revokeBy: by.Time}
}

// currentSecretContent is what the Secret holds per status: the current PAT, with apiRoot for
// .URL, and the previous one while it is kept. ok=false when the current raw token is in no Secret.
func currentSecretContent(token *v1alpha1.NomadToken, secret, moved *corev1.Secret, apiRoot string) (secretContent, bool) {
	raw, ok := currentRawToken(token, secret, moved)
	if !ok {
		return secretContent{}, false
	}
	return secretContent{raw: raw, facts: currentFacts(token), apiRoot: apiRoot, previous: keptPrevious(token, secret, moved)}, true
}

// secretContent is currentSecretContent of the snapshot.
func (o *observed) secretContent() (secretContent, bool) {
	return currentSecretContent(o.token, o.secret, o.previous, o.apiRoots[currentMinter(o.token).connection])
}

// keepsPrevious reports a Secret that carries a replaced PAT (the annotation goes with the key).
func keepsPrevious(s *corev1.Secret) bool {
	return s != nil && s.Annotations[v1alpha1.AnnotationPreviousTokenID] != ""
}

// previousLeavesSecret reports a Secret that keeps a replaced PAT which status will not hold after p:
// its grace ended or revoke-now came (p.previous), or it left before. The Secret is then rewritten
// without it (p.syncSecret), unless a new PAT's own write does that first. Nothing is written on an
// incomplete observation, to a Secret that is not the token's, while an interrupted issuance is
// settled, or once the current raw token is lost (there would be nothing to write it with).
func previousLeavesSecret(o *observed, p plan) bool {
	if p.settle != nil || o.incomplete != nil || o.secretConflict() || !keepsPrevious(o.secret) && !keepsPrevious(o.previous) {
		return false
	}
	if p.previous != revokeAtOnce && o.token.Status.PreviousTokenID != "" {
		return false
	}
	c, ok := o.secretContent()
	if !ok {
		return false
	}
	c.previous = nil
	want, err := desiredSecret(o.token, c)
	return err == nil && (o.previous != nil || !secretInSync(o.secret, o.token, want))
}

// syncUnminted makes the rewrite p planned (p.syncSecret: a replaced PAT leaves status whatever the
// mint does) when the mint that was to make it failed. Not while the failed step left an issuance
// pending: its recovery reads the Secret as that step left it. The mint's error is what the
// reconcile reports; a failed rewrite is only logged, and the next reconcile plans it again.
func (r *NomadTokenReconciler) syncUnminted(ctx context.Context, sc *reconcileScope, p plan) {
	if !p.syncSecret || sc.token.Status.PendingIssuance != nil {
		return
	}
	if err := r.syncSecret(ctx, sc); err != nil {
		log.FromContext(ctx).Info("rewriting the Secret without the replaced PAT failed; planned again next reconcile", "error", err.Error())
	}
}
