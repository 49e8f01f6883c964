package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// sharedConnection is a ClusterNomadConnection of the platform team: its bot account is a stand-in
// user of its own, its credentials Secret lives in the operator's namespace.
type sharedConnection struct {
	name string
	user string
}

// newSharedConnection creates a Ready ClusterNomadConnection allowing what allowed says.
func newSharedConnection(allowed v1alpha1.AllowedNamespaces, policy *v1alpha1.ConnectionPolicy) *sharedConnection {
	GinkgoHelper()
	c := &sharedConnection{name: uniqueName("shared"), user: uniqueName("platform-bot")}
	stub.AddUser(c.user, botPassword)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: c.name + "-bot",
			Labels: map[string]string{v1alpha1.LabelCredentials: "true"}},
		StringData: map[string]string{"username": c.user, "password": botPassword},
	}
	Expect(k8s.Create(ctx, secret)).To(Succeed())
	conn := &v1alpha1.ClusterNomadConnection{
		ObjectMeta: metav1.ObjectMeta{Name: c.name},
		Spec: v1alpha1.ClusterNomadConnectionSpec{
			NomadConnectionSpec: v1alpha1.NomadConnectionSpec{
				URL:         stub.APIRoot(stubHTTP.URL),
				Credentials: v1alpha1.Credentials{SecretRef: v1alpha1.CredentialsSecretRef{Name: secret.Name}},
				Policy:      policy,
			},
			AllowedNamespaces: allowed,
		},
	}
	Expect(k8s.Create(ctx, conn)).To(Succeed())
	DeferCleanup(func() {
		// Its users first: the connection is held (in use) until their PATs are revoked.
		var tokens v1alpha1.NomadTokenList
		Expect(k8s.List(ctx, &tokens)).To(Succeed())
		for i := range tokens.Items {
			if tokens.Items[i].Spec.ConnectionRef.Name == c.name {
				deleteAndWait(&tokens.Items[i])
			}
		}
		deleteAndWait(conn)
		deleteAndWait(secret)
	})
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(conn), conn)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(conn.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue(), "%v", conn.Status.Conditions)
	}).Should(Succeed())
	return c
}

func (c *sharedConnection) object() *v1alpha1.ClusterNomadConnection {
	GinkgoHelper()
	conn := &v1alpha1.ClusterNomadConnection{}
	Expect(k8s.Get(ctx, client.ObjectKey{Name: c.name}, conn)).To(Succeed())
	return conn
}

// useShared points a NomadToken at the shared connection.
func (c *sharedConnection) useShared(tok *v1alpha1.NomadToken) {
	tok.Spec.ConnectionRef = v1alpha1.ConnectionRef{Kind: v1alpha1.KindClusterNomadConnection, Name: c.name}
}

// nomadCallsStayAt waits a moment and checks that the stand-in saw no request of any kind beyond
// before: a refused token must not cost NOMAD anything.
func nomadCallsStayAt(before map[string]int) {
	GinkgoHelper()
	Consistently(func() map[string]int { return stub.Calls() }, 2*time.Second, 200*time.Millisecond).Should(Equal(before))
}

func setNamespaceLabel(ns, key, value string) {
	GinkgoHelper()
	n := &corev1.Namespace{}
	Expect(k8s.Get(ctx, client.ObjectKey{Name: ns}, n)).To(Succeed())
	if value == "" {
		delete(n.Labels, key)
	} else {
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[key] = value
	}
	Expect(k8s.Update(ctx, n)).To(Succeed())
}

