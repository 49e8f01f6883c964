package metrics

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

const rawToken = "nomad_pat_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

func scheme(t testing.TB) *runtime.Scheme {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	expires = time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	renews  = time.Date(2026, 12, 22, 3, 4, 5, 0, time.UTC)
)

func readyToken(ns, name string) *v1alpha1.NomadToken {
	return &v1alpha1.NomadToken{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.NomadTokenSpec{ConnectionRef: v1alpha1.ConnectionRef{Name: "oasis", Kind: v1alpha1.KindNomadConnection}},
		Status: v1alpha1.NomadTokenStatus{
			// Fields that hold or derive from secrets must never reach a label.
			TokenID: "pat-id-1", TokenFingerprint: rawToken, SecretName: name,
			ExpiresAt: &metav1.Time{Time: expires}, RenewalTime: &metav1.Time{Time: renews},
			RevokePending: []v1alpha1.PATReference{{ID: "old-1"}, {ID: "old-2"}},
			Conditions:    []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Issued"}},
		},
	}
}

func TestStateCollectorExportsTokensAndConnections(t *testing.T) {
	cluster := &v1alpha1.ClusterNomadConnection{ObjectMeta: metav1.ObjectMeta{Name: "central"}}
	cluster.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "LoginFailed"}}
	conn := &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "oasis"}}
	conn.Status.ActiveTokens, conn.Status.PATLimit = ptr.To(int32(12)), ptr.To(int32(100))
	fresh := &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "new"},
		Spec: v1alpha1.NomadTokenSpec{ConnectionRef: v1alpha1.ConnectionRef{Name: "central", Kind: v1alpha1.KindClusterNomadConnection}}}
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(readyToken("team-a", "ci"), fresh, conn, cluster).Build()

	want := `
# HELP nomadtoken_expiration_timestamp_seconds When the NomadToken's current PAT expires (status.expiresAt), in Unix seconds.
# TYPE nomadtoken_expiration_timestamp_seconds gauge
nomadtoken_expiration_timestamp_seconds{connection_kind="NomadConnection",connection_name="oasis",name="ci",namespace="team-a"} ` + fmt.Sprint(expires.Unix()) + `
# HELP nomadtoken_renewal_timestamp_seconds When the operator will replace the NomadToken's current PAT (status.renewalTime), in Unix seconds.
# TYPE nomadtoken_renewal_timestamp_seconds gauge
nomadtoken_renewal_timestamp_seconds{connection_kind="NomadConnection",connection_name="oasis",name="ci",namespace="team-a"} ` + fmt.Sprint(renews.Unix()) + `
# HELP nomadtoken_revoke_pending_pats Replaced PATs of the NomadToken queued for revocation (status.revokePending) that the operator has not managed to revoke yet. A previous PAT inside its Overlap grace period is not counted.
# TYPE nomadtoken_revoke_pending_pats gauge
nomadtoken_revoke_pending_pats{connection_kind="ClusterNomadConnection",connection_name="central",name="new",namespace="team-b"} 0
nomadtoken_revoke_pending_pats{connection_kind="NomadConnection",connection_name="oasis",name="ci",namespace="team-a"} 2
# HELP nomadtoken_ready_status The NomadToken's Ready condition: 1 on the series of its current status (True, False or Unknown), 0 on the other two; reason is the condition's reason.
# TYPE nomadtoken_ready_status gauge
nomadtoken_ready_status{condition="False",connection_kind="ClusterNomadConnection",connection_name="central",name="new",namespace="team-b",reason=""} 0
nomadtoken_ready_status{condition="False",connection_kind="NomadConnection",connection_name="oasis",name="ci",namespace="team-a",reason="Issued"} 0
nomadtoken_ready_status{condition="True",connection_kind="ClusterNomadConnection",connection_name="central",name="new",namespace="team-b",reason=""} 0
nomadtoken_ready_status{condition="True",connection_kind="NomadConnection",connection_name="oasis",name="ci",namespace="team-a",reason="Issued"} 1
nomadtoken_ready_status{condition="Unknown",connection_kind="ClusterNomadConnection",connection_name="central",name="new",namespace="team-b",reason=""} 1
nomadtoken_ready_status{condition="Unknown",connection_kind="NomadConnection",connection_name="oasis",name="ci",namespace="team-a",reason="Issued"} 0
# HELP nomadconnection_ready_status The connection's Ready condition: 1 on the series of its current status (True, False or Unknown), 0 on the other two; reason is the condition's reason.
# TYPE nomadconnection_ready_status gauge
nomadconnection_ready_status{condition="False",kind="ClusterNomadConnection",name="central",namespace="",reason="LoginFailed"} 1
nomadconnection_ready_status{condition="False",kind="NomadConnection",name="oasis",namespace="team-a",reason=""} 0
nomadconnection_ready_status{condition="True",kind="ClusterNomadConnection",name="central",namespace="",reason="LoginFailed"} 0
nomadconnection_ready_status{condition="True",kind="NomadConnection",name="oasis",namespace="team-a",reason=""} 0
nomadconnection_ready_status{condition="Unknown",kind="ClusterNomadConnection",name="central",namespace="",reason="LoginFailed"} 0
nomadconnection_ready_status{condition="Unknown",kind="NomadConnection",name="oasis",namespace="team-a",reason=""} 1
# HELP nomadconnection_active_pats Active PATs of the connection's bot account in NOMAD, all of them, not only this operator's (status.activeTokens).
# TYPE nomadconnection_active_pats gauge
nomadconnection_active_pats{kind="NomadConnection",name="oasis",namespace="team-a"} 12
# HELP nomadconnection_pat_limit NOMAD's per-user cap on active PATs, as the operator assumes it (status.patLimit, from --nomad-pat-limit).
# TYPE nomadconnection_pat_limit gauge
nomadconnection_pat_limit{kind="NomadConnection",name="oasis",namespace="team-a"} 100
`
	if err := testutil.CollectAndCompare(NewStateCollector(c, true), strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

// previousToken is readyToken after an Overlap rotation whose previous PAT is still valid: replaced
// at swapped, revoked at the end of gracePeriod (revokeAt) or, with waitForConsumers, at the latest at
// revokeBy (nil without), and last used at lastUsed (nil: never).
func previousToken(ns, name string, swapped, revokeAt time.Time, revokeBy, lastUsed *time.Time) *v1alpha1.NomadToken {
	tok := readyToken(ns, name)
	st := &tok.Status
	st.PreviousTokenID, st.PreviousTokenFingerprint = "old-previous", rawToken
	st.LastRotationTime = &metav1.Time{Time: swapped}
	st.PreviousTokenRevokeAt = &metav1.Time{Time: revokeAt}
	if revokeBy != nil {
		st.PreviousTokenRevokeBy = &metav1.Time{Time: *revokeBy}
	}
	if lastUsed != nil {
		st.PreviousTokenLastUsedAt = &metav1.Time{Time: *lastUsed}
	}
	return tok
}

// The previous PAT's gauges exist only while status.previousTokenID names one, each only when status
// has its time; the latest revoke time is previousTokenRevokeBy, or previousTokenRevokeAt without
// waitForConsumers.
func TestStateCollectorExportsThePreviousPAT(t *testing.T) {
	swapped := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	revokeAt, revokeBy, lastUsed := swapped.Add(10*time.Minute), swapped.Add(24*time.Hour), swapped.Add(3*time.Hour)
	waiting := previousToken("team-a", "waiting", swapped, revokeAt, &revokeBy, &lastUsed)
	unused := previousToken("team-a", "unused", swapped, revokeAt, &revokeBy, nil)
	grace := previousToken("team-b", "grace", swapped, revokeAt, nil, &lastUsed)
	// Revoked: the controller clears previousTokenID; times left behind are not exported.
	revoked := previousToken("team-b", "revoked", swapped, revokeAt, &revokeBy, &lastUsed)
	revoked.Status.PreviousTokenID = ""
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(waiting, unused, grace, revoked, readyToken("team-c", "never-rotated")).Build()

	l := func(ns, name string) string {
		return `{connection_kind="NomadConnection",connection_name="oasis",name="` + name + `",namespace="` + ns + `"} `
	}
	want := `
# HELP nomadtoken_previous_pat_replaced_timestamp_seconds When the NomadToken's previous PAT was replaced in its Secret (status.lastRotationTime), in Unix seconds; only while status.previousTokenID is set.
# TYPE nomadtoken_previous_pat_replaced_timestamp_seconds gauge
nomadtoken_previous_pat_replaced_timestamp_seconds` + l("team-a", "unused") + fmt.Sprint(swapped.Unix()) + `
nomadtoken_previous_pat_replaced_timestamp_seconds` + l("team-a", "waiting") + fmt.Sprint(swapped.Unix()) + `
nomadtoken_previous_pat_replaced_timestamp_seconds` + l("team-b", "grace") + fmt.Sprint(swapped.Unix()) + `
# HELP nomadtoken_previous_pat_revoke_timestamp_seconds When the operator revokes the NomadToken's previous PAT at the latest, used or not (status.previousTokenRevokeBy, or status.previousTokenRevokeAt without spec.rotation.waitForConsumers), in Unix seconds; only while status.previousTokenID is set.
# TYPE nomadtoken_previous_pat_revoke_timestamp_seconds gauge
nomadtoken_previous_pat_revoke_timestamp_seconds` + l("team-a", "unused") + fmt.Sprint(revokeBy.Unix()) + `
nomadtoken_previous_pat_revoke_timestamp_seconds` + l("team-a", "waiting") + fmt.Sprint(revokeBy.Unix()) + `
nomadtoken_previous_pat_revoke_timestamp_seconds` + l("team-b", "grace") + fmt.Sprint(revokeAt.Unix()) + `
# HELP nomadtoken_previous_pat_last_used_timestamp_seconds When NOMAD last saw the NomadToken's previous PAT used, as the operator last looked (status.previousTokenLastUsedAt), in Unix seconds; only while status.previousTokenID is set and the PAT has been used.
# TYPE nomadtoken_previous_pat_last_used_timestamp_seconds gauge
nomadtoken_previous_pat_last_used_timestamp_seconds` + l("team-a", "waiting") + fmt.Sprint(lastUsed.Unix()) + `
nomadtoken_previous_pat_last_used_timestamp_seconds` + l("team-b", "grace") + fmt.Sprint(lastUsed.Unix()) + `
`
	col := NewStateCollector(c, false)
	if err := testutil.CollectAndCompare(col, strings.NewReader(want),
		"nomadtoken_previous_pat_replaced_timestamp_seconds", "nomadtoken_previous_pat_revoke_timestamp_seconds",
		"nomadtoken_previous_pat_last_used_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
	// Per token: expiry, renewal, revoke queue, three ready series; 3+3+2 previous-PAT series.
	if n := testutil.CollectAndCount(col); n != 5*6+8 {
		t.Fatalf("%d series, want %d", n, 5*6+8)
	}
	lint, err := testutil.CollectAndLint(col)
	if err != nil || len(lint) > 0 {
		t.Fatalf("lint: %v %v", err, lint)
	}
}

// Series exist exactly as long as their object: nothing is kept between scrapes.
func TestStateCollectorSeriesFollowTheObjects(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(readyToken("team-a", "ci"), readyToken("team-a", "other")).Build()
	col := NewStateCollector(c, false)
	// Per token: expiry, renewal, revoke queue, three ready series.
	if n := testutil.CollectAndCount(col); n != 12 {
		t.Fatalf("%d series for two tokens, want 12", n)
	}
	if err := c.Delete(t.Context(), readyToken("team-a", "ci")); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(col); n != 6 {
		t.Fatalf("%d series after deleting one token, want 6", n)
	}
	lint, err := testutil.CollectAndLint(col)
	if err != nil || len(lint) > 0 {
		t.Fatalf("lint: %v %v", err, lint)
	}
}

// Confined to namespaces the collector never lists ClusterNomadConnections: the cache would start
// an informer the manager may not run.
func TestStateCollectorSkipsClusterConnectionsWhenConfined(t *testing.T) {
	cluster := &v1alpha1.ClusterNomadConnection{ObjectMeta: metav1.ObjectMeta{Name: "central"}}
	var listed []string
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(cluster).Build()
	spy := listSpy{Client: c, listed: &listed}
	if n := testutil.CollectAndCount(NewStateCollector(spy, false)); n != 0 {
		t.Errorf("%d series, want none", n)
	}
	for _, l := range listed {
		if strings.Contains(l, "Cluster") {
			t.Errorf("listed %s while confined", l)
		}
	}
	if n := testutil.CollectAndCount(NewStateCollector(spy, true)); n != 3 {
		t.Errorf("%d series cluster-wide, want 3", n)
	}
}

type listSpy struct {
	client.Client
	listed *[]string
}

func (s listSpy) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	*s.listed = append(*s.listed, fmt.Sprintf("%T", list))
	return s.Client.List(ctx, list, opts...)
}

// No label value anywhere is a token, its fingerprint or its id.
func TestStateCollectorLabelsCarryNoToken(t *testing.T) {
	now := time.Now()
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(readyToken("team-a", "ci"),
		previousToken("team-a", "rotated", now, now.Add(time.Minute), &now, &now)).Build()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewStateCollector(c, false))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v := l.GetValue(); strings.Contains(v, "nomad_pat_") || v == "pat-id-1" || strings.Contains(v, "old-") {
					t.Errorf("%s: label %s=%q", f.GetName(), l.GetName(), v)
				}
			}
		}
	}
}

// A standby replica exports no state: its cache holds the same objects as the leader's.
func TestStateCollectorExportsOnlyWhileLeading(t *testing.T) {
	cluster := &v1alpha1.ClusterNomadConnection{ObjectMeta: metav1.ObjectMeta{Name: "central"}}
	var listed []string
	spy := listSpy{Client: fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(cluster).Build(), listed: &listed}
	elected := make(chan struct{})
	col := NewStateCollector(spy, true).OnlyWhenLeading(elected)
	if n := testutil.CollectAndCount(col); n != 0 || len(listed) != 0 {
		t.Fatalf("standby: %d series, lists %q; want none", n, listed)
	}
	close(elected)
	if n := testutil.CollectAndCount(col); n != 3 {
		t.Fatalf("leader: %d series, want 3", n)
	}
}
