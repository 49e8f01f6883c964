package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// The kill schedule: each manager is killed a uniform random time in [killAfterMin, killAfterMax)
// after it logged that it holds the lease (its controllers start then), so that many kills land
// while it catches up on what its predecessor left half done.
const (
	killAfterMin = 200 * time.Millisecond
	killAfterMax = 3 * time.Second
)

// nomadLatency slows the stand-in down during the chaos: each operation waits the first value
// before it happens and holds its answer for the second after, so that a kill often lands inside a
// call, and in particular after a create happened and before its caller held the raw token.
var nomadLatency = map[string][2]time.Duration{
	nomadstub.OpCreate: {50 * time.Millisecond, 250 * time.Millisecond},
	nomadstub.OpRotate: {50 * time.Millisecond, 250 * time.Millisecond},
	nomadstub.OpRevoke: {30 * time.Millisecond, 100 * time.Millisecond},
	nomadstub.OpList:   {0, 80 * time.Millisecond},
	nomadstub.OpGet:    {0, 50 * time.Millisecond},
}

// The workload: token i renews renewAfter(i) (6, 8, 10 or 12 s) after NOMAD created its PAT, so that
// a dozen of them keep the manager busy most of the time; even ones with Overlap (grace period
// overlapGrace), odd ones with NOMAD's rotate endpoint.
const overlapGrace = 3 * time.Second

func renewAfter(i int) time.Duration { return 6*time.Second + time.Duration(i%4)*2*time.Second }

func workloadRotation(i int) v1alpha1.Rotation {
	rot := v1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: 24*time.Hour - renewAfter(i)}}
	if i%2 == 0 {
		rot.Strategy = v1alpha1.RotationOverlap
		rot.GracePeriod = &metav1.Duration{Duration: overlapGrace}
	} else {
		rot.Strategy = v1alpha1.RotationRotate
	}
	return rot
}

// killRecord is what one kill hit.
type killRecord struct {
	n        int
	after    time.Duration // after the manager logged it holds the lease
	inFlight map[string]int
	rotated  string // the NomadToken given a rotate annotation just before, if any
	log      string
}

func (k killRecord) insideCall() bool {
	for _, n := range k.inFlight {
		if n > 0 {
			return true
		}
	}
	return false
}

// where says whether the kill landed inside NOMAD calls, and which.
func (k killRecord) where() string {
	var ops []string
	for _, op := range slices.Sorted(maps.Keys(k.inFlight)) {
		if n := k.inFlight[op]; n > 0 {
			ops = append(ops, fmt.Sprintf("%s×%d", op, n))
		}
	}
	if len(ops) == 0 {
		return "between NOMAD calls"
	}
	return "inside NOMAD calls: " + strings.Join(ops, " ")
}

func (k killRecord) String() string {
	s := fmt.Sprintf("kill %2d at +%.2fs, %s (log %s)", k.n, k.after.Seconds(), k.where(), k.log)
	if k.rotated != "" {
		s += ", after a rotate annotation on " + k.rotated
	}
	return s
}

