package controllers_test

import (
	"net/http/httptest"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

var _ = Describe("NomadConnection", func() {
	var t *tenant
	BeforeEach(func() { t = newTenant() })

	waitConnection := func(name string, status metav1.ConditionStatus, reason string) *v1alpha1.NomadConnection {
		GinkgoHelper()
		return waitConnectionIn(t.ns, name, status, reason)
	}

	It("is Ready with the detected PAT path and the active PAT count, and warns about plain http", func() {
		tok := t.token("counted")
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		waitReady(tok)
		// A check happens on spec or annotation changes (and every check interval).
		conn := &v1alpha1.NomadConnection{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: "oasis"}, conn)).To(Succeed())
		conn.Annotations = map[string]string{"recheck": "1"}
		Expect(k8s.Update(ctx, conn)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(conn), conn)).To(Succeed())
			g.Expect(conn.Status.ActiveTokens).To(HaveValue(Equal(int32(1))))
		}).Should(Succeed())
		Expect(conn.Status.PATPath).To(Equal(v1alpha1.PATPathPats))
		insecure := meta.FindStatusCondition(conn.Status.Conditions, v1alpha1.ConditionInsecureTransport)
		Expect(insecure).NotTo(BeNil())
		Expect(insecure.Status).To(Equal(metav1.ConditionTrue))
		Expect(insecure.Reason).To(Equal(v1alpha1.ReasonPlainHTTP))
	})

	It("detects the /auth/pats prefix of the published NOMAD source", func() {
		opts := nomadstub.DefaultOptions()
		opts.DisablePats = true
		source, server := nomadstub.Start(opts)
		DeferCleanup(server.Close)
		source.AddUser(t.user, botPassword)
		conn := t.connection("source")
		conn.Spec.URL = source.APIRoot(server.URL) + "/v1/" // normalised by the operator
		Expect(k8s.Create(ctx, conn)).To(Succeed())
		got := waitConnection("source", metav1.ConditionTrue, v1alpha1.ReasonConnected)
		Expect(got.Status.PATPath).To(Equal(v1alpha1.PATPathAuthPats))

		tok := t.token("via-auth-pats", func(tok *v1alpha1.NomadToken) { tok.Spec.ConnectionRef.Name = "source" })
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		tok = waitReady(tok)
		Expect(source.Authenticates(rawToken(tok))).To(BeTrue())
		deleteAndWait(tok) // while this stand-in still runs, so the PAT is revoked in it
		Expect(source.ActivePATs(t.user)).To(BeEmpty())
	})

	It("reports a wrong password as CredentialsInvalid and a token waits for it", func() {
		Expect(k8s.Create(ctx, credentialsSecret(t.ns, "wrong", t.user, "nope"))).To(Succeed())
		conn := t.connection("wrong")
		conn.Spec.Credentials.SecretRef.Name = "wrong"
		Expect(k8s.Create(ctx, conn)).To(Succeed())
		got := waitConnection("wrong", metav1.ConditionFalse, v1alpha1.ReasonCredentialsInvalid)
		Expect(got.Status.Conditions).NotTo(ContainElement(HaveField("Message", ContainSubstring("nope"))))

		tok := t.token("waits", func(tok *v1alpha1.NomadToken) { tok.Spec.ConnectionRef.Name = "wrong" })
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		waitReason(tok, v1alpha1.ReasonConnectionNotReady)
		Expect(t.allPATs()).To(BeEmpty())
	})

	DescribeTable("reports what is wrong with its Secret",
		func(secret *corev1.Secret, reason string) {
			if secret != nil {
				secret.Namespace = t.ns
				Expect(k8s.Create(ctx, secret)).To(Succeed())
			}
			conn := t.connection("broken")
			conn.Spec.Credentials.SecretRef.Name = "broken-creds"
			Expect(k8s.Create(ctx, conn)).To(Succeed())
			waitConnection("broken", metav1.ConditionFalse, reason)
		},
		Entry("missing Secret", nil, v1alpha1.ReasonSecretNotFound),
		Entry("missing password key", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "broken-creds",
			Labels: map[string]string{v1alpha1.LabelCredentials: "true"}},
			StringData: map[string]string{"username": "bot"}}, v1alpha1.ReasonSecretKeyMissing),
		Entry("not labelled", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "broken-creds"},
			StringData: map[string]string{"username": "bot", "password": "pw"}}, v1alpha1.ReasonCredentialsNotLabelled),
	)

	It("reports a NOMAD without PAT endpoints as PATPathNotFound", func() {
		opts := nomadstub.DefaultOptions()
		opts.DisablePats, opts.DisableAuthPats = true, true
		old, server := nomadstub.Start(opts)
		DeferCleanup(server.Close)
		old.AddUser(t.user, botPassword)
		conn := t.connection("no-pats")
		conn.Spec.URL = old.APIRoot(server.URL)
		Expect(k8s.Create(ctx, conn)).To(Succeed())
		waitConnection("no-pats", metav1.ConditionFalse, v1alpha1.ReasonPATPathNotFound)
	})

	It("reports an unreachable NOMAD as Unreachable", func() {
		dead := httptest.NewServer(nil)
		url := dead.URL
		dead.Close()
		conn := t.connection("dead")
		conn.Spec.URL = url + "/nomad-oasis/api"
		Expect(k8s.Create(ctx, conn)).To(Succeed())
		waitConnection("dead", metav1.ConditionFalse, v1alpha1.ReasonUnreachable)
	})
})
