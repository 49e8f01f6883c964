package e2e

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// The real manager serves its metrics over HTTPS to those the API server authenticates and
// authorizes, and they describe the tokens as their status does while one issues and rotates.
var _ = Describe("Metrics endpoint", Ordered, func() {
	const ns = "metrics-secure" // not "metrics": metrics_names_test.go has that tenant
	var (
		t          *tenant
		key        client.ObjectKey
		readerTok  string // a ServiceAccount bound to metrics-reader
		strangeTok string // a ServiceAccount without it
	)

	BeforeAll(func(ctx SpecContext) {
		t = newTenant(ctx, ns)
		readerTok = serviceAccountToken(ctx, ns, "scraper", "metrics-reader")
		strangeTok = serviceAccountToken(ctx, ns, "stranger", "")
		// It names a connection that does not exist yet: Ready=False until the spec below fixes it.
		// A one-day PAT renewed 10 s after its creation (fastRenewal), like the rotation specs'.
		tok := harness.NomadToken(ns, "scraped", "not-yet", fastRenewal(v1alpha1.RotationOverlap, ptr.To(overlapGrace)))
		Expect(controlPl.Client.Create(ctx, tok)).To(Succeed())
		key = client.ObjectKeyFromObject(tok)
		// Runs after the last spec: a cleanup registered in BeforeAll.
		DeferCleanup(func(ctx SpecContext) { _ = client.IgnoreNotFound(controlPl.Client.Delete(ctx, tok)) })
	})

	It("answers 401 without a token, 403 to a ServiceAccount without metrics-reader, 200 with it", func(ctx SpecContext) {
		code, _ := scrapeMetrics(ctx, "")
		Expect(code).To(Equal(http.StatusUnauthorized))
		// controller-runtime's filter answers a token the API server rejects with 500, not 401.
		code, _ = scrapeMetrics(ctx, "not-a-token")
		Expect(code).NotTo(Equal(http.StatusOK))
		code, _ = scrapeMetrics(ctx, strangeTok)
		Expect(code).To(Equal(http.StatusForbidden))
		code, body := scrapeMetrics(ctx, readerTok)
		Expect(code).To(Equal(http.StatusOK))
		Expect(body).To(ContainSubstring("nomadconnection_ready_status"))
		Expect(body).To(ContainSubstring("controller_runtime_reconcile_total"))
	})

	It("reports a token's readiness flipping from False (no such connection) to True", func(ctx SpecContext) {
		tok := &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		notFound := tokenSeries(key, "not-yet", "condition", "False", "reason", v1alpha1.ReasonConnectionNotFound)
		eventually(ctx, func(g Gomega) {
			g.Expect(gauge(g, ctx, readerTok, "nomadtoken_ready_status", notFound)).To(Equal(1.0))
		}).Should(Succeed())

		Expect(controlPl.Client.Patch(ctx, tok, client.RawPatch(types.MergePatchType,
			[]byte(`{"spec":{"connectionRef":{"name":"`+tenantConnection+`"}}}`)))).To(Succeed())
		waitReady(ctx, key)
		eventually(ctx, func(g Gomega) {
			g.Expect(gauge(g, ctx, readerTok, "nomadtoken_ready_status",
				tokenSeries(key, tenantConnection, "condition", "True", "reason", "Issued"))).To(Equal(1.0))
			g.Expect(gauge(g, ctx, readerTok, "nomadtoken_ready_status",
				tokenSeries(key, tenantConnection, "condition", "False", "reason", "Issued"))).To(Equal(0.0))
		}).Should(Succeed())
	})

	It("exports expiry and renewal equal to the token's status, through a rotation, and counts it", func(ctx SpecContext) {
		conn := map[string]string{"kind": v1alpha1.KindNomadConnection, "namespace": ns, "name": tenantConnection}
		statusMatches := func(g Gomega) string {
			var tok v1alpha1.NomadToken
			g.Expect(controlPl.Client.Get(ctx, key, &tok)).To(Succeed())
			g.Expect(tok.Status.ExpiresAt).NotTo(BeNil())
			g.Expect(tok.Status.RenewalTime).NotTo(BeNil())
			fams := scrapeFamilies(g, ctx, readerTok)
			series := tokenSeries(key, tenantConnection)
			g.Expect(value(fams, "nomadtoken_expiration_timestamp_seconds", series)).To(Equal(float64(tok.Status.ExpiresAt.Unix())))
			g.Expect(value(fams, "nomadtoken_renewal_timestamp_seconds", series)).To(Equal(float64(tok.Status.RenewalTime.Unix())))
			return tok.Status.TokenID
		}
		var first string
		eventually(ctx, func(g Gomega) { first = statusMatches(g) }).Should(Succeed())
		fams := scrapeFamilies(Default, ctx, readerTok)
		issuedBefore := value(fams, "nomadtoken_pats_issued_total", conn)
		rotatedBefore := value(fams, "nomadtoken_pats_rotated_total", conn)
		Expect(issuedBefore).To(BeNumerically(">=", 1))
		Expect(value(fams, "nomadconnection_requests_total", merge(conn, "operation", "create", "code_class", "2xx"))).To(BeNumerically(">=", 1))
		Expect(value(fams, "nomadconnection_logins_total", conn)).To(BeNumerically(">=", 1))
		Expect(value(fams, "nomadconnection_active_pats", conn)).To(BeNumerically(">=", 0))

		waitRotation(ctx, key, first)
		stopRenewing(ctx, key)
		eventually(ctx, func(g Gomega) {
			g.Expect(statusMatches(g)).NotTo(Equal(first))
			fams := scrapeFamilies(g, ctx, readerTok)
			g.Expect(value(fams, "nomadtoken_pats_issued_total", conn)).To(BeNumerically(">", issuedBefore))
			g.Expect(value(fams, "nomadtoken_pats_rotated_total", conn)).To(BeNumerically(">", rotatedBefore))
		}).Should(Succeed())
		// The replaced PAT is revoked when its grace period ends.
		Eventually(ctx, func(g Gomega) {
			g.Expect(value(scrapeFamilies(g, ctx, readerTok), "nomadtoken_pats_revoked_total", conn)).To(BeNumerically(">=", 1))
		}).WithTimeout(overlapGrace + 30*time.Second).WithPolling(time.Second).Should(Succeed())
	}, NodeTimeout(2*time.Minute))

	It("drops a deleted token's series", func(ctx SpecContext) {
		Expect(controlPl.Client.Delete(ctx, &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})).To(Succeed())
		eventually(ctx, func(g Gomega) {
			fams := scrapeFamilies(g, ctx, readerTok)
			for _, name := range []string{"nomadtoken_expiration_timestamp_seconds", "nomadtoken_renewal_timestamp_seconds", "nomadtoken_ready_status", "nomadtoken_revoke_pending_pats"} {
				g.Expect(count(fams, name, map[string]string{"namespace": key.Namespace, "name": key.Name})).To(BeZero(), name)
			}
		}).Should(Succeed())
	})

	It("never wrote a raw token or the bot password to the manager log", func() {
		t.expectNoLeaks()
	})
})

