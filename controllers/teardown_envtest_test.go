package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// Teardown in any order: the in-use finalizer keeps a NomadConnection and its Secrets while tokens
// need them. (The e2e suite does the same with a real namespace deletion and garbage collection.)
var _ = Describe("Teardown", func() {
	var t *tenant
	BeforeEach(func() { t = newTenant() })

	connKey := func() client.ObjectKey { return client.ObjectKey{Namespace: t.ns, Name: "oasis"} }
	credsKey := func() client.ObjectKey { return client.ObjectKey{Namespace: t.ns, Name: "nomad-bot"} }
	hasInUse := func(obj client.Object) func(Gomega) {
		return func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
			g.Expect(controllerutil.ContainsFinalizer(obj, v1alpha1.FinalizerInUse)).To(BeTrue(), "finalizers %v", obj.GetFinalizers())
		}
	}
	gone := func(obj client.Object) func() bool {
		return func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)) }
	}

	It("holds the connection and its credentials Secret only while a token needs them", func() {
		conn := &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "oasis"}}
		creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "nomad-bot"}}
		Consistently(func() []string { _ = k8s.Get(ctx, connKey(), conn); return conn.Finalizers }, "1s").Should(BeEmpty(),
			"a connection nothing uses carries no finalizer")

		tok := t.token("user")
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		waitReady(tok)
		Eventually(hasInUse(conn)).Should(Succeed())
		Eventually(hasInUse(creds)).Should(Succeed())
		Expect(get(conn).(*v1alpha1.NomadConnection).Status.InUseSecrets).To(Equal([]string{"nomad-bot"}))

		deleteAndWait(tok)
		Eventually(func() []string { _ = k8s.Get(ctx, connKey(), conn); return conn.Finalizers }).Should(BeEmpty())
		Eventually(func() []string { _ = k8s.Get(ctx, credsKey(), creds); return creds.Finalizers }).Should(BeEmpty())
	})

	It("keeps a connection deleted while a token uses it until that token is gone", func() {
		tok := t.token("user")
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		tok = waitReady(tok)
		conn := &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "oasis"}}
		Eventually(hasInUse(conn)).Should(Succeed())
		Expect(k8s.Delete(ctx, conn)).To(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(k8s.Get(ctx, connKey(), conn)).To(Succeed())
			g.Expect(conn.DeletionTimestamp).NotTo(BeNil())
			g.Expect(isReadyToken(get(tok).(*v1alpha1.NomadToken))).To(BeTrue())
		}, "2s").Should(Succeed())
		Expect(stub.Authenticates(rawToken(tok))).To(BeTrue())
		Expect(eventReasons(t.ns)).To(ContainElement(v1alpha1.EventDeletionWaiting))

		deleteAndWait(tok)
		Expect(t.activePATs()).To(BeEmpty())
		Eventually(gone(conn)).Should(BeTrue())
		creds := &corev1.Secret{}
		Eventually(func() []string { _ = k8s.Get(ctx, credsKey(), creds); return creds.Finalizers }).Should(BeEmpty())
	})

	It("revokes every PAT when Secret, connection and tokens are deleted in any order", func() {
		var toks []*v1alpha1.NomadToken
		for _, name := range []string{"a", "b", "c"} {
			tok := t.token(name)
			Expect(k8s.Create(ctx, tok)).To(Succeed())
			toks = append(toks, tok)
		}
		for _, tok := range toks {
			waitReady(tok)
		}
		Eventually(hasInUse(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "nomad-bot"}})).Should(Succeed())
		// A prune that deletes the credentials and the connection first.
		objs := []client.Object{
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "nomad-bot"}},
			&v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "oasis"}},
		}
		for _, tok := range toks {
			objs = append(objs, tok)
		}
		for _, obj := range objs {
			Expect(k8s.Delete(ctx, obj)).To(Succeed())
		}
		for _, obj := range objs {
			Eventually(gone(obj)).Should(BeTrue(), "%T %s stays", obj, obj.GetName())
		}
		Expect(t.activePATs()).To(BeEmpty())
		Expect(t.allPATs()).To(HaveLen(3))
	})

	// Issue 15, item 4: the credentials Secret moves from bot X to bot Y (the docs allow it). X's
	// replaced PAT waits in the revoke queue, and no connection logs in as X any more. Deleting the
	// token must revoke Y's PAT, which it can, and not wait up to a year for X's to expire.
	It("revokes the current PAT and does not wait for a replaced one whose owner no connection logs in as", func() {
		tok := t.token("user")
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		first := waitReady(tok)

		userY := uniqueName("bot")
		stub.AddUser(userY, botPassword)
		creds := &corev1.Secret{}
		Expect(k8s.Get(ctx, credsKey(), creds)).To(Succeed())
		creds.Data = map[string][]byte{"username": []byte(userY), "password": []byte(botPassword)}
		Expect(k8s.Update(ctx, creds)).To(Succeed())
		// A list judges only PATs created before the second it was requested in.
		time.Sleep(time.Second)
		forceVerification(t, "oasis")
		// The connection's check lists Y's PATs, without X's: the token gets a PAT of Y, and X's waits.
		second := &v1alpha1.NomadToken{}
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tok), second)).To(Succeed())
			g.Expect(second.Status.TokenID).NotTo(BeEmpty())
			g.Expect(second.Status.TokenID).NotTo(Equal(first.Status.TokenID))
			g.Expect(second.Status.RevokePending).To(ConsistOf(HaveField("ID", first.Status.TokenID)))
		}).Should(Succeed())
		Expect(ids(stub.ActivePATs(userY))).To(ConsistOf(second.Status.TokenID))
		abandonedBefore := abandonedPATs(t.ns, "oasis")

		deleteAndWait(tok)
		Expect(stub.ActivePATs(userY)).To(BeEmpty(), "the current PAT, Y's, must be revoked")
		Expect(ids(t.activePATs())).To(ConsistOf(first.Status.TokenID), "test premise: nothing the operator holds can revoke X's PAT")
		Expect(abandonedPATs(t.ns, "oasis")).To(Equal(abandonedBefore+1), "nomadtoken_pats_revoke_abandoned_total")
		Expect(eventReasons(t.ns)).To(ContainElement(v1alpha1.EventRevokeAbandoned))
		conn := &v1alpha1.NomadConnection{}
		Expect(k8s.Get(ctx, connKey(), conn)).To(Succeed())
		Expect(conn.Status.AbandonedPATs).To(ConsistOf(And(HaveField("ID", first.Status.TokenID),
			HaveField("NomadToken", t.ns+"/user"), HaveField("ExpiresAt", Not(BeNil())))))
	})

	// Issue 15, item 6: a rename to a Secret someone else owns is blocked (SecretConflict), so the
	// PAT stays in the Secret at status.secretName. Retain must release that one: garbage collection
	// would take the only copy of the live PAT with it.
	It("releases, with deletionPolicy Retain, the Secret that holds the PAT and not the one a blocked rename names", func() {
		tok := t.token("renamed", func(tok *v1alpha1.NomadToken) { tok.Spec.DeletionPolicy = v1alpha1.DeletionRetain })
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		tok = waitReady(tok)
		raw := rawToken(tok)
		theirs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "someone-elses"},
			StringData: map[string]string{"token": "someone else's"}}
		Expect(k8s.Create(ctx, theirs)).To(Succeed())
		tok.Spec.Secret.Name = theirs.Name
		Expect(k8s.Update(ctx, tok)).To(Succeed())
		Expect(waitReason(tok, v1alpha1.ReasonSecretConflict).Status.SecretName).To(Equal("renamed"))

		deleteAndWait(tok)
		held := &corev1.Secret{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: "renamed"}, held)).To(Succeed())
		Expect(held.OwnerReferences).To(BeEmpty(), "garbage collection must not take the only copy of the retained PAT")
		Expect(held.Labels).NotTo(HaveKey(v1alpha1.LabelManagedBy))
		Expect(held.Labels).To(HaveKeyWithValue(v1alpha1.LabelRetained, "true"))
		Expect(string(held.Data["token"])).To(Equal(raw))
		Expect(ids(t.activePATs())).To(ConsistOf(tok.Status.TokenID))

		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(theirs), theirs)).To(Succeed())
		Expect(theirs.Labels).To(BeEmpty(), "a Secret the token does not own is never touched")
		Expect(string(theirs.Data["token"])).To(Equal("someone else's"))
	})

	It("deletes a connection nothing uses at once", func() {
		Expect(k8s.Create(ctx, t.connection("spare"))).To(Succeed())
		spare := &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "spare"}}
		Expect(k8s.Delete(ctx, spare)).To(Succeed())
		Eventually(gone(spare)).Should(BeTrue())
	})
})

