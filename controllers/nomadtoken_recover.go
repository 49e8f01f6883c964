package controllers

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// clockSkewAllowance widens the search for a PAT whose creation answer was lost: startedAt is the
// operator's clock, created_at is NOMAD's. The marker, not the time, identifies the PAT.
const clockSkewAllowance = time.Hour

// An issuance whose outcome is unknown (status.pendingIssuance: the create or rotate answer was lost,
// or the operator stopped before the status write) is settled in three steps, one per stage:
// findPendingIssuance looks in NOMAD (observe), settle decides which PAT is adopted and which are
// revoked (decide), and applySettlement does it (act).

// pendingFindings is what NOMAD shows of an interrupted issuance.
type pendingFindings struct {
	// reach is the connection (key) that logs in as the NOMAD user the issuance minted as: the
	// minting connection or, when that is gone or logs in as someone else, another one of that user.
	// "" when none does: that user's PATs cannot be seen.
	reach string
	// untracked are the active PATs created since the issuance started that carry this NomadToken's
	// marker and that status does not track.
	untracked []nomad.PAT
}

// findPendingIssuance lists the minting user's PATs created since the attempt and keeps the
// untracked ones carrying this NomadToken's marker.
func (r *NomadTokenReconciler) findPendingIssuance(ctx context.Context, sc *reconcileScope) (*pendingFindings, error) {
	token := sc.token
	st := &token.Status
	by := pendingMinter(token)
	found := &pendingFindings{reach: by.connection}
	nc, err := r.clientOf(ctx, sc, by.connection, false)
	if err != nil && classify(err).reason != v1alpha1.ReasonConnectionNotFound {
		return nil, err
	}
	if err != nil || !sameAccount(by.account, nc.Account()) {
		// The minting connection is gone, or logs in as another NOMAD user, who cannot see a PAT the
		// interrupted issuance may have created. Another connection of that user still can.
		found.reach, nc = "", nil
		if by.account != "" {
			if found.reach, nc, err = r.otherConnectionOf(ctx, sc, by.connection, by.account); err != nil {
				return nil, err
			}
		}
		if nc == nil {
			return found, nil
		}
	}
	prefixes := []string{markerPrefix(token)}
	if st.PendingIssuance.ViaRotate && st.TokenID != "" {
		// NOMAD's rotate endpoint copies the old PAT's description, whose marker is of the UID that
		// minted it: another one than this token's after a restore adopted the PAT.
		old, gerr := nc.Get(ctx, st.TokenID)
		switch {
		case gerr == nil:
			if p := markerPrefixIn(old.Description); p != "" && p != prefixes[0] {
				prefixes = append(prefixes, p)
			}
		case !nomad.IsNotFound(gerr):
			return nil, gerr // settled only once the search is complete
		}
	}
	found.untracked, err = untrackedMarked(ctx, token, nc, st.PendingIssuance.StartedAt.Add(-clockSkewAllowance), prefixes...)
	return found, err
}

// markerPrefixIn returns the marker prefix (as markerPrefix makes it) of the operator's marker in a
// PAT's description, or "".
func markerPrefixIn(description string) string {
	i := strings.LastIndex(description, operatorMarker)
	if i < 0 {
		return ""
	}
	// The marker is "<the token's UID, up to 8 characters>-<12 hex digits>]".
	rest, closed := strings.CutSuffix(description[i+len(operatorMarker):], "]")
	j := strings.LastIndex(rest, "-")
	if !closed || j < 0 {
		return ""
	}
	return operatorMarker + rest[:j+1]
}

// untrackedMarked lists, through nc, the PATs created after after that carry token's marker (or one of
// prefixes, when given), are not revoked, and that status does not track: those of an issuance whose outcome is unknown. (A PAT made
// by NOMAD's rotate endpoint copies the old description, so the token's marker prefix is matched,
// not the issuance's own marker.)
func untrackedMarked(ctx context.Context, token *v1alpha1.NomadToken, nc nomad.Client, after time.Time, prefixes ...string) ([]nomad.PAT, error) {
	pats, err := nc.List(ctx, nomad.ListOptions{CreatedAfter: after})
	if err != nil {
		return nil, err
	}
	st := token.Status
	if len(prefixes) == 0 {
		prefixes = []string{markerPrefix(token)}
	}
	marked := func(description string) bool {
		return slices.ContainsFunc(prefixes, func(p string) bool { return strings.Contains(description, p) })
	}
	tracked := []string{st.TokenID, st.PreviousTokenID}
	for _, ref := range st.RevokePending {
		tracked = append(tracked, ref.ID)
	}
	var found []nomad.PAT
	for _, pat := range pats {
		if marked(pat.Description) && !slices.Contains(tracked, pat.ID) && !pat.Revoked {
			found = append(found, pat)
		}
	}
	return found, nil
}

// settlement is decide's verdict on an interrupted issuance.
type settlement struct {
	// reach is the connection that revokes (see pendingFindings); lost says there is none.
	reach string
	lost  bool
	// adopt is the PAT whose raw token did reach the Secret (the operator stopped between the Secret
	// write and the status write), fingerprint its raw token's, and replaced the fate of the PAT it
	// replaced; nil when none did.
	adopt       *nomad.PAT
	fingerprint string
	replaced    fate
	// revoke are the PATs nobody holds the raw token of.
	revoke []string
}

