package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// Credentials opt in (design.md, trust model): a Secret is read as NOMAD credentials only if it
// carries tokens.nomad-operator.dev/credentials: "true", and the operator writes to no other.
var _ = Describe("Credentials opt-in", func() {
	var t *tenant
	BeforeEach(func() { t = newTenant() })

	connection := func(name string) *v1alpha1.NomadConnection {
		GinkgoHelper()
		conn := &v1alpha1.NomadConnection{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: name}, conn)).To(Succeed())
		return conn
	}
	// waitConnection waits for the connection's Ready condition to be status/reason and returns it.
	waitConnection := func(name string, status metav1.ConditionStatus, reason string) *metav1.Condition {
		GinkgoHelper()
		var cond *metav1.Condition
		Eventually(func(g Gomega) {
			conn := &v1alpha1.NomadConnection{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: name}, conn)).To(Succeed())
			cond = meta.FindStatusCondition(conn.Status.Conditions, v1alpha1.ConditionReady)
			g.Expect(cond).NotTo(BeNil())
			g.Expect(cond.Status).To(Equal(status), cond.Message)
			g.Expect(cond.Reason).To(Equal(reason), cond.Message)
		}).Should(Succeed())
		return cond
	}
	// recheck touches an annotation of the connection, which is how a user forces its next check
	// (the suite's verification interval is an hour).
	recheck := func(name string) {
		GinkgoHelper()
		Eventually(func() error {
			conn := connection(name)
			conn.Annotations = map[string]string{"recheck": uniqueName("r")}
			return k8s.Update(ctx, conn)
		}).Should(Succeed())
	}
	// editSecret changes a Secret of the tenant; retried, since the operator may patch its finalizers.
	editSecret := func(name string, edit func(*corev1.Secret)) {
		GinkgoHelper()
		Eventually(func() error {
			s := &corev1.Secret{}
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: name}, s); err != nil {
				return err
			}
			edit(s)
			return k8s.Update(ctx, s)
		}).Should(Succeed())
	}
	optIn := func(s *corev1.Secret) { s.Labels = map[string]string{v1alpha1.LabelCredentials: "true"} }
	optOut := func(s *corev1.Secret) { delete(s.Labels, v1alpha1.LabelCredentials) }
	inUse := func(name string) func() bool {
		return func() bool {
			s := &corev1.Secret{}
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: name}, s)).To(Succeed())
			return controllerutil.ContainsFinalizer(s, v1alpha1.FinalizerInUse)
		}
	}

	It("refuses an unlabelled credentials Secret without logging in or writing to it, and uses it once labelled", func() {
		user := uniqueName("bot")
		stub.AddUser(user, botPassword)
		plain := credentialsSecret(t.ns, "plain", user, botPassword)
		plain.Labels = nil
		Expect(k8s.Create(ctx, plain)).To(Succeed())
		conn := t.connection("plain")
		conn.Spec.Credentials.SecretRef.Name = "plain"
		Expect(k8s.Create(ctx, conn)).To(Succeed())
		// A token depends on the connection, so the connection holds what it may hold.
		tok := t.token("via-plain", func(tok *v1alpha1.NomadToken) { tok.Spec.ConnectionRef.Name = "plain" })
		Expect(k8s.Create(ctx, tok)).To(Succeed())

		cond := waitConnection("plain", metav1.ConditionFalse, v1alpha1.ReasonCredentialsNotLabelled)
		Expect(cond.Message).To(ContainSubstring("kubectl label secret -n %s plain tokens.nomad-operator.dev/credentials=true", t.ns))
		Expect(cond.Message).NotTo(ContainSubstring(botPassword))
		Expect(cond.Message).NotTo(ContainSubstring(user))
		waitReason(tok, v1alpha1.ReasonConnectionNotReady)
		Eventually(func() []string { return connection("plain").Finalizers }).Should(ContainElement(v1alpha1.FinalizerInUse),
			"the connection itself is held while the token needs it")

		By("not having logged in as its user, nor written to the Secret")
		Expect(stub.Logins(user)).To(Equal(nomadstub.LoginCount{}))
		Expect(stub.PATs(user)).To(BeEmpty())
		got := get(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "plain"}}).(*corev1.Secret)
		Expect(got.Finalizers).To(BeEmpty(), "the in-use finalizer goes only on Secrets that opted in")
		Expect(got.ResourceVersion).To(Equal(plain.ResourceVersion), "the operator wrote to a Secret that did not opt in")

		By("labelling it: the connection is Ready and the token issued, without a restart")
		editSecret("plain", optIn)
		waitConnection("plain", metav1.ConditionTrue, v1alpha1.ReasonConnected)
		tok = waitReady(tok)
		Expect(stub.Authenticates(rawToken(tok))).To(BeTrue())
		Expect(stub.Logins(user).Succeeded).To(BeNumerically(">=", 1))
		Eventually(inUse("plain")).Should(BeTrue(), "an opted-in Secret is held while a token needs it")
	})

	It("stops using a Secret whose label is removed, and mints no PAT through it, until it is labelled again", func() {
		first := t.token("first")
		Expect(k8s.Create(ctx, first)).To(Succeed())
		waitReady(first)
		Eventually(inUse("nomad-bot")).Should(BeTrue())

		By("removing the label: a token reconciled now reads the Secret live and is refused")
		editSecret("nomad-bot", optOut)
		second := t.token("second")
		Expect(k8s.Create(ctx, second)).To(Succeed())
		got := waitReason(second, v1alpha1.ReasonConnectionNotReady)
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady).Message).
			To(ContainSubstring(v1alpha1.ReasonCredentialsNotLabelled))
		Expect(t.allPATs()).To(HaveLen(1), "no PAT may be minted with withdrawn credentials")

		By("the connection's next check reports it and lets go of the Secret")
		recheck("oasis")
		cond := waitConnection("oasis", metav1.ConditionFalse, v1alpha1.ReasonCredentialsNotLabelled)
		Expect(cond.Message).To(ContainSubstring("kubectl label secret -n %s nomad-bot tokens.nomad-operator.dev/credentials=true", t.ns))
		Eventually(inUse("nomad-bot")).Should(BeFalse(), "a Secret that withdrew its label is released")
		Expect(connection("oasis").Finalizers).To(ContainElement(v1alpha1.FinalizerInUse), "the connection stays held for its tokens")
		waitCondition(second, func(g Gomega, _ *v1alpha1.NomadToken, c *metav1.Condition) {
			g.Expect(c.Reason).To(Equal(v1alpha1.ReasonConnectionNotReady))
			g.Expect(c.Message).To(ContainSubstring("is not Ready (CredentialsNotLabelled"))
		})
		Expect(t.allPATs()).To(HaveLen(1), "no PAT may be minted with withdrawn credentials")

		By("labelling it again: the connection recovers by itself and the token is issued")
		editSecret("nomad-bot", optIn)
		waitConnection("oasis", metav1.ConditionTrue, v1alpha1.ReasonConnected)
		waitReady(second)
		Expect(t.activePATs()).To(HaveLen(2))
		Eventually(inUse("nomad-bot")).Should(BeTrue())
	})

	It("picks up a new password at the next login, and recovers from a wrong one once the Secret is fixed", func() {
		const (
			secondPassword = "second-password-do-not-log"
			thirdPassword  = "third-password-do-not-log"
		)
		before := t.token("before")
		Expect(k8s.Create(ctx, before)).To(Succeed())
		waitReady(before)

		By("changing the password in NOMAD and in the Secret while the connection is Ready")
		start := stub.Logins(t.user)
		Expect(stub.SetPassword(t.user, secondPassword)).To(BeTrue())
		editSecret("nomad-bot", func(s *corev1.Secret) { s.Data["password"] = []byte(secondPassword) })
		second := t.token("second")
		Expect(k8s.Create(ctx, second)).To(Succeed())
		second = waitReady(second)
		Expect(stub.Authenticates(rawToken(second))).To(BeTrue())
		// The old client still held a valid access token; a new client was built and logged in with
		// the new password, which is the only one the stand-in accepts now.
		now := stub.Logins(t.user)
		Expect(now.Succeeded).To(BeNumerically(">", start.Succeeded), "the new password must be used at the next login")
		Expect(now.Attempts-now.Succeeded).To(Equal(start.Attempts-start.Succeeded), "no login with the old password")

		By("changing it in NOMAD only: the next check finds it wrong")
		Expect(stub.SetPassword(t.user, thirdPassword)).To(BeTrue())
		stub.ExpireAccessTokens() // the pooled client must log in again
		recheck("oasis")
		waitConnection("oasis", metav1.ConditionFalse, v1alpha1.ReasonCredentialsInvalid)

		By("fixing the Secret: the connection recovers by itself, long before the wrong password's retry interval")
		editSecret("nomad-bot", func(s *corev1.Secret) { s.Data["password"] = []byte(thirdPassword) })
		waitConnection("oasis", metav1.ConditionTrue, v1alpha1.ReasonConnected)
		third := t.token("third")
		Expect(k8s.Create(ctx, third)).To(Succeed())
		third = waitReady(third)
		Expect(stub.Authenticates(rawToken(third))).To(BeTrue())
		Expect(inUse("nomad-bot")()).To(BeTrue())

		By("never showing a password")
		conn := connection("oasis")
		for _, pw := range []string{botPassword, secondPassword, thirdPassword} {
			Expect(toJSON(conn.Status)).NotTo(ContainSubstring(pw))
			for _, tok := range []*v1alpha1.NomadToken{before, second, third} {
				Expect(toJSON(get(tok).(*v1alpha1.NomadToken).Status)).NotTo(ContainSubstring(pw))
			}
			Expect(logBuffer.String()).NotTo(ContainSubstring(pw))
		}
	})
})
