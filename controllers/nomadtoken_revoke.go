package controllers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// expirySkew is how long after its expiresAt a queued PAT that cannot be revoked is taken as dead:
// expiresAt is NOMAD's clock, the comparison uses the operator's.
const expirySkew = 5 * time.Minute

// revocations is what one pass over the revoke queue did.
type revocations struct {
	revoked []string // revoked in NOMAD (or pruned there: its answer proves the PAT is dead)
	expired []string // left the queue unrevoked because they have expired
	// waiting are the entries still queued whose reason to wait is new (an Event tells each once).
	waiting []v1alpha1.PATReference
	// err is the first failure; the token is retried with backoff while anything waits.
	err error
	// unreachable are the entries still queued because no connection logs in as the NOMAD user that
	// owns them (unreachableOwner): only a person can change that, so a deletion does not wait for
	// them (nomadtoken_finalize.go).
	unreachable []v1alpha1.PATReference
	// reachableErr is the first failure of any other entry (NOMAD down, the connection's Secret
	// unreadable): retrying can still revoke it.
	reachableErr error
}

// and is what two passes over the revoke queue in one reconcile did, r first, then s.
func (r revocations) and(s revocations) revocations {
	out := revocations{
		revoked:      append(r.revoked, s.revoked...),
		expired:      append(r.expired, s.expired...),
		waiting:      append(r.waiting, s.waiting...),
		unreachable:  s.unreachable, // the later pass holds what is still queued
		err:          cmp.Or(s.err, r.err),
		reachableErr: cmp.Or(s.reachableErr, r.reachableErr),
	}
	return out
}

// revokeQueue revokes the PATs queued in status.revokePending, each as the NOMAD user that owns it.
// An entry leaves the queue only when NOMAD's answer or its expiry proves the PAT dead: a connection
// deleted and created again (a GitOps prune-and-recreate, kubectl replace) just makes it wait. The
// queue lives in status, so a crash never forgets a PAT that must go; revoke is idempotent, so a retry
// after a crash is harmless.
func (r *NomadTokenReconciler) revokeQueue(ctx context.Context, sc *reconcileScope) revocations {
	var res revocations
	st := &sc.token.Status
	var left []v1alpha1.PATReference
	for _, ref := range st.RevokePending {
		err := r.revokeAsOwner(ctx, sc, ref)
		switch {
		case err == nil && ref.Marker != "":
			continue // revokeRef counted and told each PAT it found
		case err == nil:
			res.revoked = append(res.revoked, ref.ID)
			r.pats().Revoked(queuedMinter(sc.token, ref), 1)
			continue
		case ref.ExpiresAt != nil && sc.now.After(ref.ExpiresAt.Add(expirySkew)):
			// Harmless (it can no longer authenticate), but never revoked: given up on.
			res.expired = append(res.expired, entryLabel(ref))
			r.pats().RevokeAbandoned(queuedMinter(sc.token, ref), 1)
			continue
		}
		if msg := classify(err).message; msg != ref.LastError && !nomad.Deferred(err) {
			ref.LastError = msg
			res.waiting = append(res.waiting, ref)
		}
		left = append(left, ref)
		if res.err == nil {
			res.err = err
		}
		if unreachableOwner(err) {
			res.unreachable = append(res.unreachable, ref)
		} else if res.reachableErr == nil {
			res.reachableErr = &heldBy{id: entryLabel(ref), err: err}
		}
	}
	st.RevokePending = left
	return res
}

