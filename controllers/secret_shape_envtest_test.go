package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// The Secret's shape beyond the raw token: keys rendered from spec.secret.template.data, and the
// replaced token under spec.secret.previousKey during an Overlap rotation's grace period.
var _ = Describe("NomadToken Secret shape", func() {
	var t *tenant
	BeforeEach(func() { t = newTenant() })

	// nomadCalls are the stand-in's PAT calls, which a Secret-only change must not add to.
	nomadCalls := func() map[string]int {
		c := stub.Calls()
		return map[string]int{"create": c["create"], "rotate": c["rotate"], "revoke": c["revoke"], "get": c["get"], "list": c["list"]}
	}
	editSpec := func(tok *v1alpha1.NomadToken, mutate func(*v1alpha1.NomadToken)) {
		Eventually(func() error {
			fresh := &v1alpha1.NomadToken{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(tok), fresh); err != nil {
				return err
			}
			mutate(fresh)
			return k8s.Update(ctx, fresh)
		}).Should(Succeed())
	}

	It("renders the templates, applies a template change without NOMAD, and re-renders them on rotation", func() {
		tok := t.token("templated", func(tok *v1alpha1.NomadToken) {
			tok.Spec.Secret.Template = &v1alpha1.SecretDataTemplate{Data: map[string]string{
				"NOMAD_CLIENT_URL":          "{{ .URL }}",
				"NOMAD_CLIENT_ACCESS_TOKEN": "{{ .Token }}",
				"curlrc":                    `header = "Authorization: Bearer {{ .Token }}"`,
			}}
		})
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		first := waitReady(tok)
		root, err := nomad.NormalizeURL(t.apiRoot)
		Expect(err).NotTo(HaveOccurred())
		raw := rawToken(first)
		s := secretOf(first)
		Expect(string(s.Data["NOMAD_CLIENT_URL"])).To(Equal(root))
		Expect(string(s.Data["NOMAD_CLIENT_ACCESS_TOKEN"])).To(Equal(raw))
		Expect(string(s.Data["curlrc"])).To(Equal(`header = "Authorization: Bearer ` + raw + `"`))

		By("a template change: the Secret is rewritten, NOMAD is not asked")
		before := nomadCalls()
		editSpec(tok, func(fresh *v1alpha1.NomadToken) {
			fresh.Spec.Secret.Template.Data["NOMAD_CLIENT_URL"] = "{{ .URL }}/v1"
			fresh.Spec.Secret.Template.Data["SCOPES"] = `{{ .Scopes | join " " }}`
			delete(fresh.Spec.Secret.Template.Data, "curlrc")
		})
		Eventually(func(g Gomega) {
			s := secretOf(tok)
			g.Expect(string(s.Data["NOMAD_CLIENT_URL"])).To(Equal(root + "/v1"))
			g.Expect(string(s.Data["SCOPES"])).To(Equal("uploads:read uploads:write"))
			g.Expect(s.Data).NotTo(HaveKey("curlrc"))
		}).Should(Succeed())
		Expect(waitReady(tok).Status.TokenID).To(Equal(first.Status.TokenID))
		Expect(nomadCalls()).To(Equal(before))

		By("a rotation renders every key with the new PAT")
		setAnnotation(tok, v1alpha1.AnnotationRotate, "1")
		Eventually(func() string { return waitReady(tok).Status.TokenID }).ShouldNot(Equal(first.Status.TokenID))
		s = secretOf(tok)
		Expect(string(s.Data["NOMAD_CLIENT_ACCESS_TOKEN"])).To(Equal(rawToken(tok)))
		Expect(string(s.Data["NOMAD_CLIENT_ACCESS_TOKEN"])).NotTo(Equal(raw))
		Expect(containsRawToken(logBuffer.String())).To(BeFalse(), "no raw token in the logs")
	})

	It("refuses a template that does not render, before any NOMAD call", func() {
		tok := t.token("broken-template", func(tok *v1alpha1.NomadToken) {
			tok.Spec.Secret.Template = &v1alpha1.SecretDataTemplate{Data: map[string]string{"NOMAD_PAT": "{{ .Token | nosuch }}"}}
		})
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		refused := waitReason(tok, v1alpha1.ReasonSecretTemplateInvalid)
		cond := meta.FindStatusCondition(refused.Status.Conditions, v1alpha1.ConditionReady)
		Expect(cond.Message).To(ContainSubstring(`"NOMAD_PAT"`))
		Expect(meta.IsStatusConditionTrue(refused.Status.Conditions, v1alpha1.ConditionStalled)).To(BeTrue())
		Consistently(func() int { return len(t.allPATs()) }, 2*time.Second).Should(BeZero())

		By("fixed, it mints")
		editSpec(tok, func(fresh *v1alpha1.NomadToken) { fresh.Spec.Secret.Template.Data["NOMAD_PAT"] = "{{ .Token }}" })
		ready := waitReady(tok)
		Expect(string(secretOf(ready).Data["NOMAD_PAT"])).To(Equal(rawToken(ready)))
	})

	// swapped creates a token keeping the replaced PAT under previousKey for grace, rotates it once,
	// and returns it with the replaced raw token, once the Secret keeps that.
	swapped := func(name string, grace time.Duration) (*v1alpha1.NomadToken, string) {
		tok := t.token(name, func(tok *v1alpha1.NomadToken) {
			tok.Spec.Secret.PreviousKey = "token.previous"
			tok.Spec.Rotation.GracePeriod = &metav1.Duration{Duration: grace}
		})
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		first := waitReady(tok)
		oldRaw := rawToken(first)
		setAnnotation(tok, v1alpha1.AnnotationRotate, "1")
		var rotated *v1alpha1.NomadToken
		Eventually(func(g Gomega) {
			rotated = &v1alpha1.NomadToken{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tok), rotated)).To(Succeed())
			g.Expect(rotated.Status.PreviousTokenID).To(Equal(first.Status.TokenID))
		}).Should(Succeed())
		s := secretOf(rotated)
		Expect(string(s.Data["token.previous"])).To(Equal(oldRaw))
		Expect(string(s.Data["token"])).NotTo(Equal(oldRaw))
		Expect(s.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationPreviousTokenID, first.Status.TokenID))
		Expect(s.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationPreviousRevokeBy, rotated.Status.PreviousTokenRevokeAt.UTC().Format(time.RFC3339)))
		Expect(stub.Authenticates(oldRaw)).To(BeTrue())
		return rotated, oldRaw
	}
	withoutPrevious := func(g Gomega, tok *v1alpha1.NomadToken) {
		s := secretOf(tok)
		g.Expect(s.Data).NotTo(HaveKey("token.previous"))
		g.Expect(s.Annotations).NotTo(HaveKey(v1alpha1.AnnotationPreviousTokenID))
		g.Expect(s.Annotations).NotTo(HaveKey(v1alpha1.AnnotationPreviousRevokeBy))
	}

	It("keeps the replaced token under previousKey from the swap until it is revoked", func() {
		tok, oldRaw := swapped("previous-grace", 2*time.Second)
		Eventually(func() bool { return stub.Authenticates(oldRaw) }).Should(BeFalse())
		Eventually(func(g Gomega) { withoutPrevious(g, tok) }).Should(Succeed())
		final := waitReady(tok)
		Expect(final.Status.PreviousTokenID).To(BeEmpty())
		Expect(stub.Authenticates(rawToken(final))).To(BeTrue())
	})

	It("removes previousKey with revoke-now", func() {
		tok, oldRaw := swapped("previous-revoke-now", time.Hour)
		setAnnotation(tok, v1alpha1.AnnotationRevokeNow, "incident-1")
		Eventually(func(g Gomega) { withoutPrevious(g, tok) }).Should(Succeed())
		Expect(stub.Authenticates(oldRaw)).To(BeFalse())
		Expect(stub.Authenticates(rawToken(waitReady(tok)))).To(BeTrue())
	})
})
