package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// Rotation runs in real time. A one-day PAT with renewBefore ten seconds short of a day is due for
// renewal ten seconds after NOMAD created it (jitter moves that earlier by less than 5 % of it, 0.5 s),
// exactly as a 30-day PAT is on day 20. Each Describe has a tenant of its own (namespace, stand-in
// account, NomadConnection), so that the PATs of one never count among another's, whatever order
// Ginkgo runs them in.
const (
	// renewAfter is how long after its creation a PAT of fastRenewal is replaced.
	renewAfter = 10 * time.Second
	// overlapGrace is the Overlap spec's gracePeriod: longer than renewAfter on purpose, so that
	// while renewal is on, a PAT is replaced again before its predecessor's grace period ends.
	overlapGrace = 20 * time.Second
	// probeEvery and probeFor are the consumer probe's pace and least duration.
	probeEvery = time.Second
	probeFor   = 45 * time.Second
	// statusPrecision: status times are metav1.Time, whole seconds, so a time the manager reads back
	// from status (e.g. previousTokenRevokeAt) may be up to this much earlier than the one it computed.
	statusPrecision = time.Second
	// reactionSlack is how late the manager may act after a time it planned (a timed requeue, one
	// reconcile, one or two NOMAD calls and status writes on a loaded 2-core machine).
	reactionSlack = 3 * time.Second
)

// fastRenewal is a rotation policy that renews a one-day PAT renewAfter after its creation.
func fastRenewal(strategy v1alpha1.RotationStrategy, grace *time.Duration) v1alpha1.Rotation {
	rot := v1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: 24*time.Hour - renewAfter}, Strategy: strategy}
	if grace != nil {
		rot.GracePeriod = &metav1.Duration{Duration: *grace}
	}
	return rot
}