var _ = Describe("kill -9 of the manager at random moments while NomadTokens issue and rotate", func() {
	It("ends with every NomadToken Ready, every Secret's PAT valid at NOMAD and no stray PAT", func(ctx SpecContext) {
		rng := rand.New(rand.NewPCG(seed, 0x6e6f6d6164)) // one stream per spec, from the printed seed
		t := newTenant(ctx, "chaos-kill")
		var current *harness.Manager
		var logs []string
		// Registered before the NomadTokens exist: whatever manager runs last is stopped at the very
		// end, and the lease it may hold released for the next spec.
		DeferCleanup(func(ctx SpecContext) {
			if current != nil {
				Expect(current.Stop(20 * time.Second)).To(Succeed())
			}
			releaseLease(ctx)
		})
		DeferCleanup(func(ctx SpecContext) { _ = stub.ClearFaults(ctx) })
		DeferCleanup(func() {
			if CurrentSpecReport().Failed() && current != nil {
				AddReportEntry("last manager log (tail)", current.Tail(80))
			}
		})

		By("slowing NOMAD's answers down, so that kills land inside calls")
		for _, op := range slices.Sorted(maps.Keys(nomadLatency)) {
			l := nomadLatency[op]
			Expect(stub.Latency(ctx, op, l[0], l[1])).To(Succeed())
		}

		By(fmt.Sprintf("creating %d NomadTokens that renew 6-12 s after issuance, Overlap and Rotate", tokenCount))
		names := make([]string, tokenCount)
		for i := range names {
			names[i] = fmt.Sprintf("chaos-%02d", i)
			t.createToken(ctx, names[i], workloadRotation(i))
		}

		var records []killRecord
		annotations := 0
		start := time.Now()
		for k := 1; k <= kills; k++ {
			logName := fmt.Sprintf("manager-%02d.log", k)
			current = startManager(ctx, logName)
			logs = append(logs, current.LogPath)
			succeed(current.AwaitLeadership(ctx, leaseDuration+20*time.Second))
			led := time.Now()
			rec := killRecord{n: k, log: logName}
			// Draw every random number of this round whatever happens, so that a replay with the same
			// seed has the same schedule.
			annotate, which := rng.IntN(2) == 0, rng.IntN(tokenCount)
			wait := killAfterMin + time.Duration(rng.Int64N(int64(killAfterMax-killAfterMin)))
			if annotate {
				rec.rotated = names[which]
				requestRotation(ctx, t.ns, names[which], fmt.Sprintf("chaos-%d-%d", seed, k))
				annotations++
			}
			sleepUntil(ctx, led.Add(wait))
			inFlight, err := stub.InFlight(ctx)
			Expect(err).NotTo(HaveOccurred())
			rec.after = time.Since(led)
			succeed(current.Kill())
			rec.inFlight = inFlight
			records = append(records, rec)
			GinkgoWriter.Println(rec.String())
			current = nil
			if !waitLease {
				// The killed holder is gone for good; its lease would expire after leaseDuration.
				releaseLease(ctx)
			}
		}
		chaosTime := time.Since(start)

		By("restarting the manager once more and letting it settle with NOMAD at full speed")
		current = startManager(ctx, "manager-final.log")
		logs = append(logs, current.LogPath)
		succeed(current.AwaitLeadership(ctx, leaseDuration+20*time.Second))
		Expect(stub.ClearFaults(ctx)).To(Succeed())
		w := t.awaitConsistent(ctx, 2*time.Minute)

		inside := 0
		for _, r := range records {
			if r.insideCall() {
				inside++
			}
		}
		maxPerToken, rotations := 0, 0
		for _, name := range names {
			n := len(patsOf(w.pats, w.tokens[name]))
			maxPerToken = max(maxPerToken, n)
			rotations += n - 1
		}
		var kl strings.Builder
		for _, r := range records {
			kl.WriteString(r.String() + "\n")
		}
		AddReportEntry("kills", kl.String())
		summary := fmt.Sprintf("seed %d: %d kills in %s, %d inside a NOMAD call; %d NomadTokens, %d rotate annotations; "+
			"PATs minted %d (%d replacements, at most %d for one NomadToken); stray PATs %d",
			seed, len(records), chaosTime.Round(100*time.Millisecond), inside, tokenCount, annotations,
			len(w.pats), rotations, maxPerToken, len(w.strays))
		AddReportEntry("chaos figures", summary)
		fmt.Println("chaos: " + summary)
		Expect(records).To(HaveLen(kills))

		By("deleting every NomadToken: each finalizer revokes its PATs, whatever the kills left")
		t.deleteAll(ctx)
		t.expectNoLeaks(logs)
	}, NodeTimeout(20*time.Minute))
})

// requestRotation sets the rotate annotation to value (a new value asks for one rotation).
func requestRotation(ctx context.Context, ns, name, value string) {
	GinkgoHelper()
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{v1alpha1.AnnotationRotate: value}}})
	Expect(err).NotTo(HaveOccurred())
	tok := &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	Expect(controlPl.Client.Patch(ctx, tok, client.RawPatch(types.MergePatchType, patch))).To(Succeed())
}

func sleepUntil(ctx context.Context, at time.Time) {
	select {
	case <-time.After(time.Until(at)):
	case <-ctx.Done():
	}
}
