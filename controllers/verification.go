package controllers

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// Verifier carries the connection controller's periodic list of active PATs to the token controller:
// one paged list per connection per verification interval checks every token of that connection,
// instead of one GET per token per resync. Only tokens whose PAT is missing from the list (revoked or
// expired by someone else, or pruned) or whose last use changed are woken up.
type Verifier struct {
	mu     sync.Mutex
	lists  map[types.NamespacedName]activeList // by connection
	events chan event.GenericEvent
	// lastUsedGranularity is the precision of status.lastUsedAt: a PAT in constant use changes it
	// once per period, so it costs one status write per period, not one per verification.
	lastUsedGranularity time.Duration
}

// DefaultLastUsedGranularity is the default precision of status.lastUsedAt.
const DefaultLastUsedGranularity = time.Hour

// activeList is one connection check's answer: the active PATs of the NOMAD user it logged in as,
// as of takenAt (when the list was requested: a PAT created after it is not expected in it).
type activeList struct {
	account string
	byID    map[string]nomad.PAT
	takenAt time.Time
	// nomadOffset is how far NOMAD's clock was ahead of ours (nomad.Client.ClockOffset): the list's
	// last_used_at values are in NOMAD's clock.
	nomadOffset time.Duration
}

// NewVerifier returns a Verifier whose wake-up events the token controller consumes. lastUsedGranularity
// <= 0 means DefaultLastUsedGranularity.
func NewVerifier(lastUsedGranularity time.Duration) *Verifier {
	return &Verifier{lists: map[types.NamespacedName]activeList{}, events: make(chan event.GenericEvent, 1024),
		lastUsedGranularity: orDefault(lastUsedGranularity, DefaultLastUsedGranularity)}
}

// Events is the channel of NomadTokens to reconcile.
func (v *Verifier) Events() <-chan event.GenericEvent { return v.events }

// record stores a fresh list, requested at takenAt, of the active PATs of a connection's NOMAD user
// (account) and wakes the tokens it concerns.
func (v *Verifier) record(ctx context.Context, conn v1alpha1.Connection, account string, active []nomad.PAT, takenAt time.Time, nomadOffset time.Duration, tokens []v1alpha1.NomadToken) {
	byID := make(map[string]nomad.PAT, len(active))
	for _, p := range active {
		byID[p.ID] = p
	}
	list := activeList{account: account, byID: byID, takenAt: takenAt, nomadOffset: nomadOffset}
	v.mu.Lock()
	v.lists[client.ObjectKeyFromObject(conn)] = list
	v.mu.Unlock()
	for i := range tokens {
		t := &tokens[i]
		if t.Status.TokenID == "" || t.Status.PendingIssuance != nil || currentMinter(t).connection != conn.Key() {
			continue
		}
		p, listed := byID[t.Status.TokenID]
		quiet := listed && v.lastUseRecorded(p.LastUsedAt, t.Status.LastUsedAt) || !listed && !list.expects(t.Status.IssuedAt)
		if quiet && !waitsForConsumers(t, takenAt) {
			continue
		}
		select {
		case v.events <- event.GenericEvent{Object: t}:
		case <-ctx.Done():
			return
		}
	}
}

// waitsForConsumers reports a token whose previous PAT is kept past its grace period until NOMAD
// sees it unused: every list may decide its fate, so it is woken.
func waitsForConsumers(t *v1alpha1.NomadToken, now time.Time) bool {
	st := t.Status
	return st.PreviousTokenID != "" && st.PreviousTokenRevokeBy != nil && st.PreviousTokenRevokeAt != nil &&
		!now.Before(st.PreviousTokenRevokeAt.Time)
}

// expects reports whether a PAT created at issuedAt (NOMAD's clock) existed when the list was
// requested. One created later is not missing from it, and costs no GET to confirm.
//
// status keeps issuedAt in whole seconds, so a PAT created in the same second as the list was
// requested is not judged by it either: the next list checks it, instead of a GET now.
func (l activeList) expects(issuedAt *metav1.Time) bool {
	return issuedAt == nil || issuedAt.Time.Before(l.takenAt.Truncate(time.Second))
}

// lookup returns the connection's last list; known is false before any list.
func (v *Verifier) lookup(conn types.NamespacedName) (list activeList, known bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	list, known = v.lists[conn]
	return list, known
}

// confirmActive adds a PAT found active by a GET, so later resyncs do not ask again before the next list.
func (v *Verifier) confirmActive(conn types.NamespacedName, pat nomad.PAT) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if list, ok := v.lists[conn]; ok {
		list.byID[pat.ID] = pat
	}
}

// forget drops a deleted connection's list.
func (v *Verifier) forget(conn types.NamespacedName) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.lists, conn)
}

// lastUsedAt is NOMAD's last use of a PAT at the granularity status keeps.
func (v *Verifier) lastUsedAt(nomadLastUse time.Time) *metav1.Time {
	return &metav1.Time{Time: nomadLastUse.UTC().Truncate(v.lastUsedGranularity)}
}

// lastUseRecorded reports whether status already shows NOMAD's last use of the PAT, at the
// granularity status keeps it.
func (v *Verifier) lastUseRecorded(nomadLastUse *time.Time, status *metav1.Time) bool {
	if nomadLastUse == nil {
		return true
	}
	return status != nil && status.Time.Equal(v.lastUsedAt(*nomadLastUse).Time)
}

// verifyInNomad applies the connection's last list to the token: it notes the PAT's last use and, when
// a PAT the list should hold is missing from it, confirms with one GET that it is really gone before
// the decision chain replaces it. A PAT created after the list was requested is not expected in it.
func (r *NomadTokenReconciler) verifyInNomad(ctx context.Context, sc *reconcileScope, obs *observed) error {
	token := sc.token
	st := &token.Status
	if r.Verifier == nil || st.TokenID == "" || st.PendingIssuance != nil {
		return nil
	}
	minterKey := currentMinter(token).connection
	_, conn := connectionObjectKey(token.Namespace, minterKey)
	list, known := r.Verifier.lookup(conn)
	if !known {
		return nil
	}
	pat, listed := list.byID[st.TokenID]
	switch {
	case listed:
		// Listed among that user's active PATs: that user owns it. The account hash changes with the
		// connection's address too, not only with its user, so status follows what NOMAD showed.
		if list.account != "" {
			st.Account = list.account
		}
	case !list.expects(st.IssuedAt):
		return nil
	default:
		nc, err := r.clientOf(ctx, sc, minterKey, false)
		if err != nil {
			return err
		}
		got, err := nc.Get(ctx, st.TokenID)
		switch {
		case nomad.IsNotFound(err) && !sameAccount(st.Account, nc.Account()):
			// Another NOMAD user than the PAT's: the connection's credentials changed. That user
			// cannot manage the PAT, so it is replaced by one of its own.
			obs.accountChanged = true
			return nil
		case nomad.IsNotFound(err):
			obs.goneInNomad = true
			return nil
		case err != nil:
			return err
		case !got.Active(sc.now):
			obs.goneInNomad = true
			return nil
		}
		r.Verifier.confirmActive(conn, *got)
		pat = *got
		st.Account = nc.Account()
	}
	if !r.Verifier.lastUseRecorded(pat.LastUsedAt, st.LastUsedAt) {
		st.LastUsedAt = r.Verifier.lastUsedAt(*pat.LastUsedAt)
	}
	return nil
}
