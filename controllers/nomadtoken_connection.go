package controllers

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/connection"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// resolvedConnection is a connection (of either kind) and, once needed, its NOMAD client.
type resolvedConnection struct {
	conn v1alpha1.Connection
	nc   nomad.Client
}

// clientFor returns the NOMAD client of the token's connection (spec.connectionRef), the one new PATs
// are minted through. Minting waits for a Ready connection, so that a wrong password costs one failed
// login per check interval, not one per NomadToken; revoking does not, since it must work while a
// connection degrades.
func (r *NomadTokenReconciler) clientFor(ctx context.Context, sc *reconcileScope, requireReady bool) (nomad.Client, error) {
	return r.clientOf(ctx, sc, sc.token.Spec.ConnectionRef.Key(), requireReady)
}

// clientOf returns the NOMAD client of the connection the token names by key. PATs are checked and
// revoked through the connection that minted them, which is not spec.connectionRef after that
// changed. Connections and clients are looked up once per reconcile (the credentials Secret is read
// live, so not again per step).
func (r *NomadTokenReconciler) clientOf(ctx context.Context, sc *reconcileScope, key string, requireReady bool) (nomad.Client, error) {
	rc, err := r.connectionOf(ctx, sc, key)
	if err != nil {
		return nil, err
	}
	if requireReady {
		if err := usableForMinting(rc.conn); err != nil {
			return nil, err
		}
	}
	if rc.nc == nil {
		nc, err := r.Resolver.Client(ctx, rc.conn)
		var cfg *connection.ConfigError
		if errors.As(err, &cfg) {
			// The connection's settings or Secrets do not resolve (a Secret deleted, emptied or no
			// longer labelled). Its own check reports that in detail and looks again; for the
			// token, the connection cannot be used, and it continues once the connection is Ready.
			return nil, &conditionError{v1alpha1.ReasonConnectionNotReady,
				fmt.Sprintf("%s %q cannot be used (%s): %s", rc.conn.ConnectionKind(), rc.conn.GetName(), cfg.Reason, cfg.Message)}
		}
		if err != nil {
			return nil, err
		}
		rc.nc = nc
	}
	return rc.nc, nil
}

// connectionOf reads, once per reconcile, the connection the token names by key.
func (r *NomadTokenReconciler) connectionOf(ctx context.Context, sc *reconcileScope, key string) (*resolvedConnection, error) {
	if rc := sc.connections[key]; rc != nil {
		return rc, nil
	}
	kind, objKey := connectionObjectKey(sc.token.Namespace, key)
	var conn v1alpha1.Connection = &v1alpha1.NomadConnection{}
	where := fmt.Sprintf("in namespace %q", sc.token.Namespace)
	if kind == v1alpha1.KindClusterNomadConnection {
		if !r.ClusterConnections {
			return nil, &conditionError{v1alpha1.ReasonConnectionNotFound, fmt.Sprintf(
				"ClusterNomadConnection %q cannot be used: this operator is installed in namespaced mode (--watch-namespaces) and serves no ClusterNomadConnection", objKey.Name)}
		}
		conn, where = &v1alpha1.ClusterNomadConnection{}, "in the cluster"
	}
	err := r.Get(ctx, objKey, conn)
	if apierrors.IsNotFound(err) {
		return nil, &conditionError{v1alpha1.ReasonConnectionNotFound, fmt.Sprintf("%s %q not found %s", kind, objKey.Name, where)}
	}
	if err != nil {
		return nil, err
	}
	rc := &resolvedConnection{conn: conn}
	if sc.connections == nil {
		sc.connections = map[string]*resolvedConnection{}
	}
	sc.connections[key] = rc
	return rc, nil
}

// usableForMinting says why no new PAT may be minted through conn now, or nil.
func usableForMinting(conn v1alpha1.Connection) error {
	kind, name := conn.ConnectionKind(), conn.GetName()
	st := conn.ConnectionStatus()
	ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
	switch {
	case !conn.GetDeletionTimestamp().IsZero():
		return &conditionError{v1alpha1.ReasonConnectionNotReady,
			fmt.Sprintf("%s %q is being deleted: no new PAT is minted through it (it stays until the NomadTokens using it are deleted)", kind, name)}
	case ready == nil || st.ObservedGeneration != conn.GetGeneration():
		return &conditionError{v1alpha1.ReasonConnectionNotReady, fmt.Sprintf("%s %q has not been checked yet", kind, name)}
	case ready.Status != metav1.ConditionTrue:
		return &conditionError{v1alpha1.ReasonConnectionNotReady,
			fmt.Sprintf("%s %q is not Ready (%s: %s)", kind, name, ready.Reason, ready.Message)}
	}
	return nil
}

// minter is who minted a PAT: the NomadConnection, and the NOMAD user it logged in as (its account
// hash; "" when not known). Only that user can see, revoke or rotate the PAT.
type minter struct {
	connection string
	account    string
}

// currentMinter minted the token's current (and previous) PAT. Status written before
// status.connectionName existed names none: that PAT came from spec.connectionRef.
func currentMinter(token *v1alpha1.NomadToken) minter {
	return minter{orSpecConnection(token, token.Status.ConnectionName), token.Status.Account}
}

// backfillMinter records the connection of a PAT issued before status.connectionName existed: it came
// from spec.connectionRef as long as the material fields (which include connectionRef) are unchanged.
// The account follows from the connection's next verification list.
func backfillMinter(token *v1alpha1.NomadToken) {
	st := &token.Status
	if st.TokenID != "" && st.ConnectionName == "" && st.IssuedSpecHash == materialHash(token) {
		st.ConnectionName = token.Spec.ConnectionRef.Key()
	}
}

// pendingMinter is who the pending issuance mints through.
func pendingMinter(token *v1alpha1.NomadToken) minter {
	p := token.Status.PendingIssuance
	return minter{orSpecConnection(token, p.ConnectionName), p.Account}
}

// ref is a reference to PAT id, expiring at expiresAt, minted by m.
func (m minter) ref(id string, expiresAt *metav1.Time) v1alpha1.PATReference {
	return v1alpha1.PATReference{ID: id, ConnectionName: m.connection, Account: m.account, ExpiresAt: expiresAt.DeepCopy()}
}

// is reports whether both name the same connection and, where known, the same NOMAD user.
func (m minter) is(other minter) bool {
	return m.connection == other.connection && sameAccount(m.account, other.account)
}

// sameAccount compares account hashes; one not recorded (status from before accounts were kept)
// matches any.
func sameAccount(a, b string) bool {
	return a == "" || b == "" || a == b
}

// orSpecConnection returns key, or spec.connectionRef's key when key is empty.
func orSpecConnection(token *v1alpha1.NomadToken, key string) string {
	if key == "" {
		return token.Spec.ConnectionRef.Key()
	}
	return key
}
