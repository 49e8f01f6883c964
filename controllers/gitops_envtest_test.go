package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/controllers"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// What Flux (kstatus) and Argo CD (config/argocd/health.lua) make of the objects the controllers
// actually write: the unit table in gitops_status_test.go builds them by hand.
var _ = Describe("GitOps health", func() {
	verdicts := func(obj client.Object) (status.Status, string) {
		GinkgoHelper()
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		k, argo, err := controllers.GitOpsVerdicts(obj)
		Expect(err).NotTo(HaveOccurred())
		return k, argo
	}

	It("is InProgress while a PAT is issued, Current once Ready, Failed on a mistake only a person can fix", func() {
		opts := nomadstub.DefaultOptions()
		opts.Clock = stubClock
		slow, slowHTTP := nomadstub.Start(opts)
		DeferCleanup(func() {
			slow.ClearFaults()
			slowHTTP.Close()
		})
		t := newTenantOn(slow, slow.APIRoot(slowHTTP.URL))

		By("a connected NomadConnection: Current / Healthy")
		k, argo := verdicts(&v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "oasis"}})
		Expect([]any{k, argo}).To(Equal([]any{status.CurrentStatus, "Healthy"}))

		By("a NomadToken whose create NOMAD holds: InProgress / Progressing")
		slow.InjectFault(nomadstub.OpCreate, -1, nomadstub.Fault{Hang: true})
		tok := t.token("issuing")
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		Eventually(func() int { return slow.InFlight()[nomadstub.OpCreate] }).Should(Equal(1))
		waitReason(tok, v1alpha1.ReasonProgressing)
		k, argo = verdicts(tok)
		Expect([]any{k, argo}).To(Equal([]any{status.InProgressStatus, "Progressing"}))

		By("the same NomadToken once NOMAD answers: Current / Healthy")
		slow.ClearFaults()
		waitReady(tok)
		k, argo = verdicts(tok)
		Expect([]any{k, argo}).To(Equal([]any{status.CurrentStatus, "Healthy"}))

		By("a NomadToken whose Secret name is taken: Failed / Degraded")
		Expect(k8s.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "taken"},
			StringData: map[string]string{"token": "someone else's"},
		})).To(Succeed())
		taken := t.token("taken")
		Expect(k8s.Create(ctx, taken)).To(Succeed())
		waitReason(taken, v1alpha1.ReasonSecretConflict)
		k, argo = verdicts(taken)
		Expect([]any{k, argo}).To(Equal([]any{status.FailedStatus, "Degraded"}))

		By("a spec change NOMAD refuses on a Ready token: Failed / Degraded for the new generation")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tok), tok)).To(Succeed())
		tok.Spec.Scopes = []string{"nosuch:read"} // passes the CRD's rules; NOMAD knows no such scope
		Expect(k8s.Update(ctx, tok)).To(Succeed())
		refused := waitCondition(tok, func(g Gomega, fresh *v1alpha1.NomadToken, cond *metav1.Condition) {
			g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(cond.Reason).To(Equal(v1alpha1.ReasonInvalidScopes), cond.Message)
			g.Expect(cond.ObservedGeneration).To(Equal(fresh.Generation))
			g.Expect(meta.IsStatusConditionTrue(fresh.Status.Conditions, v1alpha1.ConditionStalled)).To(BeTrue(), "%s: %s", cond.Reason, cond.Message)
		})
		Expect(refused.Status.ObservedGeneration).To(Equal(refused.Generation))
		k, argo = verdicts(tok)
		Expect([]any{k, argo}).To(Equal([]any{status.FailedStatus, "Degraded"}))

		By("a NomadConnection with a wrong password: Failed / Degraded")
		Expect(k8s.Create(ctx, credentialsSecret(t.ns, "wrong-bot", t.user, "not the password"))).To(Succeed())
		wrong := t.connection("wrong")
		wrong.Spec.Credentials.SecretRef.Name = "wrong-bot"
		Expect(k8s.Create(ctx, wrong)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(wrong), wrong)).To(Succeed())
			ready := meta.FindStatusCondition(wrong.Status.Conditions, v1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Reason).To(Equal(v1alpha1.ReasonCredentialsInvalid))
		}).Should(Succeed())
		k, argo = verdicts(wrong)
		Expect([]any{k, argo}).To(Equal([]any{status.FailedStatus, "Degraded"}))
	})
})
