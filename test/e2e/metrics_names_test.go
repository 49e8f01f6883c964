package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
	"github.com/nomad-operator/nomad-token-operator/test/monitoring"
)

// The alerts and the dashboard are only as good as the names they query: a renamed metric makes an
// alert silently never fire. Their names are checked against a scrape of the real manager, after it
// issued, rotated and revoked a PAT, so that the token, connection and counter series exist, and
// while a replaced PAT that was used waits for its consumers (waitForConsumers), so that the
// previous-PAT gauges, which exist only while status.previousTokenID is set, exist too.
var _ = Describe("The metrics that the alerts and the dashboard use", Ordered, func() {
	It("are all exported by the manager", func(ctx SpecContext) {
		var used []string
		for _, f := range []string{"config/prometheus/rules.yaml", "config/grafana/nomad-token-operator.json"} {
			data, err := os.ReadFile(filepath.Join(repoRoot, f))
			Expect(err).NotTo(HaveOccurred())
			var exprs []string
			if strings.HasSuffix(f, ".json") {
				exprs, err = monitoring.DashboardExpressions(data)
			} else {
				var pr *monitoring.PrometheusRule
				if pr, err = monitoring.ParsePrometheusRule(data); err == nil {
					exprs = pr.Expressions()
				}
			}
			Expect(err).NotTo(HaveOccurred(), f)
			for _, e := range exprs {
				used = append(used, monitoring.MetricNames(e)...)
			}
		}
		Expect(used).NotTo(BeEmpty())

		By("running a manager with plain-HTTP metrics instead of the suite's")
		stopSuiteManager()
		DeferCleanup(startSuiteManager) // runs last: after this spec's manager stopped
		addr := freeLoopbackAddr()
		args := []string{"--leader-elect", "--leader-election-namespace=" + operatorNamespace,
			"--verification-interval=" + verificationInterval.String(), "--metrics-bind-address=" + addr}
		if managerHasFlag("metrics-secure") {
			args = append(args, "--metrics-secure=false")
		}
		m, err := harness.StartManager(ctx, harness.ManagerOptions{
			Bin:        os.Getenv("MANAGER_BIN"),
			Kubeconfig: managerKubeconfig,
			LogPath:    filepath.Join(workDir, "manager-metrics.log"),
			Args:       args,
		})
		succeed(err)
		DeferCleanup(func() { Expect(m.Stop(20 * time.Second)).To(Succeed()) })

		By("issuing a PAT, rotating it and revoking the replaced one")
		t := newTenant(ctx, "metrics")
		key := t.createToken(ctx, "scraped", v1alpha1.Rotation{GracePeriod: &metav1.Duration{}})
		first := waitReady(ctx, key).Status.TokenID
		Expect(controlPl.Client.Patch(ctx, &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}},
			client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"metrics"}}}`, v1alpha1.AnnotationRotate)))).To(Succeed())
		eventually(ctx, func(g Gomega) {
			var tok v1alpha1.NomadToken
			g.Expect(controlPl.Client.Get(ctx, key, &tok)).To(Succeed())
			g.Expect(readyOf(tok.Status.Conditions).Status).To(Equal(metav1.ConditionTrue))
			g.Expect(tok.Status.TokenID).NotTo(Equal(first))
			g.Expect(tok.Status.RevokePending).To(BeEmpty())
			g.Expect(tok.Status.PreviousTokenID).To(BeEmpty(), "the replaced PAT is revoked")
		}).Should(Succeed())

		By("rotating a token with waitForConsumers whose PAT was used: its replaced PAT waits at scrape time")
		// unusedFor 1h: NOMAD saw the old PAT used moments ago, so it waits (up to maxGracePeriod, 2h)
		// through the scrape; deleting the token at cleanup revokes it.
		waiting := createTokenOfTenant(ctx, t, "waiting", v1alpha1.Rotation{
			GracePeriod: &metav1.Duration{},
			WaitForConsumers: &v1alpha1.WaitForConsumers{
				UnusedFor: metav1.Duration{Duration: time.Hour}, MaxGracePeriod: metav1.Duration{Duration: 2 * time.Hour},
			},
		})
		usedID := waitReady(ctx, waiting).Status.TokenID
		usedRaw, secretID := t.secretToken(ctx, waiting)
		Expect(secretID).To(Equal(usedID))
		res, err := harness.ProbePAT(ctx, stub.APIURL, t.patPath, usedRaw) // a use: NOMAD sets its last_used_at
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Valid()).To(BeTrue(), "NOMAD accepts the PAT, got %s", res)
		// Not in the second of that use: a connection list taken in the swap's second but before the
		// use would count as a look since the swap (status.lastRotationTime has whole seconds) and
		// show the PAT never used, which revokes it at once (a controller bug, reported separately).
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond)))
		Expect(controlPl.Client.Patch(ctx, &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: waiting.Namespace, Name: waiting.Name}},
			client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"metrics"}}}`, v1alpha1.AnnotationRotate)))).To(Succeed())
		eventually(ctx, func(g Gomega) {
			var tok v1alpha1.NomadToken
			g.Expect(controlPl.Client.Get(ctx, waiting, &tok)).To(Succeed())
			g.Expect(tok.Status.TokenID).NotTo(Equal(usedID))
			g.Expect(tok.Status.PreviousTokenID).To(Equal(usedID), "the replaced PAT waits for its consumers")
			g.Expect(tok.Status.PreviousTokenLastUsedAt).NotTo(BeNil(), "NOMAD's last use of the replaced PAT is in status")
		}).Should(Succeed())

		By("signing a second connection in with a refresh token whose end the realm states (an online session)")
		rt, err := stub.IssueRefreshToken(ctx, t.user, false)
		succeed(err)
		issuer, err := stub.Issuer(ctx)
		succeed(err)
		Expect(controlPl.Client.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "refresh", Labels: map[string]string{v1alpha1.LabelCredentials: "true"}},
			StringData: map[string]string{v1alpha1.DefaultRefreshTokenKey: rt},
		})).To(Succeed())
		viaRealm := &v1alpha1.NomadConnection{
			ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "via-realm"},
			Spec: v1alpha1.NomadConnectionSpec{URL: stub.APIURL, Credentials: v1alpha1.Credentials{
				Method: v1alpha1.CredentialMethodRefreshToken, SecretRef: v1alpha1.CredentialsSecretRef{Name: "refresh"},
				OIDC: &v1alpha1.OIDCProvider{IssuerURL: issuer}}},
		}
		Expect(controlPl.Client.Create(ctx, viaRealm)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			Expect(client.IgnoreNotFound(controlPl.Client.Delete(ctx, viaRealm))).To(Succeed())
		})

		By("scraping /metrics until every name is there")
		var missing []string
		eventually(ctx, func(g Gomega) {
			body, err := scrape(ctx, addr)
			g.Expect(err).NotTo(HaveOccurred())
			missing = monitoring.Missing(used, monitoring.ExposedNames(body))
			g.Expect(missing).To(BeEmpty(), "used in config/prometheus/rules.yaml or config/grafana/nomad-token-operator.json, not exported by the manager")
		}).Should(Succeed())
	})
})

// managerHasFlag reports whether the manager binary defines --name (from its -h output).
func managerHasFlag(name string) bool {
	out, _ := exec.Command(os.Getenv("MANAGER_BIN"), "-h").CombinedOutput() // -h exits non-zero
	return strings.Contains(string(out), "-"+name+" ") || strings.Contains(string(out), "-"+name+"\n")
}

// freeLoopbackAddr is 127.0.0.1 with a port the kernel says is free.
func freeLoopbackAddr() string {
	GinkgoHelper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer ln.Close()
	return ln.Addr().String()
}

func scrape(ctx context.Context, addr string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return string(b), nil
}
