package controllers_test

import (
	"net/http"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// consumer authenticates at NOMAD with one raw token every 2 s, as a job that read it at start would;
// each request sets the PAT's last_used_at.
type consumer struct {
	stop chan struct{}
	done sync.WaitGroup
}

func startConsumer(raw string) *consumer {
	c := &consumer{stop: make(chan struct{})}
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		for {
			req, _ := http.NewRequest(http.MethodGet, stub.APIRoot(stubHTTP.URL)+"/v1/pats/000000000000000000000000", nil)
			req.Header.Set("Authorization", "Bearer "+raw)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
			select {
			case <-c.stop:
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()
	return c
}

func (c *consumer) halt() {
	close(c.stop)
	c.done.Wait()
}

// consumersMoved returns the token's ConsumersMoved condition (nil when absent).
func consumersMoved(g Gomega, tok *v1alpha1.NomadToken) *metav1.Condition {
	fresh := &v1alpha1.NomadToken{}
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tok), fresh)).To(Succeed())
	return meta.FindStatusCondition(fresh.Status.Conditions, v1alpha1.ConditionConsumersMoved)
}

var _ = Describe("Rotation that waits for its consumers", func() {
	var t *tenant
	BeforeEach(func() { t = newTenant() })

	waiting := func(unusedFor, maxGrace time.Duration) func(*v1alpha1.NomadToken) {
		return func(tok *v1alpha1.NomadToken) {
			tok.Spec.Rotation.GracePeriod = &metav1.Duration{Duration: 2 * time.Second}
			tok.Spec.Rotation.WaitForConsumers = &v1alpha1.WaitForConsumers{
				UnusedFor: metav1.Duration{Duration: unusedFor}, MaxGracePeriod: metav1.Duration{Duration: maxGrace}}
		}
	}
	// rotate rotates tok and returns the replaced PAT's id and the time the swap was recorded.
	rotate := func(tok *v1alpha1.NomadToken) (string, time.Time) {
		GinkgoHelper()
		old := waitReady(tok).Status.TokenID
		setAnnotation(tok, v1alpha1.AnnotationRotate, "1")
		fresh := &v1alpha1.NomadToken{}
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tok), fresh)).To(Succeed())
			g.Expect(fresh.Status.PreviousTokenID).To(Equal(old))
		}).Should(Succeed())
		return old, time.Now()
	}
	active := func(id string) bool {
		for _, p := range t.activePATs() {
			if p.ID == id {
				return true
			}
		}
		return false
	}

	It("keeps the old PAT while a consumer uses it, long past gracePeriod, and revokes it once unused for unusedFor", func() {
		tok := t.token("job", waiting(4*time.Second, 5*time.Minute))
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		oldRaw := rawToken(waitReady(tok))
		job := startConsumer(oldRaw)
		old, _ := rotate(tok)
		// Well past gracePeriod (2 s), the old PAT in use stays, and the condition says why.
		Consistently(func() bool { return active(old) }, 12*time.Second, time.Second).Should(BeTrue())
		Eventually(func(g Gomega) {
			c := consumersMoved(g, tok)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(v1alpha1.ReasonOldTokenInUse))
			g.Expect(c.Message).To(ContainSubstring("last used at"))
		}).Should(Succeed())
		Expect(get(tok).(*v1alpha1.NomadToken).Status.PreviousTokenLastUsedAt).NotTo(BeNil())
		job.halt()
		stopped := time.Now()
		// Revoked within unusedFor plus one look (the list, or the one GET when it is due).
		Eventually(func() bool { return active(old) }, 15*time.Second, 200*time.Millisecond).Should(BeFalse())
		GinkgoWriter.Printf("old PAT revoked %s after its consumer stopped (unusedFor 4s)\n", time.Since(stopped))
		Expect(time.Since(stopped)).To(BeNumerically(">=", 2*time.Second), "revoked before unusedFor had passed since the last use")
		Eventually(func(g Gomega) {
			g.Expect(consumersMoved(g, tok).Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())
		waitReady(tok)
	})

	It("revokes an old PAT whose consumer never stops at maxGracePeriod", func() {
		tok := t.token("forever", waiting(4*time.Second, 20*time.Second))
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		job := startConsumer(rawToken(waitReady(tok)))
		defer job.halt()
		old, swapped := rotate(tok)
		Consistently(func() bool { return active(old) }, 15*time.Second, time.Second).Should(BeTrue())
		Eventually(func() bool { return active(old) }, 20*time.Second, 200*time.Millisecond).Should(BeFalse())
		GinkgoWriter.Printf("old PAT in constant use revoked %s after the swap (maxGracePeriod 20s)\n", time.Since(swapped))
	})

	It("holds the old PAT while a restart target rolls out, and lets it go once the rollout finished", func() {
		opt := map[string]string{v1alpha1.AnnotationRestartOnRotation: "rolled"}
		stuck, rolled := deployment(t.ns, "stuck", opt), deployment(t.ns, "rolled", map[string]string{v1alpha1.AnnotationRestartOnRotation: "rolled-too"})
		Expect(k8s.Create(ctx, stuck)).To(Succeed())
		Expect(k8s.Create(ctx, rolled)).To(Succeed())
		target := func(name string) func(*v1alpha1.NomadToken) {
			return func(tok *v1alpha1.NomadToken) {
				tok.Spec.Rotation.RestartTargets = []v1alpha1.RestartTarget{{Kind: "Deployment", Name: name}}
			}
		}
		// No kube-controller-manager here: "stuck" never reports its new template rolled out.
		held := t.token("rolled", waiting(2*time.Second, 25*time.Second), target("stuck"))
		released := t.token("rolled-too", waiting(2*time.Second, 5*time.Minute), target("rolled"))
		Expect(k8s.Create(ctx, held)).To(Succeed())
		Expect(k8s.Create(ctx, released)).To(Succeed())
		heldOld, heldSwap := rotate(held)
		releasedOld, _ := rotate(released)
		Eventually(func(g Gomega) {
			c := consumersMoved(g, held)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(v1alpha1.ReasonRolloutInProgress), c.Message)
		}, 15*time.Second).Should(Succeed())
		Expect(active(releasedOld)).To(BeTrue(), "released before its rollout finished")
		// The rollout of "rolled" finishes, as its controller would report it.
		Eventually(func() error {
			d := deployment(t.ns, "rolled", nil)
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
				return err
			}
			r := ptr.Deref(d.Spec.Replicas, 1)
			d.Status.ObservedGeneration, d.Status.Replicas, d.Status.UpdatedReplicas = d.Generation, r, r
			d.Status.ReadyReplicas, d.Status.AvailableReplicas = r, r
			return k8s.Status().Update(ctx, d)
		}).Should(Succeed())
		Eventually(func() bool { return active(releasedOld) }, 20*time.Second, 200*time.Millisecond).Should(BeFalse())
		Expect(active(heldOld)).To(BeTrue(), "the old PAT of the stuck rollout went before maxGracePeriod")
		Eventually(func() bool { return active(heldOld) }, 30*time.Second, 200*time.Millisecond).Should(BeFalse())
		GinkgoWriter.Printf("old PAT of a rollout that never finished revoked %s after the swap (maxGracePeriod 25s)\n", time.Since(heldSwap))
		// maxGracePeriod runs from the swap (whole seconds in status, rounded up): not before 24 s.
		Expect(time.Since(heldSwap)).To(BeNumerically(">=", 23*time.Second))
	})
})
