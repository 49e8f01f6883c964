package controllers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// createAndStore creates a PAT and writes it to the Secret. Before the create call it records its
// intent (a marker the PAT carries in its description) in status, durably: if the answer is lost or
// the operator dies before the Secret is written, the next reconcile finds that PAT in NOMAD by its
// marker and revokes it instead of leaving an active PAT nobody holds.
func (r *NomadTokenReconciler) createAndStore(ctx context.Context, sc *reconcileScope, nc nomad.Client, a attempt, servesMeanwhile bool, out *outcome) error {
	token := sc.token
	if err := nomad.Precheck(nc, "create"); err != nil {
		return err // the connection's breaker or rate limit would refuse it: no intent to write
	}
	if err := r.trySecretWrite(ctx, sc); err != nil {
		return err // the Secret could not hold the PAT: none is created
	}
	marker, err := r.recordIntent(ctx, sc, a, nc.Account(), servesMeanwhile, out)
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
		if !nomad.IsTransient(err) || nomad.NotSent(err) {
			token.Status.PendingIssuance = nil // NOMAD refused, or was never asked: nothing was created
		}
		return err
	}
	return r.store(ctx, sc, nc, issued, a, out)
}

// rotateInNomad replaces the PAT with NOMAD's rotate endpoint. That endpoint revokes the old PAT
// before it validates the new one, so a refusal may leave no valid PAT at all: then the old PAT is
// checked and, if it is gone, the plan's afterRevoked attempt is made at once.
func (r *NomadTokenReconciler) rotateInNomad(ctx context.Context, sc *reconcileScope, nc nomad.Client, a attempt, servesMeanwhile bool, afterRevoked *attempt, out *outcome) error {
	token := sc.token
	old := token.Status.TokenID
	if err := nomad.Precheck(nc, "rotate"); err != nil {
		return err
	}
	if err := r.trySecretWrite(ctx, sc); err != nil {
		return err
	}
	if _, err := r.recordIntent(ctx, sc, a, nc.Account(), servesMeanwhile, out); err != nil {
		return err
	}
	issued, err := nc.Rotate(ctx, old)
	if err == nil {
		return r.store(ctx, sc, nc, issued, a, out)
	}
	if nomad.NotSent(err) {
		token.Status.PendingIssuance = nil // the old PAT is untouched: NOMAD was never asked
		return err
	}
	if nomad.IsTransient(err) {
		// Outcome unknown: pendingIssuance stays, and recovery finds a PAT rotated from old. Until
		// then the Secret's PAT may already be revoked, so it is not reported Ready.
		out.rotateUnsettled = old
		return err
	}
	token.Status.PendingIssuance = nil
	pat, gerr := nc.Get(ctx, old)
	if gerr != nil && !nomad.IsNotFound(gerr) {
		out.rotateUnsettled = old
		return gerr
	}
	if gerr == nil && pat.Active(r.Clock.Now()) {
		return err // refused before revoking: the old PAT still works
	}
	f := classify(err)
	out.rotateRefused = &failure{reason: old, message: f.message}
	log.FromContext(ctx).Info("NOMAD rotate revoked the old PAT and failed; creating a fresh one", "tokenID", old, "reason", f.reason)
	return r.createAndStore(ctx, sc, nc, *afterRevoked, false, out)
}

