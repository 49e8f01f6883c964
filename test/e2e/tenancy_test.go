package e2e

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// The real manager, with the generated RBAC of the cluster-wide install (manager-role and
// manager-cluster-role), serves a ClusterNomadConnection whose credentials live in the operator's
// namespace to the namespaces its allowedNamespaces selects, and follows a namespace label.
var _ = Describe("ClusterNomadConnection with the real manager", func() {
	It("serves a selected namespace, refuses another until it is labelled, and revokes on deletion", func(ctx SpecContext) {
		c := controlPl.Client
		user, password := "platform-bot", "platform-password"
		_, err := stub.AddUser(ctx, user, password)
		Expect(err).NotTo(HaveOccurred())
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: "nomad-platform-bot",
				Labels: map[string]string{credentialsLabel: "true"}},
			StringData: map[string]string{"username": user, "password": password},
		}
		Expect(c.Create(ctx, secret)).To(Succeed())
		conn := &v1alpha1.ClusterNomadConnection{
			ObjectMeta: metav1.ObjectMeta{Name: "platform"},
			Spec: v1alpha1.ClusterNomadConnectionSpec{
				NomadConnectionSpec: v1alpha1.NomadConnectionSpec{
					URL:         stub.APIURL,
					Credentials: v1alpha1.Credentials{SecretRef: v1alpha1.CredentialsSecretRef{Name: secret.Name}},
				},
				AllowedNamespaces: v1alpha1.AllowedNamespaces{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"nomad-access": "true"}}},
			},
		}
		Expect(c.Create(ctx, conn)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			Expect(client.IgnoreNotFound(c.Delete(ctx, conn))).To(Succeed())
			awaitNotFound(ctx, client.ObjectKeyFromObject(conn), &v1alpha1.ClusterNomadConnection{}, unusedPatience)
			Expect(client.IgnoreNotFound(c.Delete(ctx, secret))).To(Succeed())
		})
		// Registered before the tokens' cleanups, so it runs after them.
		DeferCleanup(func(ctx SpecContext) {
			st, err := stub.State(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(st.ActivePATs(user)).To(BeEmpty(), "every PAT minted through the ClusterNomadConnection is revoked")
		})
		eventually(ctx, func(g Gomega) {
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(conn), conn)).To(Succeed())
			g.Expect(readyOf(conn.Status.Conditions).Status).To(Equal(metav1.ConditionTrue), "Ready condition")
		}).Should(Succeed())

		selected := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cluster-conn-selected", Labels: map[string]string{"nomad-access": "true"}}}
		later := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cluster-conn-later"}}
		for _, ns := range []*corev1.Namespace{selected, later} {
			Expect(c.Create(ctx, ns)).To(Succeed())
			deleteNamespaceAtCleanup(ns.Name)
		}
		shared := func(ns, name string) client.ObjectKey {
			tok := harness.NomadToken(ns, name, conn.Name, v1alpha1.Rotation{})
			tok.Spec.ConnectionRef.Kind = v1alpha1.KindClusterNomadConnection
			Expect(c.Create(ctx, tok)).To(Succeed())
			key := client.ObjectKeyFromObject(tok)
			DeferCleanup(func(ctx SpecContext) {
				Expect(client.IgnoreNotFound(c.Delete(ctx, tok))).To(Succeed())
				awaitNotFound(ctx, key, &v1alpha1.NomadToken{}, teardownPatience)
			})
			return key
		}
		served := waitReady(ctx, shared(selected.Name, "served"))
		waitingKey := shared(later.Name, "waiting")
		eventually(ctx, func(g Gomega) {
			tok := &v1alpha1.NomadToken{}
			g.Expect(c.Get(ctx, waitingKey, tok)).To(Succeed())
			g.Expect(readyOf(tok.Status.Conditions).Reason).To(Equal(v1alpha1.ReasonConnectionNotAllowed))
		}).Should(Succeed())

		Expect(c.Get(ctx, client.ObjectKeyFromObject(later), later)).To(Succeed())
		later.Labels = map[string]string{"nomad-access": "true"}
		Expect(c.Update(ctx, later)).To(Succeed())
		waiting := waitReady(ctx, waitingKey)

		st, err := stub.State(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(idsOf(st.ActivePATs(user))).To(ConsistOf(served.Status.TokenID, waiting.Status.TokenID),
			"both PATs belong to the platform's bot account")
		Expect(served.Status.ConnectionName).To(Equal("ClusterNomadConnection/" + conn.Name))

		// This manager resyncs every 10 h and retries refusals after 15 min: only its watches (of
		// namespace labels, of the connection, of the tokens sharing a ceiling) can wake a token
		// within the suite's 30 s.
		reason := func(key client.ObjectKey) func(Gomega) string {
			return func(g Gomega) string {
				tok := &v1alpha1.NomadToken{}
				g.Expect(c.Get(ctx, key, tok)).To(Succeed())
				return readyOf(tok.Status.Conditions).Reason
			}
		}
		By("removing the label shuts the namespace out again")
		Expect(c.Get(ctx, client.ObjectKeyFromObject(later), later)).To(Succeed())
		later.Labels = nil
		Expect(c.Update(ctx, later)).To(Succeed())
		eventually(ctx, reason(waitingKey)).Should(Equal(v1alpha1.ReasonConnectionNotAllowed))

		By("a tightened policy on the connection reaches its tokens")
		Expect(c.Get(ctx, client.ObjectKeyFromObject(conn), conn)).To(Succeed())
		conn.Spec.AllowedNamespaces.Names = []string{later.Name}
		conn.Spec.Policy = &v1alpha1.ConnectionPolicy{MaxTokens: ptr.To[int32](1)}
		Expect(c.Update(ctx, conn)).To(Succeed())
		servedKey := client.ObjectKeyFromObject(served)
		newcomer := shared(selected.Name, "newcomer")
		eventually(ctx, reason(newcomer)).Should(Equal(v1alpha1.ReasonPolicyViolation))
		// Both held a PAT: one keeps the one place (the older; by name within a second), the other waits.
		var first, second client.ObjectKey
		eventually(ctx, func(g Gomega) {
			a, b := reason(servedKey)(g), reason(waitingKey)(g)
			g.Expect([]string{a, b}).To(ConsistOf(v1alpha1.ReasonIssued, v1alpha1.ReasonPolicyViolation))
			first, second = servedKey, waitingKey
			if b == v1alpha1.ReasonIssued {
				first, second = waitingKey, servedKey
			}
		}).Should(Succeed())

		By("a place freed under maxTokens goes to the token waiting for it: holders first")
		for _, key := range []client.ObjectKey{first, second} {
			tok := &v1alpha1.NomadToken{}
			Expect(c.Get(ctx, key, tok)).To(Succeed())
			Expect(c.Delete(ctx, tok)).To(Succeed())
			awaitNotFound(ctx, key, &v1alpha1.NomadToken{}, teardownPatience)
			if key == first {
				eventually(ctx, reason(second)).Should(Equal(v1alpha1.ReasonIssued))
			}
		}
		waitReady(ctx, newcomer)

	})
})
