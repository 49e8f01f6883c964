package controllers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// oldPAT is what happens to the PAT a new one replaces.
type oldPAT int

const (
	oldRevokeAtOnce   oldPAT = iota // revoked in this reconcile
	oldAfterGrace                   // kept valid for the grace period (Overlap rotation)
	oldAlreadyRevoked               // NOMAD's rotate endpoint revoked it
)

// issue mints a PAT for reason and stores its raw token in the Secret in the same reconcile.
// Rotations with strategy Rotate go through NOMAD's rotate endpoint. A rotation or a revoke-now that
// hits NOMAD's active-PAT limit falls back to it for this once, since rotate frees the old slot first
// (and revoke-now wants the old PAT gone at once anyway).
func (r *NomadTokenReconciler) issue(ctx context.Context, obs *observed, reason string) error {
	token := obs.token
	if replacementFor(reason) != rotation {
		// Until the new PAT is in the Secret, the Secret does not hold a usable PAT for this spec; say
		// so before anything can fail (a connection that is down must not leave Ready=True behind).
		markIssuing(token, reason)
	}
	nc, err := r.clientFor(ctx, obs, true)
	if err != nil {
		return err
	}
	current := token.Status.TokenID != "" && currentMinter(token).is(minter{token.Spec.ConnectionRef.Name, nc.Account()})
	inPlace := current && replacementFor(reason) == rotation && reason != IssueExpired
	if inPlace && effectiveStrategy(token.Spec.Rotation) == v1alpha1.RotationRotate {
		return r.rotateInNomad(ctx, obs, nc, reason)
	}
	err = r.createAndStore(ctx, obs, nc, reason)
	if (inPlace || current && reason == IssueRevokeNow) && nomad.CodeOf(err) == nomad.CodeTokenLimitReached {
		r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, "FallbackToRotate", "Rotate",
			"NOMAD's active PAT limit leaves no room for an overlapping PAT; rotating PAT %s in place instead (it stops working at once)",
			token.Status.TokenID)
		return r.rotateInNomad(ctx, obs, nc, reason)
	}
	return err
}

// createAndStore creates a PAT and writes it to the Secret. Before the create call it records its
// intent (a marker the PAT carries in its description) in status, durably: if the answer is lost or
// the operator dies before the Secret is written, the next reconcile finds that PAT in NOMAD by its
// marker and revokes it instead of leaving an active PAT nobody holds.
func (r *NomadTokenReconciler) createAndStore(ctx context.Context, obs *observed, nc nomad.Client, reason string) error {
	token := obs.token
	marker, err := r.recordIntent(ctx, obs, reason, nc.Account())
	if err != nil {
		return err
	}
	issued, err := nc.Create(ctx, nomad.CreateRequest{
		Name:          token.EffectiveTokenName(),
		Description:   describe(token.Spec.Description, marker),
		Scopes:        token.Spec.Scopes,
		ExpiresInDays: ptr.To(token.EffectiveExpiresInDays()),
	})
	if err != nil {
		if !nomad.IsTransient(err) {
			token.Status.PendingIssuance = nil // NOMAD refused: nothing was created
		}
		return err
	}
	old := oldRevokeAtOnce
	if replacementFor(reason) == rotation && reason != IssueExpired {
		old = oldAfterGrace
	}
	return r.store(ctx, obs, nc, issued, reason, old)
}

// rotateInNomad replaces the PAT with NOMAD's rotate endpoint. That endpoint revokes the old PAT
// before it validates the new one, so a refusal may leave no valid PAT at all: then the old PAT is
// checked and, if it is gone, a fresh one is created at once.
func (r *NomadTokenReconciler) rotateInNomad(ctx context.Context, obs *observed, nc nomad.Client, reason string) error {
	token := obs.token
	old := token.Status.TokenID
	if _, err := r.recordIntent(ctx, obs, reason, nc.Account()); err != nil {
		return err
	}
	issued, err := nc.Rotate(ctx, old)
	if err == nil {
		return r.store(ctx, obs, nc, issued, reason, oldAlreadyRevoked)
	}
	if nomad.IsTransient(err) {
		// Outcome unknown: pendingIssuance stays, and recovery finds a PAT rotated from old. Until
		// then the Secret's PAT may already be revoked, so it is not reported Ready.
		r.markRotateUnsettled(token, old)
		return err
	}
	token.Status.PendingIssuance = nil
	pat, gerr := nc.Get(ctx, old)
	if gerr != nil && !nomad.IsNotFound(gerr) {
		r.markRotateUnsettled(token, old)
		return gerr
	}
	if gerr == nil && pat.Active(r.Clock.Now()) {
		return err // refused before revoking: the old PAT still works
	}
	f := classify(err)
	r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, IssueRotateFailed, "Rotate",
		"NOMAD's rotate endpoint revoked PAT %s and then refused a successor (%s); creating a fresh PAT", old, f.message)
	log.FromContext(ctx).Info("NOMAD rotate revoked the old PAT and failed; creating a fresh one", "tokenID", old, "reason", f.reason)
	markIssuing(token, IssueRotateFailed)
	return r.createAndStore(ctx, obs, nc, IssueRotateFailed)
}

