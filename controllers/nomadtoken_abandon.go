package controllers

import (
	"context"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// maxAbandonedPATs bounds a connection's status.abandonedPATs (the CRD's maxItems).
const maxAbandonedPATs = 50

// abandonQueued gives up on PATs of the revoke queue of a NomadToken being deleted: nobody will try
// to revoke them again. Each is listed in the status of the connection that minted it, if that still
// exists, then leaves the queue and is counted (nomadtoken_pats_revoke_abandoned_total). The record
// comes first, so a failed write leaves the PAT queued and the deletion is retried. The caller says
// why in an Event.
func (r *NomadTokenReconciler) abandonQueued(ctx context.Context, token *v1alpha1.NomadToken, refs []v1alpha1.PATReference) error {
	refs = slices.Clone(refs) // may be the queue itself, which shrinks below
	for _, ref := range refs {
		if err := r.recordAbandoned(ctx, token, ref); err != nil {
			return err
		}
	}
	st := &token.Status
	for _, ref := range refs {
		st.RevokePending = slices.DeleteFunc(st.RevokePending, func(p v1alpha1.PATReference) bool { return sameEntry(p, ref) })
		r.pats().RevokeAbandoned(queuedMinter(token, ref), 1)
		log.FromContext(ctx).Info("gave up revoking a replaced PAT of a deleted NomadToken", "tokenID", ref.ID, "marker", ref.Marker,
			"connection", orSpecConnection(token, ref.ConnectionName))
	}
	return nil
}

// abandonUnreachable is abandonQueued for the PATs no connection can revoke because none logs in as
// their owner, each told in a Warning Event RevokeAbandoned.
func (r *NomadTokenReconciler) abandonUnreachable(ctx context.Context, token *v1alpha1.NomadToken, refs []v1alpha1.PATReference) error {
	if err := r.abandonQueued(ctx, token, refs); err != nil {
		return err
	}
	for _, ref := range refs {
		until := "it expires"
		if ref.ExpiresAt != nil {
			until += " at " + ref.ExpiresAt.UTC().Format(time.RFC3339)
		}
		r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, v1alpha1.EventRevokeAbandoned, "Delete",
			"Gave up revoking PAT %s: no connection logs in as the NOMAD user that owns it (%s, which minted it, is gone or logs in as another user), so the deletion does not wait for it. It stays active until %s; revoke it in NOMAD as that user",
			entryLabel(ref), connectionLabel(orSpecConnection(token, ref.ConnectionName)), until)
	}
	return nil
}

// recordAbandoned lists ref in the status.abandonedPATs of the connection that minted it: the
// connection outlives the NomadToken, and its status is where people look for what its account
// holds. Expired entries are dropped on the way. Nothing is recorded if the connection is gone.
func (r *NomadTokenReconciler) recordAbandoned(ctx context.Context, token *v1alpha1.NomadToken, ref v1alpha1.PATReference) error {
	if ref.ID == "" {
		return nil // an interrupted issuance's entry: there may be no PAT, and there is no id to list
	}
	entry := v1alpha1.AbandonedPAT{ID: ref.ID, NomadToken: token.Namespace + "/" + token.Name, ExpiresAt: ref.ExpiresAt.DeepCopy()}
	now := r.Clock.Now()
	return r.updateConnectionStatus(ctx, token.Namespace, orSpecConnection(token, ref.ConnectionName), func(st *v1alpha1.NomadConnectionStatus) bool {
		if slices.ContainsFunc(st.AbandonedPATs, func(p v1alpha1.AbandonedPAT) bool { return p.ID == entry.ID }) {
			return false
		}
		list := append(stillAbandoned(st.AbandonedPATs, now), entry)
		st.AbandonedPATs = list[max(0, len(list)-maxAbandonedPATs):] // the newest
		return true
	})
}

// stillAbandoned drops the abandoned PATs that have expired: they no longer work.
func stillAbandoned(list []v1alpha1.AbandonedPAT, now time.Time) []v1alpha1.AbandonedPAT {
	return slices.DeleteFunc(slices.Clone(list), func(p v1alpha1.AbandonedPAT) bool {
		return p.ExpiresAt != nil && !now.Before(p.ExpiresAt.Time)
	})
}

// updateConnectionStatus applies change to the status of the connection a NomadToken of namespace
// names by key, read live and retried on conflicts (the connection's own reconciler writes it too).
// change reports whether it changed anything. A connection that is gone, or a ClusterNomadConnection
// this operator does not serve, is left alone.
func (r *NomadTokenReconciler) updateConnectionStatus(ctx context.Context, namespace, key string, change func(*v1alpha1.NomadConnectionStatus) bool) error {
	kind, objKey := connectionObjectKey(namespace, key)
	if kind == v1alpha1.KindClusterNomadConnection && !r.ClusterConnections {
		return nil
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var conn v1alpha1.Connection = &v1alpha1.NomadConnection{}
		if kind == v1alpha1.KindClusterNomadConnection {
			conn = &v1alpha1.ClusterNomadConnection{}
		}
		if err := r.APIReader.Get(ctx, objKey, conn); err != nil {
			return client.IgnoreNotFound(err)
		}
		if !change(conn.ConnectionStatus()) {
			return nil
		}
		return r.Status().Update(ctx, conn)
	})
}
