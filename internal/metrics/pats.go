package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	patsIssued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nomadtoken_pats_issued_total",
		Help: "PATs minted (created or rotated in NOMAD) whose raw token reached the Secret, by the connection that minted them.",
	}, connectionLabels)
	patsRotated = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nomadtoken_pats_rotated_total",
		Help: "Issued PATs that replaced a previous PAT of the same NomadToken (renewal, rotate request, material spec change), by the connection that minted them.",
	}, connectionLabels)
	patsRevoked = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nomadtoken_pats_revoked_total",
		Help: "PATs the operator revoked in NOMAD (replaced, deleted with their NomadToken, lost in a crash, or swept as orphans), by the connection that minted them.",
	}, connectionLabels)
	patsAbandoned = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nomadtoken_pats_revoke_abandoned_total",
		Help: "PATs the operator had to revoke but stopped trying without a successful revoke: queued PATs that expired first, the expired current PAT of a NomadToken deleted with deletionPolicy Revoke, queued PATs of one deleted with Retain (not the PAT Retain keeps on purpose), queued PATs no connection can revoke (none logs in as their owner) of one deleted with Revoke. By the connection that minted them.",
	}, connectionLabels)
)

func init() {
	crmetrics.Registry.MustRegister(patsIssued, patsRotated, patsRevoked, patsAbandoned)
}

// PATCounters counts what the controllers did to PATs; the zero value is ready to use. Each
// method is one event about n PATs of conn (n <= 0 counts nothing).
type PATCounters struct{}

// Issued counts a PAT whose raw token reached its Secret; rotated says it replaced a previous one.
func (PATCounters) Issued(conn Connection, rotated bool) {
	patsIssued.WithLabelValues(conn.labels()...).Inc()
	if rotated {
		patsRotated.WithLabelValues(conn.labels()...).Inc()
	}
}

// Revoked counts n PATs revoked in NOMAD.
func (PATCounters) Revoked(conn Connection, n int) { add(patsRevoked, conn, n) }

// RevokeAbandoned counts n PATs the operator stopped trying to revoke without having revoked them.
func (PATCounters) RevokeAbandoned(conn Connection, n int) {
	if n > 0 {
		abandonedBy.Store(conn, struct{}{})
	}
	add(patsAbandoned, conn, n)
}

// abandonedBy holds the connections whose abandoned counter has counted a PAT: ForgetConnection keeps
// that series when the connection is deleted. A namespace deletion abandons PATs seconds before it
// deletes the connection, too soon for any scrape to see the counter, and the PATs it counts stay
// active after the connection is gone. Few connections ever abandon a PAT, so the kept series are few.
var abandonedBy sync.Map // Connection -> struct{}

func add(v *prometheus.CounterVec, conn Connection, n int) {
	if n > 0 {
		v.WithLabelValues(conn.labels()...).Add(float64(n))
	}
}
