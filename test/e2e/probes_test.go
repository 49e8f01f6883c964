package e2e

import (
	"context"
	"io"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// leaseKey is the suite manager's leader-election Lease (cmd/manager's LeaderElectionID).
var leaseKey = client.ObjectKey{Namespace: operatorNamespace, Name: "nomad-token-operator.tokens.nomad-operator.dev"}

var _ = Describe("The manager's probes and its leader-election Lease", Ordered, func() {
	It("answers 200 on /readyz (caches synced) and /healthz (reconciles progress) while it issues a token", func(ctx SpecContext) {
		t := newTenant(ctx, "e2e-probes")
		key := t.createToken(ctx, "probed", v1alpha1.Rotation{})
		waitReady(ctx, key)
		for path, check := range map[string]string{"/readyz": "caches-synced", "/healthz": "reconciles-progress"} {
			status, body := probe(ctx, path+"?verbose")
			Expect(status).To(Equal(http.StatusOK), "%s: %s", path, body)
			// The named check ran, not only a ping.
			Expect(body).To(ContainSubstring("[+]"+check+" ok"), path)
		}
	})

	It("hands the Lease back on SIGTERM: holderIdentity is cleared, and the next manager takes it", func(ctx SpecContext) {
		succeed(manager.AwaitLeadership(ctx, 2*time.Minute))
		var lease coordinationv1.Lease
		Expect(controlPl.Client.Get(ctx, leaseKey, &lease)).To(Succeed())
		first := ptr.Deref(lease.Spec.HolderIdentity, "")
		Expect(first).NotTo(BeEmpty(), "the leader holds the Lease")

		By("stopping the manager with SIGTERM")
		stopSuiteManager()
		Expect(controlPl.Client.Get(ctx, leaseKey, &lease)).To(Succeed())
		Expect(ptr.Deref(lease.Spec.HolderIdentity, "")).To(BeEmpty(),
			"a manager that stopped cleanly released the Lease (LeaderElectionReleaseOnCancel)")

		By("starting a manager again: it acquires the released Lease")
		startSuiteManager(ctx)
		// (manager.log is appended to, so the new manager's own log line cannot tell; the Lease can:
		// each manager holds it under an identity of its own.)
		eventually(ctx, func(g Gomega) {
			g.Expect(controlPl.Client.Get(ctx, leaseKey, &lease)).To(Succeed())
			g.Expect(ptr.Deref(lease.Spec.HolderIdentity, "")).NotTo(Or(BeEmpty(), Equal(first)))
		}).Should(Succeed(), "the new manager holds the Lease")
	})
})

// probe GETs path from the suite manager's health-probe address.
func probe(ctx context.Context, path string) (int, string) {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+manager.ProbeAddr+path, nil)
	Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(b)
}