// markIssuing reports that the Secret holds no usable PAT for the spec until a new one is issued.
func markIssuing(token *v1alpha1.NomadToken, reason string) {
	setCondition(&token.Status.Conditions, token.Generation, v1alpha1.ConditionReady, metav1.ConditionFalse,
		v1alpha1.ReasonProgressing, fmt.Sprintf("issuing a PAT (%s)", reason))
}

// markRotateUnsettled reports that NOMAD's rotate endpoint may have revoked PAT old without its
// successor reaching the Secret.
func (r *NomadTokenReconciler) markRotateUnsettled(token *v1alpha1.NomadToken, old string) {
	setCondition(&token.Status.Conditions, token.Generation, v1alpha1.ConditionReady, metav1.ConditionFalse,
		v1alpha1.ReasonProgressing, fmt.Sprintf("rotating PAT %s in NOMAD did not complete; it may already be revoked", old))
}

// recordIntent writes status.pendingIssuance before NOMAD can mint anything. The resourceVersion check
// of the update also stops a reconcile working from a stale cache from minting twice.
func (r *NomadTokenReconciler) recordIntent(ctx context.Context, obs *observed, reason, account string) (string, error) {
	token := obs.token
	marker, err := newMarker(token)
	if err != nil {
		return "", err
	}
	token.Status.PendingIssuance = &v1alpha1.PendingIssuance{
		Marker:         marker,
		StartedAt:      metav1.NewTime(r.Clock.Now()),
		SpecHash:       materialHash(token),
		Reason:         reason,
		ConnectionName: token.Spec.ConnectionRef.Name,
		Account:        account,
	}
	if err := r.Status().Update(ctx, token); err != nil {
		return "", err
	}
	// The closing status write compares with what the API server now has, so that a refusal that
	// takes the intent back is written too.
	*obs.stored = *token.Status.DeepCopy()
	return marker, nil
}

// store writes a freshly issued raw token to the Secret and records the PAT in status. The raw token
// exists only in memory until the Secret holds it, so the write is retried briefly; if it still
// fails, the PAT is revoked, since nobody could ever use it (and if that fails too, pendingIssuance
// stays and the next reconcile finds the PAT by its marker).
func (r *NomadTokenReconciler) store(ctx context.Context, obs *observed, nc nomad.Client, issued *nomad.IssuedToken, reason string, old oldPAT) error {
	token := obs.token
	pat := issued.PAT
	raw := []byte(issued.RawToken)
	if err := r.writeSecretPersistently(ctx, obs, raw, factsOf(pat, token)); err != nil {
		if rerr := nc.Revoke(ctx, pat.ID); rerr == nil {
			token.Status.PendingIssuance = nil
		}
		if old == oldAlreadyRevoked {
			r.markRotateUnsettled(token, token.Status.TokenID)
		}
		return err
	}
	eventReason := "Issued"
	if replacementFor(reason) == rotation && token.Status.TokenID != "" {
		eventReason = "Rotated"
	}
	revokeNow := revokeNowRequested(token)
	r.recordIssued(token, pat, tokenFingerprint(raw), token.Status.PendingIssuance.SpecHash, pendingMinter(token), reason, old)
	log.FromContext(ctx).Info("issued PAT", "reason", reason, "tokenID", pat.ID, "expiresAt", token.Status.ExpiresAt)
	r.Recorder.Eventf(token, nil, corev1.EventTypeNormal, eventReason, "Issue",
		"Issued PAT %s (%s), expires %s", pat.ID, reason, token.Status.ExpiresAt.UTC().Format(time.RFC3339))
	if revokeNow {
		r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, IssueRevokeNow, "Revoke",
			"revoke-now requested: the Secret holds new PAT %s and every earlier PAT is revoked without grace", pat.ID)
	}
	return nil
}

// revokeNowRequested reports a revoke-now annotation value not yet acted on. Whatever the reason for
// the new PAT that satisfies it (a changed spec or Secret may come first), no earlier PAT keeps a grace
// period.
func revokeNowRequested(token *v1alpha1.NomadToken) bool {
	v := token.Annotations[v1alpha1.AnnotationRevokeNow]
	return v != "" && v != token.Status.RevokeNowRequestHandled
}

