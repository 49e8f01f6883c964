package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// Teardown is what kube-controller-manager's namespace and garbage-collector controllers do to the
// operator's objects, as in a cluster: a NomadToken's Secret goes by its ownerReference, a namespace
// is emptied in no particular order, and a GitOps prune deletes whatever it likes first. Whatever the
// order, every PAT must end revoked, which the specs read from the stand-in (NOMAD's own view), and
// nothing may hang in Terminating. Each spec has a tenant of its own (namespace, stand-in account,
// NomadConnection "oasis" with credentials Secret "nomad-bot").
const (
	// inUseFinalizer holds a NomadConnection while NomadTokens (or queued revocations) depend on it,
	// and its credentials and CA Secrets while such a connection needs them.
	inUseFinalizer = "tokens.nomad-operator.dev/in-use"
	// teardownPatience bounds a whole teardown: the namespace controller waits 5 s before it acts on
	// a namespace deletion and then retries a namespace whose objects still have finalizers about
	// every 8.5 s (half its 15 s estimate, plus one); the operator revokes in between.
	teardownPatience = 90 * time.Second
	// unusedPatience bounds the deletion of something nothing depends on: one reconcile, if any.
	unusedPatience = 5 * time.Second
	// teardownGrace is the Overlap grace period of the token rotated just before a teardown: long,
	// so that its previous PAT is certainly still queued for revocation when the teardown starts.
	teardownGrace = 10 * time.Minute
	// credentialsSecret is the credentials Secret of newTenant.
	credentialsSecret = harness.TenantCredentialsSecret
	// credentialsLabel opts a Secret in as NOMAD credentials or CA bundle (design.md, trust model).
	credentialsLabel = harness.CredentialsLabel
)

