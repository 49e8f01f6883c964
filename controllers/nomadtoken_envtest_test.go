package controllers_test

import (
	"regexp"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/controllers"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

var rawTokenPattern = regexp.MustCompile(`nomad_pat_[A-Za-z0-9_-]{43}`)

var _ = Describe("NomadToken", func() {
	var t *tenant
	BeforeEach(func() { t = newTenant() })

	It("issues a PAT into an owned, labelled, annotated Secret that NOMAD accepts", func() {
		tok := t.token("ci-uploader", func(tok *v1alpha1.NomadToken) {
			tok.Spec.Description = "CI uploads"
			tok.Spec.ExpiresInDays = 30
			tok.Spec.Secret.Labels = map[string]string{"team": "a"}
			tok.Spec.Secret.Annotations = map[string]string{"note": "hello"}
		})
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		tok = waitReady(tok)

		By("status describing the PAT NOMAD created")
		active := t.activePATs()
		Expect(active).To(HaveLen(1))
		pat := active[0]
		Expect(tok.Status.TokenID).To(Equal(pat.ID))
		Expect(tok.Status.SecretName).To(Equal("ci-uploader"))
		Expect(tok.Status.IssuedAt.Time).To(BeTemporally("~", pat.CreatedAt, time.Second))
		Expect(tok.Status.ExpiresAt.Time).To(BeTemporally("~", *pat.ExpiresAt, time.Second))
		Expect(tok.Status.ExpiresAt.Sub(tok.Status.IssuedAt.Time)).To(Equal(30 * 24 * time.Hour))
		lifetime := tok.Status.ExpiresAt.Sub(tok.Status.IssuedAt.Time)
		planned := tok.Status.IssuedAt.Add(lifetime * 2 / 3)
		Expect(tok.Status.RenewalTime.Time).To(BeTemporally("<=", planned), "jitter only moves renewal earlier")
		Expect(tok.Status.RenewalTime.Time).To(BeTemporally(">", planned.Add(-30*time.Minute)), "jitter is at most 30 minutes")
		Expect(tok.Finalizers).To(ContainElement(v1alpha1.FinalizerRevoke))
		Expect(pat.Name).To(Equal(t.ns + "/ci-uploader"))
		Expect(pat.Scopes).To(ConsistOf("uploads:read", "uploads:write"))
		Expect(pat.Description).To(HavePrefix("CI uploads [nomad-token-operator " + string(tok.UID)[:8] + "-"))

		By("a Secret as the contract says")
		s := secretOf(tok)
		Expect(s.Type).To(Equal(corev1.SecretTypeOpaque))
		Expect(s.Labels).To(HaveKeyWithValue(v1alpha1.LabelManagedBy, v1alpha1.ManagedByValue))
		Expect(s.Labels).To(HaveKeyWithValue("team", "a"))
		Expect(s.Annotations).To(HaveKeyWithValue("note", "hello"))
		Expect(s.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationTokenID, pat.ID))
		Expect(s.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationIssuedAt, tok.Status.IssuedAt.UTC().Format(time.RFC3339)))
		Expect(s.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationExpiresAt, tok.Status.ExpiresAt.UTC().Format(time.RFC3339)))
		owner := metav1.GetControllerOf(s)
		Expect(owner).NotTo(BeNil())
		Expect(owner.UID).To(Equal(tok.UID))
		Expect(owner.Kind).To(Equal("NomadToken"))

		By("a raw token NOMAD accepts")
		raw := string(s.Data["token"])
		Expect(raw).To(MatchRegexp(`^nomad_pat_[A-Za-z0-9_-]{43}$`))
		Expect(stub.Authenticates(raw)).To(BeTrue())
		Expect(authenticatesViaAPI(raw)).To(BeTrue())

		By("the raw token in no status, Event or log line")
		Expect(rawTokenPattern.FindString(logBuffer.String())).To(BeEmpty())
		Expect(logBuffer.String()).NotTo(ContainSubstring(botPassword))
		var evs corev1.EventList // core/v1 view of events.k8s.io Events
		Expect(k8s.List(ctx, &evs, client.InNamespace(t.ns))).To(Succeed())
		Expect(evs.Items).NotTo(BeEmpty())
		for _, e := range evs.Items {
			Expect(e.Message).NotTo(ContainSubstring(raw))
		}
		Expect(rawTokenPattern.MatchString(toJSON(tok.Status))).To(BeFalse())
		Eventually(func() []string { return eventReasons(t.ns) }).Should(ContainElement("Issued"))
	})

	It("never overwrites a Secret it does not own, and mints no PAT for it", func() {
		Expect(k8s.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "taken"},
			StringData: map[string]string{"token": "someone else's"},
		})).To(Succeed())
		tok := t.token("taken")
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		got := waitReason(tok, v1alpha1.ReasonSecretConflict)
		Expect(got.Status.Conditions[0].Message).To(ContainSubstring(`Secret "taken" exists and is not owned`))
		Consistently(func() int { return len(t.allPATs()) }, 2*time.Second).Should(BeZero())
		Expect(string(secretOf(tok).Data["token"])).To(Equal("someone else's"))

		By("issuing once the user points it at a free name")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tok), tok)).To(Succeed())
		tok.Spec.Secret.Name = "taken-2"
		Expect(k8s.Update(ctx, tok)).To(Succeed())
		waitReady(tok)
		Expect(t.activePATs()).To(HaveLen(1))
		Expect(string(secretOf(tok).Data["token"])).To(HavePrefix("nomad_pat_"))
	})

	DescribeTable("a material change mints a new PAT and revokes the old one",
		func(change func(*v1alpha1.NomadToken)) {
			tok := t.token("material")
			Expect(k8s.Create(ctx, tok)).To(Succeed())
			first := waitReady(tok)
			oldRaw := rawToken(first)

			change(first)
			Expect(k8s.Update(ctx, first)).To(Succeed())
			Eventually(func() string { return waitReady(first).Status.TokenID }).ShouldNot(Equal(first.Status.TokenID))
			second := waitReady(first)
			Expect(second.Status.LastRotationTime).NotTo(BeNil())

			active := t.activePATs()
			Expect(ids(active)).To(Equal([]string{second.Status.TokenID}))
			Expect(stub.Authenticates(oldRaw)).To(BeFalse())
			Expect(stub.Authenticates(rawToken(second))).To(BeTrue())
			Eventually(func() []string { return eventReasons(t.ns) }).Should(ContainElement("PreviousRevoked"))
		},
		Entry("scopes", func(tok *v1alpha1.NomadToken) { tok.Spec.Scopes = []string{"uploads:read"} }),
		Entry("expiresInDays", func(tok *v1alpha1.NomadToken) { tok.Spec.ExpiresInDays = 7 }),
		Entry("tokenName", func(tok *v1alpha1.NomadToken) { tok.Spec.TokenName = "renamed" }),
		Entry("description", func(tok *v1alpha1.NomadToken) { tok.Spec.Description = "new words" }),
	)

	It("applies non-material changes to the Secret without a new PAT, and ignores metadata churn", func() {
		tok := t.token("nonmaterial")
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		tok = waitReady(tok)
		id, raw := tok.Status.TokenID, rawToken(tok)
		creates := stub.Calls()["create"]

		By("secret labels, annotations and key")
		tok.Spec.Secret.Labels = map[string]string{"app": "uploader"}
		tok.Spec.Secret.Annotations = map[string]string{"reloader": "yes"}
		tok.Spec.Secret.Key = "NOMAD_TOKEN"
		tok.Spec.DeletionPolicy = v1alpha1.DeletionRetain
		Expect(k8s.Update(ctx, tok)).To(Succeed())
		Eventually(func(g Gomega) {
			s := secretOf(tok)
			g.Expect(s.Labels).To(HaveKeyWithValue("app", "uploader"))
			g.Expect(s.Annotations).To(HaveKeyWithValue("reloader", "yes"))
			g.Expect(s.Data).To(HaveKeyWithValue("NOMAD_TOKEN", []byte(raw)))
			g.Expect(s.Data).NotTo(HaveKey("token"))
		}).Should(Succeed())
		tok = waitReady(tok)
		Expect(tok.Status.TokenID).To(Equal(id))

		By("removing a label the operator set, keeping one another tool set")
		s := secretOf(tok)
		s.Labels["argocd.argoproj.io/instance"] = "team-a"
		Expect(k8s.Update(ctx, s, client.FieldOwner("argocd-controller"))).To(Succeed())
		tok.Spec.Secret.Labels = nil
		Expect(k8s.Update(ctx, tok)).To(Succeed())
		Eventually(func(g Gomega) {
			s := secretOf(tok)
			g.Expect(s.Labels).NotTo(HaveKey("app"))
			g.Expect(s.Labels).To(HaveKeyWithValue("argocd.argoproj.io/instance", "team-a"))
			g.Expect(s.Labels).To(HaveKeyWithValue(v1alpha1.LabelManagedBy, v1alpha1.ManagedByValue))
		}).Should(Succeed())
		// The cache keeps only the operator's managedFields entries; its write must not send them as
		// the Secret's whole managedFields, which would erase the other tool's ownership.
		var managers []string
		for _, mf := range secretOf(tok).ManagedFields {
			managers = append(managers, mf.Manager)
		}
		Expect(managers).To(ContainElements("argocd-controller", controllers.FieldManager))

		By("moving the Secret to a new name")
		tok = waitReady(tok)
		tok.Spec.Secret.Name = "moved"
		Expect(k8s.Update(ctx, tok)).To(Succeed())
		Eventually(func(g Gomega) {
			moved := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: "moved"}, moved)).To(Succeed())
			g.Expect(moved.Data["NOMAD_TOKEN"]).To(Equal([]byte(raw)))
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: "nonmaterial"}, &corev1.Secret{})).NotTo(Succeed())
		}).Should(Succeed())
		tok = waitReady(tok)
		Expect(tok.Status.SecretName).To(Equal("moved"))

		By("label and annotation churn on the NomadToken itself")
		secretVersion := secretOf(tok).ResourceVersion
		tok.Labels = map[string]string{"argocd.argoproj.io/instance": "team-a"}
		tok.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}"}
		Expect(k8s.Update(ctx, tok)).To(Succeed())
		Consistently(func() string { return secretOf(tok).ResourceVersion }, 2*time.Second).Should(Equal(secretVersion))

		Expect(waitReady(tok).Status.TokenID).To(Equal(id))
		Expect(stub.Calls()["create"]).To(Equal(creates))
		Expect(ids(t.activePATs())).To(Equal([]string{id}))
	})

	DescribeTable("a lost or edited Secret gets a new PAT and the old one is revoked",
		func(breakSecret func(*corev1.Secret)) {
			tok := t.token("repair")
			Expect(k8s.Create(ctx, tok)).To(Succeed())
			first := waitReady(tok)
			oldRaw := rawToken(first)

			breakSecret(secretOf(first))
			Eventually(func() string { return waitReady(first).Status.TokenID }).ShouldNot(Equal(first.Status.TokenID))
			second := waitReady(first)
			Expect(ids(t.activePATs())).To(Equal([]string{second.Status.TokenID}))
			Expect(stub.Authenticates(oldRaw)).To(BeFalse())
			Expect(stub.Authenticates(rawToken(second))).To(BeTrue())
		},
		Entry("deleted", func(s *corev1.Secret) { Expect(k8s.Delete(ctx, s)).To(Succeed()) }),
		Entry("token edited", func(s *corev1.Secret) {
			s.Data["token"] = []byte("pasted by hand")
			Expect(k8s.Update(ctx, s)).To(Succeed())
		}),
	)

	It("revokes the PAT when deleted with deletionPolicy Revoke (the default)", func() {
		tok := t.token("revoke-on-delete")
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		tok = waitReady(tok)
		raw := rawToken(tok)
		deleteAndWait(tok)
		Expect(t.activePATs()).To(BeEmpty())
		Expect(stub.Authenticates(raw)).To(BeFalse())
		Eventually(func() []string { return eventReasons(t.ns) }).Should(ContainElement("Revoked"))
	})

	It("revokes the old PAT through the bot account that minted it when connectionRef moves to another account", func() {
		otherUser := uniqueName("bot")
		stub.AddUser(otherUser, botPassword)
		Expect(k8s.Create(ctx, credentialsSecret(t.ns, "other-bot", otherUser, botPassword))).To(Succeed())
		other := t.connection("other")
		other.Spec.Credentials.SecretRef.Name = "other-bot"
		Expect(k8s.Create(ctx, other)).To(Succeed())

		tok := t.token("moving")
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		first := waitReady(tok)
		oldRaw := rawToken(first)
		Expect(first.Status.ConnectionName).To(Equal("oasis"))

		first.Spec.ConnectionRef.Name = "other"
		Expect(k8s.Update(ctx, first)).To(Succeed())
		Eventually(func() string { return waitReady(first).Status.TokenID }).ShouldNot(Equal(first.Status.TokenID))
		second := waitReady(first)
		Expect(second.Status.ConnectionName).To(Equal("other"))
		Expect(second.Status.RevokePending).To(BeEmpty())
		// NOMAD answers 404 to the new account for the old PAT: only the old account could revoke it.
		Expect(t.activePATs()).To(BeEmpty(), "the first account's PAT must be revoked")
		Expect(stub.Authenticates(oldRaw)).To(BeFalse())
		Expect(ids(stub.ActivePATs(otherUser))).To(Equal([]string{second.Status.TokenID}))
		Expect(stub.Authenticates(rawToken(second))).To(BeTrue())
	})

	It("keeps the PAT and releases its Secret when deleted with deletionPolicy Retain", func() {
		tok := t.token("retain-on-delete", func(tok *v1alpha1.NomadToken) { tok.Spec.DeletionPolicy = v1alpha1.DeletionRetain })
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		tok = waitReady(tok)
		raw := rawToken(tok)
		deleteAndWait(tok)
		Expect(ids(t.activePATs())).To(Equal([]string{tok.Status.TokenID}))
		Expect(stub.Authenticates(raw)).To(BeTrue())
		s := secretOf(tok)
		Expect(metav1.GetControllerOf(s)).To(BeNil(), "garbage collection must not take the only copy of a live PAT")
		Expect(s.Labels).NotTo(HaveKey(v1alpha1.LabelManagedBy))
		Expect(string(s.Data["token"])).To(Equal(raw))
	})

	It("stays deletable when its connection was forced away: Retain lets it go", func() {
		tok := t.token("orphaned")
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		tok = waitReady(tok)
		// Someone strips the in-use finalizer by hand, so the connection really goes first.
		conn := &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "oasis"}}
		Expect(k8s.Delete(ctx, conn)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(conn), conn)).To(Succeed())
			conn.Finalizers = nil
			g.Expect(k8s.Update(ctx, conn)).To(Succeed())
		}).Should(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(conn), conn)) }).Should(BeTrue())
		Expect(k8s.Delete(ctx, tok)).To(Succeed())
		got := waitReason(tok, v1alpha1.ReasonRevokeFailed)
		Expect(got.Status.Conditions[0].Message).To(ContainSubstring("spec.deletionPolicy: Retain"))

		got.Spec.DeletionPolicy = v1alpha1.DeletionRetain
		Expect(k8s.Update(ctx, got)).To(Succeed())
		deleteAndWait(tok)
	})

	It("leaves exactly one active PAT when NOMAD's answer to create is lost", func() {
		stub.InjectFault("create", 1, nomadstub.Fault{LoseResponse: true})
		tok := t.token("lost-answer")
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		tok = waitReady(tok)
		all := t.allPATs()
		Expect(all).To(HaveLen(2), "the lost PAT and the one issued after it")
		active := t.activePATs()
		Expect(ids(active)).To(Equal([]string{tok.Status.TokenID}))
		Expect(stub.Authenticates(rawToken(tok))).To(BeTrue())
	})

	It("reports connection problems on the token and recovers when they are fixed", func() {
		tok := t.token("no-conn", func(tok *v1alpha1.NomadToken) { tok.Spec.ConnectionRef.Name = "later" })
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		waitReason(tok, v1alpha1.ReasonConnectionNotFound)
		Expect(k8s.Create(ctx, t.connection("later"))).To(Succeed())
		waitReady(tok)
	})

	It("surfaces NOMAD's refusal with a specific reason and does not retry it hot", func() {
		tok := t.token("too-long", func(tok *v1alpha1.NomadToken) { tok.Spec.ExpiresInDays = 400 })
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		got := waitReason(tok, v1alpha1.ReasonLifetimeExceeded)
		Expect(got.Status.Conditions[0].Message).To(ContainSubstring("Requested lifetime (400 days) exceeds the maximum allowed (365 days)."))
		Expect(got.Status.Conditions[0].Message).To(ContainSubstring("lower spec.expiresInDays"))
		Expect(got.Status.PendingIssuance).To(BeNil())
		creates := stub.Calls()["create"]
		Consistently(func() int { return stub.Calls()["create"] }, 3*time.Second).Should(Equal(creates))
		Expect(eventReasons(t.ns)).To(ContainElement(v1alpha1.ReasonLifetimeExceeded))

		got.Spec.ExpiresInDays = 90
		Expect(k8s.Update(ctx, got)).To(Succeed())
		waitReady(tok)
	})

	It("is silent in steady state: a minute of resyncs costs no NOMAD call and no write", func() {
		tok := t.token("steady")
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		tok = waitReady(tok)
		time.Sleep(2 * time.Second) // let the events of issuance settle
		tokenVersion := get(tok).GetResourceVersion()
		secretVersion := secretOf(tok).ResourceVersion
		reconcilesBefore := reconcileCount("nomadtoken")
		writesBefore := writesIn(t.ns)
		stub.ResetCalls()

		time.Sleep(60 * time.Second)

		Expect(reconcileCount("nomadtoken")-reconcilesBefore).To(BeNumerically(">=", 30), "the 1 s resync must have reconciled the token")
		Expect(stub.Calls()).To(SatisfyAll(HaveKeyWithValue("login", 0), HaveKeyWithValue("create", 0), HaveKeyWithValue("list", 0),
			HaveKeyWithValue("get", 0), HaveKeyWithValue("revoke", 0), HaveKeyWithValue("rotate", 0)), "%v", stub.Calls())
		Expect(get(tok).GetResourceVersion()).To(Equal(tokenVersion))
		Expect(secretOf(tok).ResourceVersion).To(Equal(secretVersion))
		Expect(writesIn(t.ns)-writesBefore).To(BeZero(), "no write request at all, not even a no-op status update")
	})
})