func isReadyToken(tok *v1alpha1.NomadToken) bool {
	for _, c := range tok.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

var _ = Describe("Orphan sweep", func() {
	It("lists in the connection's status a PAT with the operator's marker that no NomadToken accounts for", func() {
		t := newTenant()
		nc, err := nomad.New(nomad.Config{URL: stub.APIRoot(stubHTTP.URL), Username: t.user, Password: botPassword})
		Expect(err).NotTo(HaveOccurred())
		// What a NomadToken whose finalizer was removed by hand leaves behind.
		issued, err := nc.Create(ctx, nomad.CreateRequest{Name: "left-behind", Description: "[nomad-token-operator 0badc0de-0123456789ab]",
			Scopes: []string{"uploads:read"}, ExpiresInDays: ptr.To(30)})
		Expect(err).NotTo(HaveOccurred())
		// An hour later (the sweep never judges younger PATs), at the connection's next check.
		stubClock.Advance(2 * time.Hour)
		DeferCleanup(stubClock.Advance, -2*time.Hour)
		forceVerification(t, "oasis")
		Eventually(func(g Gomega) {
			conn := &v1alpha1.NomadConnection{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: "oasis"}, conn)).To(Succeed())
			g.Expect(conn.Status.OrphanedPATs).To(HaveLen(1))
			g.Expect(conn.Status.OrphanedPATs[0].ID).To(Equal(issued.PAT.ID))
		}).Should(Succeed())
		Expect(ids(t.activePATs())).To(ContainElement(issued.PAT.ID), "dry-run, the default, revokes nothing")
		Expect(eventReasons(t.ns)).To(ContainElement(v1alpha1.EventOrphansFound))
		Expect(nc.Revoke(ctx, issued.PAT.ID)).To(Succeed())
	})
})

// abandonedPATs reads nomadtoken_pats_revoke_abandoned_total for the NomadConnection ns/name.
func abandonedPATs(ns, name string) float64 {
	GinkgoHelper()
	families, err := crmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "nomadtoken_pats_revoke_abandoned_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == v1alpha1.KindNomadConnection && labels["namespace"] == ns && labels["name"] == name {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
