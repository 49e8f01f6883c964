package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// holdRecheck is how soon a token waiting for its connection's in-use hold looks again if no event
// wakes it first (the connection's update that adds the hold does).
const holdRecheck = 30 * time.Second

// A PAT may only be minted once its connection, and the Secrets the connection reads, carry the in-use
// hold (syncInUse): otherwise an app applied and pruned within seconds, while the connection workers
// are busy, deletes the connection or its credentials before the hold lands, and the token can never
// revoke its PAT (RevokeFailed, the namespace stuck in Terminating).

// holdsItsSecrets reports whether conn carries the in-use finalizer and has dealt with every Secret
// it reads now (status.inUseSecrets lists those syncInUse has held, or found missing or not opted in:
// such a connection is not Ready, and minting waits for that first).
func holdsItsSecrets(conn v1alpha1.Connection) bool {
	if !controllerutil.ContainsFinalizer(conn, v1alpha1.FinalizerInUse) {
		return false
	}
	held := conn.ConnectionStatus().InUseSecrets
	for _, name := range secretsOf(conn) {
		if !slices.Contains(held, name) {
			return false
		}
	}
	return true
}

// awaitingHold says why the token's connection cannot be minted through yet because it does not hold
// itself and its Secrets for the token; nil when it does, or when the connection cannot be read or used
// (the mint step reports that).
func (r *NomadTokenReconciler) awaitingHold(ctx context.Context, sc *reconcileScope) *failure {
	rc, err := r.connectionOf(ctx, sc, sc.token.Spec.ConnectionRef.Key())
	if err != nil || usableForMinting(rc.conn) != nil || holdsItsSecrets(rc.conn) {
		return nil // a connection that cannot be used says so when the mint step tries it
	}
	return &failure{reason: v1alpha1.ReasonProgressing, message: fmt.Sprintf(
		"waiting for %s %q to hold itself and its Secrets for this token (the %s finalizer), so that the PAT can always be revoked",
		rc.conn.ConnectionKind(), rc.conn.GetName(), v1alpha1.FinalizerInUse)}
}
