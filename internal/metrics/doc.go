// Package metrics defines the operator's own Prometheus metrics (docs/metrics.md lists them all).
//
// Three kinds, each in its own file:
//   - state.go: per-object gauges (a NomadToken's expiry, renewal, readiness and revoke queue, and
//     while an Overlap rotation's previous PAT lives, its swap, latest revoke and last use; a
//     connection's readiness, active PATs and cap). A Collector reads them from the manager's
//     informer cache at scrape time, so a deleted object's series vanish with the object, a
//     reconcile does no metrics work, and nothing is kept between scrapes.
//   - requests.go: NOMAD requests by operation and status class, their latency, and logins, fed by
//     the NOMAD client of each connection (nomad.Observer).
//   - pats.go: counters of PATs issued, rotated, revoked and given up on, fed by the controllers.
//
// Every metric is registered on controller-runtime's metrics.Registry, which the manager serves.
// No label ever carries a token, a password or anything NOMAD returned as a secret: labels are
// Kubernetes object names, kinds, condition statuses and reasons, operations and status classes.
package metrics

// Label values of a connection's kind.
const (
	KindNomadConnection        = "NomadConnection"
	KindClusterNomadConnection = "ClusterNomadConnection"
)

// Connection names a NomadConnection (Namespace set) or ClusterNomadConnection (Namespace "") in
// the labels kind, namespace and name.
type Connection struct {
	Kind      string
	Namespace string
	Name      string
}

// ConnectionNamed is the Connection of a namespace and name: a ClusterNomadConnection has no namespace.
func ConnectionNamed(namespace, name string) Connection {
	if namespace == "" {
		return Connection{Kind: KindClusterNomadConnection, Name: name}
	}
	return Connection{Kind: KindNomadConnection, Namespace: namespace, Name: name}
}

func (c Connection) labels() []string { return []string{c.Kind, c.Namespace, c.Name} }

// connectionLabels are the labels of every per-connection metric, in this order.
var connectionLabels = []string{"kind", "namespace", "name"}
