package controllers_test

import (
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/controllers"
)

// Rotation specs use real time: a one-day PAT with renewBefore just under a day renews seconds after
// it is issued, exactly as it would at the end of a real lifetime.
var _ = Describe("NomadToken rotation", func() {
	var t *tenant
	BeforeEach(func() { t = newTenant() })

	// soonRenewing makes a PAT of `days` that renews `after` past issuance and keeps the old PAT for grace.
	soonRenewing := func(days int32, after, grace time.Duration, strategy v1alpha1.RotationStrategy) func(*v1alpha1.NomadToken) {
		return func(tok *v1alpha1.NomadToken) {
			tok.Spec.ExpiresInDays = days
			tok.Spec.Rotation = v1alpha1.Rotation{
				RenewBefore: &metav1.Duration{Duration: time.Duration(days)*24*time.Hour - after},
				GracePeriod: &metav1.Duration{Duration: grace},
				Strategy:    strategy,
			}
		}
	}

	// stopRenewing turns the fast renewal off (a non-material change) so the spec can look at one rotation.
	stopRenewing := func(tok *v1alpha1.NomadToken) {
		Eventually(func() error {
			fresh := &v1alpha1.NomadToken{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(tok), fresh); err != nil {
				return err
			}
			fresh.Spec.Rotation.RenewBefore = nil
			return k8s.Update(ctx, fresh)
		}).Should(Succeed())
	}

	// readyWatch samples the Ready condition until stopped and counts samples that were not True.
	readyWatch := func(tok *v1alpha1.NomadToken) (stop func() int64) {
		var notReady atomic.Int64
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			for {
				select {
				case <-done:
					return
				case <-time.After(50 * time.Millisecond):
				}
				fresh := &v1alpha1.NomadToken{}
				if k8s.Get(ctx, client.ObjectKeyFromObject(tok), fresh) == nil &&
					!meta.IsStatusConditionTrue(fresh.Status.Conditions, v1alpha1.ConditionReady) {
					notReady.Add(1)
				}
			}
		}()
		return func() int64 { close(done); return notReady.Load() }
	}

	It("Overlap: writes the new PAT, keeps the old one valid for the grace period, then revokes it", func() {
		tok := t.token("overlap", soonRenewing(1, 3*time.Second, 4*time.Second, v1alpha1.RotationOverlap))
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		first := waitReady(tok)
		oldID, oldRaw := first.Status.TokenID, rawToken(first)
		stop := readyWatch(tok)

		var rotated *v1alpha1.NomadToken
		Eventually(func(g Gomega) {
			rotated = &v1alpha1.NomadToken{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tok), rotated)).To(Succeed())
			g.Expect(rotated.Status.TokenID).NotTo(Equal(oldID))
			g.Expect(rotated.Status.PreviousTokenID).To(Equal(oldID))
		}).Should(Succeed())
		stopRenewing(tok)
		By("both PATs valid during the grace period, the Secret holding the new one")
		Expect(rotated.Status.PreviousTokenRevokeAt).NotTo(BeNil())
		Expect(rotated.Status.PreviousTokenRevokeAt.Time).To(BeTemporally("~", rotated.Status.LastRotationTime.Add(4*time.Second), time.Second))
		Expect(stub.Authenticates(oldRaw)).To(BeTrue())
		newRaw := rawToken(rotated)
		Expect(newRaw).NotTo(Equal(oldRaw))
		Expect(stub.Authenticates(newRaw)).To(BeTrue())

		By("the old PAT revoked when the grace period ends")
		Eventually(func() bool { return stub.Authenticates(oldRaw) }).Should(BeFalse())
		// NOMAD revokes before the operator's status write says so: wait for that write too.
		var final *v1alpha1.NomadToken
		Eventually(func() string { final = waitReady(tok); return final.Status.PreviousTokenID }).Should(BeEmpty())
		Expect(ids(t.activePATs())).To(ConsistOf(final.Status.TokenID))
		Expect(stop()).To(BeZero(), "Ready must stay True through a healthy rotation")
		Expect(eventReasons(t.ns)).To(ContainElements("Rotated", "PreviousRevoked"))
	})

	It("Rotate: uses NOMAD's rotate endpoint, leaving exactly one active PAT", func() {
		rotates := stub.Calls()["rotate"]
		tok := t.token("rotate", soonRenewing(1, 3*time.Second, 0, v1alpha1.RotationRotate))
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		first := waitReady(tok)
		oldRaw := rawToken(first)
		Eventually(func() string { return waitReady(tok).Status.TokenID }).ShouldNot(Equal(first.Status.TokenID))
		stopRenewing(tok)
		rotated := waitReady(tok)
		Expect(stub.Calls()["rotate"]).To(BeNumerically(">", rotates))
		Expect(stub.Authenticates(oldRaw)).To(BeFalse())
		Expect(ids(t.activePATs())).To(ConsistOf(rotated.Status.TokenID))
		Expect(stub.Authenticates(rawToken(rotated))).To(BeTrue())
	})

	It("Rotate hazard: when rotate revokes and then fails, a fresh PAT follows and Ready is never a lie", func() {
		tok := t.token("hazard", soonRenewing(2, 4*time.Second, 0, v1alpha1.RotationRotate))
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		first := waitReady(tok)
		oldRaw := rawToken(first)
		DeferCleanup(func() { stub.SetMaxLifetimeDays(ptr.To(365)) })
		stub.SetMaxLifetimeDays(ptr.To(1)) // the old 2-day lifetime no longer validates

		By("rotate revokes the old PAT, then refuses; the fresh PAT is refused too: Ready=False")
		got := waitReason(tok, v1alpha1.ReasonLifetimeExceeded)
		Expect(stub.Authenticates(oldRaw)).To(BeFalse())
		Expect(got.Status.Conditions[0].Message).To(ContainSubstring("lower spec.expiresInDays"))
		Expect(eventReasons(t.ns)).To(ContainElement("RotateFailed"))

		By("the user lowers the lifetime: a fresh PAT, Ready again")
		got.Spec.ExpiresInDays = 1
		got.Spec.Rotation.RenewBefore = nil
		Expect(k8s.Update(ctx, got)).To(Succeed())
		fresh := waitReady(tok)
		Expect(stub.Authenticates(rawToken(fresh))).To(BeTrue())
		Expect(ids(t.activePATs())).To(ConsistOf(fresh.Status.TokenID))
	})

	It("Rotate hazard with room to recover: a refused rotate is followed at once by a fresh PAT", func() {
		tok := t.token("hazard-fresh", soonRenewing(2, 4*time.Second, 0, v1alpha1.RotationRotate))
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		first := waitReady(tok)
		// Rotation re-validates with the PAT's scopes too; a concurrent revoke makes it refuse
		// ("Cannot rotate an expired/revoked token."), which is the same hazard seen from outside.
		Expect(stub.RevokePAT(first.Status.TokenID)).To(BeTrue())
		Eventually(func() string { return waitReady(tok).Status.TokenID }).ShouldNot(Equal(first.Status.TokenID))
		stopRenewing(tok)
		fresh := waitReady(tok)
		Expect(stub.Authenticates(rawToken(fresh))).To(BeTrue())
		Expect(ids(t.activePATs())).To(ConsistOf(fresh.Status.TokenID))
	})

	It("Overlap at NOMAD's active-PAT limit falls back to rotating in place", func() {
		tok := t.token("at-limit", soonRenewing(1, 3*time.Second, time.Hour, v1alpha1.RotationOverlap))
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		first := waitReady(tok)
		// The bot holds one PAT; NOMAD's limit of one leaves no room for an overlapping second.
		DeferCleanup(func() { stub.SetMaxActivePerUser(0) })
		stub.SetMaxActivePerUser(1)
		rotates := stub.Calls()["rotate"]

		Eventually(func() string { return waitReady(tok).Status.TokenID }).ShouldNot(Equal(first.Status.TokenID))
		stopRenewing(tok)
		rotated := waitReady(tok)
		Expect(stub.Calls()["rotate"]).To(BeNumerically(">", rotates))
		Expect(rotated.Status.PreviousTokenID).To(BeEmpty(), "rotate already revoked the old PAT")
		Expect(ids(t.activePATs())).To(ConsistOf(rotated.Status.TokenID))
		Expect(stub.Authenticates(rawToken(rotated))).To(BeTrue())
		Expect(eventReasons(t.ns)).To(ContainElement("FallbackToRotate"))
	})

	It("replaces a PAT revoked in NOMAD by someone else at the next verification", func() {
		tok := t.token("out-of-band")
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		first := waitReady(tok)
		Expect(stub.RevokePAT(first.Status.TokenID)).To(BeTrue())
		// A list requested in the second the PAT was created in does not judge it (status keeps
		// whole seconds); the one after does.
		time.Sleep(time.Until(first.Status.IssuedAt.Add(time.Second)))

		By("the connection's periodic check lists the active PATs once for all its tokens")
		lists := stub.Calls()["list"]
		forceVerification(t, "oasis")
		Eventually(func() string { return waitReady(tok).Status.TokenID }).ShouldNot(Equal(first.Status.TokenID))
		replaced := waitReady(tok)
		Expect(stub.Authenticates(rawToken(replaced))).To(BeTrue())
		Expect(ids(t.activePATs())).To(ConsistOf(replaced.Status.TokenID))
		Expect(stub.Calls()["list"] - lists).To(BeNumerically("<=", 2))
		Expect(eventReasons(t.ns)).To(ContainElement("Issued"))
	})

	It("renews a 30-day PAT at its planned time and revokes the old one when the grace period ends", func() {
		tok := t.token("on-schedule") // defaults: 30 days, Overlap, 10m grace
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		first := waitReady(tok)
		oldRaw := rawToken(first)

		By("NOMAD's and the operator's shared clock reaching status.renewalTime (the 1 s resync looks)")
		toRenewal := first.Status.RenewalTime.Sub(stubClock.Now()) + time.Second
		Expect(toRenewal).To(BeNumerically(">", 19*24*time.Hour), "renewal is planned at 2/3 of 30 days, jittered earlier")
		stubClock.Advance(toRenewal)
		DeferCleanup(stubClock.Advance, -toRenewal)
		Eventually(func() string { return waitReady(tok).Status.TokenID }).ShouldNot(Equal(first.Status.TokenID))
		rotated := waitReady(tok)
		Expect(rotated.Status.PreviousTokenID).To(Equal(first.Status.TokenID))
		Expect(rotated.Status.PreviousTokenRevokeAt.Sub(rotated.Status.LastRotationTime.Time)).To(
			BeNumerically("~", v1alpha1.DefaultGracePeriod, time.Second))
		Expect(stub.Authenticates(oldRaw)).To(BeTrue(), "the old PAT stays valid through the grace period")
		Expect(stub.Authenticates(rawToken(rotated))).To(BeTrue())

		By("the clock reaching the end of the grace period")
		toRevoke := rotated.Status.PreviousTokenRevokeAt.Sub(stubClock.Now()) + time.Second
		stubClock.Advance(toRevoke)
		DeferCleanup(stubClock.Advance, -toRevoke)
		Eventually(func() bool { return stub.Authenticates(oldRaw) }).Should(BeFalse())
		Eventually(func() string { return waitReady(tok).Status.PreviousTokenID }).Should(BeEmpty())
		Expect(ids(t.activePATs())).To(ConsistOf(rotated.Status.TokenID))
		Expect(eventReasons(t.ns)).To(ContainElements("Rotated", "PreviousRevoked"))
	})

	It("records when the PAT was last used, from the verification list", func() {
		tok := t.token("used")
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		tok = waitReady(tok)
		Expect(tok.Status.LastUsedAt).To(BeNil())
		Expect(authenticatesViaAPI(rawToken(tok))).To(BeTrue()) // sets last_used_at in NOMAD
		forceVerification(t, "oasis")
		Eventually(func() *metav1.Time { return waitReady(tok).Status.LastUsedAt }).ShouldNot(BeNil())
	})

	It("handles the rotate and revoke-now annotations once each", func() {
		tok := t.token("requests", func(tok *v1alpha1.NomadToken) {
			tok.Spec.Rotation.GracePeriod = &metav1.Duration{Duration: time.Hour}
		})
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		first := waitReady(tok)
		firstRaw := rawToken(first)

		By("rotate: a new PAT, the old one kept for the grace period")
		setAnnotation(tok, v1alpha1.AnnotationRotate, "2026-11-26")
		Eventually(func() string { return waitReady(tok).Status.TokenID }).ShouldNot(Equal(first.Status.TokenID))
		second := waitReady(tok)
		Expect(second.Status.RotateRequestHandled).To(Equal("2026-11-26"))
		Expect(second.Status.PreviousTokenID).To(Equal(first.Status.TokenID))
		Expect(stub.Authenticates(firstRaw)).To(BeTrue())

		By("re-applying the same value does nothing")
		creates := stub.Calls()["create"]
		setAnnotation(tok, "unrelated", "x")
		setAnnotation(tok, v1alpha1.AnnotationRotate, "2026-11-26")
		Consistently(func() int { return stub.Calls()["create"] }, 2*time.Second).Should(Equal(creates))

		By("revoke-now: a new PAT, and every earlier PAT revoked without grace")
		secondRaw := rawToken(second)
		setAnnotation(tok, v1alpha1.AnnotationRevokeNow, "incident-42")
		Eventually(func() string { return waitReady(tok).Status.TokenID }).ShouldNot(Equal(second.Status.TokenID))
		third := waitReady(tok)
		Expect(third.Status.RevokeNowRequestHandled).To(Equal("incident-42"))
		Expect(third.Status.PreviousTokenID).To(BeEmpty())
		Expect(stub.Authenticates(firstRaw)).To(BeFalse())
		Expect(stub.Authenticates(secondRaw)).To(BeFalse())
		Expect(ids(t.activePATs())).To(ConsistOf(third.Status.TokenID))
		Expect(eventReasons(t.ns)).To(ContainElement(controllers.IssueRevokeNow))
	})

	It("restarts restartTargets once per rotation, not for the first PAT", func() {
		dep := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "uploader",
				Annotations: map[string]string{v1alpha1.AnnotationRestartOnRotation: "restarts"}},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "uploader"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "uploader"}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
				},
			},
		}
		Expect(k8s.Create(ctx, dep)).To(Succeed())
		tok := t.token("restarts", func(tok *v1alpha1.NomadToken) {
			tok.Spec.Rotation.GracePeriod = &metav1.Duration{Duration: time.Minute}
			tok.Spec.Rotation.RestartTargets = []v1alpha1.RestartTarget{{Kind: "Deployment", Name: "uploader"}}
		})
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		first := waitReady(tok)
		Expect(first.Status.RestartedForTokenID).To(Equal(first.Status.TokenID))
		Expect(get(dep).(*appsv1.Deployment).Spec.Template.Annotations).NotTo(HaveKey(v1alpha1.AnnotationRestartedAt))

		setAnnotation(tok, v1alpha1.AnnotationRotate, "1")
		var stamp string
		Eventually(func(g Gomega) {
			d := &appsv1.Deployment{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(dep), d)).To(Succeed())
			stamp = d.Spec.Template.Annotations[v1alpha1.AnnotationRestartedAt]
			g.Expect(stamp).NotTo(BeEmpty())
		}).Should(Succeed())
		second := waitReady(tok)
		Expect(second.Status.RestartedForTokenID).To(Equal(second.Status.TokenID))
		version := get(dep).GetResourceVersion()
		Consistently(func() string { return get(dep).GetResourceVersion() }, 3*time.Second).Should(Equal(version))
	})
})