var _ = Describe("Overlap rotation, watched by a consumer that reads the Secret every second", Ordered, func() {
	var (
		t       *tenant
		key     client.ObjectKey
		ids     []string // the PATs in the order they were current: A, then B, then C
		samples []probeSample
		raws    map[string][]byte // raw PAT by id, as the probe read them; never hand one to a matcher
		st      *harness.StubState
	)

	BeforeAll(func(ctx SpecContext) {
		t = newTenant(ctx, "rotation-overlap")
		grace := overlapGrace
		// The default strategy: the spec leaves it out, the API server fills in Overlap.
		key = t.createToken(ctx, "uploader", fastRenewal("", &grace))
	})

	It("issues a first PAT, due for renewal about 10 s after NOMAD created it", func(ctx SpecContext) {
		first := waitReady(ctx, key)
		Expect(first.Spec.Rotation.Strategy).To(Equal(v1alpha1.RotationOverlap), "Overlap is the default strategy")
		Expect(first.Status.RenewalTime).NotTo(BeNil())
		// Whole-second status times blur each end by up to a second.
		renewIn := first.Status.RenewalTime.Sub(first.Status.IssuedAt.Time)
		Expect(renewIn).To(BeNumerically(">=", renewAfter-renewAfter/20-2*statusPrecision), "renewal - issuedAt")
		Expect(renewIn).To(BeNumerically("<=", renewAfter+statusPrecision), "renewal - issuedAt")
		ids = []string{first.Status.TokenID}
	})

	It("rotates twice; the Secret's token authenticates at every sample and Ready is True at every sample", func(ctx SpecContext) {
		probe := startConsumerProbe(ctx, t, key)
		for len(ids) < 3 {
			rotated := waitRotation(ctx, key, ids[len(ids)-1])
			Expect(rotated.Status.PreviousTokenID).To(Equal(ids[len(ids)-1]), "status keeps the replaced PAT for its grace period")
			ids = append(ids, rotated.Status.TokenID)
		}
		By("turning fast renewal off (non-material), so that the last grace period runs its full course")
		stopRenewing(ctx, key)
		var tok v1alpha1.NomadToken
		Expect(controlPl.Client.Get(ctx, key, &tok)).To(Succeed())
		Expect(tok.Status.TokenID).To(Equal(ids[2]), "no further rotation after renewal was turned off")
		Expect(tok.Status.PreviousTokenID).To(Equal(ids[1]))
		Expect(tok.Status.PreviousTokenRevokeAt).NotTo(BeNil())
		// Probe at least probeFor, and past the end of the last grace period.
		end := later(probe.started.Add(probeFor), tok.Status.PreviousTokenRevokeAt.Add(statusPrecision+reactionSlack))
		samples, raws = probe.stopAt(ctx, end)

		failed := slices.ContainsFunc(samples, func(s probeSample) bool { return len(s.Problems) > 0 })
		Expect(failed).To(BeFalse(), "every sample must find a valid PAT in the Secret, Ready=True and one or two active PATs; the samples:\n%s", probe.report())
		Expect(len(samples)).To(BeNumerically(">=", int(probeFor/probeEvery)-5), "the probe sampled about once a second")
		Expect(secretSequence(samples)).To(Equal(ids), "the probe saw each PAT in the Secret, in order")
		Expect(slices.ContainsFunc(samples, func(s probeSample) bool { return len(s.Active) == 2 })).
			To(BeTrue(), "Overlap: old and new PAT were active together")
		last := samples[len(samples)-1]
		Expect(last.Active).To(Equal([]string{ids[2]}), "the probe outlasted the last grace period")
	}, NodeTimeout(2*time.Minute))

	It("renewed each PAT about 10 s after NOMAD created it", func(ctx SpecContext) {
		var err error
		st, err = stub.State(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(idsOf(st.Users[t.user].PATs)).To(ConsistOf(ids), "the stand-in holds exactly the three PATs, no stray one")
		for i := 1; i < len(ids); i++ {
			gap := created(st, t.user, ids[i]).Sub(created(st, t.user, ids[i-1]))
			Expect(gap).To(BeNumerically(">=", renewAfter-renewAfter/20-2*statusPrecision), "creation of %s after %s", ids[i], ids[i-1])
			Expect(gap).To(BeNumerically("<=", renewAfter+reactionSlack), "creation of %s after %s", ids[i], ids[i-1])
		}
	})

	It("revoked the last replaced PAT when its grace period ended, and the first no later than its own", func(ctx SpecContext) {
		a, b, c := ids[0], ids[1], ids[2]
		// B was replaced when C was created (the Secret then held C): its grace period runs from there.
		// The manager re-reads previousTokenRevokeAt from status in whole seconds, so a reconcile in
		// between (e.g. turning renewal off) moves the revocation up to statusPrecision earlier.
		bRevoked := revokedAt(st, t.user, b)
		Expect(bRevoked.Sub(created(st, t.user, c))).To(BeNumerically(">=", overlapGrace-statusPrecision), "B's grace period")
		Expect(bRevoked.Sub(created(st, t.user, c))).To(BeNumerically("<=", overlapGrace+reactionSlack), "B's grace period")
		// A's grace period would have ended overlapGrace after B was created; C replaced B before that,
		// and status tracks one previous PAT, so A went when C came (never later than its own grace).
		aRevoked := revokedAt(st, t.user, a)
		Expect(aRevoked).To(BeTemporally(">=", created(st, t.user, c)), "A stayed valid until its successor was replaced")
		Expect(aRevoked).To(BeTemporally("<=", created(st, t.user, b).Add(overlapGrace+reactionSlack)), "A never outlived its grace period")

		Expect(idsOf(st.ActivePATs(t.user))).To(Equal([]string{c}), "exactly one active PAT once the last grace period ended")
		for _, id := range []string{a, b} {
			Expect(raws).To(HaveKey(id))
			active, err := stub.Authenticates(ctx, raws[id])
			Expect(err).NotTo(HaveOccurred())
			Expect(active).To(BeFalse(), "replaced PAT %s no longer authenticates", id)
			res, err := harness.ProbePAT(ctx, stub.APIURL, t.patPath, raws[id])
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Invalid()).To(BeTrue(), "NOMAD answers 401 for replaced PAT %s, got %s", id, res)
		}
		raw, secretID := t.secretToken(ctx, key)
		Expect(secretID).To(Equal(c))
		res, err := harness.ProbePAT(ctx, stub.APIURL, t.patPath, raw)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Valid()).To(BeTrue(), "the Secret's PAT is valid, got %s", res)
	})

	It("records the rotations in status and in Events", func(ctx SpecContext) {
		final := waitReady(ctx, key)
		Expect(final.Status.TokenID).To(Equal(ids[2]))
		Expect(final.Status.PreviousTokenID).To(BeEmpty())
		Expect(final.Status.PreviousTokenRevokeAt).To(BeNil())
		Expect(final.Status.RevokePending).To(BeEmpty())
		Expect(final.Status.PendingIssuance).To(BeNil())
		Expect(final.Status.LastRotationTime).NotTo(BeNil(), "status.lastRotationTime")
		Expect(final.Status.LastRotationTime.Time).To(BeTemporally("~", created(st, t.user, ids[2]), statusPrecision+reactionSlack))
		Expect(final.Status.RenewalTime.Time).To(BeTemporally(">", time.Now().Add(time.Hour)),
			"without renewBefore, renewal is back at 2/3 of the lifetime")

		eventually(ctx, func(g Gomega) {
			ev := tokenEvents(ctx, g, key)
			g.Expect(ev["Rotated"]).To(HaveLen(2))
			g.Expect(ev["Rotated"][0]).To(ContainSubstring(ids[1]))
			g.Expect(ev["Rotated"][1]).To(ContainSubstring(ids[2]))
			g.Expect(ev["PreviousRevoked"]).To(HaveLen(2))
			g.Expect(ev["PreviousRevoked"][0]).To(ContainSubstring(ids[0]))
			g.Expect(ev["PreviousRevoked"][1]).To(ContainSubstring(ids[1]))
			g.Expect(ev).NotTo(HaveKey("FallbackToRotate"))
		}).Should(Succeed())
	})

	It("never wrote a raw token or the bot password to the manager log", func() {
		t.expectNoLeaks()
	})
})

