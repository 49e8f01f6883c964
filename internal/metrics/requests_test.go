package metrics

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

func TestCodeClass(t *testing.T) {
	for status, want := range map[int]string{0: "error", 99: "error", 200: "2xx", 204: "2xx", 302: "3xx", 401: "4xx", 429: "4xx", 500: "5xx", 599: "5xx", 600: "error"} {
		if got := codeClass(status); got != want {
			t.Errorf("codeClass(%d) = %s, want %s", status, got, want)
		}
	}
}

// Each connection counts its own requests, and a deleted connection's series go, the others' stay.
func TestRequestObserverCountsPerConnectionAndForgets(t *testing.T) {
	a := ConnectionNamed("team-a", "obs-a")
	b := ConnectionNamed("", "obs-b")
	if b.Kind != KindClusterNomadConnection || a.Kind != KindNomadConnection {
		t.Fatalf("kinds %s %s", a.Kind, b.Kind)
	}
	ObserverFor(a).Request("create", 201, 10*time.Millisecond)
	ObserverFor(a).Request("create", 0, time.Second)
	ObserverFor(a).SignedIn(nomad.SignIn{})
	ObserverFor(b).Request("list", 503, time.Millisecond)
	PATCounters{}.Issued(a, true)
	PATCounters{}.Revoked(a, 2)
	PATCounters{}.RevokeAbandoned(a, 0)

	for _, c := range []struct {
		got, want float64
		what      string
	}{
		{testutil.ToFloat64(requestsTotal.WithLabelValues("NomadConnection", "team-a", "obs-a", "create", "2xx")), 1, "a create 2xx"},
		{testutil.ToFloat64(requestsTotal.WithLabelValues("NomadConnection", "team-a", "obs-a", "create", "error")), 1, "a create error"},
		{testutil.ToFloat64(requestsTotal.WithLabelValues("ClusterNomadConnection", "", "obs-b", "list", "5xx")), 1, "b list 5xx"},
		{testutil.ToFloat64(loginsTotal.WithLabelValues("NomadConnection", "team-a", "obs-a")), 1, "a logins"},
		{testutil.ToFloat64(patsIssued.WithLabelValues("NomadConnection", "team-a", "obs-a")), 1, "a issued"},
		{testutil.ToFloat64(patsRotated.WithLabelValues("NomadConnection", "team-a", "obs-a")), 1, "a rotated"},
		{testutil.ToFloat64(patsRevoked.WithLabelValues("NomadConnection", "team-a", "obs-a")), 2, "a revoked"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(requestDuration, "nomadconnection_request_duration_seconds"); n < 2 {
		t.Errorf("%d latency series, want one per connection and operation", n)
	}
	ForgetConnection(a)
	if n := seriesOf(t, "obs-a"); n != 0 {
		t.Errorf("%d series of the forgotten connection remain", n)
	}
	if n := seriesOf(t, "obs-b"); n != 7 { // requests, latency, logins and the four PAT counters
		t.Errorf("%d series of the other connection, want 7", n)
	}
}

// seriesOf counts the series of every request and PAT metric that name the connection name.
func seriesOf(t *testing.T, name string) int {
	t.Helper()
	n := 0
	for _, col := range []prometheus.Collector{requestsTotal, requestDuration, loginsTotal, patsIssued, patsRotated, patsRevoked, patsAbandoned} {
		ch := make(chan prometheus.Metric, 1000)
		col.Collect(ch)
		close(ch)
		for m := range ch {
			var d dto.Metric
			if err := m.Write(&d); err != nil {
				t.Fatal(err)
			}
			for _, l := range d.GetLabel() {
				if l.GetName() == "name" && l.GetValue() == name {
					n++
				}
			}
		}
	}
	return n
}

// BenchmarkStateCollector10000Tokens is the cost of one scrape's state gauges at 10,000 NomadTokens
// (and 100 connections). The reader hands out shallow copies of prebuilt objects, as the
// informer cache does for a List with UnsafeDisableDeepCopy; the fake client would measure its
// own JSON round trips instead. Not part of make test:
//
//	go test ./internal/metrics -run '^$' -bench StateCollector -benchmem
func BenchmarkStateCollector10000Tokens(b *testing.B) {
	r := &cachedLists{}
	for i := range 10000 {
		r.tokens = append(r.tokens, *readyToken(fmt.Sprintf("ns-%d", i%100), fmt.Sprintf("token-%d", i)))
	}
	for i := range 100 {
		r.conns = append(r.conns, v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns-%d", i), Name: "oasis"}})
	}
	col := NewStateCollector(r, false)
	ch := make(chan prometheus.Metric, 1024)
	done := make(chan int)
	go func() {
		n := 0
		for range ch {
			n++
			if n == 10000*6+100*3 {
				done <- n
				n = 0
			}
		}
	}()
	b.ResetTimer()
	for b.Loop() {
		col.Collect(ch)
		<-done
	}
	close(ch)
}

// cachedLists is a client.Reader over prebuilt lists.
type cachedLists struct {
	client.Reader
	tokens []v1alpha1.NomadToken
	conns  []v1alpha1.NomadConnection
}

func (c *cachedLists) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	switch l := list.(type) {
	case *v1alpha1.NomadTokenList:
		l.Items = slices.Clone(c.tokens)
	case *v1alpha1.NomadConnectionList:
		l.Items = slices.Clone(c.conns)
	}
	return nil
}

// A sign-in records when it happened and, where Keycloak says, when the refresh token ends; a later
// sign-in that does not say drops the old end instead of leaving it to fire an alert.
func TestSignedInRecordsTheSignInAndTheRefreshTokensEnd(t *testing.T) {
	c := ConnectionNamed("team-a", "signin")
	l := c.labels()
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	ends := at.Add(30 * 24 * time.Hour)
	o := ObserverFor(c)
	o.SignedIn(nomad.SignIn{Method: nomad.MethodRefreshToken, At: at, RefreshTokenExpiresAt: ends})
	if got := testutil.ToFloat64(lastSignIn.WithLabelValues(l...)); got != float64(at.Unix()) {
		t.Errorf("last sign-in = %v, want %d", got, at.Unix())
	}
	if got := testutil.ToFloat64(refreshTokenExpiry.WithLabelValues(l...)); got != float64(ends.Unix()) {
		t.Errorf("refresh token end = %v, want %d", got, ends.Unix())
	}
	o.SignedIn(nomad.SignIn{Method: nomad.MethodRefreshToken, At: at.Add(time.Hour)})
	if refreshTokenExpiry.DeleteLabelValues(l...) {
		t.Error("a sign-in that does not say when the refresh token ends must drop the old end")
	}
	if got := testutil.ToFloat64(lastSignIn.WithLabelValues(l...)); got != float64(at.Add(time.Hour).Unix()) {
		t.Errorf("last sign-in = %v, want the later one", got)
	}
	ForgetConnection(c)
	if lastSignIn.DeleteLabelValues(l...) {
		t.Error("a deleted connection's last sign-in must go with it")
	}
}

// The abandoned-PAT counter of a deleted connection stays once it counted a PAT: a namespace
// deletion abandons PATs seconds before it deletes their connection, and they stay active. Its
// other series go, and so does an abandoned counter still at zero.
func TestForgetConnectionKeepsACounterOfAbandonedPATs(t *testing.T) {
	abandoning, calm := ConnectionNamed("team-a", "forget-abandoning"), ConnectionNamed("team-a", "forget-calm")
	for _, c := range []Connection{abandoning, calm} {
		ObserverFor(c)
		PATCounters{}.Revoked(c, 1)
	}
	PATCounters{}.RevokeAbandoned(abandoning, 2)
	ForgetConnection(abandoning)
	ForgetConnection(calm)
	if n := seriesOf(t, "forget-abandoning"); n != 1 {
		t.Errorf("%d series of the deleted connection that abandoned PATs, want only its abandoned counter", n)
	}
	if got := testutil.ToFloat64(patsAbandoned.WithLabelValues(abandoning.labels()...)); got != 2 {
		t.Errorf("abandoned counter of the deleted connection = %v, want 2 kept", got)
	}
	if n := seriesOf(t, "forget-calm"); n != 0 {
		t.Errorf("%d series of the deleted connection that abandoned nothing remain", n)
	}
}