var _ = Describe("Teardown with a real kube-controller-manager", func() {
	It("deleting a NomadToken garbage-collects its Secret; with deletionPolicy Retain the Secret and the PAT stay", func(ctx SpecContext) {
		t := newTenant(ctx, "teardown-gc")
		deleteNamespaceAtCleanup(t.ns)
		revokeKey := createTeardownToken(ctx, t, "revoked", nil)
		retainKey := createTeardownToken(ctx, t, "retained", func(tok *v1alpha1.NomadToken) {
			tok.Spec.DeletionPolicy = v1alpha1.DeletionRetain
		})
		revoked, retained := waitReady(ctx, revokeKey), waitReady(ctx, retainKey)
		revokeRaw, revokeID := t.secretToken(ctx, revokeKey)
		retainRaw, retainID := t.secretToken(ctx, retainKey)
		Expect(revokeID).To(Equal(revoked.Status.TokenID))
		Expect(retainID).To(Equal(retained.Status.TokenID))
		// The Retain PAT outlives the spec; its account is the spec's own, but tidy up anyway.
		DeferCleanup(func(ctx SpecContext) { _ = stub.RevokePAT(ctx, retainID) })
		for _, key := range []client.ObjectKey{revokeKey, retainKey} {
			var s corev1.Secret
			Expect(controlPl.Client.Get(ctx, key, &s)).To(Succeed())
			Expect(metav1.GetControllerOf(&s)).NotTo(BeNil(), "Secret %s is owned by its NomadToken before the deletion", key.Name)
		}

		By("deleting the Retain NomadToken first")
		Expect(controlPl.Client.Delete(ctx, retained)).To(Succeed())
		awaitNotFound(ctx, retainKey, &v1alpha1.NomadToken{}, 30*time.Second)
		var kept corev1.Secret
		Expect(controlPl.Client.Get(ctx, retainKey, &kept)).To(Succeed(), "the Retain token's Secret is released, not deleted")
		Expect(ownerUIDs(&kept)).NotTo(ContainElement(retained.UID), "the operator removed its ownerReference")

		By("deleting the Revoke NomadToken: the garbage collector deletes its Secret")
		Expect(controlPl.Client.Delete(ctx, revoked)).To(Succeed())
		awaitNotFound(ctx, revokeKey, &v1alpha1.NomadToken{}, 30*time.Second)
		awaitNotFound(ctx, revokeKey, &corev1.Secret{}, 30*time.Second)

		By("checking that the garbage collector, which has acted since, left the released Secret alone")
		Consistently(ctx, func() error {
			return controlPl.Client.Get(ctx, retainKey, &corev1.Secret{})
		}).WithTimeout(2*time.Second).WithPolling(200*time.Millisecond).Should(Succeed(), "the Retain token's Secret stays")

		st, err := stub.State(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(idsOf(st.Users[t.user].PATs)).To(ConsistOf(revokeID, retainID), "no PAT beyond the two")
		Expect(idsOf(st.ActivePATs(t.user))).To(Equal([]string{retainID}), "the Revoke PAT is revoked, the Retain PAT active")
		active, err := stub.Authenticates(ctx, revokeRaw)
		Expect(err).NotTo(HaveOccurred())
		Expect(active).To(BeFalse(), "the deleted Revoke token's PAT no longer authenticates")
		active, err = stub.Authenticates(ctx, retainRaw)
		Expect(err).NotTo(HaveOccurred())
		Expect(active).To(BeTrue(), "the retained Secret's PAT still authenticates")
	})

	It("kubectl delete namespace with live tokens: the namespace goes and every PAT is revoked", func(ctx SpecContext) {
		t := newTenant(ctx, "teardown-namespace")
		w := liveTokens(ctx, t)

		By("deleting the Namespace, and nothing else")
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: t.ns}}
		Expect(controlPl.Client.Delete(ctx, ns)).To(Succeed())
		start := time.Now()
		Eventually(ctx, func() error { return namespaceGone(ctx, t.ns) }).
			WithTimeout(teardownPatience).WithPolling(500 * time.Millisecond).Should(Succeed())
		AddReportEntry("namespace gone after", time.Since(start).Round(100*time.Millisecond).String())

		w.expectAllRevoked(ctx)
	}, NodeTimeout(3*time.Minute))

	It("a GitOps prune in any order: credentials Secret and NomadConnection first, then the NomadTokens", func(ctx SpecContext) {
		t := newTenant(ctx, "teardown-prune")
		deleteNamespaceAtCleanup(t.ns)
		w := liveTokens(ctx, t)

		By("deleting the credentials Secret, the NomadConnection, then the NomadTokens, without waiting")
		c := controlPl.Client
		Expect(c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: credentialsSecret}})).To(Succeed())
		Expect(c.Delete(ctx, &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: tenantConnection}})).To(Succeed())
		for _, key := range w.tokens {
			Expect(c.Delete(ctx, &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})).To(Succeed())
		}
		start := time.Now()
		Eventually(ctx, func() error { return pruned(ctx, t.ns, w.tokens) }).
			WithTimeout(teardownPatience).WithPolling(500 * time.Millisecond).Should(Succeed())
		AddReportEntry("everything gone after", time.Since(start).Round(100*time.Millisecond).String())

		w.expectAllRevoked(ctx)
	}, NodeTimeout(3*time.Minute))

	It("a NomadConnection deleted while a token uses it stays until the token is gone", func(ctx SpecContext) {
		t := newTenant(ctx, "teardown-in-use")
		deleteNamespaceAtCleanup(t.ns)
		c := controlPl.Client
		key := createTeardownToken(ctx, t, "uploader", nil)
		tok := waitReady(ctx, key)
		id := tok.Status.TokenID
		connKey := client.ObjectKey{Namespace: t.ns, Name: tenantConnection}
		credsKey := client.ObjectKey{Namespace: t.ns, Name: credentialsSecret}

		By("waiting for the in-use finalizer on the connection and on its credentials Secret")
		eventually(ctx, func(g Gomega) {
			var conn v1alpha1.NomadConnection
			g.Expect(c.Get(ctx, connKey, &conn)).To(Succeed())
			g.Expect(conn.Finalizers).To(ContainElement(inUseFinalizer), "NomadConnection finalizers")
			var creds corev1.Secret
			g.Expect(c.Get(ctx, credsKey, &creds)).To(Succeed())
			g.Expect(creds.Finalizers).To(ContainElement(inUseFinalizer), "credentials Secret finalizers")
		}).Should(Succeed())

		By("deleting the NomadConnection")
		Expect(c.Delete(ctx, &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: tenantConnection}})).To(Succeed())
		var conn v1alpha1.NomadConnection
		Expect(c.Get(ctx, connKey, &conn)).To(Succeed(), "the connection stays while a token uses it")
		Expect(conn.DeletionTimestamp).NotTo(BeNil())
		Expect(conn.Finalizers).To(ContainElement(inUseFinalizer))
		Consistently(ctx, func(g Gomega) {
			g.Expect(c.Get(ctx, connKey, &conn)).To(Succeed(), "the connection stays while a token uses it")
			g.Expect(conn.Finalizers).To(ContainElement(inUseFinalizer))
			var now v1alpha1.NomadToken
			g.Expect(c.Get(ctx, key, &now)).To(Succeed())
			g.Expect(readyOf(now.Status.Conditions)).To(HaveField("Status", metav1.ConditionTrue), "the token stays Ready")
			g.Expect(now.Status.TokenID).To(Equal(id), "no new PAT")
			raw, secretID := t.secretToken(ctx, key)
			g.Expect(secretID).To(Equal(id))
			active, err := stub.Authenticates(ctx, raw)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(active).To(BeTrue(), "the Secret's PAT still authenticates")
		}).WithTimeout(3 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())

		By("deleting the NomadToken: its PAT is revoked, then the connection goes too")
		Expect(c.Delete(ctx, tok)).To(Succeed())
		awaitNotFound(ctx, key, &v1alpha1.NomadToken{}, 30*time.Second)
		st, err := stub.State(ctx)
		Expect(err).NotTo(HaveOccurred())
		pat, ok := st.PAT(t.user, id)
		Expect(ok).To(BeTrue())
		Expect(pat.Revoked).To(BeTrue(), "the token's PAT is revoked")
		Expect(st.ActivePATs(t.user)).To(BeEmpty())
		awaitNotFound(ctx, connKey, &v1alpha1.NomadConnection{}, 30*time.Second)

		By("checking that the credentials Secret, which nobody deleted, stays and is released")
		eventually(ctx, func(g Gomega) {
			var creds corev1.Secret
			g.Expect(c.Get(ctx, credsKey, &creds)).To(Succeed(), "the credentials Secret stays")
			g.Expect(creds.DeletionTimestamp).To(BeNil())
			g.Expect(creds.Finalizers).NotTo(ContainElement(inUseFinalizer))
		}).Should(Succeed())
	})

	// Issue 15, item 4: after the credentials Secret moved to another NOMAD user, the first user's PAT
	// waits in the revoke queue and no connection can revoke it. A namespace deletion must not wait
	// for it to expire (up to a year); it must revoke the current PAT, and say that it gave the other up.
	It("kubectl delete namespace after the credentials moved to another NOMAD user: the namespace goes, the current PAT is revoked, the old user's is abandoned", func(ctx SpecContext) {
		t := newTenant(ctx, "teardown-moved")
		c := controlPl.Client
		key := createTeardownToken(ctx, t, "uploader", nil)
		first := waitReady(ctx, key)
		// The old user's PAT outlives the spec: nothing the operator holds can revoke it.
		DeferCleanup(func(ctx SpecContext) { _ = stub.RevokePAT(ctx, first.Status.TokenID) })
		scraper := serviceAccountToken(ctx, operatorNamespace, "teardown-moved-scraper", "metrics-reader")

		By("moving the credentials Secret to another NOMAD user")
		newUser, newPassword := t.ns+"-bot2", t.ns+"-password2"
		_, err := stub.AddUser(ctx, newUser, newPassword)
		Expect(err).NotTo(HaveOccurred())
		var creds corev1.Secret
		Expect(c.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: credentialsSecret}, &creds)).To(Succeed())
		creds.Data = map[string][]byte{"username": []byte(newUser), "password": []byte(newPassword)}
		Expect(c.Update(ctx, &creds)).To(Succeed())
		var current v1alpha1.NomadToken
		eventually(ctx, func(g Gomega) {
			g.Expect(c.Get(ctx, key, &current)).To(Succeed())
			g.Expect(current.Status.TokenID).NotTo(BeEmpty())
			g.Expect(current.Status.TokenID).NotTo(Equal(first.Status.TokenID), "a PAT of the new user")
			g.Expect(current.Status.RevokePending).To(ConsistOf(HaveField("ID", first.Status.TokenID)), "the old user's PAT waits")
		}).Should(Succeed())
		st, err := stub.State(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(idsOf(st.ActivePATs(newUser))).To(ConsistOf(current.Status.TokenID))

		By("deleting the Namespace, and nothing else")
		Expect(c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: t.ns}})).To(Succeed())
		Eventually(ctx, func() error { return namespaceGone(ctx, t.ns) }).
			WithTimeout(teardownPatience).WithPolling(500 * time.Millisecond).Should(Succeed())

		st, err = stub.State(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.ActivePATs(newUser)).To(BeEmpty(), "the current PAT is revoked")
		Expect(idsOf(st.ActivePATs(t.user))).To(ConsistOf(first.Status.TokenID), "test premise: only the old user could revoke its PAT")
		eventually(ctx, func(g Gomega) {
			g.Expect(value(scrapeFamilies(g, ctx, scraper), "nomadtoken_pats_revoke_abandoned_total",
				map[string]string{"kind": v1alpha1.KindNomadConnection, "namespace": t.ns, "name": tenantConnection})).To(Equal(1.0))
		}).Should(Succeed())
	}, NodeTimeout(3*time.Minute))

	// Issue 15, item 6: a rename to a Secret someone else owns is blocked (SecretConflict), so the PAT
	// stays in the Secret at status.secretName; deleting the token with Retain must release that one,
	// or the garbage collector deletes the only copy of the retained PAT.
	It("deletionPolicy Retain after a rename blocked by SecretConflict: the Secret that holds the PAT survives garbage collection", func(ctx SpecContext) {
		t := newTenant(ctx, "teardown-retain-rename")
		deleteNamespaceAtCleanup(t.ns)
		c := controlPl.Client
		key := createTeardownToken(ctx, t, "kept", func(tok *v1alpha1.NomadToken) { tok.Spec.DeletionPolicy = v1alpha1.DeletionRetain })
		tok := waitReady(ctx, key)
		raw, id := t.secretToken(ctx, key)
		DeferCleanup(func(ctx SpecContext) { _ = stub.RevokePAT(ctx, id) })

		By("renaming the Secret to one someone else owns")
		theirs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "theirs"}, StringData: map[string]string{"token": "theirs"}}
		Expect(c.Create(ctx, theirs)).To(Succeed())
		Expect(c.Patch(ctx, tok, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"secret":{"name":"theirs"}}}`)))).To(Succeed())
		eventually(ctx, func(g Gomega) {
			g.Expect(c.Get(ctx, key, tok)).To(Succeed())
			g.Expect(readyOf(tok.Status.Conditions)).To(HaveField("Reason", v1alpha1.ReasonSecretConflict))
		}).Should(Succeed())
		Expect(tok.Status.SecretName).To(Equal(key.Name), "the PAT stays in the Secret it was in")

		By("deleting the NomadToken")
		Expect(c.Delete(ctx, tok)).To(Succeed())
		awaitNotFound(ctx, key, &v1alpha1.NomadToken{}, 30*time.Second)
		Consistently(ctx, func() error {
			return c.Get(ctx, key, &corev1.Secret{})
		}).WithTimeout(5*time.Second).WithPolling(200*time.Millisecond).Should(Succeed(), "the garbage collector leaves the Secret that holds the retained PAT")
		var kept corev1.Secret
		Expect(c.Get(ctx, key, &kept)).To(Succeed())
		Expect(ownerUIDs(&kept)).NotTo(ContainElement(tok.UID))
		Expect(bytes.Equal(kept.Data[v1alpha1.DefaultSecretKey], raw)).To(BeTrue(), "it holds the retained PAT")
		active, err := stub.Authenticates(ctx, raw)
		Expect(err).NotTo(HaveOccurred())
		Expect(active).To(BeTrue(), "the retained PAT still authenticates")
		Expect(c.Get(ctx, client.ObjectKeyFromObject(theirs), theirs)).To(Succeed())
		Expect(theirs.Labels).To(BeEmpty(), "a Secret the token does not own is never touched")
	})

	It("deleting a NomadConnection that nothing uses is immediate", func(ctx SpecContext) {
		t := newTenant(ctx, "teardown-unused")
		deleteNamespaceAtCleanup(t.ns)
		c := controlPl.Client
		connKey := client.ObjectKey{Namespace: t.ns, Name: tenantConnection}
		Expect(c.Delete(ctx, &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: tenantConnection}})).To(Succeed())
		awaitNotFound(ctx, connKey, &v1alpha1.NomadConnection{}, unusedPatience)
		Eventually(ctx, func(g Gomega) {
			var creds corev1.Secret
			g.Expect(c.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: credentialsSecret}, &creds)).To(Succeed())
			g.Expect(creds.Finalizers).NotTo(ContainElement(inUseFinalizer))
		}).WithTimeout(unusedPatience).WithPolling(200 * time.Millisecond).Should(Succeed())
	})
})

// liveWorld is a tenant's NomadTokens, all Ready, and what NOMAD minted for them.
type liveWorld struct {
	t      *tenant
	tokens []client.ObjectKey
	// ids are the PATs minted for the tokens; raws their raw tokens, read from the Secrets. Never hand
	// a raw token to a matcher, which would print it.
	ids  []string
	raws [][]byte
}

// liveTokens creates three NomadTokens and waits until they are Ready; the third is then rotated by
// annotation with the Overlap strategy and a long grace period, so that its previous PAT is active
// and queued for revocation: four active PATs in all, checked in the stand-in.
func liveTokens(ctx SpecContext, t *tenant) *liveWorld {
	GinkgoHelper()
	w := &liveWorld{t: t}
	for _, name := range []string{"alpha", "beta", "gamma"} {
		w.tokens = append(w.tokens, createTeardownToken(ctx, t, name, func(tok *v1alpha1.NomadToken) {
			tok.Spec.Rotation = v1alpha1.Rotation{Strategy: v1alpha1.RotationOverlap, GracePeriod: &metav1.Duration{Duration: teardownGrace}}
		}))
	}
	for _, key := range w.tokens {
		tok := waitReady(ctx, key)
		raw, id := t.secretToken(ctx, key)
		Expect(id).To(Equal(tok.Status.TokenID))
		w.ids, w.raws = append(w.ids, id), append(w.raws, raw)
	}

	By("rotating gamma (Overlap, 10 min grace), so that its previous PAT is queued for revocation")
	gamma := w.tokens[2]
	prev := w.ids[2]
	tok := &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: gamma.Namespace, Name: gamma.Name}}
	patch := client.RawPatch(types.MergePatchType,
		[]byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:"teardown"}}}`, v1alpha1.AnnotationRotate)))
	Expect(controlPl.Client.Patch(ctx, tok, patch)).To(Succeed())
	eventually(ctx, func(g Gomega) {
		g.Expect(controlPl.Client.Get(ctx, gamma, tok)).To(Succeed())
		g.Expect(tok.Status.TokenID).NotTo(Equal(prev), "a new PAT")
		g.Expect(tok.Status.PreviousTokenID).To(Equal(prev), "the replaced PAT waits for its grace period")
		g.Expect(readyOf(tok.Status.Conditions)).To(HaveField("Status", metav1.ConditionTrue))
	}).Should(Succeed())
	raw, id := t.secretToken(ctx, gamma)
	Expect(id).To(Equal(tok.Status.TokenID))
	w.ids, w.raws = append(w.ids, id), append(w.raws, raw)

	st, err := stub.State(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(idsOf(st.ActivePATs(t.user))).To(ConsistOf(w.ids), "four active PATs before the teardown: one per token, and gamma's previous one")
	return w
}

