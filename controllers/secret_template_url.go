package controllers

import (
	"context"

	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// .URL of spec.secret.template is the API root of the connection a PAT came from, as the operator
// itself uses it (nomad.NormalizeURL: no trailing "/" or "/v1"), e.g.
// https://nomad-lab.eu/prod/v1/api, the form NOMAD's Python client wants as NOMAD_CLIENT_URL.

// templateAPIRoots reads, for the snapshot, the API roots a Secret write may render with: of the
// connection the current PAT came from (status.connectionName) and of spec.connectionRef, which a new
// PAT comes from. Only for a token with templates; from the cache, and once per reconcile
// (connectionOf). A connection that cannot be read is left out.
func (r *NomadTokenReconciler) templateAPIRoots(ctx context.Context, sc *reconcileScope) map[string]string {
	if !hasTemplate(sc) {
		return nil
	}
	roots := map[string]string{}
	for _, key := range []string{currentMinter(sc.token).connection, sc.token.Spec.ConnectionRef.Key()} {
		if root := r.apiRootFor(ctx, sc, key); root != "" {
			roots[key] = root
		}
	}
	return roots
}

// apiRootFor is the API root of the connection named by key, for a write: the object this reconcile
// read (connectionOf), "" without templates or when it cannot be read.
func (r *NomadTokenReconciler) apiRootFor(ctx context.Context, sc *reconcileScope, key string) string {
	if !hasTemplate(sc) {
		return ""
	}
	rc, err := r.connectionOf(ctx, sc, key)
	if err != nil {
		return ""
	}
	root, err := nomad.NormalizeURL(rc.conn.ConnectionSpec().URL)
	if err != nil {
		return ""
	}
	return root
}

func hasTemplate(sc *reconcileScope) bool {
	t := sc.token.Spec.Secret.Template
	return t != nil && len(t.Data) > 0
}
