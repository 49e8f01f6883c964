package controllers_test

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// One tenant's NOMAD stops answering. With one worker, or without a bound on what one connection
// may hold, every other tenant's tokens would queue behind its requests, each waiting for the 30 s
// request timeout. No time is asserted here: that B's tokens become Ready at all while A's
// requests are still held is the proof.
var _ = Describe("Isolation between NOMADs", func() {
	It("serves other connections' tokens while one NOMAD hangs, and fails the hung one's tokens fast once its breaker opens", func() {
		opts := nomadstub.DefaultOptions()
		opts.Clock = stubClock
		hung, hungHTTP := nomadstub.Start(opts)
		// Registered first, so it runs after the tenants' cleanups: ClearFaults lets go of held
		// requests, which httptest's Close would otherwise wait for.
		DeferCleanup(func() {
			hung.ClearFaults()
			hungHTTP.Close()
		})
		a := newTenantOn(hung, hung.APIRoot(hungHTTP.URL))
		b := newTenant()

		By("A's NOMAD accepting creates and never answering")
		hung.InjectFault(nomadstub.OpCreate, -1, nomadstub.Fault{Hang: true})
		aTokens := make([]*v1alpha1.NomadToken, suiteWorkers+4)
		for i := range aTokens {
			aTokens[i] = a.token(fmt.Sprintf("a-%d", i))
			Expect(k8s.Create(ctx, aTokens[i])).To(Succeed())
		}
		Eventually(func() int { return hung.InFlight()[nomadstub.OpCreate] }).Should(Equal(nomad.DefaultMaxInFlight),
			"A's connection holds as many requests as its in-flight limit")

		By("B's new tokens becoming Ready while A's creates are still held")
		for i := range 3 {
			tok := b.token(fmt.Sprintf("b-%d", i))
			Expect(k8s.Create(ctx, tok)).To(Succeed())
			waitReady(tok)
		}
		Expect(hung.InFlight()[nomadstub.OpCreate]).To(Equal(nomad.DefaultMaxInFlight), "A's creates were still held when B's tokens became Ready")
		Expect(hung.Calls()[nomadstub.OpCreate]).To(Equal(nomad.DefaultMaxInFlight),
			"A's other tokens were held back by the in-flight limit, not sent to a NOMAD that does not answer")

		By("A's NOMAD dying completely: the held requests fail, and every later request would hang")
		for _, op := range []string{nomadstub.OpLogin, nomadstub.OpList, nomadstub.OpGet, nomadstub.OpRevoke, nomadstub.OpRotate, nomadstub.OpOpenAPI} {
			hung.InjectFault(op, -1, nomadstub.Fault{Hang: true})
		}
		hung.ReleaseHangs()
		Eventually(func() int { return hung.InFlight()[nomadstub.OpCreate] }).Should(BeZero())
		calls := totalCalls(hung)

		By("A's tokens failing fast with the breaker's message instead of one request timeout each")
		for _, tok := range aTokens {
			waitCondition(tok, func(g Gomega, _ *v1alpha1.NomadToken, cond *metav1.Condition) {
				g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
				g.Expect(cond.Reason).To(Equal(v1alpha1.ReasonNomadUnavailable), cond.Message)
				g.Expect(cond.Message).To(ContainSubstring("circuit breaker open"))
			})
		}
		Expect(totalCalls(hung)-calls).To(BeNumerically("<=", 1), "at most the breaker's one probe reached the dead NOMAD")
		Expect(a.allPATs()).To(BeEmpty())

		By("letting A's tokens go without NOMAD: they never got a PAT")
		for _, tok := range aTokens {
			Eventually(func() error {
				if err := k8s.Get(ctx, client.ObjectKeyFromObject(tok), tok); err != nil {
					return err
				}
				tok.Spec.DeletionPolicy = v1alpha1.DeletionRetain
				return k8s.Update(ctx, tok)
			}).Should(Succeed())
			deleteAndWait(tok)
		}
	})
})

func totalCalls(s *nomadstub.Server) int {
	n := 0
	for _, c := range s.Calls() {
		n += c
	}
	return n
}