// expectAllRevoked checks in the stand-in that every PAT of the tenant's account is revoked, those
// known to the spec and any other the operator minted meanwhile, and that no raw token read from a
// Secret authenticates any more.
func (w *liveWorld) expectAllRevoked(ctx context.Context) {
	GinkgoHelper()
	st, err := stub.State(ctx)
	Expect(err).NotTo(HaveOccurred())
	all := st.Users[w.t.user].PATs
	Expect(idsOf(all)).To(ContainElements(w.ids))
	var active []string
	for _, p := range all {
		if !p.Revoked || p.Active {
			active = append(active, fmt.Sprintf("%s %q", p.ID, p.Name))
		}
	}
	Expect(active).To(BeEmpty(), "every PAT minted for the tokens is revoked (%d PATs in all)", len(all))
	for i, raw := range w.raws {
		ok, err := stub.Authenticates(ctx, raw)
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse(), "PAT %s %s no longer authenticates", w.ids[i], harness.Describe(raw))
	}
}

// createTeardownToken creates a NomadToken using the tenant's connection, with one scope, after
// mutate; its Secret has the token's name. Unlike tenant.createToken it registers no cleanup: the
// specs delete their tokens themselves, and deleteNamespaceAtCleanup takes what is left.
func createTeardownToken(ctx SpecContext, t *tenant, name string, mutate func(*v1alpha1.NomadToken)) client.ObjectKey {
	GinkgoHelper()
	tok := harness.NomadToken(t.ns, name, tenantConnection, v1alpha1.Rotation{})
	if mutate != nil {
		mutate(tok)
	}
	Expect(controlPl.Client.Create(ctx, tok)).To(Succeed())
	return client.ObjectKeyFromObject(tok)
}

