package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// config/namespaced watches team-a and team-b; here they are renamed (team-a belongs to the
// config/samples spec), as a user following that kustomization's comment would.
const (
	confinedA       = "confined-a"
	confinedB       = "confined-b"
	confinedOutside = "confined-outside" // a namespace the confined manager does not watch
)

// The manager installed with config/namespaced: a Role in each watched namespace, a Role for its
// Lease in its own namespace, no ClusterRole binding at all.
//
// The suite's manager is cluster-wide, so it would act on the same NomadTokens. It is stopped for
// this container and started again after it: both use the same leader-election Lease, so even a
// stop that failed to happen would leave the confined manager waiting rather than two managers
// acting on one object.
var _ = Describe("The operator installed with config/namespaced (--watch-namespaces)", Ordered, func() {
	var (
		in       *harness.NamespacedInstall
		confined *harness.Manager
		t        *tenant
		outside  *v1alpha1.NomadToken
		key      client.ObjectKey
		raw      []byte // the raw PAT from the Secret: never hand it to a matcher, which would print it
	)

	BeforeAll(func(ctx SpecContext) {
		var err error
		in, err = harness.LoadNamespacedInstall(repoRoot)
		Expect(err).NotTo(HaveOccurred())
		Expect(in.WatchNamespaces).To(ConsistOf("team-a", "team-b"), "the example in config/namespaced")
		Expect(in.RenameNamespaces(map[string]string{"team-a": confinedA, "team-b": confinedB})).To(Succeed())
		Expect(in.ServiceAccount.Namespace).To(Equal(operatorNamespace))
		kubeconfig := filepath.Join(workDir, "confined.kubeconfig")
		succeed(controlPl.InstallNamespaced(ctx, in, kubeconfig))

		By("stopping the suite's cluster-wide manager until this container ends")
		stopSuiteManager()
		DeferCleanup(startSuiteManager) // runs last: after the confined manager stopped

		// Applied while no manager runs, so a manager that watched this namespace would find the
		// token in its first list and reconcile it before any token created later.
		Expect(controlPl.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: confinedOutside}})).To(Succeed())
		outside = harness.NomadToken(confinedOutside, "unwatched", tenantConnection, v1alpha1.Rotation{})
		Expect(controlPl.Client.Create(ctx, outside)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { // before the suite's manager is back: nothing holds it
			Expect(client.IgnoreNotFound(controlPl.Client.Delete(ctx, outside))).To(Succeed())
		})

		By("starting a manager with config/namespaced's ServiceAccount and its Deployment's args")
		confined, err = harness.StartManager(ctx, harness.ManagerOptions{
			Bin:        os.Getenv("MANAGER_BIN"),
			Kubeconfig: kubeconfig,
			LogPath:    filepath.Join(workDir, "manager-confined.log"),
			Args:       append(in.ProcessArgs(), "--zap-log-level=debug", "--verification-interval="+verificationInterval.String()),
		})
		succeed(err)
		DeferCleanup(func() { Expect(confined.Stop(20 * time.Second)).To(Succeed()) })

		t = newTenant(ctx, confinedA)
		key = t.createToken(ctx, "ci-uploader", v1alpha1.Rotation{})
	})

	AfterEach(func() {
		if CurrentSpecReport().Failed() && confined != nil {
			AddReportEntry("confined manager log (tail)", confined.Tail(60))
		}
	})

	It("runs with the Deployment's --watch-namespaces and leader election", func() {
		Expect(in.ProcessArgs()).To(ContainElements("--leader-elect", "--watch-namespaces="+confinedA+","+confinedB))
	})

	It("issues a PAT into the Secret of a NomadToken in a watched namespace", func(ctx SpecContext) {
		tok := waitReady(ctx, key)
		Expect(readyOf(tok.Status.Conditions).Reason).To(Equal(v1alpha1.ReasonIssued))
		var id string
		raw, id = t.secretToken(ctx, key)
		Expect(id).To(Equal(tok.Status.TokenID))
		Expect(harness.PATPattern.Match(raw)).To(BeTrue(), "the Secret holds a raw PAT, got %s", harness.Describe(raw))
		ok, err := stub.Authenticates(ctx, raw)
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeTrue(), "NOMAD accepts the PAT in the Secret")
	})

	It("never touched the NomadToken outside its namespaces", func(ctx SpecContext) {
		Expect(controlPl.Client.Get(ctx, client.ObjectKeyFromObject(outside), outside)).To(Succeed())
		Expect(outside.Finalizers).To(BeEmpty(), "no revoke finalizer: not reconciled")
		Expect(outside.Status.Conditions).To(BeEmpty(), "no status: not reconciled")
	})

	It("holds no permission outside the watched namespaces", func(ctx SpecContext) {
		sa := serviceAccount(in.ServiceAccount.Namespace, in.ServiceAccount.Name)
		Expect(may(ctx, sa, authorizationv1.ResourceAttributes{Namespace: confinedA, Verb: "watch", Resource: "secrets"})).To(BeTrue(), "sanity: secrets in a watched namespace")
		for what, attrs := range map[string]authorizationv1.ResourceAttributes{
			"list Secrets cluster-wide":           {Verb: "list", Resource: "secrets"},
			"get a Secret of another namespace":   {Namespace: confinedOutside, Verb: "get", Resource: "secrets"},
			"list NomadTokens cluster-wide":       {Verb: "list", Group: group, Resource: "nomadtokens"},
			"update NomadTokens elsewhere":        {Namespace: confinedOutside, Verb: "update", Group: group, Resource: "nomadtokens"},
			"list Namespaces":                     {Verb: "list", Resource: "namespaces"},
			"watch ClusterNomadConnections":       {Verb: "watch", Group: group, Resource: "clusternomadconnections"},
			"take the Lease of another namespace": {Namespace: confinedA, Verb: "update", Group: "coordination.k8s.io", Resource: "leases"},
		} {
			Expect(may(ctx, sa, attrs)).To(BeFalse(), what)
		}
	})

	It("was refused nothing by the API server", func() {
		log, err := os.ReadFile(confined.LogPath)
		Expect(err).NotTo(HaveOccurred())
		var refused []string
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, "is forbidden: User") {
				refused = append(refused, harness.Redact(line))
			}
		}
		Expect(refused).To(BeEmpty(), "config/namespaced lacks something the confined manager needs")
	})

	It("never wrote the raw token or the bot password to its log", func() {
		Expect(raw).NotTo(BeEmpty(), "an earlier spec read the token")
		leaks, err := harness.ScanFile(confined.LogPath, string(raw), t.password)
		Expect(err).NotTo(HaveOccurred())
		Expect(leaks).To(BeEmpty(), "secret #0 is the raw PAT, #1 the bot password")
	})
})
