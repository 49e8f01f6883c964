package controllers_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// Every NomadToken of a connection goes through one pooled NOMAD client: one cached access token
// and one rate limiter (issue 7). Both are counted where they matter, at the stand-in, per bot user.
var _ = Describe("Connection sharing", func() {
	// manyTokensTimeout bounds the waits for many tokens at once. At the default 5 requests/s, 100
	// creates alone take 18 s; the timeout is generous for a loaded machine but stays well below
	// the operator's access-token refresh time (270 s of the stand-in's 300 s), so a spec that
	// passes its waits cannot have crossed into a second access-token lifetime by itself.
	const manyTokensTimeout = 2 * time.Minute

	It("100 tokens on one connection cause one login per access-token lifetime, not one per token", func() {
		t := newTenant()
		By("the connection check logged in through the pooled client")
		Expect(loginsOf(t.user)).To(Equal(1))

		// Rotate strategy: a rotation replaces the PAT in one call and keeps 100 active PATs, which
		// is NOMAD's default cap per user (Overlap would need a 101st for the grace period).
		toks := createTokens(t, "many", 100, func(tok *v1alpha1.NomadToken) {
			tok.Spec.Rotation.Strategy = v1alpha1.RotationRotate
		})
		// Runs before createTokens' cleanup: 100 revokes at 5/s would add 20 s to the spec.
		DeferCleanup(setRateLimit, t, "oasis", &v1alpha1.RateLimit{QPS: 100, Burst: 100})
		ready := waitAllReady(t, len(toks), manyTokensTimeout)
		Expect(t.activePATs()).To(HaveLen(100))
		By("100 creates shared the connection check's access token")
		Expect(loginsOf(t.user)).To(Equal(1), "requests per op: %v", opsOf(t.user))
		Expect(opsOf(t.user)[nomadstub.OpCreate]).To(BeNumerically(">=", 100))

		By("a new connection check reuses it too")
		forceVerification(t, "oasis")
		Eventually(func(g Gomega) {
			conn := &v1alpha1.NomadConnection{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: "oasis"}, conn)).To(Succeed())
			g.Expect(conn.Annotations).To(HaveKey("test/verify"))
			// 0 since the first check; nothing but a check sets it.
			g.Expect(conn.Status.ActiveTokens).To(HaveValue(Equal(int32(100))))
		}).Should(Succeed())
		Expect(loginsOf(t.user)).To(Equal(1))

		By("past the access-token lifetime, 10 rotations cost one login")
		// stubClock is both NOMAD's and the operator's clock: the cached access token is due for
		// refresh on the operator's side and expired on NOMAD's.
		past := nomadstub.DefaultAccessTokenTTL + time.Second
		stubClock.Advance(past)
		DeferCleanup(stubClock.Advance, -past)
		rotateAndWait(ready[:10], "lifetime-2")
		Expect(loginsOf(t.user)).To(Equal(2), "requests per op: %v", opsOf(t.user))

		By("access tokens dropped by NOMAD before their expiry: 10 more rotations cost one login")
		// The first call gets 401, logs in again and is retried (so NOMAD sees one rotate more than
		// there are rotations); every later call waits for that login or finds its token (a 401 on
		// the old token does not drop the new one), so this is exact too.
		stub.ExpireAccessTokens()
		rotateAndWait(ready[10:20], "revoked-at-keycloak")
		Expect(loginsOf(t.user)).To(Equal(3), "requests per op: %v", opsOf(t.user))
		Expect(opsOf(t.user)[nomadstub.OpRotate]).To(BeNumerically(">=", 20))
		fmt.Fprintf(GinkgoWriter, "requests of %s per operation: %v\n", t.user, opsOf(t.user))
	})

	It("the connection's rate limit holds (requests per second counted at the stand-in)", func() {
		const qps, burst = 5, 5
		t := newTenant()
		// Everything the connection sends from here on goes through the limiter set below: the new
		// rate limit builds a new pooled client, and the connection is checked again with it.
		since := time.Now()
		conn := setRateLimit(t, "oasis", &v1alpha1.RateLimit{QPS: qps, Burst: burst})
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(conn), conn)).To(Succeed())
			g.Expect(conn.Status.ObservedGeneration).To(Equal(conn.Generation))
			g.Expect(meta.IsStatusConditionTrue(conn.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
		}).Should(Succeed())

		By("40 tokens created, 10 rotated, all deleted: create, rotate and revoke behind login, openapi and list")
		toks := createTokens(t, "limited", 40, func(tok *v1alpha1.NomadToken) {
			tok.Spec.Rotation.Strategy = v1alpha1.RotationRotate
		})
		ready := waitAllReady(t, len(toks), manyTokensTimeout)
		rotateAndWait(ready[:10], "throttled")
		deleteAllTokens(t, manyTokensTimeout)

		// The user's requests and the anonymous ones (openapi.json, which the new client's path
		// detection fetches without credentials); specs run one at a time and every earlier one
		// cleaned up, so nothing else talks to the stand-in now.
		var reqs []nomadstub.Request
		ops := map[string]int{}
		for _, r := range stub.RequestLog() {
			if !r.At.Before(since) && (r.User == t.user || r.User == "") {
				reqs = append(reqs, r)
				ops[r.Op]++
			}
		}
		fmt.Fprintf(GinkgoWriter, "requests per operation: %v\n", ops)
		Expect(ops).To(And(HaveKey(nomadstub.OpLogin), HaveKey(nomadstub.OpOpenAPI), HaveKey(nomadstub.OpList),
			HaveKey(nomadstub.OpCreate), HaveKey(nomadstub.OpRotate), HaveKey(nomadstub.OpRevoke)))
		// Many more requests than one window may hold, so a limiter that let them through
		// unthrottled would show (unthrottled, this operator sends 20-40 requests a second).
		Expect(len(reqs)).To(BeNumerically(">=", 90))

		// A token bucket lets through at most burst + qps*w requests in any span of w seconds. The
		// bound is on the times the limiter released them; the stand-in sees them later by however
		// long each took to arrive, which may differ by up to 1/qps (200 ms) before a 1 s window
		// could hold one more. No assertion here is about how long anything took.
		peak, from := peakPerWindow(reqs, time.Second)
		fmt.Fprintf(GinkgoWriter, "%d requests, at most %d in any 1 s window: %s\n", len(reqs), peak, describeWindow(reqs[from:from+peak]))
		Expect(peak).To(BeNumerically("<=", burst+qps), "requests in the busiest 1 s window: %s", describeWindow(reqs[from:from+peak]))
	})
})

