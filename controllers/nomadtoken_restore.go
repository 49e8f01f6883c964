package controllers

import (
	"context"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// A restore from backup (Velero and the like) brings NomadTokens and their Secrets back with new UIDs
// and, by default, without the tokens' status. Two rules let such a token carry on without a conflict
// and without a new PAT:
//
//   - A Secret of the token's name that the operator wrote (the managed-by label) and whose controller
//     is a NomadToken that no longer exists (an earlier UID of this token's name, or one whose name
//     is gone or now has another UID), or that has no controller at all, is adopted: the token
//     becomes its controller. A Secret without the label, or controlled by a live object, stays a
//     SecretConflict.
//   - A token that tracks no PAT, whose Secret names one (the token-id annotation) and holds a raw
//     token, takes that PAT over if NOMAD shows it active to the token's connection (so owned by its
//     user) with the spec's scopes: consumers keep the token they have, and no PAT is minted.

// secretAdoptable reports whether s, a Secret of token's name that token does not control, may be
// adopted by the rule above.
func (r *NomadTokenReconciler) secretAdoptable(ctx context.Context, s *corev1.Secret, token *v1alpha1.NomadToken) (bool, error) {
	if s.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue || !s.DeletionTimestamp.IsZero() {
		return false, nil
	}
	ref := metav1.GetControllerOf(s)
	switch {
	case ref == nil:
		return true, nil
	case ref.Kind != "NomadToken" || ref.APIVersion != v1alpha1.GroupVersion.String():
		return false, nil
	case ref.Name == token.Name:
		return true, nil // an earlier NomadToken of this name: names are unique, so it is gone
	}
	// From the cache: this runs on every SecretConflict re-check. The operator wrote the Secret after
	// its cache showed the owner, so a live owner is there; one the cache still shows after its
	// deletion only postpones the adoption.
	other := &v1alpha1.NomadToken{}
	err := r.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: ref.Name}, other)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	return err == nil && other.UID != ref.UID, client.IgnoreNotFound(err)
}

// restoredPAT is the PAT a token without status finds in its Secret, as NOMAD shows it, with the other
// active PATs of the token's earlier incarnation (its previous PAT in a grace period, queued ones),
// which the lost status tracked: they are queued for revocation, not left active and untracked.
type restoredPAT struct {
	pat         nomad.PAT
	fingerprint string
	by          minter
	leftovers   []nomad.PAT
}

// findRestoredPAT looks up in NOMAD the PAT the token's Secret names, for a token that tracks none:
// nil when there is none to take over (the answer is NOMAD's, so the mint that follows is safe).
func (r *NomadTokenReconciler) findRestoredPAT(ctx context.Context, sc *reconcileScope) (*restoredPAT, error) {
	token, s := sc.token, sc.secret
	if s == nil || !statusRecordsNothing(token.Status) || token.Spec.TokenName != "" {
		// Only a token whose status was never written (or not restored) takes a PAT over: after
		// revoke-now, the Secret still names the PAT just queued for revocation. And only a PAT
		// named after this token's namespace and name: a custom spec.tokenName could name another
		// namespace's PAT.
		return nil, nil
	}
	id, raw := s.Annotations[v1alpha1.AnnotationTokenID], s.Data[token.EffectiveSecretKey()]
	if id == "" || len(raw) == 0 {
		return nil, nil
	}
	nc, err := r.clientFor(ctx, sc, true)
	if err != nil {
		return nil, nil // the mint step reports a connection that cannot be used
	}
	pat, err := nc.Get(ctx, id)
	switch {
	case nomad.IsNotFound(err):
		return nil, nil // revoked and pruned, or another user's
	case err != nil:
		return nil, err
	case !pat.Active(sc.now) || !sameScopes(pat.Scopes, token.Spec.Scopes) || pat.Name != token.EffectiveTokenName() ||
		!strings.Contains(pat.Description, operatorMarker):
		// Not one this operator minted for a NomadToken of this namespace and name.
		return nil, nil
	}
	var leftovers []nomad.PAT
	if prefix := markerPrefixIn(pat.Description); prefix != "" {
		found, err := untrackedMarked(ctx, token, nc, time.Time{}, prefix)
		if err != nil {
			return nil, err
		}
		for _, p := range found {
			if p.ID != pat.ID && p.Name == pat.Name && p.Active(sc.now) {
				leftovers = append(leftovers, p)
			}
		}
	}
	return &restoredPAT{pat: *pat, fingerprint: tokenFingerprint(raw), by: minter{token.Spec.ConnectionRef.Key(), nc.Account()}, leftovers: leftovers}, nil
}

// statusRecordsNothing reports a status that tracks no PAT and never handled a request: as a new, or a
// restored, NomadToken has it.
func statusRecordsNothing(st v1alpha1.NomadTokenStatus) bool {
	return st.TokenID == "" && st.PreviousTokenID == "" && len(st.RevokePending) == 0 && st.PendingIssuance == nil &&
		st.RevokeNowRequestHandled == "" && st.LastRotationTime == nil
}

func sameScopes(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// adoptSecret makes token the controller of its Secret: the dead controller reference goes.
func (r *NomadTokenReconciler) adoptSecret(ctx context.Context, sc *reconcileScope) error {
	s := sc.secret.DeepCopy()
	s.OwnerReferences = slices.DeleteFunc(s.OwnerReferences, func(o metav1.OwnerReference) bool { return o.Controller != nil && *o.Controller })
	setControllerRef(s, sc.token)
	if err := r.updateSecret(ctx, s); err != nil {
		values := make([][]byte, 0, len(s.Data))
		for _, v := range s.Data { // the token, a previous one, rendered templates: all are secret
			values = append(values, v)
		}
		return asSecretRejection(withoutSecretData(err, values...), s.Name, string(s.Data[sc.token.EffectiveSecretKey()]))
	}
	sc.secret = s
	r.Recorder.Eventf(sc.token, nil, corev1.EventTypeNormal, v1alpha1.EventAdopted, "Adopt",
		"Adopted Secret %s, written by the operator for an earlier NomadToken of this name (restored from a backup, or re-created)", s.Name)
	return nil
}

// adoptRestoredPAT makes the PAT the Secret holds the token's current one.
func (r *NomadTokenReconciler) adoptRestoredPAT(sc *reconcileScope, rp *restoredPAT) {
	token := sc.token
	// Whether a revoke-now value was acted on was in the lost status: it is acted on again (the next
	// reconcile replaces and revokes the adopted PAT), never taken as done.
	revokeNowHandled := token.Status.RevokeNowRequestHandled
	r.recordIssued(token, rp.pat, rp.fingerprint, materialHash(token), rp.by, keep, sc.now, swapDeadlines{})
	token.Status.RevokeNowRequestHandled = revokeNowHandled
	for _, p := range rp.leftovers {
		var expires *metav1.Time
		if p.ExpiresAt != nil {
			expires = &metav1.Time{Time: *p.ExpiresAt}
		}
		queueRevoke(&token.Status, rp.by.ref(p.ID, expires))
	}
	r.Recorder.Eventf(token, nil, corev1.EventTypeNormal, v1alpha1.EventAdopted, "Adopt",
		"Adopted PAT %s, which the Secret holds and NOMAD shows active: no new PAT was minted", rp.pat.ID)
}