// recordIntent writes status.pendingIssuance before NOMAD can mint anything. The resourceVersion check
// of the update also stops a reconcile working from a stale cache from minting twice. Unless the
// Secret's PAT serves meanwhile, the same write says Ready=False "issuing": it is the one status
// written ahead of the verdict, so that a crash or a hang in NOMAD never leaves Ready=True behind for a
// Secret whose PAT no longer serves.
func (r *NomadTokenReconciler) recordIntent(ctx context.Context, sc *reconcileScope, a attempt, account string, servesMeanwhile bool, out *outcome) (string, error) {
	token := sc.token
	marker, err := newMarker(token)
	if err != nil {
		return "", err
	}
	token.Status.PendingIssuance = &v1alpha1.PendingIssuance{
		Marker:         marker,
		StartedAt:      metav1.NewTime(r.Clock.Now()),
		SpecHash:       materialHash(token),
		Reason:         a.reason,
		ConnectionName: token.Spec.ConnectionRef.Key(),
		Account:        account,
		ViaRotate:      a.via == viaRotate,
		// Recovery that adopts this PAT owes the restart too (applySettlement).
		RestartsConsumers: a.restartsConsumers,
	}
	if !servesMeanwhile && !leftWithoutPAT(token.Status.TokenID, meta.FindStatusCondition(token.Status.Conditions, v1alpha1.ConditionReady)) {
		v := issuingVerdict(a.reason)
		setReady(token, v.status, v.reason, v.message)
	}
	if err := r.Status().Update(ctx, token); err != nil {
		out.staleIntent = apierrors.IsConflict(err)
		return "", err
	}
	// The closing status write compares with what the API server now has, so that a refusal that
	// takes the intent back is written too.
	*sc.stored = *token.Status.DeepCopy()
	return marker, nil
}

// store writes a freshly issued raw token to the Secret and records the PAT in status. The raw token
// exists only in memory until the Secret holds it, so the write is retried briefly, and a write whose
// result is unknown is read back; if the Secret still does not hold it, the PAT is revoked, since
// nobody could ever use it (and if that fails too, pendingIssuance stays and the next reconcile finds
// the PAT by its marker).
func (r *NomadTokenReconciler) store(ctx context.Context, sc *reconcileScope, nc nomad.Client, issued *nomad.IssuedToken, a attempt, out *outcome) error {
	token := sc.token
	pat := issued.PAT
	raw := []byte(issued.RawToken)
	// A replaced PAT kept for its grace period gets its deadlines once, before the write that tells
	// consumers the latest of them (AnnotationPreviousRevokeBy), and status records the same.
	deadlines := oldPATDeadlines(token.Spec.Rotation, r.Clock.Now())
	c := secretContent{raw: raw, facts: factsOf(pat, token), apiRoot: r.apiRootFor(ctx, sc, pendingMinter(token).connection),
		previous: previousAtSwap(sc, a.replaced, deadlines)}
	if err := r.writeSecretPersistently(ctx, sc, c); err != nil && !r.secretHoldsLive(ctx, token, raw) {
		if rerr := nc.Revoke(ctx, pat.ID); rerr == nil {
			r.pats().Revoked(metricsConnectionOf(token.Namespace, pendingMinter(token).connection), 1)
			token.Status.PendingIssuance = nil
		}
		if a.replaced == alreadyRevoked && token.Status.TokenID != "" {
			out.rotateUnsettled = token.Status.TokenID
		}
		return asSecretRejection(err, token.EffectiveSecretName(), issued.RawToken)
	}
	rotated := isRotation(a.reason) && token.Status.TokenID != ""
	// Counted as rotated: any new PAT that replaces the current one (renewal, a rotate request, a
	// material spec change), not only the rotations the Ready condition and the Event speak of.
	replacesCurrent := token.Status.TokenID != "" && token.Status.TokenID != pat.ID
	r.pats().Issued(metricsConnectionOf(token.Namespace, pendingMinter(token).connection), replacesCurrent)
	r.recordIssued(token, pat, tokenFingerprint(raw), token.Status.PendingIssuance.SpecHash, pendingMinter(token), a.replaced, r.Clock.Now(),
		deadlines.landed(token.Spec.Rotation, r.Clock.Now()))
	if a.restartsConsumers {
		// A restart is owed to the Secret's consumers (restartConsumers), as after any rotation.
		token.Status.LastRotationTime = &metav1.Time{Time: r.Clock.Now()}
	}
	log.FromContext(ctx).Info("issued PAT", "reason", a.reason, "tokenID", pat.ID, "expiresAt", token.Status.ExpiresAt)
	out.issued = &issuedFact{id: pat.ID, reason: a.reason, rotated: rotated, expiresAt: token.Status.ExpiresAt.Time}
	return nil
}