// setRateLimit sets the named connection's spec.rateLimit and returns the connection.
func setRateLimit(t *tenant, name string, rl *v1alpha1.RateLimit) *v1alpha1.NomadConnection {
	GinkgoHelper()
	conn := &v1alpha1.NomadConnection{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: name}, conn)).To(Succeed())
	patch := client.MergeFrom(conn.DeepCopy())
	conn.Spec.RateLimit = rl
	Expect(k8s.Patch(ctx, conn, patch)).To(Succeed())
	return conn
}

// loginsOf counts the password grants the stand-in received for user.
func loginsOf(user string) int { return opsOf(user)[nomadstub.OpLogin] }

// opsOf counts the stand-in's requests for user by operation.
func opsOf(user string) map[string]int {
	out := map[string]int{}
	for _, r := range stub.Requests(user) {
		out[r.Op]++
	}
	return out
}

// createTokens creates n NomadTokens named prefix-0..n-1 on the tenant's connection "oasis", and
// deletes them all (waiting for their PATs' revocation) when the spec ends, before the tenant's own
// one-by-one cleanup runs.
func createTokens(t *tenant, prefix string, n int, mutate ...func(*v1alpha1.NomadToken)) []*v1alpha1.NomadToken {
	GinkgoHelper()
	DeferCleanup(deleteAllTokens, t, 2*time.Minute)
	toks := make([]*v1alpha1.NomadToken, n)
	for i := range toks {
		toks[i] = t.token(fmt.Sprintf("%s-%d", prefix, i), mutate...)
		Expect(k8s.Create(ctx, toks[i])).To(Succeed())
	}
	return toks
}

