package controllers

import (
	"context"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// clockSkewAllowance widens the search for a PAT whose creation answer was lost: startedAt is the
// operator's clock, created_at is NOMAD's. The marker, not the time, identifies the PAT.
const clockSkewAllowance = time.Hour

// recoverPendingIssuance settles a create (or rotate) whose outcome is unknown. It lists the bot
// account's PATs created since the attempt and picks the untracked ones carrying this NomadToken's
// marker. One whose raw token did reach the Secret (the operator stopped between the Secret write and
// the status write) is adopted; every other one is revoked, since nobody holds its raw token.
func (r *NomadTokenReconciler) recoverPendingIssuance(ctx context.Context, obs *observed) error {
	token := obs.token
	st := &token.Status
	pending := st.PendingIssuance
	by := pendingMinter(token)
	nc, err := r.clientOf(ctx, obs, by.connection, false)
	if err != nil && classify(err).reason != v1alpha1.ReasonConnectionNotFound {
		return err
	}
	if err != nil || !sameAccount(by.account, nc.Account()) {
		// The minting connection is gone, or logs in as another NOMAD user, who cannot see a PAT the
		// interrupted issuance may have created. Another connection of that user still can.
		var other nomad.Client
		if by.account != "" {
			if other, err = r.otherConnectionOf(ctx, obs, by.connection, by.account); err != nil {
				return err
			}
		}
		if other == nil {
			r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.ReasonAccountChanged, "Revoke",
				"an interrupted issuance may have left a PAT marked %s active for the NOMAD user %s logged in as, and no connection logs in as that user now; revoke it in NOMAD",
				pending.Marker, connectionLabel(by.connection))
			st.PendingIssuance = nil
			return nil
		}
		nc = other
	}
	pats, err := nc.List(ctx, nomad.ListOptions{CreatedAfter: pending.StartedAt.Add(-clockSkewAllowance)})
	if err != nil {
		return err
	}
	prefix := markerPrefix(token)
	tracked := []string{st.TokenID, st.PreviousTokenID}
	for _, ref := range st.RevokePending {
		tracked = append(tracked, ref.ID)
	}
	adopted := false
	for _, pat := range pats {
		if !strings.Contains(pat.Description, prefix) || slices.Contains(tracked, pat.ID) || pat.Revoked {
			continue
		}
		if !adopted && r.secretHolds(obs, pat) {
			raw := obs.secret.Data[token.EffectiveSecretKey()]
			// What became of the replaced PAT follows from how this one was obtained, not from
			// today's spec (the strategy may have changed since).
			strategy := v1alpha1.RotationOverlap
			if pending.ViaRotate {
				strategy = v1alpha1.RotationRotate
			}
			old := replacedFate(pending.Reason, strategy)
			// The replacement happened when the issuance started, not now: restart targets rolled
			// for this PAT before the status write was lost are not rolled again.
			r.recordIssued(token, pat, tokenFingerprint(raw), pending.SpecHash, by, old, pending.StartedAt.Time)
			adopted = true
			log.FromContext(ctx).Info("adopted PAT whose status write was lost", "tokenID", pat.ID)
			continue
		}
		if err := nc.Revoke(ctx, pat.ID); err != nil {
			return err
		}
		r.pats().Revoked(metricsConnectionOf(token.Namespace, by.connection), 1)
		log.FromContext(ctx).Info("revoked PAT whose raw token was lost", "tokenID", pat.ID)
		r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.EventRevokedOrphan, "Revoke",
			"Revoked PAT %s: it was created but its raw token never reached the Secret", pat.ID)
	}
	st.PendingIssuance = nil
	return nil
}

// secretHolds reports whether the owned Secret says it holds pat and actually holds a token under
// the current key.
func (r *NomadTokenReconciler) secretHolds(obs *observed, pat nomad.PAT) bool {
	s := obs.secret
	return s != nil && ownedBy(s, obs.token) && s.Annotations[v1alpha1.AnnotationTokenID] == pat.ID &&
		len(s.Data[obs.token.EffectiveSecretKey()]) > 0 && pat.Active(obs.now)
}