var _ = Describe("Rotate strategy, through NOMAD's rotate endpoint", Ordered, func() {
	var (
		t   *tenant
		key client.ObjectKey
	)

	BeforeAll(func(ctx SpecContext) {
		t = newTenant(ctx, "rotation-rotate")
		key = t.createToken(ctx, "uploader", fastRenewal(v1alpha1.RotationRotate, nil))
	})

	It("replaces the PAT in place: the old one is rejected at once, the new one works, one active PAT", func(ctx SpecContext) {
		first := waitReady(ctx, key)
		oldID := first.Status.TokenID
		oldRaw, secretID := t.secretToken(ctx, key)
		Expect(secretID).To(Equal(oldID))
		before, err := stub.Calls(ctx)
		Expect(err).NotTo(HaveOccurred())

		rotated := waitRotation(ctx, key, oldID)
		stopRenewing(ctx, key)
		after, err := stub.Calls(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(after["rotate"]-before["rotate"]).To(Equal(1), "one call to NOMAD's rotate endpoint")
		Expect(after["create"]-before["create"]).To(Equal(0), "no create call: the new PAT comes from rotate")

		newID := rotated.Status.TokenID
		newRaw, secretID := t.secretToken(ctx, key)
		Expect(secretID).To(Equal(newID))
		Expect(string(newRaw) != string(oldRaw)).To(BeTrue(), "the Secret holds a new raw PAT")

		res, err := harness.ProbePAT(ctx, stub.APIURL, t.patPath, oldRaw)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Invalid()).To(BeTrue(), "NOMAD answers 401 for the rotated-away PAT, got %s", res)
		res, err = harness.ProbePAT(ctx, stub.APIURL, t.patPath, newRaw)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Valid()).To(BeTrue(), "NOMAD accepts the new PAT, got %s", res)

		st, err := stub.State(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(idsOf(st.Users[t.user].PATs)).To(ConsistOf(oldID, newID))
		Expect(idsOf(st.ActivePATs(t.user))).To(Equal([]string{newID}), "exactly one active PAT")
		oldPAT, _ := st.PAT(t.user, oldID)
		newPAT, _ := st.PAT(t.user, newID)
		Expect(oldPAT.Revoked).To(BeTrue())
		Expect(newPAT.Name).To(Equal(oldPAT.Name), "rotate keeps the name")
		Expect(newPAT.Scopes).To(Equal(oldPAT.Scopes), "rotate keeps the scopes")
		Expect(newPAT.Description).To(Equal(oldPAT.Description), "rotate keeps the description")
		gap := created(st, t.user, newID).Sub(created(st, t.user, oldID))
		Expect(gap).To(BeNumerically(">=", renewAfter-renewAfter/20-2*statusPrecision))
		Expect(gap).To(BeNumerically("<=", renewAfter+reactionSlack))

		final := waitReady(ctx, key)
		Expect(final.Status.TokenID).To(Equal(newID), "no further rotation after renewal was turned off")
		Expect(final.Status.PreviousTokenID).To(BeEmpty(), "Rotate keeps no previous PAT")
		Expect(final.Status.RevokePending).To(BeEmpty())
		Expect(final.Status.LastRotationTime).NotTo(BeNil())
		eventually(ctx, func(g Gomega) {
			ev := tokenEvents(ctx, g, key)
			g.Expect(ev["Rotated"]).To(HaveLen(1))
			g.Expect(ev["Rotated"][0]).To(ContainSubstring(newID))
			g.Expect(ev).NotTo(HaveKey("RotateFailed"))
		}).Should(Succeed())
	})

	It("never wrote a raw token or the bot password to the manager log", func() {
		t.expectNoLeaks()
	})
})