// secretHoldsLive reads the Secret from the API server and reports whether it holds raw: a write that
// timed out may still have landed, and then the new PAT is in use and must not be revoked.
func (r *NomadTokenReconciler) secretHoldsLive(ctx context.Context, token *v1alpha1.NomadToken, raw []byte) bool {
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: token.Namespace, Name: token.EffectiveSecretName()}, s); err != nil {
		return false
	}
	return ownedBy(s, token) && bytes.Equal(s.Data[token.EffectiveSecretKey()], raw)
}

// recordIssued makes pat, minted by by, the current PAT in status, and carries out old, the fate
// decide gave the PAT it replaces. rotatedAt is when the replacement happened: now, or for a PAT adopted after a lost
// status write, when its issuance started (so restart targets rolled since are not rolled again).
// deadlines are those of a replaced PAT kept for its grace period (revokeAfterGrace), set at the swap.
func (r *NomadTokenReconciler) recordIssued(token *v1alpha1.NomadToken, pat nomad.PAT, fingerprint, specHash string, by minter, old fate, rotatedAt time.Time, deadlines swapDeadlines) {
	st := &token.Status
	// There is one previous slot: an older PAT still in its grace period goes now.
	r.queuePrevious(token)
	if prev := st.TokenID; prev != "" && prev != pat.ID {
		switch old {
		case revokeAfterGrace:
			st.PreviousTokenID = prev
			st.PreviousTokenExpiresAt = st.ExpiresAt
			st.PreviousTokenFingerprint = st.TokenFingerprint
			st.PreviousTokenRevokeAt, st.PreviousTokenRevokeBy = &deadlines.revokeAt, deadlines.revokeBy
		case revokeAtOnce:
			queueRevoke(st, currentMinter(token).ref(prev, st.ExpiresAt))
		case keep, alreadyRevoked:
		}
		st.LastRotationTime = &metav1.Time{Time: rotatedAt}
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

func queueRevoke(st *v1alpha1.NomadTokenStatus, ref v1alpha1.PATReference) {
	if !slices.ContainsFunc(st.RevokePending, func(p v1alpha1.PATReference) bool { return p.ID == ref.ID && p.Marker == ref.Marker }) {
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

// syncSecret rewrites the Secret for non-material changes (labels, annotations, key, name, templates,
// previousKey) and for a replaced PAT that left status, with the raw token it already holds: no NOMAD
// call.
func (r *NomadTokenReconciler) syncSecret(ctx context.Context, sc *reconcileScope) error {
	token := sc.token
	c, ok := currentSecretContent(token, sc.secret, sc.previous, r.apiRootFor(ctx, sc, currentMinter(token).connection))
	if !ok {
		// decide plans a rewrite only while the Secret holds the current raw token; one that lost it
		// since (a failed mint's write) is never written with nothing, and is planned anew.
		return nil
	}
	if err := r.writeSecret(ctx, sc, c); err != nil {
		return asSecretRejection(err, token.EffectiveSecretName(), string(c.raw))
	}
	sc.token.Status.SecretName = sc.token.EffectiveSecretName()
	return nil
}

// writeSecretPersistently is writeSecret, retried a few times on conflicts and passing API errors
// with a fresh read of the Secret: it runs while a raw token exists only in memory.
func (r *NomadTokenReconciler) writeSecretPersistently(ctx context.Context, sc *reconcileScope, c secretContent) error {
	var err error
	for attempt, wait := 0, 200*time.Millisecond; attempt < 4; attempt, wait = attempt+1, wait*2 {
		if err = r.writeSecret(ctx, sc, c); err == nil || !retriableWrite(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		// Read around the cache: it may lag the write that conflicted, and a stale copy conflicts again.
		live, gerr := r.getSecret(ctx, r.APIReader, sc.token.Namespace, sc.token.EffectiveSecretName())
		if gerr != nil {
			continue
		}
		if live != nil && !ownedBy(live, sc.token) {
			return err // someone else's Secret appeared: never overwrite it
		}
		sc.secret = live
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