// deleteNamespaceAtCleanup deletes the namespace when the spec ends, without waiting: the namespace
// controller takes it from there.
func deleteNamespaceAtCleanup(ns string) {
	DeferCleanup(func(ctx SpecContext) {
		err := controlPl.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		Expect(client.IgnoreNotFound(err)).To(Succeed())
	})
}

// awaitNotFound waits until the object of key is gone.
func awaitNotFound(ctx context.Context, key client.ObjectKey, obj client.Object, timeout time.Duration) {
	GinkgoHelper()
	Eventually(ctx, func() error {
		err := controlPl.Client.Get(ctx, key, obj)
		if err == nil {
			return fmt.Errorf("%T %s still exists (deletionTimestamp %v, finalizers %v)", obj, key, obj.GetDeletionTimestamp(), obj.GetFinalizers())
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}).WithTimeout(timeout).WithPolling(200*time.Millisecond).Should(Succeed(), "%T %s is gone", obj, key)
}

// namespaceGone is nil once the namespace is NotFound; until then the error says what is left in it.
func namespaceGone(ctx context.Context, ns string) error {
	var n corev1.Namespace
	err := controlPl.Client.Get(ctx, client.ObjectKey{Name: ns}, &n)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var conds []string
	for _, c := range n.Status.Conditions {
		if c.Status == corev1.ConditionTrue {
			conds = append(conds, fmt.Sprintf("%s: %s", c.Type, c.Message))
		}
	}
	return fmt.Errorf("namespace %s is %s (%s); left in it:\n%s", ns, n.Status.Phase, strings.Join(conds, "; "), leftovers(ctx, ns))
}

// pruned is nil once the tokens, their Secrets, the connection and its credentials Secret are all
// NotFound; until then the error says what is left.
func pruned(ctx context.Context, ns string, tokens []client.ObjectKey) error {
	c := controlPl.Client
	var left []string
	check := func(key client.ObjectKey, obj client.Object) {
		if err := c.Get(ctx, key, obj); !apierrors.IsNotFound(err) {
			left = append(left, fmt.Sprintf("%T %s (err %v)", obj, key.Name, err))
		}
	}
	check(client.ObjectKey{Namespace: ns, Name: tenantConnection}, &v1alpha1.NomadConnection{})
	check(client.ObjectKey{Namespace: ns, Name: credentialsSecret}, &corev1.Secret{})
	for _, key := range tokens {
		check(key, &v1alpha1.NomadToken{})
		check(key, &corev1.Secret{})
	}
	if len(left) == 0 {
		return nil
	}
	return fmt.Errorf("still there: %s; in detail:\n%s", strings.Join(left, ", "), leftovers(ctx, ns))
}

// leftovers describes the NomadTokens, NomadConnections and Secrets of a namespace: deletion state,
// finalizers, and the Ready condition. Condition messages never carry a raw PAT; they are redacted
// all the same.
func leftovers(ctx context.Context, ns string) string {
	c := controlPl.Client
	var b strings.Builder
	deleting := func(o client.Object) string {
		if o.GetDeletionTimestamp() != nil {
			return "deleting"
		}
		return "live"
	}
	var toks v1alpha1.NomadTokenList
	if err := c.List(ctx, &toks, client.InNamespace(ns)); err != nil {
		fmt.Fprintf(&b, "  list NomadTokens: %v\n", err)
	}
	for _, t := range toks.Items {
		r := readyOf(t.Status.Conditions)
		fmt.Fprintf(&b, "  NomadToken %s %s finalizers=%v Ready=%s %s: %s\n", t.Name, deleting(&t), t.Finalizers, r.Status, r.Reason, r.Message)
	}
	var conns v1alpha1.NomadConnectionList
	if err := c.List(ctx, &conns, client.InNamespace(ns)); err != nil {
		fmt.Fprintf(&b, "  list NomadConnections: %v\n", err)
	}
	for _, n := range conns.Items {
		r := readyOf(n.Status.Conditions)
		fmt.Fprintf(&b, "  NomadConnection %s %s finalizers=%v Ready=%s %s\n", n.Name, deleting(&n), n.Finalizers, r.Status, r.Reason)
	}
	var secrets corev1.SecretList
	if err := c.List(ctx, &secrets, client.InNamespace(ns)); err != nil {
		fmt.Fprintf(&b, "  list Secrets: %v\n", err)
	}
	for _, s := range secrets.Items {
		fmt.Fprintf(&b, "  Secret %s %s finalizers=%v owners=%v\n", s.Name, deleting(&s), s.Finalizers, ownerKinds(&s))
	}
	return harness.Redact(b.String())
}

func ownerUIDs(o client.Object) []types.UID {
	uids := []types.UID{}
	for _, r := range o.GetOwnerReferences() {
		uids = append(uids, r.UID)
	}
	return uids
}

func ownerKinds(o client.Object) []string {
	var out []string
	for _, r := range o.GetOwnerReferences() {
		out = append(out, r.Kind+"/"+r.Name)
	}
	return out
}
