package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// setPolicy gives the tenant's connection "oasis" policy and waits until the connection has seen it.
func (t *tenant) setPolicy(policy *v1alpha1.ConnectionPolicy) {
	GinkgoHelper()
	oasis := &v1alpha1.NomadConnection{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: "oasis"}, oasis)).To(Succeed())
	oasis.Spec.Policy = policy
	Expect(k8s.Update(ctx, oasis)).To(Succeed())
	Eventually(func() int64 { return get(oasis).(*v1alpha1.NomadConnection).Status.ObservedGeneration }).Should(Equal(oasis.Generation))
}

// waitSettled waits until the token is Ready, or refused with reason, and returns it.
func waitSettled(tok *v1alpha1.NomadToken) *metav1.Condition {
	GinkgoHelper()
	var settled *metav1.Condition
	waitCondition(tok, func(g Gomega, fresh *v1alpha1.NomadToken, cond *metav1.Condition) {
		g.Expect(cond.Status == metav1.ConditionTrue || cond.Reason == v1alpha1.ReasonPolicyViolation).To(BeTrue(), "%s: %s", cond.Reason, cond.Message)
		settled = cond
	})
	return settled
}

var _ = Describe("policy.maxTokens counts live PATs", func() {
	It("stops the create-Retain-delete loop at maxTokens: 1", func() {
		t := newTenant()
		t.setPolicy(&v1alpha1.ConnectionPolicy{MaxTokens: ptr.To[int32](1)})
		for round := 1; round <= 4; round++ {
			By("round " + string(rune('0'+round)) + ": create with deletionPolicy Retain, wait, delete")
			tok := t.token(uniqueName("loop"), func(tok *v1alpha1.NomadToken) { tok.Spec.DeletionPolicy = v1alpha1.DeletionRetain })
			Expect(k8s.Create(ctx, tok)).To(Succeed())
			cond := waitSettled(tok)
			if round == 1 {
				Expect(cond.Status).To(Equal(metav1.ConditionTrue), "the first token takes the only place")
			} else {
				Expect(cond.Reason).To(Equal(v1alpha1.ReasonPolicyViolation), "round %d: %s", round, cond.Message)
				Expect(cond.Message).To(ContainSubstring("1 by PATs left behind"))
			}
			deleteAndWait(tok)
			Expect(t.activePATs()).To(HaveLen(1), "round %d: at most maxTokens live PATs", round)
		}
		for _, p := range t.activePATs() {
			DeferCleanup(func() { t.nomad.RevokePAT(p.ID) })
		}
	})

	It("keeps an Overlap rotation working at maxTokens: 1 with one token, and holds the next one back", func() {
		t := newTenant()
		t.setPolicy(&v1alpha1.ConnectionPolicy{MaxTokens: ptr.To[int32](1)})
		tok := t.token("rotating", func(tok *v1alpha1.NomadToken) { tok.Spec.Rotation.GracePeriod = &metav1.Duration{Duration: time.Hour} })
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		first := waitReady(tok).Status.TokenID

		setAnnotation(tok, v1alpha1.AnnotationRotate, "1")
		Eventually(func() string { return waitReady(tok).Status.TokenID }).ShouldNot(Equal(first))
		Expect(waitReady(tok).Status.PreviousTokenID).To(Equal(first), "the previous PAT lives on in the token's place")
		Expect(t.activePATs()).To(HaveLen(2))

		waiting := t.token("waiting")
		Expect(k8s.Create(ctx, waiting)).To(Succeed())
		waitReason(waiting, v1alpha1.ReasonPolicyViolation)
		Expect(t.activePATs()).To(HaveLen(2))
	})

	It("refuses deletionPolicy Retain where policy.allowRetain is false, with no NOMAD call", func() {
		t := newTenant()
		t.setPolicy(&v1alpha1.ConnectionPolicy{AllowRetain: ptr.To(false)})
		before := stub.Calls()
		tok := t.token("kept", func(tok *v1alpha1.NomadToken) { tok.Spec.DeletionPolicy = v1alpha1.DeletionRetain })
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		cond := meta.FindStatusCondition(waitReason(tok, v1alpha1.ReasonPolicyViolation).Status.Conditions, v1alpha1.ConditionReady)
		Expect(cond.Message).To(ContainSubstring("spec.deletionPolicy Retain is not allowed (policy.allowRetain is false)"))
		nomadCallsStayAt(before)
		Expect(t.allPATs()).To(BeEmpty())

		By("Revoke is served")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tok), tok)).To(Succeed())
		tok.Spec.DeletionPolicy = v1alpha1.DeletionRevoke
		Expect(k8s.Update(ctx, tok)).To(Succeed())
		waitReady(tok)
	})
})

var _ = Describe("policy.minRotationInterval", func() {
	It("holds a rotate request back until the interval has passed, and refuses a renewal schedule more frequent", func() {
		t := newTenant()
		t.setPolicy(&v1alpha1.ConnectionPolicy{MinRotationInterval: &metav1.Duration{Duration: time.Hour}})
		tok := t.token("paced")
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		first := waitReady(tok).Status.TokenID

		creates := stub.Calls()["create"]
		setAnnotation(tok, v1alpha1.AnnotationRotate, "now-please")
		Consistently(func(g Gomega) {
			fresh := waitReady(tok)
			g.Expect(fresh.Status.TokenID).To(Equal(first))
			g.Expect(fresh.Status.RotateRequestHandled).To(BeEmpty(), "the request waits, it is not dropped")
		}, 3*time.Second, 300*time.Millisecond).Should(Succeed())
		Expect(stub.Calls()["create"]).To(Equal(creates))

		hasty := t.token("hasty", func(tok *v1alpha1.NomadToken) {
			tok.Spec.ExpiresInDays, tok.Spec.Rotation.RenewBeforePercentage = 1, ptr.To[int32](99)
		})
		Expect(k8s.Create(ctx, hasty)).To(Succeed())
		cond := meta.FindStatusCondition(waitReason(hasty, v1alpha1.ReasonPolicyViolation).Status.Conditions, v1alpha1.ConditionReady)
		Expect(cond.Message).To(ContainSubstring("renews the PAT every 14m24s, more often than policy.minRotationInterval 1h0m0s"))
	})

	It("refuses a negative policy.minRotationInterval", func() {
		conn := &v1alpha1.NomadConnection{
			ObjectMeta: metav1.ObjectMeta{Namespace: manualNamespace, Name: uniqueName("paced")},
			Spec: v1alpha1.NomadConnectionSpec{URL: "https://nomad.example.org/api",
				Credentials: v1alpha1.Credentials{SecretRef: v1alpha1.CredentialsSecretRef{Name: "bot"}},
				Policy:      &v1alpha1.ConnectionPolicy{MinRotationInterval: &metav1.Duration{Duration: -time.Hour}}},
		}
		err := k8s.Create(ctx, conn)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("minRotationInterval must not be negative"))
	})
})