// serviceAccountToken creates ServiceAccount name in ns, binds it to clusterRole unless that is "",
// and returns a token of it from the TokenRequest API.
func serviceAccountToken(ctx context.Context, ns, name, clusterRole string) string {
	GinkgoHelper()
	c := controlPl.Client
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	Expect(c.Create(ctx, sa)).To(Succeed())
	if clusterRole != "" {
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}},
		}
		Expect(c.Create(ctx, crb)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(client.IgnoreNotFound(c.Delete(ctx, crb))).To(Succeed()) })
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))}}
	Expect(c.SubResource("token").Create(ctx, sa, tr)).To(Succeed())
	Expect(tr.Status.Token).NotTo(BeEmpty())
	return tr.Status.Token
}

// scrapeMetrics GETs the suite manager's /metrics with bearer (none when ""). The manager's
// certificate is self-signed, so it is not verified.
func scrapeMetrics(ctx context.Context, bearer string) (int, string) {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+metricsAddr+"/metrics", nil)
	Expect(err).NotTo(HaveOccurred())
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed
	resp, err := hc.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(b)
}

func scrapeFamilies(g Gomega, ctx context.Context, bearer string) map[string]*dto.MetricFamily {
	code, body := scrapeMetrics(ctx, bearer)
	g.Expect(code).To(Equal(http.StatusOK))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	g.Expect(err).NotTo(HaveOccurred())
	return fams
}

// tokenSeries are the labels of key's per-token series, plus extra name/value pairs.
func tokenSeries(key client.ObjectKey, connection string, extra ...string) map[string]string {
	return merge(map[string]string{"namespace": key.Namespace, "name": key.Name,
		"connection_kind": v1alpha1.KindNomadConnection, "connection_name": connection}, extra...)
}

func merge(labels map[string]string, extra ...string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		out[k] = v
	}
	for i := 0; i+1 < len(extra); i += 2 {
		out[extra[i]] = extra[i+1]
	}
	return out
}

// matching are the series of family name whose labels include want.
func matching(fams map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	f := fams[name]
	if f == nil {
		return nil
	}
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, v := range want {
			if have[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

func count(fams map[string]*dto.MetricFamily, name string, want map[string]string) int {
	return len(matching(fams, name, want))
}

// value is the sum of the matching series of a gauge or counter; -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	ms := matching(fams, name, want)
	if len(ms) == 0 {
		return -1
	}
	sum := 0.0
	for _, m := range ms {
		sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	return sum
}

func gauge(g Gomega, ctx context.Context, bearer, name string, want map[string]string) float64 {
	return value(scrapeFamilies(g, ctx, bearer), name, want)
}