// setAnnotation sets one annotation on the NomadToken, retrying on conflicts.
func setAnnotation(tok *v1alpha1.NomadToken, key, value string) {
	GinkgoHelper()
	Eventually(func() error {
		fresh := &v1alpha1.NomadToken{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(tok), fresh); err != nil {
			return err
		}
		if fresh.Annotations == nil {
			fresh.Annotations = map[string]string{}
		}
		fresh.Annotations[key] = value
		return k8s.Update(ctx, fresh)
	}).Should(Succeed())
}

// forceVerification makes the connection check (and so verify its tokens) now, as its interval would.
func forceVerification(t *tenant, name string) {
	GinkgoHelper()
	Eventually(func() error {
		conn := &v1alpha1.NomadConnection{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: name}, conn); err != nil {
			return err
		}
		if conn.Annotations == nil {
			conn.Annotations = map[string]string{}
		}
		conn.Annotations["test/verify"] = time.Now().String()
		return k8s.Update(ctx, conn)
	}).Should(Succeed())
}

// eventReasons lists the reasons of the Events in a namespace.
func eventReasons(ns string) []string {
	GinkgoHelper()
	var evs corev1.EventList
	Expect(k8s.List(ctx, &evs, client.InNamespace(ns))).To(Succeed())
	out := []string{}
	for _, e := range evs.Items {
		out = append(out, e.Reason)
	}
	return out
}
