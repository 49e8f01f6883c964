package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// leaderTokens is how many NomadTokens the leader-election spec creates: half before the leader is
// killed, half after.
const leaderTokens = 10

var _ = Describe("two managers with leader election, the leader killed with -9", func() {
	It("never mint two PATs that are active at once for one NomadToken", func(ctx SpecContext) {
		rng := rand.New(rand.NewPCG(seed, 0x6c65616465)) // its own stream from the printed seed
		t := newTenant(ctx, "chaos-leader")
		managers := map[string]*harness.Manager{}
		var logs []string
		var managersMu sync.Mutex // the two starting goroutines
		DeferCleanup(func(ctx SpecContext) {
			for _, m := range managers {
				Expect(m.Stop(20 * time.Second)).To(Succeed())
			}
			releaseLease(ctx)
		})
		DeferCleanup(func(ctx SpecContext) { _ = stub.ClearFaults(ctx) })
		DeferCleanup(func() {
			if CurrentSpecReport().Failed() {
				for name, m := range managers {
					AddReportEntry(name+" log (tail)", m.Tail(60))
				}
			}
		})
		// A held create answer makes it likely that the kill lands after a PAT was created and before
		// the leader stored it: the successor must then recover it, not mint a second one beside it.
		Expect(stub.Latency(ctx, nomadstub.OpCreate, 50*time.Millisecond, 300*time.Millisecond)).To(Succeed())

		By("starting two managers together against the same lease")
		started := make(chan error, 2)
		for _, name := range []string{"a", "b"} {
			go func() {
				defer GinkgoRecover()
				m, err := harness.StartManager(ctx, managerOptions("manager-"+name+".log"))
				if err == nil {
					managersMu.Lock()
					managers[name] = m
					logs = append(logs, m.LogPath)
					managersMu.Unlock()
				}
				started <- err
			}()
		}
		for range 2 {
			succeed(<-started)
		}
		var leaderName string
		Eventually(func() string {
			for name, m := range managers {
				if m.IsLeader() {
					leaderName = name
				}
			}
			return leaderName
		}).WithTimeout(leaseDuration+20*time.Second).WithPolling(100*time.Millisecond).ShouldNot(BeEmpty(), "one manager takes the lease")
		for name, m := range managers {
			if name != leaderName {
				Expect(m.IsLeader()).To(BeFalse(), "only one manager holds the lease")
			}
		}

		By(fmt.Sprintf("creating %d NomadTokens, then killing the leader with -9 while it issues them", leaderTokens/2))
		names := make([]string, leaderTokens)
		for i := range names {
			names[i] = fmt.Sprintf("leader-%02d", i)
		}
		for _, name := range names[:leaderTokens/2] {
			t.createToken(ctx, name, v1alpha1.Rotation{}) // 30 days: no rotation in this spec
		}
		wait := killAfterMin + time.Duration(rng.Int64N(int64(1500*time.Millisecond-killAfterMin)))
		sleepUntil(ctx, time.Now().Add(wait))
		inFlight, err := stub.InFlight(ctx)
		Expect(err).NotTo(HaveOccurred())
		succeed(managers[leaderName].Kill())
		rec := killRecord{n: 1, after: wait, inFlight: inFlight, log: "manager-" + leaderName + ".log"}
		GinkgoWriter.Println(rec.String())
		delete(managers, leaderName)

		By("restarting the killed one as a standby, and creating the other NomadTokens")
		m, err := harness.StartManager(ctx, managerOptions("manager-c.log"))
		succeed(err)
		managers["c"] = m
		logs = append(logs, m.LogPath)
		for _, name := range names[leaderTokens/2:] {
			t.createToken(ctx, name, v1alpha1.Rotation{})
		}

		By("waiting for one of the two standbys to take over once the killed leader's lease expires")
		var successor string
		Eventually(func() []string {
			var leaders []string
			for name, m := range managers {
				if m.IsLeader() {
					leaders = append(leaders, name)
				}
			}
			if len(leaders) == 1 {
				successor = leaders[0]
			}
			return leaders
		}).WithTimeout(leaseDuration+20*time.Second).WithPolling(100*time.Millisecond).Should(HaveLen(1), "exactly one standby takes the lease")
		GinkgoWriter.Printf("manager %s took over from %s\n", successor, leaderName)
		Expect(stub.ClearFaults(ctx)).To(Succeed())
		w := t.awaitConsistent(ctx, time.Minute)

		By("checking NOMAD's record of every NomadToken's PATs")
		createsInFlight := inFlight[nomadstub.OpCreate] + inFlight[nomadstub.OpRotate]
		minted, extra := 0, 0
		var lines []string
		for _, name := range names {
			tok := w.tokens[name]
			pats := patsOf(w.pats, tok)
			minted += len(pats)
			extra += len(pats) - 1
			var ids []string
			for _, p := range pats {
				ids = append(ids, p.ID)
			}
			lines = append(lines, fmt.Sprintf("%s: %d PAT(s) %v", name, len(pats), ids))
			Expect(pats).NotTo(BeEmpty(), "NomadToken %s has a PAT with its marker", name)
			last := pats[len(pats)-1]
			Expect(last.Active).To(BeTrue(), "%s: its newest PAT is the active one", name)
			Expect(last.ID).To(Equal(tok.Status.TokenID), "%s: status names its newest PAT", name)
			for i := 1; i < len(pats); i++ {
				prev, next := pats[i-1], pats[i]
				Expect(prev.RevokedAt).NotTo(BeNil(), "%s: PAT %s (%q) was never revoked, yet %s was minted after it",
					name, prev.ID, description(prev), next.ID)
				Expect(stubTime(*prev.RevokedAt)).To(BeTemporally("<=", stubTime(next.CreatedAt)),
					"%s: PAT %s was still active when %s was minted: two PATs active at once", name, prev.ID, next.ID)
			}
		}
		AddReportEntry("PATs per NomadToken", strings.Join(lines, "\n"))
		summary := fmt.Sprintf("seed %d: leader %s killed %.2fs after the first NomadTokens, %s; manager %s took over; "+
			"PATs minted %d for %d NomadTokens; stray PATs %d",
			seed, leaderName, wait.Seconds(), rec.where(), successor, minted, leaderTokens, len(w.strays))
		AddReportEntry("leader-election figures", summary)
		fmt.Println("chaos: " + summary)
		// A PAT the killed leader created but never stored is revoked by the successor, which then
		// mints the NomadToken's real one: one extra PAT per create that was in flight, no more.
		Expect(extra).To(BeNumerically("<=", createsInFlight),
			"NomadTokens got more PATs than the creates in flight at the kill (%d) explain:\n%s", createsInFlight, strings.Join(lines, "\n"))

		By("deleting every NomadToken")
		t.deleteAll(ctx)
		t.expectNoLeaks(logs)
	}, NodeTimeout(5*time.Minute))
})
