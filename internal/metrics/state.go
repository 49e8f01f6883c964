package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

var (
	tokenLabels      = []string{"namespace", "name", "connection_kind", "connection_name"}
	conditionLabels  = []string{"condition", "reason"}
	conditionsValues = []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown}

	tokenExpirationDesc = prometheus.NewDesc("nomadtoken_expiration_timestamp_seconds",
		"When the NomadToken's current PAT expires (status.expiresAt), in Unix seconds.", tokenLabels, nil)
	tokenRenewalDesc = prometheus.NewDesc("nomadtoken_renewal_timestamp_seconds",
		"When the operator will replace the NomadToken's current PAT (status.renewalTime), in Unix seconds.", tokenLabels, nil)
	tokenReadyDesc = prometheus.NewDesc("nomadtoken_ready_status",
		"The NomadToken's Ready condition: 1 on the series of its current status (True, False or Unknown), 0 on the other two; reason is the condition's reason.",
		append(append([]string{}, tokenLabels...), conditionLabels...), nil)
	tokenRevokePendingDesc = prometheus.NewDesc("nomadtoken_revoke_pending_pats",
		"Replaced PATs of the NomadToken queued for revocation (status.revokePending) that the operator has not managed to revoke yet. A previous PAT inside its Overlap grace period is not counted.",
		tokenLabels, nil)
	// The previous PAT of an Overlap rotation, from the swap until it is revoked: one series per
	// token and gauge, only while status.previousTokenID is set.
	tokenPreviousReplacedDesc = prometheus.NewDesc("nomadtoken_previous_pat_replaced_timestamp_seconds",
		"When the NomadToken's previous PAT was replaced in its Secret (status.lastRotationTime), in Unix seconds; only while status.previousTokenID is set.",
		tokenLabels, nil)
	tokenPreviousRevokeDesc = prometheus.NewDesc("nomadtoken_previous_pat_revoke_timestamp_seconds",
		"When the operator revokes the NomadToken's previous PAT at the latest, used or not (status.previousTokenRevokeBy, or status.previousTokenRevokeAt without spec.rotation.waitForConsumers), in Unix seconds; only while status.previousTokenID is set.",
		tokenLabels, nil)
	tokenPreviousLastUsedDesc = prometheus.NewDesc("nomadtoken_previous_pat_last_used_timestamp_seconds",
		"When NOMAD last saw the NomadToken's previous PAT used, as the operator last looked (status.previousTokenLastUsedAt), in Unix seconds; only while status.previousTokenID is set and the PAT has been used.",
		tokenLabels, nil)

	connReadyDesc = prometheus.NewDesc("nomadconnection_ready_status",
		"The connection's Ready condition: 1 on the series of its current status (True, False or Unknown), 0 on the other two; reason is the condition's reason.",
		append(append([]string{}, connectionLabels...), conditionLabels...), nil)
	connActiveDesc = prometheus.NewDesc("nomadconnection_active_pats",
		"Active PATs of the connection's bot account in NOMAD, all of them, not only this operator's (status.activeTokens).", connectionLabels, nil)
	connTokensDesc = prometheus.NewDesc("nomadconnection_nomadtokens",
		"NomadTokens that mint through the connection (status.nomadTokens).", connectionLabels, nil)
	connLimitDesc = prometheus.NewDesc("nomadconnection_pat_limit",
		"NOMAD's per-user cap on active PATs, as the operator assumes it (status.patLimit, from --nomad-pat-limit).", connectionLabels, nil)
)

// StateCollector exports the state of every NomadToken and connection from a cached reader (the
// manager's client, which reads its informers). It reads at scrape time, without deep copies and
// without writing anything, so an object's series exist exactly as long as the object does in
// the cache and a reconcile never touches a metric. A failed list is reported to Prometheus as an
// invalid metric (the scrape then shows the error) instead of a silently partial answer.
type StateCollector struct {
	reader client.Reader
	// clusterConnections: ClusterNomadConnections are served, so the cache has an informer for them.
	// Confined to namespaces, the manager may not even list them, and a List would make the cache
	// start an informer that can never sync.
	clusterConnections bool
	// timeout bounds the lists of one scrape: a cache that has not synced yet blocks List.
	timeout time.Duration
	// elected, when set, is closed once this replica leads (the manager's Elected()). Until then
	// Collect exports nothing: a standby's cache holds the same objects, and two replicas exporting
	// them would double every sum and fire every alert once per pod.
	elected <-chan struct{}
}

// OnlyWhenLeading makes c export nothing until elected is closed, and returns c.
func (c *StateCollector) OnlyWhenLeading(elected <-chan struct{}) *StateCollector {
	c.elected = elected
	return c
}

// NewStateCollector returns a collector over reader. clusterConnections says whether
// ClusterNomadConnections are served (and so cached).
func NewStateCollector(reader client.Reader, clusterConnections bool) *StateCollector {
	return &StateCollector{reader: reader, clusterConnections: clusterConnections, timeout: 10 * time.Second}
}

var registered *StateCollector

// RegisterStateCollector registers c on controller-runtime's registry, replacing a collector an
// earlier manager of the same process registered (test suites start several).
func RegisterStateCollector(c *StateCollector) error {
	if registered != nil {
		crmetrics.Registry.Unregister(registered)
	}
	if err := crmetrics.Registry.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return err
		}
	}
	registered = c
	return nil
}