// revokeAsOwner revokes a PAT with a connection that logs in as the NOMAD user owning it. Any other
// user gets NOMAD's 404, which would look like success. The connection that minted it is tried
// first; if it is gone, or now logs in as another user, any NomadConnection of the namespace with the
// owner's account will do.
func (r *NomadTokenReconciler) revokeAsOwner(ctx context.Context, sc *reconcileScope, ref v1alpha1.PATReference) error {
	name := orSpecConnection(sc.token, ref.ConnectionName)
	nc, err := r.clientOf(ctx, sc, name, false)
	if err == nil {
		if sameAccount(ref.Account, nc.Account()) {
			return r.revokeRef(ctx, sc, nc, ref)
		}
		// The hash also changes when only the connection's address does. The PAT shows whether this
		// user still owns it: NOMAD answers 404 to anyone else. (A marker entry has no PAT to show.)
		if ref.ID != "" {
			_, gerr := nc.Get(ctx, ref.ID)
			if gerr == nil {
				return r.revokeRef(ctx, sc, nc, ref)
			}
			if !nomad.IsNotFound(gerr) {
				return gerr
			}
		}
	}
	if ref.Account != "" {
		_, other, lerr := r.otherConnectionOf(ctx, sc, name, ref.Account)
		if lerr != nil {
			return lerr
		}
		if other != nil {
			return r.revokeRef(ctx, sc, other, ref)
		}
	}
	if err != nil && classify(err).reason != v1alpha1.ReasonConnectionNotFound {
		return err // the minting connection exists but cannot be used now (its Secret, the API server)
	}
	until := "it expires"
	if ref.ExpiresAt != nil {
		until += " at " + ref.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return &conditionError{v1alpha1.EventRevokeWaiting, fmt.Sprintf(
		"PAT %s is still active and queued for revocation: no connection (NomadConnection of namespace %q, or ClusterNomadConnection) logs in as the NOMAD user that owns it (%s, which minted it, is gone or logs in as another user). It is retried until it is revoked or %s; restore the connection, or revoke it in NOMAD",
		entryLabel(ref), sc.token.Namespace, connectionLabel(name), until)}
}

// revokeRef revokes what ref names through nc, which logs in as its owner: the PAT by its id or, for a
// marker entry, every active PAT the interrupted issuance created (none, if its create never landed).
func (r *NomadTokenReconciler) revokeRef(ctx context.Context, sc *reconcileScope, nc nomad.Client, ref v1alpha1.PATReference) error {
	if ref.Marker == "" {
		return nc.Revoke(ctx, ref.ID)
	}
	found, err := untrackedMarked(ctx, sc.token, nc, ref.CreatedAfter.Time)
	if err != nil {
		return err
	}
	for _, pat := range found {
		if err := nc.Revoke(ctx, pat.ID); err != nil {
			return err
		}
		r.pats().Revoked(queuedMinter(sc.token, ref), 1)
		r.Recorder.Eventf(sc.token, nil, corev1.EventTypeWarning, v1alpha1.EventRevokedOrphan, "Revoke",
			"Revoked PAT %s: it was created by an interrupted issuance and its raw token never reached the Secret", pat.ID)
	}
	return nil
}

// heldBy is a failure to revoke PAT id. It says which PAT an error is about when several are
// revoked in one go (deletion), and is otherwise the error it wraps: classify and nomad.Deferred see
// through it.
type heldBy struct {
	id  string
	err error
}

func (h *heldBy) Error() string { return h.err.Error() }
func (h *heldBy) Unwrap() error { return h.err }

// entryLabel names a queue entry after "PAT": its id, or what an interrupted issuance may have made.
func entryLabel(ref v1alpha1.PATReference) string {
	if ref.Marker != "" {
		return markedLabel(ref.Marker)
	}
	return ref.ID
}

// unreachableOwner reports whether err is revokeAsOwner's verdict that no connection logs in as the
// NOMAD user owning the PAT (the one that minted it is gone or signs in as another user, and no other
// one signs in as the owner), as opposed to a failure that retrying can fix.
func unreachableOwner(err error) bool {
	var ce *conditionError
	return errors.As(err, &ce) && ce.reason == v1alpha1.EventRevokeWaiting
}

// connectionLabel names the connection of key for people: `NomadConnection "x"` or
// `ClusterNomadConnection "x"`.
func connectionLabel(key string) string {
	kind, name := v1alpha1.ParseConnectionKey(key)
	return fmt.Sprintf("%s %q", kind, name)
}

// otherConnectionOf returns the client of a connection other than skip (a key) that logs in as
// account: a NomadConnection of the token's namespace, or any ClusterNomadConnection. Only ever used
// to revoke (or settle) a PAT this token's status records, so a cluster connection serves whatever
// its allowedNamespaces say: revoking takes nothing away from anyone but the PAT. It returns the
// connection's key with its client, and a nil client when none does.
func (r *NomadTokenReconciler) otherConnectionOf(ctx context.Context, sc *reconcileScope, skip, account string) (string, nomad.Client, error) {
	var keys []string
	var conns v1alpha1.NomadConnectionList
	if err := r.List(ctx, &conns, client.InNamespace(sc.token.Namespace)); err != nil {
		return "", nil, err
	}
	for i := range conns.Items {
		keys = append(keys, conns.Items[i].Key())
	}
	if r.ClusterConnections {
		var clusterConns v1alpha1.ClusterNomadConnectionList
		if err := r.List(ctx, &clusterConns); err != nil {
			return "", nil, err
		}
		for i := range clusterConns.Items {
			keys = append(keys, clusterConns.Items[i].Key())
		}
	}
	for _, key := range keys {
		if key == skip {
			continue
		}
		nc, err := r.clientOf(ctx, sc, key, false)
		if err == nil && nc.Account() == account {
			return key, nc, nil
		}
	}
	return "", nil, nil
}

// nextWake is when the token needs attention again without any event: its renewal, or the end of the
// previous PAT's grace period, whichever comes first.
func (r *NomadTokenReconciler) nextWake(token *v1alpha1.NomadToken) time.Duration {
	next, now := tokenRenewalTime(token), r.Clock.Now()
	if at := previousDeadline(&token.Status, now); at != nil && at.Time.Before(next) {
		next = at.Time
	}
	return max(next.Sub(now), time.Second)
}

// previousDeadline is the next fixed time the previous PAT's fate changes: the end of its grace
// period, or past it, the latest time it is revoked (waitForConsumers; nil without).
func previousDeadline(st *v1alpha1.NomadTokenStatus, now time.Time) *metav1.Time {
	if at := st.PreviousTokenRevokeAt; at != nil && now.Before(at.Time) {
		return at
	}
	return st.PreviousTokenRevokeBy
}

// capWait shortens a wait so that it ends by the next deadline that cannot be postponed by a failure
// elsewhere: the end of the previous PAT's grace period (or its latest revoke time), and the current PAT's expiry (Ready must turn
// False then). Deadlines already past do not count, so a failing step is not retried hot.
func (r *NomadTokenReconciler) capWait(token *v1alpha1.NomadToken, wait time.Duration) time.Duration {
	now := r.Clock.Now()
	for _, at := range []*metav1.Time{previousDeadline(&token.Status, now), token.Status.ExpiresAt} {
		if at == nil {
			continue
		}
		if until := at.Sub(now); until > 0 && until < wait {
			wait = until
		}
	}
	return wait
}