var _ = Describe("A PAT revoked in NOMAD behind the operator's back", Ordered, func() {
	var (
		t      *tenant
		key    client.ObjectKey
		oldID  string
		oldRaw []byte
		newID  string
	)

	BeforeAll(func(ctx SpecContext) {
		t = newTenant(ctx, "rotation-revoked")
		key = t.createToken(ctx, "uploader", v1alpha1.Rotation{}) // 30 days, renewal on day 20
	})

	It("is replaced within one verification interval", func(ctx SpecContext) {
		first := waitReady(ctx, key)
		oldID = first.Status.TokenID
		var secretID string
		oldRaw, secretID = t.secretToken(ctx, key)
		Expect(secretID).To(Equal(oldID))

		Expect(stub.RevokePAT(ctx, oldID)).To(Succeed())
		revoked := time.Now()
		// One interval until the next list, then one GET to confirm and one create.
		Eventually(ctx, func(g Gomega) {
			var tok v1alpha1.NomadToken
			g.Expect(controlPl.Client.Get(ctx, key, &tok)).To(Succeed())
			g.Expect(tok.Status.TokenID).NotTo(Equal(oldID))
			g.Expect(readyOf(tok.Status.Conditions).Status).To(Equal(metav1.ConditionTrue))
			newID = tok.Status.TokenID
		}).WithTimeout(verificationInterval + 10*time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
		AddReportEntry("replaced after", time.Since(revoked).Round(100*time.Millisecond).String())

		newRaw, secretID := t.secretToken(ctx, key)
		Expect(secretID).To(Equal(newID))
		res, err := harness.ProbePAT(ctx, stub.APIURL, t.patPath, newRaw)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Valid()).To(BeTrue(), "NOMAD accepts the replacement from the Secret, got %s", res)
		res, err = harness.ProbePAT(ctx, stub.APIURL, t.patPath, oldRaw)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Invalid()).To(BeTrue(), "the revoked PAT stays revoked, got %s", res)

		st, err := stub.State(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(idsOf(st.Users[t.user].PATs)).To(ConsistOf(oldID, newID))
		Expect(idsOf(st.ActivePATs(t.user))).To(Equal([]string{newID}))
		eventually(ctx, func(g Gomega) {
			ev := tokenEvents(ctx, g, key)
			g.Expect(ev["Issued"]).To(HaveLen(2))
			g.Expect(ev["Issued"][1]).To(And(ContainSubstring(newID), ContainSubstring("RevokedInNomad")))
		}).Should(Succeed())
	})

	It("stays replaced: the next verifications find the new PAT and change nothing", func(ctx SpecContext) {
		Consistently(ctx, func(g Gomega) {
			var tok v1alpha1.NomadToken
			g.Expect(controlPl.Client.Get(ctx, key, &tok)).To(Succeed())
			g.Expect(tok.Status.TokenID).To(Equal(newID))
			g.Expect(readyOf(tok.Status.Conditions).Status).To(Equal(metav1.ConditionTrue))
			active, err := stub.Authenticates(ctx, oldRaw)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(active).To(BeFalse(), "the revoked PAT stays revoked")
			st, err := stub.State(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(idsOf(st.Users[t.user].PATs)).To(ConsistOf(oldID, newID), "no further PAT")
		}).WithTimeout(verificationInterval + 2*time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
	})

	It("never wrote a raw token or the bot password to the manager log", func() {
		t.expectNoLeaks()
	})
})

// tenant is one namespace with a NomadConnection logging in as a stand-in account of its own.
type tenant struct {
	ns, user, password string
	patPath            v1alpha1.PATPathMode
}

const tenantConnection = harness.TenantConnection

// newTenant adds the stand-in account and creates the namespace, the credentials Secret and a
// NomadConnection, and waits until the connection is Ready.
func newTenant(ctx SpecContext, ns string) *tenant {
	GinkgoHelper()
	user, password, conn, err := harness.CreateTenant(ctx, controlPl.Client, stub, ns)
	Expect(err).NotTo(HaveOccurred())
	t := &tenant{ns: ns, user: user, password: password}
	c := controlPl.Client
	// Registered before any token's cleanup, so it runs after: tokens need their connection to revoke.
	// (The namespace itself stays: deleting it is what the teardown specs test.)
	DeferCleanup(func(ctx SpecContext) {
		Expect(client.IgnoreNotFound(controlPl.Client.Delete(ctx, conn))).To(Succeed())
	})
	eventually(ctx, func(g Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(conn), conn)).To(Succeed())
		g.Expect(readyOf(conn.Status.Conditions).Status).To(Equal(metav1.ConditionTrue), "Ready condition")
	}).Should(Succeed())
	t.patPath = conn.Status.PATPath
	return t
}

