package e2e

import (
	"encoding/json"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// A restarted manager finds everything as it left it: it logs in and lists each connection's PATs
// once (the verification a new process owes its tokens), and makes no other NOMAD call and no write.
// In particular it does not detect the PAT path again: the connection's status says where it is.
// The connection talks to a stand-in of its own, so that the calls counted are its calls only.
var _ = Describe("a manager restart in the steady state", func() {
	It("costs one login and one list per connection, and no Kubernetes write", func(ctx SpecContext) {
		c := controlPl.Client
		own, _ := startOwnStub(ctx, "restart-steady", harness.StubOptions{})

		ns := "restart-steady"
		_, _, conn, err := harness.CreateTenant(ctx, c, own, ns)
		Expect(err).NotTo(HaveOccurred())
		deleteNamespaceAtCleanup(ns)
		keys := createReadyTokens(ctx, ns, conn.Name, "a", "b", "c")
		connKey := client.ObjectKeyFromObject(conn)
		// The steady state: a check after the issuances has counted their PATs, and the one after
		// it (a list more) found nothing to change.
		listsAfter := func(n int) {
			GinkgoHelper()
			calls, err := own.Calls(ctx)
			Expect(err).NotTo(HaveOccurred())
			eventually(ctx, func(g Gomega) {
				now, err := own.Calls(ctx)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(now["list"]).To(BeNumerically(">=", calls["list"]+n))
			}).Should(Succeed())
		}
		eventually(ctx, func(g Gomega) {
			g.Expect(c.Get(ctx, connKey, conn)).To(Succeed())
			g.Expect(conn.Status.PATPath).NotTo(BeEmpty())
			g.Expect(conn.Status.NomadTokens).To(HaveValue(BeEquivalentTo(len(keys))))
			g.Expect(conn.Status.ActiveTokens).To(HaveValue(BeEquivalentTo(len(keys))))
		}).Should(Succeed())
		listsAfter(1)

		before := snapshotStates(ctx, connKey, keys)
		calls, err := own.Calls(ctx)
		Expect(err).NotTo(HaveOccurred())

		By("restarting the manager")
		stopSuiteManager()
		startSuiteManager(ctx)

		By("waiting for the restarted manager's first two checks of the connection")
		// Two lists: writes that follow the first check have landed once the second one is made.
		eventually(ctx, func(g Gomega) {
			now, err := own.Calls(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(now["list"]).To(BeNumerically(">=", calls["list"]+2))
		}).Should(Succeed())

		now := snapshotStates(ctx, connKey, keys)
		for key, was := range before {
			Expect(now[key].ResourceVersion).To(Equal(was.ResourceVersion), "%s was written after the restart:\nbefore %s\nafter  %s", key, was.Status, now[key].Status)
		}
		after, err := own.Calls(ctx)
		Expect(err).NotTo(HaveOccurred())
		for op, n := range after {
			if op == "login" || op == "list" {
				continue
			}
			Expect(n-calls[op]).To(BeZero(), "NOMAD %s calls after the restart", op)
		}
		Expect(after["login"]-calls["login"]).To(Equal(1), "the restarted manager logs in once")
	})
})

// objectState is what a restart must not change of an object: its resourceVersion, and its status
// (to show what changed when it did).
type objectState struct {
	ResourceVersion string
	Status          string
}

// snapshotStates reads the connection, the tokens and their Secrets straight from the API server.
func snapshotStates(ctx SpecContext, connKey client.ObjectKey, tokens []client.ObjectKey) map[string]objectState {
	GinkgoHelper()
	c := controlPl.Client
	out := map[string]objectState{}
	put := func(what string, obj client.Object, status any) {
		b, err := json.Marshal(status)
		Expect(err).NotTo(HaveOccurred())
		out[what+" "+client.ObjectKeyFromObject(obj).String()] = objectState{ResourceVersion: obj.GetResourceVersion(), Status: string(b)}
	}
	conn := &v1alpha1.NomadConnection{}
	Expect(c.Get(ctx, connKey, conn)).To(Succeed())
	put("NomadConnection", conn, conn.Status)
	for _, key := range tokens {
		tok := &v1alpha1.NomadToken{}
		Expect(c.Get(ctx, key, tok)).To(Succeed())
		put("NomadToken", tok, tok.Status)
		s := &corev1.Secret{}
		Expect(c.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: tok.EffectiveSecretName()}, s)).To(Succeed())
		put("Secret", s, metav1.ObjectMeta{Labels: s.Labels, Annotations: s.Annotations})
	}
	return out
}
