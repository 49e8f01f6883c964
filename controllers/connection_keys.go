package controllers

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// A NomadToken names connections by key (v1alpha1.ConnectionRef.Key): in spec.connectionRef, in
// status.connectionName, in its revoke queue and pending issuance. A NomadConnection's key is its name
// in the token's namespace; a ClusterNomadConnection's is "ClusterNomadConnection/<name>".

// connectionObjectKey is the kind and object key of the connection a NomadToken of tokenNamespace
// names by key.
func connectionObjectKey(tokenNamespace, key string) (string, types.NamespacedName) {
	kind, name := v1alpha1.ParseConnectionKey(key)
	if kind == v1alpha1.KindClusterNomadConnection {
		return kind, types.NamespacedName{Name: name}
	}
	return kind, types.NamespacedName{Namespace: tokenNamespace, Name: name}
}

// tokensOfConnection lists the NomadTokens that depend on conn (connectionsNeededBy), from the cache:
// those of its namespace for a NomadConnection, those of any namespace for a ClusterNomadConnection.
func tokensOfConnection(ctx context.Context, c client.Reader, conn v1alpha1.Connection) ([]v1alpha1.NomadToken, error) {
	return tokensDependingOn(ctx, c, conn.GetNamespace(), conn.Key())
}

// tokensDependingOn lists the NomadTokens of namespace (all for "") that depend on the connection
// named key.
func tokensDependingOn(ctx context.Context, c client.Reader, namespace, key string, opts ...client.ListOption) ([]v1alpha1.NomadToken, error) {
	var tokens v1alpha1.NomadTokenList
	opts = append(opts, client.MatchingFields{dependsOnIndex: key})
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	err := c.List(ctx, &tokens, opts...)
	return tokens.Items, err
}
