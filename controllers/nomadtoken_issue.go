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
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// issue mints a PAT and stores its raw token in the Secret in the same reconcile. Before the create
// call it records its intent (a marker the PAT carries in its description) in status, durably: if the
// answer is lost or the operator dies before the Secret is written, the next reconcile finds that PAT
// in NOMAD by its marker and revokes it instead of leaving an active PAT nobody holds.
func (r *NomadTokenReconciler) issue(ctx context.Context, obs *observed, reason string) error {
	token := obs.token
	nc, err := r.clientFor(ctx, token, true)
	if err != nil {
		return err
	}
	if reason != IssueRenewalDue {
		// Until the new PAT is in the Secret, the Secret does not hold a PAT for this spec.
		setCondition(&token.Status.Conditions, token.Generation, v1alpha1.ConditionReady, metav1.ConditionFalse,
			v1alpha1.ReasonProgressing, fmt.Sprintf("issuing a PAT (%s)", reason))
	}
	marker, err := newMarker()
	if err != nil {
		return err
	}
	token.Status.PendingIssuance = &v1alpha1.PendingIssuance{
		Marker:    marker,
		StartedAt: metav1.NewTime(r.Clock.Now()),
		SpecHash:  materialHash(token),
	}
	// The intent must be durable before NOMAD can mint anything; the resourceVersion check also stops
	// a reconcile working from a stale cache from issuing twice.
	if err := r.Status().Update(ctx, token); err != nil {
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
	pat := issued.PAT
	raw := []byte(issued.RawToken)
	if err := r.writeSecret(ctx, obs, raw, factsOf(pat, token)); err != nil {
		// The raw token reached no durable object: nobody can ever use this PAT, so revoke it now. If
		// that fails too, pendingIssuance stays and the next reconcile finds the PAT by its marker.
		if rerr := nc.Revoke(ctx, pat.ID); rerr == nil {
			token.Status.PendingIssuance = nil
		}
		return err
	}
	r.recordIssued(token, pat, tokenFingerprint(raw), token.Status.PendingIssuance.SpecHash)
	log.FromContext(ctx).Info("issued PAT", "reason", reason, "tokenID", pat.ID, "expiresAt", token.Status.ExpiresAt)
	r.Recorder.Eventf(token, nil, corev1.EventTypeNormal, "Issued", "Issue",
		"Issued PAT %s (%s), expires %s", pat.ID, reason, token.Status.ExpiresAt.UTC().Format(time.RFC3339))
	return nil
}

// recordIssued makes pat the current PAT in status and queues the one it replaces for revocation.
func (r *NomadTokenReconciler) recordIssued(token *v1alpha1.NomadToken, pat nomad.PAT, fingerprint, specHash string) {
	st := &token.Status
	if st.TokenID != "" && st.TokenID != pat.ID {
		if !slices.Contains(st.RevokePending, st.TokenID) {
			st.RevokePending = append(st.RevokePending, st.TokenID)
		}
		st.LastRotationTime = &metav1.Time{Time: r.Clock.Now()}
	}
	facts := factsOf(pat, token)
	st.TokenID = pat.ID
	st.IssuedAt = &metav1.Time{Time: facts.IssuedAt}
	st.ExpiresAt = &metav1.Time{Time: facts.ExpiresAt}
	st.IssuedSpecHash = specHash
	st.TokenFingerprint = fingerprint
	st.SecretName = token.EffectiveSecretName()
	st.PendingIssuance = nil
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

// writeSecret creates or updates the token's Secret with raw, then removes the Secret it moved from.
// Creating (not applying) a missing Secret fails if one appeared meanwhile, so a Secret the operator
// does not own is never taken over.
func (r *NomadTokenReconciler) writeSecret(ctx context.Context, obs *observed, raw []byte, facts tokenSecretFacts) error {
	desired := renderSecret(obs.secret, obs.token, raw, facts)
	var err error
	if obs.secret == nil {
		err = r.Create(ctx, desired, client.FieldOwner(FieldManager))
	} else {
		err = r.Update(ctx, desired, client.FieldOwner(FieldManager))
	}
	if err != nil {
		return err
	}
	obs.secret = desired
	if obs.previous != nil {
		err := r.Delete(ctx, obs.previous, client.Preconditions{UID: &obs.previous.UID})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		obs.previous = nil
	}
	return nil
}

// revokeReplaced revokes PATs that a newer PAT replaced. Revoke is idempotent and a pruned PAT (404)
// counts as revoked, so a retry after a crash is harmless.
func (r *NomadTokenReconciler) revokeReplaced(ctx context.Context, token *v1alpha1.NomadToken) error {
	if len(token.Status.RevokePending) == 0 {
		return nil
	}
	nc, err := r.clientFor(ctx, token, false)
	if err != nil {
		return err
	}
	for len(token.Status.RevokePending) > 0 {
		id := token.Status.RevokePending[0]
		if err := nc.Revoke(ctx, id); err != nil {
			return err
		}
		token.Status.RevokePending = token.Status.RevokePending[1:]
		log.FromContext(ctx).Info("revoked replaced PAT", "tokenID", id)
		r.Recorder.Eventf(token, nil, corev1.EventTypeNormal, "Revoked", "Revoke", "Revoked replaced PAT %s", id)
	}
	token.Status.RevokePending = nil
	return nil
}

// markerTag is how a marker appears in a PAT's description.
func markerTag(marker string) string { return "[nomad-token-operator " + marker + "]" }

// describe is the description sent to NOMAD: the user's, then the operator's marker.
func describe(userDescription, marker string) string {
	if userDescription == "" {
		return markerTag(marker)
	}
	return userDescription + " " + markerTag(marker)
}

func newMarker() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "ref-" + hex.EncodeToString(b), nil
}
