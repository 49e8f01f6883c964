package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// A Secret write the cluster keeps refusing (issue 15, item 1), with a real admission policy: a
// ValidatingAdmissionPolicy of the API server refuses the token's Secret. The operator tries the
// write as a server-side dry run before it asks NOMAD for anything, so a refusal costs no PAT: Ready
// says SecretRejected with the API server's words, a Warning Event says it once, and no retry creates
// a PAT until the spec changes. Each spec has a stand-in of its own, so that the NOMAD calls counted
// are its calls only.
const (
	// refuseLabel on a Secret is what the policy of the first spec refuses.
	refuseLabel = "e2e.nomad-operator.dev/refuse"
	// refusePolicyMessage is that policy's message, which the API server's refusal quotes.
	refusePolicyMessage = "e2e policy: Secrets labelled e2e.nomad-operator.dev/refuse=yes are refused"
	// frozenPolicyMessage is the message of the second spec's policy, which refuses every update of
	// one Secret.
	frozenPolicyMessage = "e2e policy: this Secret is frozen"
	// refusalWindow is how long the specs watch a refused token for a PAT that must not come.
	refusalWindow = 8 * time.Second
)

var _ = Describe("A Secret write the cluster refuses (ValidatingAdmissionPolicy)", func() {
	It("costs no PAT for a new token: SecretRejected with the policy's message, one Warning Event, and issuance once the spec changes", func(ctx SpecContext) {
		c := controlPl.Client
		own, _ := startOwnStub(ctx, "secret-refused-new", harness.StubOptions{})
		ns := "secret-refused-new"
		user, _, conn, err := harness.CreateTenant(ctx, c, own, ns)
		Expect(err).NotTo(HaveOccurred())
		deleteNamespaceAtCleanup(ns)

		By("refusing, in this namespace, every Secret labelled " + refuseLabel + "=yes")
		createDenyPolicy(ctx, "e2e-refuse-labelled-secrets", ns, admissionv1.MatchResources{
			ResourceRules: []admissionv1.NamedRuleWithOperations{secretRule(nil, admissionv1.Create, admissionv1.Update)},
		}, fmt.Sprintf(`!has(object.metadata.labels) || !(%q in object.metadata.labels) || object.metadata.labels[%q] != "yes"`, refuseLabel, refuseLabel),
			refusePolicyMessage)
		awaitRefused(ctx, refusePolicyMessage, func() error {
			probe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "policy-probe", Labels: map[string]string{refuseLabel: "yes"}}}
			return c.Create(ctx, probe, client.DryRunAll)
		})

		By("creating a NomadToken whose spec.secret.labels carry the refused label")
		tok := harness.NomadToken(ns, "refused", conn.Name, v1alpha1.Rotation{})
		tok.Spec.Secret.Labels = map[string]string{refuseLabel: "yes", "team": "e2e"}
		Expect(c.Create(ctx, tok)).To(Succeed())
		key := client.ObjectKeyFromObject(tok)
		DeferCleanup(func(ctx SpecContext) {
			Expect(client.IgnoreNotFound(c.Delete(ctx, tok))).To(Succeed())
			awaitNotFound(ctx, key, &v1alpha1.NomadToken{}, teardownPatience)
		})

		refused := awaitSecretRejected(ctx, key, refusePolicyMessage)
		Expect(refused.Status.TokenID).To(BeEmpty(), "no PAT")
		Expect(refused.Status.PendingIssuance).To(BeNil(), "no issuance was started: the dry run came first")
		awaitWarningEvent(ctx, key, refusePolicyMessage)
		expectNoSecret(ctx, client.ObjectKey{Namespace: ns, Name: tok.EffectiveSecretName()})

		By("poking the refused token with rotate requests, each of which bypasses the hold-off, for a while")
		// A rotate value not yet refused is the one metadata change that reaches the reconciler (any
		// other annotation is filtered out) and is let past the hold-off: each one is a new attempt,
		// and must cost no PAT either.
		attempts := refusalsLogged(ns, key.Name)
		expectNoPATFor(ctx, own, key, refusalWindow, map[string]int{}, func(i int) {
			annotate(ctx, key, v1alpha1.AnnotationRotate, fmt.Sprintf("poke-%d", i))
		})
		eventually(ctx, func() int { return refusalsLogged(ns, key.Name) }).Should(BeNumerically(">", attempts),
			"the pokes reached the reconciler, which tried the Secret again and was refused again")
		Expect(warningEvents(ctx, key, v1alpha1.ReasonSecretRejected)).To(HaveLen(1), "the same refusal is told once")
		st, err := own.State(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Users[user].PATs).To(BeEmpty())

		By("dropping the label from spec.secret.labels: a new generation, issued at once")
		patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"secret":{"labels":{%q:null}}}}`, refuseLabel))
		Expect(c.Patch(ctx, &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: key.Name}}, patch)).To(Succeed())
		ready := waitReady(ctx, key)
		Expect(readyOf(ready.Status.Conditions).Reason).To(Equal(v1alpha1.ReasonIssued))
		calls, err := own.Calls(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(calls["create"]).To(Equal(1), "exactly one PAT was created, for the new generation")
		Expect(calls["rotate"]).To(BeZero())
		var s corev1.Secret
		Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: tok.EffectiveSecretName()}, &s)).To(Succeed())
		Expect(s.Labels).NotTo(HaveKey(refuseLabel))
		Expect(s.Labels).To(HaveKeyWithValue("team", "e2e"))
		Expect(s.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationTokenID, ready.Status.TokenID))
		raw := s.Data[v1alpha1.DefaultSecretKey]
		Expect(harness.PATPattern.Match(raw)).To(BeTrue(), "the Secret holds a raw PAT, got %s", harness.Describe(raw))
		active, err := own.Authenticates(ctx, raw)
		Expect(err).NotTo(HaveOccurred())
		Expect(active).To(BeTrue(), "the Secret's PAT authenticates")
	})

	It("costs no PAT for a rotation of a Ready token whose Secret updates are refused: the current PAT stays", func(ctx SpecContext) {
		c := controlPl.Client
		own, _ := startOwnStub(ctx, "secret-refused-renew", harness.StubOptions{})
		ns := "secret-refused-renew"
		user, _, conn, err := harness.CreateTenant(ctx, c, own, ns)
		Expect(err).NotTo(HaveOccurred())
		deleteNamespaceAtCleanup(ns)
		key := createReadyTokens(ctx, ns, conn.Name, "renewed")[0]
		tok := waitReady(ctx, key)
		id := tok.Status.TokenID
		secretKey := client.ObjectKey{Namespace: ns, Name: tok.EffectiveSecretName()}
		var s corev1.Secret
		Expect(c.Get(ctx, secretKey, &s)).To(Succeed())
		raw := s.Data[v1alpha1.DefaultSecretKey]
		before, err := own.Calls(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(before["create"]).To(Equal(1))

		By("freezing the token's Secret: every update of it is refused")
		// Registered after the token's cleanup, so it runs before it: the token goes with the
		// Secret writable again.
		createDenyPolicy(ctx, "e2e-freeze-secret", ns, admissionv1.MatchResources{
			ResourceRules: []admissionv1.NamedRuleWithOperations{secretRule([]string{secretKey.Name}, admissionv1.Update)},
		}, "false", frozenPolicyMessage)
		awaitRefused(ctx, frozenPolicyMessage, func() error {
			var probe corev1.Secret
			if err := c.Get(ctx, secretKey, &probe); err != nil {
				return err
			}
			probe.Annotations["e2e.nomad-operator.dev/probe"] = time.Now().Format(time.RFC3339Nano)
			return c.Update(ctx, &probe, client.DryRunAll)
		})

		By("asking for a rotation")
		annotate(ctx, key, v1alpha1.AnnotationRotate, "frozen-1")
		refused := awaitSecretRejected(ctx, key, frozenPolicyMessage)
		Expect(refused.Status.TokenID).To(Equal(id), "the current PAT stays the token's")
		Expect(refused.Status.PendingIssuance).To(BeNil(), "no issuance was started: the dry run came first")
		awaitWarningEvent(ctx, key, frozenPolicyMessage)

		By("asking again, and watching for a while")
		expectNoPATFor(ctx, own, key, refusalWindow, before, func(i int) {
			annotate(ctx, key, v1alpha1.AnnotationRotate, fmt.Sprintf("frozen-%d", i+2))
		})
		Expect(c.Get(ctx, secretKey, &s)).To(Succeed())
		Expect(s.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationTokenID, id), "the Secret still holds the current PAT")
		st, err := own.State(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(idsOf(st.Users[user].PATs)).To(Equal([]string{id}), "no PAT but the first was ever created")
		Expect(idsOf(st.ActivePATs(user))).To(Equal([]string{id}), "and it is still active")
		active, err := own.Authenticates(ctx, s.Data[v1alpha1.DefaultSecretKey])
		Expect(err).NotTo(HaveOccurred())
		Expect(active).To(BeTrue(), "the Secret's PAT still authenticates")
		Expect(string(s.Data[v1alpha1.DefaultSecretKey]) == string(raw)).To(BeTrue(), "the Secret's raw token is unchanged")
	})
})

// secretRule matches the given operations on core v1 Secrets (of those names, if any).
func secretRule(names []string, ops ...admissionv1.OperationType) admissionv1.NamedRuleWithOperations {
	return admissionv1.NamedRuleWithOperations{
		ResourceNames: names,
		RuleWithOperations: admissionv1.RuleWithOperations{
			Operations: ops,
			Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"}},
		},
	}
}

// createDenyPolicy creates a ValidatingAdmissionPolicy that refuses what match selects unless
// expression holds, with message, and binds it with validationActions [Deny] to namespace ns only.
// Both are deleted when the spec ends (before whatever the spec registered earlier is cleaned up).
func createDenyPolicy(ctx SpecContext, name, ns string, match admissionv1.MatchResources, expression, message string) {
	GinkgoHelper()
	c := controlPl.Client
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy:    ptr.To(admissionv1.Fail),
			MatchConstraints: &match,
			Validations:      []admissionv1.Validation{{Expression: expression, Message: message}},
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources: &admissionv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}},
			},
		},
	}
	Expect(c.Create(ctx, policy)).To(Succeed())
	Expect(c.Create(ctx, binding)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		Expect(client.IgnoreNotFound(c.Delete(ctx, binding))).To(Succeed())
		Expect(client.IgnoreNotFound(c.Delete(ctx, policy))).To(Succeed())
	})
}

// awaitRefused waits until the API server enforces the policy: write, a dry run of the test's own,
// is refused with message. (The API server learns of a new policy and binding through its informers.)
func awaitRefused(ctx context.Context, message string, write func() error) {
	GinkgoHelper()
	Eventually(ctx, write).WithTimeout(60*time.Second).WithPolling(250*time.Millisecond).
		Should(MatchError(ContainSubstring(message)), "the API server enforces the policy")
}

// awaitSecretRejected waits until the token is Ready=False SecretRejected for its current generation,
// with the policy's message in the condition.
func awaitSecretRejected(ctx context.Context, key client.ObjectKey, message string) *v1alpha1.NomadToken {
	GinkgoHelper()
	tok := &v1alpha1.NomadToken{}
	Eventually(ctx, func(g Gomega) {
		g.Expect(controlPl.Client.Get(ctx, key, tok)).To(Succeed())
		ready := readyOf(tok.Status.Conditions)
		g.Expect(ready.Status).To(Equal(metav1.ConditionFalse), "Ready: %s", ready.Message)
		g.Expect(ready.Reason).To(Equal(v1alpha1.ReasonSecretRejected), "Ready: %s", ready.Message)
		g.Expect(ready.Message).To(ContainSubstring(message))
		g.Expect(ready.ObservedGeneration).To(Equal(tok.Generation))
	}).WithTimeout(60 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
	return tok
}

// awaitWarningEvent waits for the token's Warning Event SecretRejected that quotes message.
func awaitWarningEvent(ctx context.Context, key client.ObjectKey, message string) {
	GinkgoHelper()
	Eventually(ctx, func() []string {
		return warningEvents(ctx, key, v1alpha1.ReasonSecretRejected)
	}).WithTimeout(60*time.Second).WithPolling(250*time.Millisecond).
		Should(ContainElement(ContainSubstring(message)), "a Warning Event %s", v1alpha1.ReasonSecretRejected)
}

// warningEvents returns the notes of the token's Warning Events with reason.
func warningEvents(ctx context.Context, key client.ObjectKey, reason string) []string {
	GinkgoHelper()
	var list eventsv1.EventList
	Expect(controlPl.Client.List(ctx, &list, client.InNamespace(key.Namespace))).To(Succeed())
	var notes []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "NomadToken" && e.Regarding.Name == key.Name && e.Type == corev1.EventTypeWarning && e.Reason == reason {
			notes = append(notes, e.Note)
		}
	}
	return notes
}

// expectNoPATFor pokes the token every second (poke(i)) for window, and checks throughout that the
// stand-in was asked for no PAT beyond those counted in before (no create, no rotate) and that the
// token stays SecretRejected.
func expectNoPATFor(ctx context.Context, own *harness.Stub, key client.ObjectKey, window time.Duration, before map[string]int, poke func(i int)) {
	GinkgoHelper()
	deadline := time.Now().Add(window)
	for i := 0; time.Now().Before(deadline); i++ {
		poke(i)
		Consistently(ctx, func(g Gomega) {
			calls, err := own.Calls(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(calls["create"]).To(Equal(before["create"]), "NOMAD create calls")
			g.Expect(calls["rotate"]).To(Equal(before["rotate"]), "NOMAD rotate calls")
			g.Expect(calls["revoke"]).To(Equal(before["revoke"]), "NOMAD revoke calls")
			tok := &v1alpha1.NomadToken{}
			g.Expect(controlPl.Client.Get(ctx, key, tok)).To(Succeed())
			g.Expect(readyOf(tok.Status.Conditions).Reason).To(Equal(v1alpha1.ReasonSecretRejected))
		}).WithTimeout(time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	}
}

// expectNoSecret checks that the Secret of key does not exist.
func expectNoSecret(ctx context.Context, key client.ObjectKey) {
	GinkgoHelper()
	err := controlPl.Client.Get(ctx, key, &corev1.Secret{})
	Expect(err).To(HaveOccurred(), "Secret %s was written", key)
	Expect(client.IgnoreNotFound(err)).To(Succeed())
}

// annotate sets the annotation on the NomadToken of key (a merge patch: no generation change).
func annotate(ctx context.Context, key client.ObjectKey, name, value string) {
	GinkgoHelper()
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, name, value))
	Expect(controlPl.Client.Patch(ctx, &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}, patch)).To(Succeed())
}

// refusalsLogged counts the manager's log lines that report a SecretRejected failure of the token.
func refusalsLogged(ns, name string) int {
	GinkgoHelper()
	log, err := os.ReadFile(manager.LogPath)
	Expect(err).NotTo(HaveOccurred())
	n := 0
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "NomadToken step failed") && strings.Contains(line, v1alpha1.ReasonSecretRejected) &&
			strings.Contains(line, `"namespace":"`+ns+`"`) && strings.Contains(line, `"name":"`+name+`"`) {
			n++
		}
	}
	return n
}
