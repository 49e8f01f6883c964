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
}

// activeList is one connection check's answer: the active PATs of the NOMAD user it logged in as.
type activeList struct {
	account string
	byID    map[string]nomad.PAT
}

// NewVerifier returns a Verifier whose wake-up events the token controller consumes.
func NewVerifier() *Verifier {
	return &Verifier{lists: map[types.NamespacedName]activeList{}, events: make(chan event.GenericEvent, 1024)}
}

// Events is the channel of NomadTokens to reconcile.
func (v *Verifier) Events() <-chan event.GenericEvent { return v.events }

// record stores a fresh list of the active PATs of a connection's NOMAD user (account) and wakes the
// tokens it concerns.
func (v *Verifier) record(ctx context.Context, conn types.NamespacedName, account string, active []nomad.PAT, tokens []v1alpha1.NomadToken) {
	byID := make(map[string]nomad.PAT, len(active))
	for _, p := range active {
		byID[p.ID] = p
	}
	v.mu.Lock()
	v.lists[conn] = activeList{account: account, byID: byID}
	v.mu.Unlock()
	for i := range tokens {
		t := &tokens[i]
		if t.Status.TokenID == "" || t.Status.PendingIssuance != nil {
			continue
		}
		p, listed := byID[t.Status.TokenID]
		if listed && lastUseRecorded(p.LastUsedAt, t.Status.LastUsedAt) {
			continue
		}
		select {
		case v.events <- event.GenericEvent{Object: t}:
		case <-ctx.Done():
			return
		}
	}
}

// lookup says whether the connection's last list holds PAT id, and which NOMAD user it listed; known
// is false before any list.
func (v *Verifier) lookup(conn types.NamespacedName, id string) (pat nomad.PAT, account string, listed, known bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	list, known := v.lists[conn]
	pat, listed = list.byID[id]
	return pat, list.account, listed, known
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

// lastUseRecorded reports whether status already shows NOMAD's last use of the PAT (to the second:
// NOMAD's precision varies between answers).
func lastUseRecorded(nomadLastUse *time.Time, status *metav1.Time) bool {
	if nomadLastUse == nil {
		return true
	}
	return status != nil && status.Time.Equal(nomadLastUse.Truncate(time.Second))
}

// verifyInNomad applies the connection's last list to the token: it notes the PAT's last use and, when
// the PAT is missing from the list, confirms with one GET that it is really gone (the list may predate
// a rotation) before the decision chain replaces it.
func (r *NomadTokenReconciler) verifyInNomad(ctx context.Context, obs *observed) error {
	token := obs.token
	st := &token.Status
	if r.Verifier == nil || st.TokenID == "" || st.PendingIssuance != nil {
		return nil
	}
	conn := types.NamespacedName{Namespace: token.Namespace, Name: currentMinter(token).connection}
	pat, account, listed, known := r.Verifier.lookup(conn, st.TokenID)
	if !known {
		return nil
	}
	if listed {
		// Listed among that user's active PATs: that user owns it. The account hash changes with the
		// connection's address too, not only with its user, so status follows what NOMAD showed.
		if account != "" {
			st.Account = account
		}
	} else {
		nc, err := r.clientOf(ctx, obs, conn.Name, false)
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
		case !got.Active(obs.now):
			obs.goneInNomad = true
			return nil
		}
		r.Verifier.confirmActive(conn, *got)
		pat = *got
		st.Account = nc.Account()
	}
	if !lastUseRecorded(pat.LastUsedAt, st.LastUsedAt) {
		st.LastUsedAt = &metav1.Time{Time: pat.LastUsedAt.Truncate(time.Second)}
	}
	return nil
}

// tokensOfConnection lists the NomadTokens that use a connection, from the cache.
func tokensOfConnection(ctx context.Context, c client.Reader, conn types.NamespacedName) ([]v1alpha1.NomadToken, error) {
	var tokens v1alpha1.NomadTokenList
	err := c.List(ctx, &tokens, client.InNamespace(conn.Namespace), client.MatchingFields{connectionRefIndex: conn.Name})
	return tokens.Items, err
}