// Describe implements prometheus.Collector.
func (c *StateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{tokenExpirationDesc, tokenRenewalDesc, tokenReadyDesc, tokenRevokePendingDesc,
		tokenPreviousReplacedDesc, tokenPreviousRevokeDesc, tokenPreviousLastUsedDesc,
		connReadyDesc, connActiveDesc, connLimitDesc, connTokensDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *StateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.elected != nil {
		select {
		case <-c.elected:
		default:
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	// The cache's objects are shared: read them, never change them.
	var tokens v1alpha1.NomadTokenList
	if err := c.reader.List(ctx, &tokens, client.UnsafeDisableDeepCopy); err != nil {
		ch <- prometheus.NewInvalidMetric(tokenReadyDesc, err)
	}
	for i := range tokens.Items {
		collectToken(ch, &tokens.Items[i])
	}
	var conns v1alpha1.NomadConnectionList
	if err := c.reader.List(ctx, &conns, client.UnsafeDisableDeepCopy); err != nil {
		ch <- prometheus.NewInvalidMetric(connReadyDesc, err)
	}
	for i := range conns.Items {
		collectConnection(ch, &conns.Items[i])
	}
	if !c.clusterConnections {
		return
	}
	var cluster v1alpha1.ClusterNomadConnectionList
	if err := c.reader.List(ctx, &cluster, client.UnsafeDisableDeepCopy); err != nil {
		ch <- prometheus.NewInvalidMetric(connReadyDesc, err)
	}
	for i := range cluster.Items {
		collectConnection(ch, &cluster.Items[i])
	}
}

func collectToken(ch chan<- prometheus.Metric, t *v1alpha1.NomadToken) {
	kind, conn := v1alpha1.ParseConnectionKey(t.Spec.ConnectionRef.Key())
	l := []string{t.Namespace, t.Name, kind, conn}
	st := &t.Status
	if st.ExpiresAt != nil {
		ch <- prometheus.MustNewConstMetric(tokenExpirationDesc, prometheus.GaugeValue, unixSeconds(st.ExpiresAt), l...)
	}
	if st.RenewalTime != nil {
		ch <- prometheus.MustNewConstMetric(tokenRenewalDesc, prometheus.GaugeValue, unixSeconds(st.RenewalTime), l...)
	}
	ch <- prometheus.MustNewConstMetric(tokenRevokePendingDesc, prometheus.GaugeValue, float64(len(st.RevokePending)), l...)
	collectReady(ch, tokenReadyDesc, st.Conditions, l)
	collectPrevious(ch, st, l)
}

// collectPrevious exports the previous PAT of an Overlap rotation while status.previousTokenID names
// one: when it was replaced, when it is revoked at the latest, and NOMAD's last use of it, each only
// when status has it. Without a previous PAT the status fields may be stale, and are not read.
func collectPrevious(ch chan<- prometheus.Metric, st *v1alpha1.NomadTokenStatus, l []string) {
	if st.PreviousTokenID == "" {
		return
	}
	if st.LastRotationTime != nil {
		ch <- prometheus.MustNewConstMetric(tokenPreviousReplacedDesc, prometheus.GaugeValue, unixSeconds(st.LastRotationTime), l...)
	}
	revokeBy := st.PreviousTokenRevokeBy
	if revokeBy == nil {
		revokeBy = st.PreviousTokenRevokeAt
	}
	if revokeBy != nil {
		ch <- prometheus.MustNewConstMetric(tokenPreviousRevokeDesc, prometheus.GaugeValue, unixSeconds(revokeBy), l...)
	}
	if st.PreviousTokenLastUsedAt != nil {
		ch <- prometheus.MustNewConstMetric(tokenPreviousLastUsedDesc, prometheus.GaugeValue, unixSeconds(st.PreviousTokenLastUsedAt), l...)
	}
}

func collectConnection(ch chan<- prometheus.Metric, conn v1alpha1.Connection) {
	l := Connection{Kind: conn.ConnectionKind(), Namespace: conn.GetNamespace(), Name: conn.GetName()}.labels()
	st := conn.ConnectionStatus()
	if st.ActiveTokens != nil {
		ch <- prometheus.MustNewConstMetric(connActiveDesc, prometheus.GaugeValue, float64(*st.ActiveTokens), l...)
	}
	if st.PATLimit != nil {
		ch <- prometheus.MustNewConstMetric(connLimitDesc, prometheus.GaugeValue, float64(*st.PATLimit), l...)
	}
	if st.NomadTokens != nil {
		ch <- prometheus.MustNewConstMetric(connTokensDesc, prometheus.GaugeValue, float64(*st.NomadTokens), l...)
	}
	collectReady(ch, connReadyDesc, st.Conditions, l)
}

// collectReady emits one series per condition status, as cert-manager's
// certmanager_certificate_ready_status does: 1 for the current one, 0 for the others, so that
// `== 1` selects objects in a state and `== 0` never produces a gap. An object not yet reconciled
// has no Ready condition: Unknown, with an empty reason.
func collectReady(ch chan<- prometheus.Metric, d *prometheus.Desc, conds []metav1.Condition, l []string) {
	status, reason := metav1.ConditionUnknown, ""
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady); c != nil {
		status, reason = c.Status, c.Reason
	}
	for _, s := range conditionsValues {
		v := 0.0
		if s == status {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append(l[:len(l):len(l)], string(s), reason)...)
	}
}

func unixSeconds(t *metav1.Time) float64 { return float64(t.Unix()) }