// createToken creates a NomadToken (Secret of the same name) with one scope and a one-day lifetime
// when rot renews fast, the default 30 days otherwise. On cleanup it deletes it and checks that no
// PAT of the tenant is left active.
func (t *tenant) createToken(ctx SpecContext, name string, rot v1alpha1.Rotation) client.ObjectKey {
	GinkgoHelper()
	tok := harness.NomadToken(t.ns, name, tenantConnection, rot)
	Expect(controlPl.Client.Create(ctx, tok)).To(Succeed())
	key := client.ObjectKeyFromObject(tok)
	DeferCleanup(func(ctx SpecContext) {
		Expect(client.IgnoreNotFound(controlPl.Client.Delete(ctx, tok))).To(Succeed())
		eventually(ctx, func() error {
			return controlPl.Client.Get(ctx, key, &v1alpha1.NomadToken{})
		}).Should(Satisfy(apierrors.IsNotFound), "the NomadToken is gone")
		st, err := stub.State(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.ActivePATs(t.user)).To(BeEmpty(), "no PAT outlives its NomadToken")
	})
	return key
}

// secretToken reads the raw PAT and its token-id annotation from the token's Secret.
func (t *tenant) secretToken(ctx context.Context, key client.ObjectKey) ([]byte, string) {
	GinkgoHelper()
	var s corev1.Secret
	Expect(controlPl.Client.Get(ctx, key, &s)).To(Succeed())
	return s.Data[v1alpha1.DefaultSecretKey], s.Annotations[v1alpha1.AnnotationTokenID]
}

// expectNoLeaks scans the manager log for raw PATs and the tenant's password.
func (t *tenant) expectNoLeaks() {
	GinkgoHelper()
	leaks, err := harness.ScanFile(manager.LogPath, t.password)
	Expect(err).NotTo(HaveOccurred())
	Expect(leaks).To(BeEmpty(), "secret #0 is the bot password")
}

// waitReady waits until the NomadToken is Ready for its current generation.
func waitReady(ctx context.Context, key client.ObjectKey) *v1alpha1.NomadToken {
	GinkgoHelper()
	tok := &v1alpha1.NomadToken{}
	eventually(ctx, func(g Gomega) {
		g.Expect(controlPl.Client.Get(ctx, key, tok)).To(Succeed())
		g.Expect(readyOf(tok.Status.Conditions)).To(HaveField("Status", metav1.ConditionTrue), "Ready condition")
		g.Expect(tok.Status.ObservedGeneration).To(Equal(tok.Generation))
	}).Should(Succeed())
	return tok
}

