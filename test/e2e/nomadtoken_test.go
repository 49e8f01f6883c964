package e2e

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// The samples in config/samples, applied to a namespace of their own.
const (
	namespace      = "team-a"
	connectionName = "oasis"
	tokenName      = "ci-uploader"
	secretName     = "ci-uploader-token"
)

var _ = Describe("A NomadToken applied from config/samples", Ordered, func() {
	var (
		conn    v1alpha1.NomadConnection
		token   v1alpha1.NomadToken
		raw     []byte // the raw PAT from the Secret: never hand it to a matcher, which would print it
		tokenID string
	)
	tokenKey := client.ObjectKey{Namespace: namespace, Name: tokenName}

	BeforeAll(func(ctx SpecContext) {
		Expect(controlPl.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})).To(Succeed())
		objs, err := harness.LoadKustomization(filepath.Join(repoRoot, "config", "samples"))
		Expect(err).NotTo(HaveOccurred())
		Expect(harness.PrepareSamples(objs, namespace, stub.APIURL)).To(Succeed())
		Expect(harness.Apply(ctx, controlPl.Client, objs)).To(Succeed())
	})

	It("makes the NomadConnection Ready with the PAT path detected", func(ctx SpecContext) {
		eventually(ctx, func(g Gomega) {
			g.Expect(controlPl.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: connectionName}, &conn)).To(Succeed())
			g.Expect(readyOf(conn.Status.Conditions)).To(HaveField("Status", metav1.ConditionTrue), "Ready condition")
		}).Should(Succeed())
		Expect(readyOf(conn.Status.Conditions).Reason).To(Equal(v1alpha1.ReasonConnected))
		Expect(conn.Status.PATPath).To(BeElementOf(v1alpha1.PATPathPats, v1alpha1.PATPathAuthPats))
		insecure := meta.FindStatusCondition(conn.Status.Conditions, v1alpha1.ConditionInsecureTransport)
		Expect(insecure).NotTo(BeNil(), "a plain-http connection is flagged")
		Expect(insecure.Status).To(Equal(metav1.ConditionTrue))
	})

	It("makes the NomadToken Ready", func(ctx SpecContext) {
		eventually(ctx, func(g Gomega) {
			g.Expect(controlPl.Client.Get(ctx, tokenKey, &token)).To(Succeed())
			g.Expect(readyOf(token.Status.Conditions)).To(HaveField("Status", metav1.ConditionTrue), "Ready condition")
		}).Should(Succeed())
		Expect(readyOf(token.Status.Conditions).Reason).To(Equal(v1alpha1.ReasonIssued))
		Expect(token.Status.TokenID).NotTo(BeEmpty())
		Expect(token.Status.SecretName).To(Equal(secretName))
		Expect(token.Status.ObservedGeneration).To(Equal(token.Generation))
		Expect(token.Status.ExpiresAt).NotTo(BeNil())
		Expect(token.Status.RenewalTime).NotTo(BeNil())
		Expect(token.Status.RenewalTime.Time).To(BeTemporally("<", token.Status.ExpiresAt.Time))
		Expect(token.Finalizers).To(ContainElement(v1alpha1.FinalizerRevoke))
		tokenID = token.Status.TokenID
	})

	It("writes a Secret that carries the PAT, the managed-by label, the PAT annotations and an owner", func(ctx SpecContext) {
		var s corev1.Secret
		Expect(controlPl.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: secretName}, &s)).To(Succeed())
		Expect(s.Type).To(Equal(corev1.SecretTypeOpaque))
		Expect(s.Labels).To(HaveKeyWithValue(v1alpha1.LabelManagedBy, v1alpha1.ManagedByValue))
		Expect(s.Labels).To(HaveKeyWithValue("app.kubernetes.io/part-of", "ci"), "spec.secret.labels are copied")
		Expect(s.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationTokenID, tokenID))
		issued, err := time.Parse(time.RFC3339, s.Annotations[v1alpha1.AnnotationIssuedAt])
		Expect(err).NotTo(HaveOccurred(), "issued-at is RFC 3339")
		expires, err := time.Parse(time.RFC3339, s.Annotations[v1alpha1.AnnotationExpiresAt])
		Expect(err).NotTo(HaveOccurred(), "expires-at is RFC 3339")
		Expect(expires.Sub(issued)).To(BeNumerically("~", 30*24*time.Hour, time.Minute), "expiresInDays: 30")
		Expect(expires).To(BeTemporally("~", token.Status.ExpiresAt.Time, time.Second))

		owner := metav1.GetControllerOf(&s)
		Expect(owner).NotTo(BeNil(), "the Secret has a controller ownerReference")
		Expect(owner.APIVersion).To(Equal(v1alpha1.GroupVersion.String()))
		Expect(owner.Kind).To(Equal("NomadToken"))
		Expect(owner.Name).To(Equal(tokenName))
		Expect(owner.UID).To(Equal(token.UID))

		keys := slices.Sorted(maps.Keys(s.Data))
		Expect(keys).To(Equal([]string{v1alpha1.DefaultSecretKey}), "the Secret holds only the token key")
		raw = s.Data[v1alpha1.DefaultSecretKey]
		Expect(harness.PATPattern.Match(raw) && len(raw) == 53).To(BeTrue(), "the Secret holds a raw PAT, got %s", harness.Describe(raw))
	})

	It("holds a PAT that NOMAD accepts, the only one the bot account has", func(ctx SpecContext) {
		active, err := stub.Authenticates(ctx, raw)
		Expect(err).NotTo(HaveOccurred())
		Expect(active).To(BeTrue(), "the stand-in authenticates the PAT from the Secret")

		probe, err := harness.ProbePAT(ctx, stub.APIURL, conn.Status.PATPath, raw)
		Expect(err).NotTo(HaveOccurred())
		Expect(probe.Valid()).To(BeTrue(), "NOMAD's API probe answers 403 Missing scopes for a valid PAT, got %s", probe)

		st, err := stub.State(ctx)
		Expect(err).NotTo(HaveOccurred())
		pats := st.Users[stub.User].PATs
		Expect(pats).To(HaveLen(1), "exactly one PAT was ever minted")
		Expect(st.ActivePATs(stub.User)).To(HaveLen(1))
		pat := pats[0]
		Expect(pat.ID).To(Equal(tokenID))
		Expect(pat.Name).To(Equal(namespace+"/"+tokenName), "default tokenName is <namespace>/<name>")
		Expect(pat.Scopes).To(ConsistOf("uploads:read", "uploads:write"))
	})

	It("revokes the PAT and lets the NomadToken go when it is deleted", func(ctx SpecContext) {
		Expect(controlPl.Client.Delete(ctx, &token)).To(Succeed())
		eventually(ctx, func() error {
			return controlPl.Client.Get(ctx, tokenKey, &v1alpha1.NomadToken{})
		}).Should(Satisfy(apierrors.IsNotFound), "the finalizer is removed and the NomadToken is gone")

		st, err := stub.State(ctx)
		Expect(err).NotTo(HaveOccurred())
		pat, ok := st.PAT(stub.User, tokenID)
		Expect(ok).To(BeTrue())
		Expect(pat.Revoked).To(BeTrue())
		Expect(pat.Active).To(BeFalse())
		Expect(st.ActivePATs(stub.User)).To(BeEmpty())

		active, err := stub.Authenticates(ctx, raw)
		Expect(err).NotTo(HaveOccurred())
		Expect(active).To(BeFalse(), "the revoked PAT no longer authenticates")
		probe, err := harness.ProbePAT(ctx, stub.APIURL, conn.Status.PATPath, raw)
		Expect(err).NotTo(HaveOccurred())
		Expect(probe.Invalid()).To(BeTrue(), "NOMAD's API probe answers 401 for a revoked PAT, got %s", probe)
	})

	It("never wrote the raw token or the bot password to the manager log", func() {
		Expect(raw).NotTo(BeEmpty(), "an earlier spec read the token")
		leaks, err := harness.ScanFile(manager.LogPath, string(raw), stub.Password)
		Expect(err).NotTo(HaveOccurred())
		Expect(leaks).To(BeEmpty(), "secret #0 is the raw PAT, #1 the bot password")
	})

	It("had every permission it needed from config/rbac", func() {
		log, err := os.ReadFile(manager.LogPath)
		Expect(err).NotTo(HaveOccurred())
		var refused []string
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, "is forbidden: User") { // the API server's RBAC refusal
				refused = append(refused, harness.Redact(line))
			}
		}
		Expect(refused).To(BeEmpty(), "the API server refused the manager something config/rbac should grant")
	})
})

// readyOf returns the Ready condition, or an Unknown one while there is none.
func readyOf(conds []metav1.Condition) metav1.Condition {
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady); c != nil {
		return *c
	}
	return metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionUnknown, Reason: "NotSetYet"}
}