// settle decides an interrupted issuance: a PAT the Secret holds is adopted, every other one is
// revoked, since nobody holds its raw token. adoptable says whether a PAT may be adopted at all
// (deletion with Revoke adopts nothing: every PAT carrying the marker goes).
func settle(o *observed, adoptable bool) *settlement {
	found, pending := o.pending, o.token.Status.PendingIssuance
	s := &settlement{reach: found.reach, lost: found.reach == ""}
	for _, pat := range found.untracked {
		if raw, held := o.heldRawToken(pat); adoptable && s.adopt == nil && held {
			s.adopt = &pat
			s.fingerprint = tokenFingerprint(raw)
			// What became of the replaced PAT follows from how this one was obtained, not from
			// today's spec (the strategy may have changed since).
			via := viaCreate
			if pending.ViaRotate {
				via = viaRotate
			}
			s.replaced = fateOfReplaced(pending.Reason, via, revokeNowRequested(o.token), pendingMinter(o.token).is(currentMinter(o.token)))
			continue
		}
		s.revoke = append(s.revoke, pat.ID)
	}
	return s
}

// heldRawToken returns the raw token of pat if a Secret of the token holds it: one it owns, at the
// spec's name or at status.secretName, whose token-id annotation names pat, under the current key or,
// after a key change, under any key that holds a PAT other than the current one.
func (o *observed) heldRawToken(pat nomad.PAT) ([]byte, bool) {
	if !pat.Active(o.now) {
		return nil, false
	}
	for _, s := range []*corev1.Secret{o.secret, o.previous} {
		if s == nil || !ownedBy(s, o.token) || s.Annotations[v1alpha1.AnnotationTokenID] != pat.ID {
			continue
		}
		if raw := s.Data[o.token.EffectiveSecretKey()]; len(raw) > 0 {
			return raw, true
		}
		for _, key := range slices.Sorted(maps.Keys(s.Data)) {
			raw := s.Data[key]
			if strings.HasPrefix(string(raw), nomad.PATPrefix) && tokenFingerprint(raw) != o.token.Status.TokenFingerprint {
				return raw, true
			}
		}
	}
	return nil, false
}

// applySettlement carries out s: the adopted PAT becomes current, the others are revoked, and the
// pending issuance is cleared once nothing of it is left unaccounted for.
func (r *NomadTokenReconciler) applySettlement(ctx context.Context, sc *reconcileScope, s *settlement) error {
	token := sc.token
	st := &token.Status
	pending := st.PendingIssuance
	by := pendingMinter(token)
	if s.lost {
		// Nothing proves the create did not land: the issuance is kept, in the revoke queue, until a
		// connection of that user can look, or until any PAT it made would have expired.
		queueRevoke(st, v1alpha1.PATReference{
			Marker: pending.Marker, ConnectionName: by.connection, Account: by.account,
			CreatedAfter: &metav1.Time{Time: pending.StartedAt.Add(-clockSkewAllowance)},
			ExpiresAt:    &metav1.Time{Time: pending.StartedAt.AddDate(0, 0, token.EffectiveExpiresInDays()).Add(clockSkewAllowance)},
		})
		r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.ReasonAccountChanged, "Revoke",
			"an interrupted issuance may have left a PAT marked %s active for the NOMAD user %s logged in as, and no connection logs in as that user now; it stays queued for revocation until one does or it would have expired (restore the connection, or revoke it in NOMAD)",
			pending.Marker, connectionLabel(by.connection))
		st.PendingIssuance = nil
		return nil
	}
	if s.adopt != nil {
		// The replacement happened when the issuance started, not now: restart targets rolled for
		// this PAT before the status write was lost are not rolled again.
		r.recordIssued(token, *s.adopt, s.fingerprint, pending.SpecHash, by, s.replaced, pending.StartedAt.Time,
			// The Secret announced a latest revoke time computed after the issuance started: one
			// from its start is no later. The grace period runs from now, as if the swap were now.
			oldPATDeadlines(token.Spec.Rotation, pending.StartedAt.Time).landed(token.Spec.Rotation, r.Clock.Now()))
		if pending.RestartsConsumers {
			st.LastRotationTime = &metav1.Time{Time: pending.StartedAt.Time}
		}
		log.FromContext(ctx).Info("adopted PAT whose status write was lost", "tokenID", s.adopt.ID)
	}
	if len(s.revoke) > 0 {
		nc, err := r.clientOf(ctx, sc, s.reach, false)
		if err != nil {
			return err
		}
		for _, id := range s.revoke {
			if err := nc.Revoke(ctx, id); err != nil {
				return err
			}
			r.pats().Revoked(metricsConnectionOf(token.Namespace, by.connection), 1)
			log.FromContext(ctx).Info("revoked PAT whose raw token was lost", "tokenID", id)
			r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.EventRevokedOrphan, "Revoke",
				"Revoked PAT %s: it was created but its raw token never reached the Secret", id)
		}
	}
	st.PendingIssuance = nil
	return nil
}

// recoverPendingIssuance settles an interrupted issuance in one go, for deletion (which has no
// separate plan): adoptable says whether the PAT the Secret holds is adopted (Retain) or revoked too.
func (r *NomadTokenReconciler) recoverPendingIssuance(ctx context.Context, sc *reconcileScope, adoptable bool) error {
	found, err := r.findPendingIssuance(ctx, sc)
	if err != nil {
		return err
	}
	o := sc.snapshot(&observed{pending: found})
	return r.applySettlement(ctx, sc, settle(o, adoptable))
}