// waitAllReady waits until the tenant's n NomadTokens are all Ready (as waitReady means it) and
// returns them, sorted by name.
func waitAllReady(t *tenant, n int, timeout time.Duration) []*v1alpha1.NomadToken {
	GinkgoHelper()
	var out []*v1alpha1.NomadToken
	Eventually(func(g Gomega) {
		var list v1alpha1.NomadTokenList
		g.Expect(k8s.List(ctx, &list, client.InNamespace(t.ns))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(n))
		out = out[:0]
		notReady := 0
		for i := range list.Items {
			tok := &list.Items[i]
			if !isReady(tok) {
				notReady++
			}
			out = append(out, tok)
		}
		g.Expect(notReady).To(BeZero(), "NomadTokens not Ready yet")
	}).WithTimeout(timeout).WithPolling(500 * time.Millisecond).Should(Succeed())
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// isReady is waitReady's condition: Ready for the current generation, nothing pending.
func isReady(tok *v1alpha1.NomadToken) bool {
	return meta.IsStatusConditionTrue(tok.Status.Conditions, v1alpha1.ConditionReady) &&
		tok.Status.ObservedGeneration == tok.Generation && tok.Status.TokenID != "" &&
		tok.Status.PendingIssuance == nil && len(tok.Status.RevokePending) == 0
}

// rotateAndWait asks for a rotation of each token with the rotate annotation set to value, and
// waits until each has handled it with a new, Ready PAT.
func rotateAndWait(toks []*v1alpha1.NomadToken, value string) {
	GinkgoHelper()
	for _, tok := range toks {
		setAnnotation(tok, v1alpha1.AnnotationRotate, value)
	}
	Eventually(func(g Gomega) {
		for _, tok := range toks {
			fresh := &v1alpha1.NomadToken{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tok), fresh)).To(Succeed())
			g.Expect(fresh.Status.RotateRequestHandled).To(Equal(value), tok.Name)
			g.Expect(fresh.Status.TokenID).NotTo(Equal(tok.Status.TokenID), tok.Name)
			g.Expect(isReady(fresh)).To(BeTrue(), "%s: %v", tok.Name, fresh.Status.Conditions)
		}
	}).WithTimeout(time.Minute).Should(Succeed())
}

// deleteAllTokens deletes the tenant's NomadTokens at once and waits until their finalizers (which
// revoke the PATs) let them go.
func deleteAllTokens(t *tenant, timeout time.Duration) {
	GinkgoHelper()
	Expect(k8s.DeleteAllOf(ctx, &v1alpha1.NomadToken{}, client.InNamespace(t.ns))).To(Succeed())
	Eventually(func(g Gomega) {
		var list v1alpha1.NomadTokenList
		g.Expect(k8s.List(ctx, &list, client.InNamespace(t.ns))).To(Succeed())
		g.Expect(list.Items).To(BeEmpty())
	}).WithTimeout(timeout).WithPolling(500 * time.Millisecond).Should(Succeed())
}

// peakPerWindow returns the most requests (sorted by arrival) in any half-open window [a, a+w),
// and the index of the first request of the busiest window; every window that matters starts at
// an arrival.
func peakPerWindow(reqs []nomadstub.Request, w time.Duration) (peak, from int) {
	j := 0
	for i := range reqs {
		for j < len(reqs) && reqs[j].At.Before(reqs[i].At.Add(w)) {
			j++
		}
		if j-i > peak {
			peak, from = j-i, i
		}
	}
	return peak, from
}

// describeWindow lists requests as operation@milliseconds after the first.
func describeWindow(reqs []nomadstub.Request) string {
	var b strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&b, "%s@%dms ", r.Op, r.At.Sub(reqs[0].At).Milliseconds())
	}
	if len(reqs) > 0 {
		fmt.Fprintf(&b, "(from %s)", reqs[0].At.Format(time.RFC3339Nano))
	}
	return b.String()
}

// TestPeakPerWindow checks the window count the rate-limit spec relies on; it needs no envtest.
func TestPeakPerWindow(t *testing.T) {
	t0 := time.Now()
	at := func(ms ...int) []nomadstub.Request {
		var out []nomadstub.Request
		for _, m := range ms {
			out = append(out, nomadstub.Request{At: t0.Add(time.Duration(m) * time.Millisecond)})
		}
		return out
	}
	if n, _ := peakPerWindow(nil, time.Second); n != 0 {
		t.Errorf("no requests: peak %d", n)
	}
	// 1000, 1100, 1200 and 1999 share a window; 2000 would not.
	if n, from := peakPerWindow(at(0, 100, 1000, 1100, 1200, 1999, 2000, 2500), time.Second); n != 4 || from != 2 {
		t.Errorf("peak %d from request %d, want 4 from request 2", n, from)
	}
	if n, _ := peakPerWindow(at(0, 0, 0, 999), time.Second); n != 4 {
		t.Errorf("simultaneous arrivals: peak %d, want 4", n)
	}
}