var _ = Describe("NomadToken admission", func() {
	DescribeTable("rejects invalid specs with a clear message",
		func(mutate func(*v1alpha1.NomadToken), message string) {
			tok := &v1alpha1.NomadToken{
				ObjectMeta: metav1.ObjectMeta{Namespace: manualNamespace, Name: uniqueName("bad")},
				Spec: v1alpha1.NomadTokenSpec{
					ConnectionRef: v1alpha1.ConnectionRef{Name: "oasis"},
					Scopes:        []string{"uploads:read"},
				},
			}
			mutate(tok)
			err := k8s.Create(ctx, tok)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("tokens:create", func(t *v1alpha1.NomadToken) { t.Spec.Scopes = []string{"uploads:read", "tokens:create"} },
			"tokens:* scopes are not allowed"),
		Entry("a wildcard", func(t *v1alpha1.NomadToken) { t.Spec.Scopes = []string{"uploads:*"} }, "wildcard scopes are not allowed"),
		Entry("no scopes", func(t *v1alpha1.NomadToken) { t.Spec.Scopes = nil }, "spec.scopes"),
		Entry("a negative expiresInDays", func(t *v1alpha1.NomadToken) { t.Spec.ExpiresInDays = -1 }, "spec.expiresInDays"),
		Entry("an unknown deletionPolicy", func(t *v1alpha1.NomadToken) { t.Spec.DeletionPolicy = "Forget" }, "spec.deletionPolicy"),
		Entry("renewBefore as long as the lifetime", func(t *v1alpha1.NomadToken) {
			t.Spec.ExpiresInDays = 30
			t.Spec.Rotation.RenewBefore = &metav1.Duration{Duration: 720 * time.Hour}
		}, "spec.rotation.renewBefore must be shorter than the lifetime"),
		Entry("a renewBefore of zero", func(t *v1alpha1.NomadToken) {
			t.Spec.Rotation.RenewBefore = &metav1.Duration{}
		}, "renewBefore must be a positive duration"),
		Entry("a negative renewBefore", func(t *v1alpha1.NomadToken) {
			t.Spec.Rotation.RenewBefore = &metav1.Duration{Duration: -time.Hour}
		}, "renewBefore must be a positive duration"),
		Entry("a negative gracePeriod", func(t *v1alpha1.NomadToken) {
			t.Spec.Rotation.GracePeriod = &metav1.Duration{Duration: -time.Minute}
		}, "gracePeriod must not be negative"),
		Entry("both renewBefore forms", func(t *v1alpha1.NomadToken) {
			t.Spec.Rotation.RenewBefore = &metav1.Duration{Duration: time.Hour}
			t.Spec.Rotation.RenewBeforePercentage = ptr.To[int32](10)
		}, "set at most one of renewBefore and renewBeforePercentage"),
	)

	It("rejects expiresInDays: 0 as written in YAML", func() {
		// A typed Go client omits a zero value; kubectl sends what the YAML says.
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": "NomadToken",
			"metadata": map[string]any{"namespace": manualNamespace, "name": uniqueName("zero")},
			"spec": map[string]any{
				"connectionRef": map[string]any{"name": "oasis"},
				"scopes":        []any{"uploads:read"},
				"expiresInDays": int64(0),
			},
		}}
		err := k8s.Create(ctx, u)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("spec.expiresInDays: Invalid value: 0: spec.expiresInDays in body should be greater than or equal to 1"))
	})

	It("defaults expiresInDays, deletionPolicy, strategy and the connection kind", func() {
		tok := &v1alpha1.NomadToken{
			ObjectMeta: metav1.ObjectMeta{Namespace: manualNamespace, Name: uniqueName("defaults")},
			Spec:       v1alpha1.NomadTokenSpec{ConnectionRef: v1alpha1.ConnectionRef{Name: "oasis"}, Scopes: []string{"uploads:read"}},
		}
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		Expect(tok.Spec.ExpiresInDays).To(Equal(int32(30)))
		Expect(tok.Spec.DeletionPolicy).To(Equal(v1alpha1.DeletionRevoke))
		Expect(tok.Spec.ConnectionRef.Kind).To(Equal("NomadConnection"))
		Expect(tok.Spec.Rotation.Strategy).To(Equal(v1alpha1.RotationOverlap))
	})
})

var _ = Describe("the Secret cache", func() {
	It("holds only Secrets the operator labelled", func() {
		t := newTenant()
		tok := t.token("cached")
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		waitReady(tok)
		var cached corev1.SecretList
		Expect(mgrCache.List(ctx, &cached, client.InNamespace(t.ns))).To(Succeed())
		names := []string{}
		for _, s := range cached.Items {
			names = append(names, s.Name)
		}
		Expect(names).To(ConsistOf("cached"), "the credentials Secret nomad-bot is not the operator's")
	})
})