var _ = Describe("Tenancy", func() {
	It("does not let a token of team-b use team-a's NomadConnection", func() {
		teamA, teamB := newTenant(), newTenant()
		Expect(k8s.Create(ctx, teamA.connection("team-a-only"))).To(Succeed())
		before := stub.Calls()
		tok := teamB.token("intruder", func(t *v1alpha1.NomadToken) { t.Spec.ConnectionRef.Name = "team-a-only" })
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		got := waitReason(tok, v1alpha1.ReasonConnectionNotFound)
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring(teamB.ns))
		Expect(stub.PATs(teamA.user)).To(BeEmpty())
		Expect(stub.Calls()[nomadstub.OpCreate]).To(Equal(before[nomadstub.OpCreate]))
	})

	It("serves a ClusterNomadConnection to the namespaces it names or selects, and follows label changes both ways", func() {
		byName, bySelector, outsider := newTenant(), newTenant(), newTenant()
		setNamespaceLabel(bySelector.ns, "nomad-access", "true")
		shared := newSharedConnection(v1alpha1.AllowedNamespaces{
			Names:    []string{byName.ns},
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"nomad-access": "true"}},
		}, nil)

		named := byName.token("named", shared.useShared)
		selected := bySelector.token("selected", shared.useShared)
		Expect(k8s.Create(ctx, named)).To(Succeed())
		Expect(k8s.Create(ctx, selected)).To(Succeed())
		waitReady(named)
		selectedPAT := waitReady(selected).Status.TokenID
		Expect(stub.ActivePATs(shared.user)).To(HaveLen(2), "both PATs belong to the platform's bot account")

		By("a namespace neither named nor selected is refused, without a NOMAD call")
		before := stub.Calls()
		refused := outsider.token("refused", shared.useShared)
		Expect(k8s.Create(ctx, refused)).To(Succeed())
		cond := meta.FindStatusCondition(waitReason(refused, v1alpha1.ReasonConnectionNotAllowed).Status.Conditions, v1alpha1.ConditionReady)
		Expect(cond.Message).To(ContainSubstring(outsider.ns))
		nomadCallsStayAt(before)

		By("labelling the namespace lets its token in, without a restart")
		setNamespaceLabel(outsider.ns, "nomad-access", "true")
		waitReady(refused)

		By("removing the label shuts the selected namespace out: its PAT keeps working and is not renewed")
		setNamespaceLabel(bySelector.ns, "nomad-access", "")
		cond = meta.FindStatusCondition(waitReason(selected, v1alpha1.ReasonConnectionNotAllowed).Status.Conditions, v1alpha1.ConditionReady)
		Expect(cond.Message).To(And(ContainSubstring(selectedPAT), ContainSubstring("keeps working until"), ContainSubstring("not renewed")))
		Expect(ids(stub.ActivePATs(shared.user))).To(ContainElement(selectedPAT))
		Expect(authenticatesViaAPI(rawToken(selected))).To(BeTrue())

		By("a rotation asked for now is not carried out either")
		before = stub.Calls()
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(selected), selected)).To(Succeed())
		selected.Annotations = map[string]string{v1alpha1.AnnotationRotate: "now"}
		Expect(k8s.Update(ctx, selected)).To(Succeed())
		nomadCallsStayAt(before)
		Expect(get(selected).(*v1alpha1.NomadToken).Status.TokenID).To(Equal(selectedPAT))

		By("dropping the namespace from allowedNamespaces takes effect too")
		conn := shared.object()
		conn.Spec.AllowedNamespaces.Names = nil
		Expect(k8s.Update(ctx, conn)).To(Succeed())
		waitReason(named, v1alpha1.ReasonConnectionNotAllowed)

		By("the connection counts the NomadTokens that may use it (not the two shut out), and its PAT budget")
		Eventually(func() *int32 { return shared.object().Status.NomadTokens }).Should(Equal(ptr.To[int32](1)))
		st := shared.object().Status
		Expect(st.PATLimit).To(Equal(ptr.To[int32](100)))
		Expect(meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionNearPATLimit)).To(HaveField("Reason", v1alpha1.ReasonWithinPATLimit))
	})

	It("gives two teams sharing one ClusterNomadConnection different ceilings, with no NOMAD call for a violation", func() {
		teamA, teamB := newTenant(), newTenant()
		shared := newSharedConnection(v1alpha1.AllowedNamespaces{Names: []string{teamA.ns, teamB.ns}},
			&v1alpha1.ConnectionPolicy{MaxExpiresInDays: ptr.To[int32](90)})
		conn := shared.object()
		conn.Spec.NamespacePolicies = []v1alpha1.NamespacePolicy{{
			Namespaces: v1alpha1.AllowedNamespaces{Names: []string{teamB.ns}},
			Policy:     v1alpha1.ConnectionPolicy{MaxExpiresInDays: ptr.To[int32](30), MaxTokens: ptr.To[int32](1)},
		}}
		Expect(k8s.Update(ctx, conn)).To(Succeed())
		Eventually(func() int64 { return shared.object().Status.ObservedGeneration }).Should(Equal(conn.Generation))

		sixtyDays := func(tok *v1alpha1.NomadToken) { shared.useShared(tok); tok.Spec.ExpiresInDays = 60 }
		aToken := teamA.token("long", sixtyDays)
		Expect(k8s.Create(ctx, aToken)).To(Succeed())
		waitReady(aToken)

		before := stub.Calls()
		bToken := teamB.token("long", sixtyDays)
		Expect(k8s.Create(ctx, bToken)).To(Succeed())
		cond := meta.FindStatusCondition(waitReason(bToken, v1alpha1.ReasonPolicyViolation).Status.Conditions, v1alpha1.ConditionReady)
		Expect(cond.Message).To(ContainSubstring("spec.namespacePolicies[0].policy: spec.expiresInDays 60 exceeds policy.maxExpiresInDays 30"))
		nomadCallsStayAt(before)

		By("team-b's own maxTokens counts team-b's tokens only")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(bToken), bToken)).To(Succeed())
		bToken.Spec.ExpiresInDays = 30
		Expect(k8s.Update(ctx, bToken)).To(Succeed())
		waitReady(bToken)
		second := teamB.token("second", shared.useShared)
		Expect(k8s.Create(ctx, second)).To(Succeed())
		cond = meta.FindStatusCondition(waitReason(second, v1alpha1.ReasonPolicyViolation).Status.Conditions, v1alpha1.ConditionReady)
		Expect(cond.Message).To(ContainSubstring("spec.namespacePolicies[0].policy: policy.maxTokens is 1"))
		another := teamA.token("another", shared.useShared)
		Expect(k8s.Create(ctx, another)).To(Succeed())
		waitReady(another)
	})

	It("records a PAT kept by deletionPolicy Retain on the ClusterNomadConnection that minted it", func() {
		t := newTenant()
		shared := newSharedConnection(v1alpha1.AllowedNamespaces{Names: []string{t.ns}}, nil)
		tok := t.token("kept", shared.useShared, func(tok *v1alpha1.NomadToken) { tok.Spec.DeletionPolicy = v1alpha1.DeletionRetain })
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		id := waitReady(tok).Status.TokenID
		DeferCleanup(func() { stub.RevokePAT(id) })
		deleteAndWait(tok)
		Expect(shared.object().Status.RetainedPATs).To(ContainElement(HaveField("ID", id)))
		Expect(ids(stub.ActivePATs(shared.user))).To(ContainElement(id), "Retain keeps the PAT active")
	})

	It("refuses a token over a policy ceiling by name and limit, with no NOMAD call", func() {
		t := newTenant()
		oasis := &v1alpha1.NomadConnection{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: "oasis"}, oasis)).To(Succeed())
		oasis.Spec.Policy = &v1alpha1.ConnectionPolicy{
			AllowedScopes:    []string{"uploads:read"},
			MaxExpiresInDays: ptr.To[int32](30),
			MaxTokens:        ptr.To[int32](1),
		}
		Expect(k8s.Update(ctx, oasis)).To(Succeed())
		Eventually(func() int64 { return get(oasis).(*v1alpha1.NomadConnection).Status.ObservedGeneration }).Should(Equal(oasis.Generation))

		first := t.token("first", func(tok *v1alpha1.NomadToken) { tok.Spec.Scopes = []string{"uploads:read"} })
		Expect(k8s.Create(ctx, first)).To(Succeed())
		waitReady(first)

		cases := []struct {
			name, message string
			mutate        func(*v1alpha1.NomadToken)
		}{
			{"scope", "spec.scopes uploads:write not in policy.allowedScopes [uploads:read]", func(tok *v1alpha1.NomadToken) {}},
			{"lifetime", "spec.expiresInDays 90 exceeds policy.maxExpiresInDays 30", func(tok *v1alpha1.NomadToken) {
				tok.Spec.Scopes, tok.Spec.ExpiresInDays = []string{"uploads:read"}, 90
			}},
			{"count", "policy.maxTokens is 1", func(tok *v1alpha1.NomadToken) { tok.Spec.Scopes = []string{"uploads:read"} }},
		}
		for _, c := range cases {
			By("a violation of the " + c.name + " ceiling")
			before := stub.Calls()
			tok := t.token("over-"+c.name, c.mutate)
			Expect(k8s.Create(ctx, tok)).To(Succeed())
			cond := meta.FindStatusCondition(waitReason(tok, v1alpha1.ReasonPolicyViolation).Status.Conditions, v1alpha1.ConditionReady)
			Expect(cond.Message).To(ContainSubstring(c.message))
			nomadCallsStayAt(before)
			Expect(t.allPATs()).To(HaveLen(1), "only the first token's PAT exists")
			Expect(k8s.Delete(ctx, tok)).To(Succeed())
		}

		By("a place freed under maxTokens goes to the token waiting for it")
		waiting := t.token("waiting", func(tok *v1alpha1.NomadToken) { tok.Spec.Scopes = []string{"uploads:read"} })
		Expect(k8s.Create(ctx, waiting)).To(Succeed())
		waitReason(waiting, v1alpha1.ReasonPolicyViolation)
		deleteAndWait(first)
		waitReady(waiting)

		By("tightening the policy: the live PAT is kept, not renewed, and the violation reported")
		live := get(waiting).(*v1alpha1.NomadToken).Status.TokenID
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(oasis), oasis)).To(Succeed())
		oasis.Spec.Policy.MaxExpiresInDays = ptr.To[int32](7)
		Expect(k8s.Update(ctx, oasis)).To(Succeed())
		cond := meta.FindStatusCondition(waitReason(waiting, v1alpha1.ReasonPolicyViolation).Status.Conditions, v1alpha1.ConditionReady)
		Expect(cond.Message).To(And(ContainSubstring("policy.maxExpiresInDays 7"), ContainSubstring(live), ContainSubstring("not renewed")))
		Expect(ids(t.activePATs())).To(ContainElement(live))

		By("a spec that complies again is served with a compliant PAT, and the old one revoked")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(waiting), waiting)).To(Succeed())
		waiting.Spec.ExpiresInDays = 7
		Expect(k8s.Update(ctx, waiting)).To(Succeed())
		fresh := waitReady(waiting)
		Expect(fresh.Status.TokenID).NotTo(Equal(live))
		Eventually(func() []string { return ids(t.activePATs()) }).ShouldNot(ContainElement(live))
	})
})
