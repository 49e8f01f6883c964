package controllers

import (
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// verdict is a value of the Ready condition.
type verdict struct {
	status  metav1.ConditionStatus
	reason  string
	message string
}

// readyVerdict is the Ready condition a reconcile ends with, decided in this one place from what was
// observed, the plan, and what the steps did. nil leaves the condition as it stands: as last reported,
// or as the write-ahead "issuing" of an intent write left it (recordIntent, the one other place that
// sets it).
func readyVerdict(o *observed, p plan, out outcome) *verdict {
	if failed := failureOf(o, p, out); failed != nil {
		if out.unreplaced != "" {
			return &verdict{metav1.ConditionFalse, v1alpha1.ReasonRevokedWithoutReplacement, unreplacedMessage(out.unreplaced, failed, out.revocations)}
		}
		return failedVerdict(o, p, out, failed)
	}
	switch {
	case o.refusal() != nil:
		refused := o.refusal()
		if out.unreplaced != "" && p.mint.reason == IssueRevokeNow {
			return &verdict{metav1.ConditionFalse, v1alpha1.ReasonRevokedWithoutReplacement,
				unreplacedMessage(out.unreplaced, &conditionError{refused.reason, refused.message}, out.revocations)}
		}
		return &verdict{metav1.ConditionFalse, refused.reason, refusedMessage(o, p, out)}
	case p.blocked != nil:
		return heldOffVerdict(o, p)
	case p.settle != nil:
		return nil // the next reconcile, right away, reports on what the settling left
	case p.awaiting != nil:
		if p.currentServes && o.readyBefore != nil && o.readyBefore.Status == metav1.ConditionTrue {
			return nil
		}
		return &verdict{metav1.ConditionFalse, p.awaiting.reason, p.awaiting.message}
	}
	var id string
	var expiresAt time.Time
	if now := out.issued; now != nil || out.adopted != nil {
		if now == nil {
			now = out.adopted
		}
		id, expiresAt = now.id, now.expiresAt
	} else {
		id, expiresAt = o.token.Status.TokenID, o.token.Status.ExpiresAt.Time
	}
	return &verdict{metav1.ConditionTrue, v1alpha1.ReasonIssued,
		fmt.Sprintf("Secret %s holds PAT %s, valid until %s", o.token.EffectiveSecretName(), id, expiresAt.UTC().Format(time.RFC3339))}
}

// failureOf is what went wrong in this reconcile, if anything: the observation, the plan's main step,
// or a Secret of the wanted name that is not the token's.
func failureOf(o *observed, p plan, out outcome) error {
	switch {
	case o.incomplete != nil:
		return o.incomplete
	case out.err != nil:
		return out.err
	case p.blocked != nil && p.blocked.reason == v1alpha1.ReasonSecretConflict:
		return &conditionError{p.blocked.reason, p.blocked.message}
	}
	return nil
}

// failedVerdict reports a failure. The API server's errors and the connection's own deferrals say
// nothing about the token: Ready shows only what the steps left (a PAT being issued, a rotate left
// unsettled). A PAT that still serves the spec keeps Ready True: consumers are fine, only its
// replacement is late.
func failedVerdict(o *observed, p plan, out outcome, failed error) *verdict {
	if isKubernetesError(failed) || nomad.Deferred(failed) {
		return inProgressVerdict(o, p, out)
	}
	f := classify(failed)
	// A Secret that is not the token's, or that the API server refuses, is reported even while the
	// PAT works: the spec cannot be carried out, and the PAT will not be renewed.
	secretBlocked := f.reason == v1alpha1.ReasonSecretConflict || f.reason == v1alpha1.ReasonSecretRejected
	if revokedUnreplaced(o) || stillServes(o, p, out) && !secretBlocked {
		return nil
	}
	return &verdict{metav1.ConditionFalse, f.reason, f.message}
}

// inProgressVerdict is Ready while a step that was started has not finished.
func inProgressVerdict(o *observed, p plan, out outcome) *verdict {
	switch {
	case out.rotateUnsettled != "":
		return &verdict{metav1.ConditionFalse, v1alpha1.ReasonProgressing,
			fmt.Sprintf("rotating PAT %s in NOMAD did not complete; it may already be revoked", out.rotateUnsettled)}
	case revokedUnreplaced(o):
		return nil
	case out.rotateRefused != nil:
		v := issuingVerdict(IssueRotateFailed)
		return &v
	case p.mints() && !p.currentServes:
		v := issuingVerdict(p.mint.reason)
		return &v
	}
	return nil
}

// stillServes reports that the Secret's PAT was reported Ready, is valid for the spec, and nothing in
// this reconcile took it away.
func stillServes(o *observed, p plan, out outcome) bool {
	st := o.token.Status
	if p.mints() && !p.currentServes || out.rotateRefused != nil || out.rotateUnsettled != "" {
		return false
	}
	return st.ExpiresAt != nil && o.now.Before(st.ExpiresAt.Time) && st.IssuedSpecHash == materialHash(o.token) &&
		o.readyBefore != nil && o.readyBefore.Status == metav1.ConditionTrue
}

// heldOffVerdict keeps the conditions while a refusal holds, unless the Secret's PAT no longer
// serves: it expired, or it is missing, edited or revoked (the replacement owed is no rotation).
func heldOffVerdict(o *observed, p plan) *verdict {
	st, h := o.token.Status, o.heldOff
	if revokedUnreplaced(o) || o.readyBefore == nil || o.readyBefore.Status != metav1.ConditionTrue {
		return nil
	}
	switch {
	case st.ExpiresAt != nil && !o.now.Before(st.ExpiresAt.Time):
		return &verdict{metav1.ConditionFalse, h.refusal.reason, fmt.Sprintf("PAT %s expired at %s and its replacement was refused: %s",
			st.TokenID, st.ExpiresAt.UTC().Format(time.RFC3339), h.refusal.message)}
	case !p.currentServes:
		return &verdict{metav1.ConditionFalse, h.refusal.reason, fmt.Sprintf("the Secret's PAT %s no longer serves (%s) and its replacement was refused: %s",
			st.TokenID, p.mint.reason, h.refusal.message)}
	}
	return nil
}

// refusedMessage says that the platform's rules forbid minting, and what becomes of the current PAT:
// it keeps working until it expires, and is not renewed.
func refusedMessage(o *observed, p plan, out outcome) string {
	f, st := *o.refusal(), o.token.Status
	switch {
	case out.unreplaced != "":
		done := "is revoked"
		if !slices.Contains(out.revocations.revoked, out.unreplaced) {
			done = "is queued for revocation"
		}
		return fmt.Sprintf("%s: no new PAT is minted, and PAT %s, whose raw token left the Secret, %s", f.message, out.unreplaced, done)
	case st.TokenID != "" && p.currentServes && st.ExpiresAt != nil && o.now.Before(st.ExpiresAt.Time):
		return fmt.Sprintf("%s: PAT %s keeps working until it expires at %s, and is not renewed", f.message, st.TokenID, st.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return f.message + ": no new PAT is minted"
}

// unreplacedMessage says that revoke-now revoked PAT id (or queued it, if NOMAD did not answer the
// revoke either) although no successor could be minted.
func unreplacedMessage(id string, why error, rev revocations) string {
	done := "revoked PAT " + id + " (and any earlier PAT)"
	if !slices.Contains(rev.revoked, id) {
		done = "queued PAT " + id + " for revocation (and any earlier PAT); it is retried until NOMAD confirms"
	}
	return fmt.Sprintf("revoke-now %s without a replacement: %s. The Secret holds the revoked token until a new PAT is minted, which is retried",
		done, classify(why).message)
}

// issuingVerdict says that the Secret holds no usable PAT for the spec until a new one is issued.
func issuingVerdict(reason string) verdict {
	return verdict{metav1.ConditionFalse, v1alpha1.ReasonProgressing, fmt.Sprintf("issuing a PAT (%s)", reason)}
}

// revokedUnreplaced reports a token that revoke-now left without a PAT: Ready keeps saying so (with
// the refusal) while minting a successor fails, rather than the next refusal's reason alone.
func revokedUnreplaced(o *observed) bool {
	return leftWithoutPAT(o.token.Status.TokenID, o.readyBefore)
}

func leftWithoutPAT(tokenID string, ready *metav1.Condition) bool {
	return tokenID == "" && ready != nil && ready.Reason == v1alpha1.ReasonRevokedWithoutReplacement
}
