package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// Whoever may create a NomadToken must not be able to restart any workload of the namespace through
// the operator: a restart target is rolled only if it names the token in its opt-in annotation.
var _ = Describe("Restart targets opt in", func() {
	var t *tenant
	BeforeEach(func() { t = newTenant() })

	It("rolls only the workloads whose annotation names the token, and says what to annotate", func() {
		plain := deployment(t.ns, "uploader", nil)
		opted := deployment(t.ns, "indexer", map[string]string{v1alpha1.AnnotationRestartOnRotation: "nightly, consumers"})
		Expect(k8s.Create(ctx, plain)).To(Succeed())
		Expect(k8s.Create(ctx, opted)).To(Succeed())
		tok := t.token("consumers", func(tok *v1alpha1.NomadToken) {
			tok.Spec.Rotation.GracePeriod = &metav1.Duration{Duration: time.Minute}
			tok.Spec.Rotation.RestartTargets = []v1alpha1.RestartTarget{{Kind: "Deployment", Name: "uploader"}, {Kind: "Deployment", Name: "indexer"}}
		})
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		first := waitReady(tok)

		By("the condition names the target without the opt-in and the annotation to add, before any rotation")
		cond := waitRestartTargets(tok, metav1.ConditionFalse)
		Expect(cond.Reason).To(Equal(v1alpha1.ReasonRestartTargetNotOptedIn))
		Expect(cond.Message).To(ContainSubstring("Deployment uploader"))
		Expect(cond.Message).To(ContainSubstring("kubectl annotate -n " + t.ns + " deployment/uploader " + v1alpha1.AnnotationRestartOnRotation + "=consumers"))
		Expect(cond.Message).NotTo(ContainSubstring("indexer"))
		Eventually(func(g Gomega) {
			var evs corev1.EventList
			g.Expect(k8s.List(ctx, &evs, client.InNamespace(t.ns))).To(Succeed())
			var notes []string
			for _, e := range evs.Items {
				if e.Type == corev1.EventTypeWarning && e.Reason == v1alpha1.EventRestartTargetNotOptedIn {
					notes = append(notes, e.Message)
				}
			}
			g.Expect(notes).To(ConsistOf(ContainSubstring("Deployment uploader is not restarted after rotations")))
		}).Should(Succeed())
		untouched := get(plain).(*appsv1.Deployment).Spec.Template.Annotations

		By("a rotation rolls the opted-in workload and leaves the other alone")
		setAnnotation(tok, v1alpha1.AnnotationRotate, "1")
		Eventually(func(g Gomega) {
			fresh := waitReady(tok)
			g.Expect(fresh.Status.TokenID).NotTo(Equal(first.Status.TokenID))
			g.Expect(fresh.Status.RestartedForTokenID).To(Equal(fresh.Status.TokenID))
		}).Should(Succeed())
		Expect(get(opted).(*appsv1.Deployment).Spec.Template.Annotations).To(HaveKey(v1alpha1.AnnotationRestartedAt))
		Expect(get(plain).(*appsv1.Deployment).Spec.Template.Annotations).To(Equal(untouched))
		Expect(waitRestartTargets(tok, metav1.ConditionFalse).Reason).To(Equal(v1alpha1.ReasonRestartTargetNotOptedIn))

		By("opting in later turns the condition True without a rotation")
		Eventually(func() error {
			d := get(plain).(*appsv1.Deployment)
			d.Annotations = map[string]string{v1alpha1.AnnotationRestartOnRotation: "consumers"}
			return k8s.Update(ctx, d)
		}).Should(Succeed())
		Expect(waitRestartTargets(tok, metav1.ConditionTrue).Reason).To(Equal(v1alpha1.ReasonRestartTargetsOptedIn))
		Expect(get(plain).(*appsv1.Deployment).Spec.Template.Annotations).To(Equal(untouched))

		By("no restart targets, no condition")
		Eventually(func() error {
			fresh := get(tok).(*v1alpha1.NomadToken)
			fresh.Spec.Rotation.RestartTargets = nil
			return k8s.Update(ctx, fresh)
		}).Should(Succeed())
		Eventually(func() *metav1.Condition {
			return meta.FindStatusCondition(get(tok).(*v1alpha1.NomadToken).Status.Conditions, v1alpha1.ConditionRestartTargets)
		}).Should(BeNil())
	})
})

// deployment is a minimal valid Deployment with the given metadata annotations.
func deployment(ns, name string, annotations map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}
}

// waitRestartTargets waits for the token's RestartTargets condition to have status and returns it.
func waitRestartTargets(tok *v1alpha1.NomadToken, status metav1.ConditionStatus) *metav1.Condition {
	GinkgoHelper()
	var cond *metav1.Condition
	Eventually(func(g Gomega) {
		fresh := &v1alpha1.NomadToken{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tok), fresh)).To(Succeed())
		cond = meta.FindStatusCondition(fresh.Status.Conditions, v1alpha1.ConditionRestartTargets)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Status).To(Equal(status), "%s: %s", cond.Reason, cond.Message)
		g.Expect(cond.ObservedGeneration).To(Equal(fresh.Generation))
	}).Should(Succeed())
	return cond
}