// waitRotation waits until the NomadToken's PAT is no longer prev: until its renewal time, plus slack.
func waitRotation(ctx context.Context, key client.ObjectKey, prev string) *v1alpha1.NomadToken {
	GinkgoHelper()
	tok := &v1alpha1.NomadToken{}
	Expect(controlPl.Client.Get(ctx, key, tok)).To(Succeed())
	Expect(tok.Status.TokenID).To(Equal(prev))
	Expect(tok.Status.RenewalTime).NotTo(BeNil())
	patience := time.Until(tok.Status.RenewalTime.Time) + statusPrecision + reactionSlack
	Eventually(ctx, func(g Gomega) {
		g.Expect(controlPl.Client.Get(ctx, key, tok)).To(Succeed())
		g.Expect(tok.Status.TokenID).NotTo(Equal(prev))
	}).WithTimeout(max(patience, time.Second)).WithPolling(100*time.Millisecond).Should(Succeed(),
		"rotation of PAT %s, due at %s", prev, tok.Status.RenewalTime.Format(time.RFC3339))
	return tok
}

// stopRenewing drops spec.rotation.renewBefore, a non-material change: no new PAT, renewal at 2/3 of
// the lifetime again.
func stopRenewing(ctx context.Context, key client.ObjectKey) {
	GinkgoHelper()
	tok := &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"rotation":{"renewBefore":null}}}`))
	Expect(controlPl.Client.Patch(ctx, tok, patch)).To(Succeed())
	Expect(tok.Spec.Rotation.RenewBefore).To(BeNil())
}

// tokenEvents returns the notes of the NomadToken's Events by reason, oldest first.
func tokenEvents(ctx context.Context, g Gomega, key client.ObjectKey) map[string][]string {
	var list eventsv1.EventList
	g.Expect(controlPl.Client.List(ctx, &list, client.InNamespace(key.Namespace))).To(Succeed())
	items := slices.DeleteFunc(list.Items, func(e eventsv1.Event) bool {
		return e.Regarding.Kind != "NomadToken" || e.Regarding.Name != key.Name
	})
	slices.SortStableFunc(items, func(a, b eventsv1.Event) int { return a.EventTime.Compare(b.EventTime.Time) })
	out := map[string][]string{}
	for _, e := range items {
		out[e.Reason] = append(out[e.Reason], e.Note)
	}
	return out
}

// probeSample is what the consumer probe saw once.
type probeSample struct {
	At time.Time
	// SecretTokenID is the Secret's token-id annotation, the PAT it held.
	SecretTokenID string
	// Active are the tenant's active PATs in the stand-in.
	Active []string
	// Problems are what was wrong: a PAT NOMAD rejects, Ready not True, more than two active PATs.
	Problems []string
}

// consumerProbe acts like a pod that reads its token from the Secret on every use.
type consumerProbe struct {
	started  time.Time
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	// samples and raws belong to the probe's goroutine until done is closed.
	samples []probeSample
	raws    map[string][]byte
}

// startConsumerProbe samples every probeEvery until stopAt: it reads the Secret through the API
// server, authenticates with its PAT through NOMAD's own API (harness.ProbePAT), and reads the
// NomadToken's Ready condition and the stand-in's active PATs of the tenant. If the spec fails
// before stopAt, the probe stops then and its samples go into the report.
func startConsumerProbe(ctx context.Context, t *tenant, key client.ObjectKey) *consumerProbe {
	p := &consumerProbe{started: time.Now(), stop: make(chan struct{}), done: make(chan struct{}), raws: map[string][]byte{}}
	DeferCleanup(func() {
		p.halt()
		if CurrentSpecReport().Failed() {
			AddReportEntry("consumer probe", p.report())
		}
	})
	go everyUntil(ctx, p.stop, p.done, probeEvery, func() { p.samples = append(p.samples, p.sample(ctx, t, key)) })
	return p
}

// everyUntil calls f at once and then every interval until stop is closed or ctx ends, then closes
// done: the loop of the e2e specs' background consumers of a PAT.
func everyUntil(ctx context.Context, stop <-chan struct{}, done chan<- struct{}, every time.Duration, f func()) {
	defer GinkgoRecover()
	defer close(done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		f()
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// stopAt lets the probe run until at, stops it and returns its samples and the raw PATs it read by id.
func (p *consumerProbe) stopAt(ctx context.Context, at time.Time) ([]probeSample, map[string][]byte) {
	GinkgoHelper()
	select {
	case <-time.After(time.Until(at)):
	case <-ctx.Done():
	}
	p.halt()
	Expect(ctx.Err()).NotTo(HaveOccurred(), "the spec ran out of time while probing")
	return p.samples, p.raws
}

// halt stops the probe and waits for its goroutine; calling it again does nothing.
func (p *consumerProbe) halt() {
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
}

// report is one line per sample, offset from the probe's start: the PAT in the Secret, the active
// PATs and the problems. Only ids, never raw PATs.
func (p *consumerProbe) report() string {
	var b strings.Builder
	for _, s := range p.samples {
		fmt.Fprintf(&b, "+%5.1fs secret=%s active=%v", s.At.Sub(p.started).Seconds(), s.SecretTokenID, s.Active)
		for _, pr := range s.Problems {
			fmt.Fprintf(&b, "\n         PROBLEM: %s", pr)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (p *consumerProbe) sample(ctx context.Context, t *tenant, key client.ObjectKey) probeSample {
	s := probeSample{At: time.Now()}
	problem := func(format string, args ...any) { s.Problems = append(s.Problems, fmt.Sprintf(format, args...)) }

	var secret corev1.Secret
	if err := controlPl.Client.Get(ctx, key, &secret); err != nil {
		problem("read the Secret: %v", err)
	} else {
		raw := secret.Data[v1alpha1.DefaultSecretKey]
		s.SecretTokenID = secret.Annotations[v1alpha1.AnnotationTokenID]
		p.raws[s.SecretTokenID] = raw
		res, err := harness.ProbePAT(ctx, stub.APIURL, t.patPath, raw)
		switch {
		case err != nil:
			problem("probe NOMAD with the Secret's PAT %s: %v", s.SecretTokenID, err)
		case !res.Valid():
			problem("NOMAD answered %s for the Secret's PAT %s %s", res, s.SecretTokenID, harness.Describe(raw))
		}
	}

	var tok v1alpha1.NomadToken
	if err := controlPl.Client.Get(ctx, key, &tok); err != nil {
		problem("read the NomadToken: %v", err)
	} else if ready := readyOf(tok.Status.Conditions); ready.Status != metav1.ConditionTrue {
		problem("Ready=%s %s: %s", ready.Status, ready.Reason, ready.Message)
	}

	st, err := stub.State(ctx)
	if err != nil {
		problem("read the stand-in's state: %v", err)
		return s
	}
	s.Active = idsOf(st.ActivePATs(t.user))
	if n := len(s.Active); n < 1 || n > 2 {
		problem("%d active PATs %v, want 1 or 2", n, s.Active)
	}
	return s
}

// secretSequence lists the PATs the Secret held across the samples, each once, in order.
func secretSequence(samples []probeSample) []string {
	var seq []string
	for _, s := range samples {
		if s.SecretTokenID != "" && (len(seq) == 0 || seq[len(seq)-1] != s.SecretTokenID) {
			seq = append(seq, s.SecretTokenID)
		}
	}
	return seq
}

func idsOf(pats []harness.StubPAT) []string {
	ids := []string{}
	for _, p := range pats {
		ids = append(ids, p.ID)
	}
	return ids
}

// created is when the stand-in created a PAT.
func created(st *harness.StubState, user, id string) time.Time {
	GinkgoHelper()
	p, ok := st.PAT(user, id)
	Expect(ok).To(BeTrue(), "PAT %s is in the stand-in", id)
	at, err := harness.ParseStubTime(p.CreatedAt)
	Expect(err).NotTo(HaveOccurred())
	return at
}

// revokedAt is when the stand-in revoked a PAT; it fails if the PAT is not revoked.
func revokedAt(st *harness.StubState, user, id string) time.Time {
	GinkgoHelper()
	p, ok := st.PAT(user, id)
	Expect(ok).To(BeTrue(), "PAT %s is in the stand-in", id)
	Expect(p.Revoked).To(BeTrue(), "PAT %s is revoked", id)
	Expect(p.RevokedAt).NotTo(BeNil())
	at, err := harness.ParseStubTime(*p.RevokedAt)
	Expect(err).NotTo(HaveOccurred())
	return at
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
