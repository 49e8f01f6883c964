package controllers

import (
	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/metrics"
)

// PATRecorder is told what became of PATs, one call per event, for the operator's counters
// (nomadtoken_pats_*_total, docs/metrics.md). conn is the connection that minted the PAT.
type PATRecorder interface {
	// Issued: a PAT minted in NOMAD reached its Secret; rotated says it replaced a previous PAT.
	Issued(conn metrics.Connection, rotated bool)
	// Revoked: n PATs were revoked in NOMAD.
	Revoked(conn metrics.Connection, n int)
	// RevokeAbandoned: n PATs that had to be revoked were dropped from the operator's bookkeeping
	// without a successful revoke.
	RevokeAbandoned(conn metrics.Connection, n int)
}

// patsOr is rec, or the real counters when none is set (reconcilers built by tests).
func patsOr(rec PATRecorder) PATRecorder {
	if rec == nil {
		return metrics.PATCounters{}
	}
	return rec
}

// pats is where this reconciler counts PATs.
func (r *NomadTokenReconciler) pats() PATRecorder { return patsOr(r.PATs) }

// pats is where this reconciler counts PATs.
func (r *NomadConnectionReconciler) pats() PATRecorder { return patsOr(r.PATs) }

// metricsConnectionOf is the connection named key (a connection key, as in status) by a NomadToken
// of namespace, in metric labels.
func metricsConnectionOf(namespace, key string) metrics.Connection {
	kind, name := connectionObjectKey(namespace, key)
	return metrics.Connection{Kind: kind, Namespace: name.Namespace, Name: name.Name}
}

// queuedMinter is the connection that minted ref, a PAT in token's revoke queue, in metric labels.
func queuedMinter(token *v1alpha1.NomadToken, ref v1alpha1.PATReference) metrics.Connection {
	return metricsConnectionOf(token.Namespace, orSpecConnection(token, ref.ConnectionName))
}

// metricsConnection is conn in metric labels.
func metricsConnection(conn v1alpha1.Connection) metrics.Connection {
	return metrics.Connection{Kind: conn.ConnectionKind(), Namespace: conn.GetNamespace(), Name: conn.GetName()}
}
