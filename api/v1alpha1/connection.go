package v1alpha1

import (
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Kinds a NomadToken's connectionRef may name.
const (
	KindNomadConnection        = "NomadConnection"
	KindClusterNomadConnection = "ClusterNomadConnection"
)

// Connection is what both connection kinds share: where NOMAD is and how to log in (the spec), and
// what the operator last found (the status). The controllers serve both through it.
// +kubebuilder:object:generate=false
type Connection interface {
	client.Object
	// ConnectionSpec is the NOMAD deployment and bot account.
	ConnectionSpec() *NomadConnectionSpec
	// ConnectionStatus is the status both kinds report.
	ConnectionStatus() *NomadConnectionStatus
	// ConnectionKind is NomadConnection or ClusterNomadConnection (typed objects read from the API
	// server carry no TypeMeta to tell).
	ConnectionKind() string
	// Key names the connection as NomadToken status and the operator's indexes do (see ConnectionRef.Key).
	Key() string
}

// ConnectionSpec implements Connection.
func (c *NomadConnection) ConnectionSpec() *NomadConnectionSpec { return &c.Spec }

// ConnectionStatus implements Connection.
func (c *NomadConnection) ConnectionStatus() *NomadConnectionStatus { return &c.Status }

// ConnectionKind implements Connection.
func (c *NomadConnection) ConnectionKind() string { return KindNomadConnection }

// Key implements Connection.
func (c *NomadConnection) Key() string { return c.Name }

// ConnectionSpec implements Connection.
func (c *ClusterNomadConnection) ConnectionSpec() *NomadConnectionSpec {
	return &c.Spec.NomadConnectionSpec
}

// ConnectionStatus implements Connection.
func (c *ClusterNomadConnection) ConnectionStatus() *NomadConnectionStatus { return &c.Status }

// ConnectionKind implements Connection.
func (c *ClusterNomadConnection) ConnectionKind() string { return KindClusterNomadConnection }

// Key implements Connection.
func (c *ClusterNomadConnection) Key() string { return clusterKeyPrefix + c.Name }

// clusterKeyPrefix starts the key of a ClusterNomadConnection. A NomadConnection's key is its bare
// name (as status.connectionName has always held), and no object name contains a "/".
const clusterKeyPrefix = KindClusterNomadConnection + "/"

// Key names the referenced connection the way status.connectionName and PATReference.connectionName
// do: a NomadConnection (of the NomadToken's namespace) by its name, a ClusterNomadConnection as
// "ClusterNomadConnection/<name>".
func (r ConnectionRef) Key() string {
	if r.IsCluster() {
		return clusterKeyPrefix + r.Name
	}
	return r.Name
}

// IsCluster reports a reference to a ClusterNomadConnection.
func (r ConnectionRef) IsCluster() bool { return r.Kind == KindClusterNomadConnection }

// ParseConnectionKey splits a connection key into the connection's kind and name.
func ParseConnectionKey(key string) (kind, name string) {
	if name, ok := strings.CutPrefix(key, clusterKeyPrefix); ok {
		return KindClusterNomadConnection, name
	}
	return KindNomadConnection, key
}