// recordIssued makes pat, minted by by, the current PAT in status and decides the fate of the one it
// replaces.
func (r *NomadTokenReconciler) recordIssued(token *v1alpha1.NomadToken, pat nomad.PAT, fingerprint, specHash string, by minter, reason string, old oldPAT) {
	st := &token.Status
	now := r.Clock.Now()
	if revokeNowRequested(token) || !by.is(currentMinter(token)) {
		// Incident response allows no grace. And the previous PAT must be queued with the connection
		// and account that minted it before status moves on to the new ones.
		r.revokePreviousNow(token)
		if old == oldAfterGrace {
			old = oldRevokeAtOnce
		}
	}
	if prev := st.TokenID; prev != "" && prev != pat.ID {
		switch old {
		case oldAfterGrace:
			r.revokePreviousNow(token) // an older PAT still in its grace period goes now
			st.PreviousTokenID = prev
			// Rounded up: status keeps whole seconds, and the grace period must not end early.
			st.PreviousTokenRevokeAt = &metav1.Time{Time: ceilSecond(now.Add(gracePeriod(token.Spec.Rotation)))}
		case oldRevokeAtOnce:
			queueRevoke(st, currentMinter(token).ref(prev))
		case oldAlreadyRevoked:
		}
		st.LastRotationTime = &metav1.Time{Time: now}
	}
	facts := factsOf(pat, token)
	st.ConnectionName, st.Account = by.connection, by.account
	st.TokenID = pat.ID
	st.IssuedAt = &metav1.Time{Time: facts.IssuedAt}
	st.ExpiresAt = &metav1.Time{Time: facts.ExpiresAt}
	st.IssuedSpecHash = specHash
	st.TokenFingerprint = fingerprint
	st.SecretName = token.EffectiveSecretName()
	st.PendingIssuance = nil
	st.LastUsedAt = nil
	// Requests made by annotation are satisfied by any new PAT, so a GitOps re-apply repeats nothing.
	st.RotateRequestHandled = token.Annotations[v1alpha1.AnnotationRotate]
	st.RevokeNowRequestHandled = token.Annotations[v1alpha1.AnnotationRevokeNow]
}

// revokePreviousNow ends the grace period of the previous PAT.
func (r *NomadTokenReconciler) revokePreviousNow(token *v1alpha1.NomadToken) {
	st := &token.Status
	if st.PreviousTokenID != "" {
		queueRevoke(st, currentMinter(token).ref(st.PreviousTokenID))
	}
	st.PreviousTokenID = ""
	st.PreviousTokenRevokeAt = nil
}

func queueRevoke(st *v1alpha1.NomadTokenStatus, ref v1alpha1.PATReference) {
	if !slices.ContainsFunc(st.RevokePending, func(p v1alpha1.PATReference) bool { return p.ID == ref.ID }) {
		st.RevokePending = append(st.RevokePending, ref)
	}
}

// factsOf reads creation and expiry from NOMAD's answer. A PAT without expiry cannot come from this
// operator (it always sends a lifetime), but is treated as expiring after the requested lifetime rather
// than never being renewed.
func factsOf(pat nomad.PAT, token *v1alpha1.NomadToken) tokenSecretFacts {
	f := tokenSecretFacts{TokenID: pat.ID, IssuedAt: pat.CreatedAt.UTC()}
	if pat.ExpiresAt != nil {
		f.ExpiresAt = pat.ExpiresAt.UTC()
	} else {
		f.ExpiresAt = f.IssuedAt.AddDate(0, 0, token.EffectiveExpiresInDays())
	}
	return f
}

// syncSecret rewrites the Secret for non-material changes (labels, annotations, key, name) with the
// raw token it already holds: no NOMAD call.
func (r *NomadTokenReconciler) syncSecret(ctx context.Context, obs *observed) error {
	raw, _ := obs.currentRawToken()
	if err := r.writeSecret(ctx, obs, raw, currentFacts(obs.token)); err != nil {
		return err
	}
	obs.token.Status.SecretName = obs.token.EffectiveSecretName()
	return nil
}

// writeSecretPersistently is writeSecret, retried a few times on conflicts and passing API errors
// with a fresh read of the Secret: it runs while a raw token exists only in memory.
func (r *NomadTokenReconciler) writeSecretPersistently(ctx context.Context, obs *observed, raw []byte, facts tokenSecretFacts) error {
	var err error
	for attempt, wait := 0, 200*time.Millisecond; attempt < 4; attempt, wait = attempt+1, wait*2 {
		if err = r.writeSecret(ctx, obs, raw, facts); err == nil || !retriableWrite(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		live, gerr := r.getSecret(ctx, obs.token.Namespace, obs.token.EffectiveSecretName())
		if gerr != nil {
			continue
		}
		if live != nil && !ownedBy(live, obs.token) {
			return err // someone else's Secret appeared: never overwrite it
		}
		obs.secret = live
	}
	return err
}

func retriableWrite(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err) ||
		apierrors.IsInternalError(err)
}

// markerPrefix tags every PAT minted for token; recovery matches PATs by it (a PAT made by NOMAD's
// rotate endpoint copies the old description, so it carries an older marker of the same token).
func markerPrefix(token *v1alpha1.NomadToken) string {
	uid := string(token.UID)
	if len(uid) > 8 {
		uid = uid[:8]
	}
	return "[nomad-token-operator " + uid + "-"
}

// describe is the description sent to NOMAD: the user's, then the operator's marker.
func describe(userDescription, marker string) string {
	tag := "[nomad-token-operator " + marker + "]"
	if userDescription == "" {
		return tag
	}
	return userDescription + " " + tag
}

func newMarker(token *v1alpha1.NomadToken) (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	prefix := markerPrefix(token)
	return prefix[len("[nomad-token-operator "):] + hex.EncodeToString(b), nil
}

func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}
