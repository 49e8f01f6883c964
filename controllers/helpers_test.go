package controllers_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

const botPassword = "bot-password-do-not-log"

// tenant is one spec's world: a namespace, a NOMAD user of its own in the stand-in (so PAT counts
// do not mix between specs), a credentials Secret and a Ready NomadConnection named "oasis".
type tenant struct {
	ns   string
	user string
	// nomad and apiRoot are the stand-in the tenant's connections use: the suite's, unless
	// newTenantOn named another.
	nomad   *nomadstub.Server
	apiRoot string
}

func ctrlObjectMeta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }

func newTenant() *tenant { return newTenantOn(stub, stub.APIRoot(stubHTTP.URL)) }

// newTenantOn is newTenant with its NOMAD user and connection on the stand-in srv, served at apiRoot.
func newTenantOn(srv *nomadstub.Server, apiRoot string) *tenant {
	t := &tenant{ns: uniqueName("t"), user: uniqueName("bot"), nomad: srv, apiRoot: apiRoot}
	srv.AddUser(t.user, botPassword)
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: ctrlObjectMeta(t.ns)})).To(Succeed())
	Expect(k8s.Create(ctx, credentialsSecret(t.ns, "nomad-bot", t.user, botPassword))).To(Succeed())
	Expect(k8s.Create(ctx, t.connection("oasis"))).To(Succeed())
	// Each spec leaves nothing behind that could call NOMAD later (a grace-period revoke, a retry of
	// a refused login): specs that count the stand-in's calls must see only their own.
	DeferCleanup(t.cleanup)
	Eventually(func(g Gomega) {
		conn := &v1alpha1.NomadConnection{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: "oasis"}, conn)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(conn.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue(), "%v", conn.Status.Conditions)
	}).Should(Succeed())
	return t
}

// cleanup deletes the tenant's NomadTokens (waiting for their finalizers) and then its connections.
func (t *tenant) cleanup() {
	var tokens v1alpha1.NomadTokenList
	Expect(k8s.List(ctx, &tokens, client.InNamespace(t.ns))).To(Succeed())
	for i := range tokens.Items {
		tok := &tokens.Items[i]
		if tok.DeletionTimestamp != nil && isRevokeStuck(tok) {
			tok.Spec.DeletionPolicy = v1alpha1.DeletionRetain
			Expect(client.IgnoreNotFound(k8s.Update(ctx, tok))).To(Succeed())
		}
		deleteAndWait(tok)
	}
	var conns v1alpha1.NomadConnectionList
	Expect(k8s.List(ctx, &conns, client.InNamespace(t.ns))).To(Succeed())
	for i := range conns.Items {
		deleteAndWait(&conns.Items[i])
	}
}

func isRevokeStuck(tok *v1alpha1.NomadToken) bool {
	cond := meta.FindStatusCondition(tok.Status.Conditions, v1alpha1.ConditionReady)
	return cond != nil && cond.Reason == v1alpha1.ReasonRevokeFailed
}

// credentialsSecret is a credentials Secret opted in with the credentials label, as users create them.
func credentialsSecret(ns, name, user, password string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{v1alpha1.LabelCredentials: "true"}},
		StringData: map[string]string{"username": user, "password": password},
	}
}

func (t *tenant) connection(name string) *v1alpha1.NomadConnection {
	return &v1alpha1.NomadConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: name},
		Spec: v1alpha1.NomadConnectionSpec{
			URL:         t.apiRoot,
			Credentials: v1alpha1.Credentials{SecretRef: v1alpha1.CredentialsSecretRef{Name: "nomad-bot"}},
		},
	}
}

// token returns a NomadToken in the tenant's namespace using "oasis", changed by mutate.
func (t *tenant) token(name string, mutate ...func(*v1alpha1.NomadToken)) *v1alpha1.NomadToken {
	tok := &v1alpha1.NomadToken{
		ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: name},
		Spec: v1alpha1.NomadTokenSpec{
			ConnectionRef: v1alpha1.ConnectionRef{Name: "oasis"},
			Scopes:        []string{"uploads:read", "uploads:write"},
		},
	}
	for _, m := range mutate {
		m(tok)
	}
	return tok
}

func (t *tenant) activePATs() []nomadstub.Record { return t.nomad.ActivePATs(t.user) }

func (t *tenant) allPATs() []nomadstub.Record { return t.nomad.PATs(t.user) }

func get(obj client.Object) client.Object {
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	return obj
}

// waitReady waits for the token to be Ready for its current generation and returns it fresh.
func waitReady(tok *v1alpha1.NomadToken) *v1alpha1.NomadToken {
	GinkgoHelper()
	return waitCondition(tok, func(g Gomega, fresh *v1alpha1.NomadToken, cond *metav1.Condition) {
		g.Expect(cond.Status).To(Equal(metav1.ConditionTrue), "%s: %s", cond.Reason, cond.Message)
		g.Expect(fresh.Status.ObservedGeneration).To(Equal(fresh.Generation))
		g.Expect(fresh.Status.PendingIssuance).To(BeNil())
		g.Expect(fresh.Status.RevokePending).To(BeEmpty())
	})
}

// waitReason waits for Ready=False with reason and returns the token.
func waitReason(tok *v1alpha1.NomadToken, reason string) *v1alpha1.NomadToken {
	GinkgoHelper()
	return waitCondition(tok, func(g Gomega, _ *v1alpha1.NomadToken, cond *metav1.Condition) {
		g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(cond.Reason).To(Equal(reason), cond.Message)
	})
}

// waitCondition waits until check passes on the token's Ready condition and returns the token.
func waitCondition(tok *v1alpha1.NomadToken, check func(Gomega, *v1alpha1.NomadToken, *metav1.Condition)) *v1alpha1.NomadToken {
	GinkgoHelper()
	fresh := &v1alpha1.NomadToken{}
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tok), fresh)).To(Succeed())
		cond := meta.FindStatusCondition(fresh.Status.Conditions, v1alpha1.ConditionReady)
		g.Expect(cond).NotTo(BeNil())
		check(g, fresh, cond)
	}).Should(Succeed())
	return fresh
}

func secretOf(tok *v1alpha1.NomadToken) *corev1.Secret {
	GinkgoHelper()
	s := &corev1.Secret{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: tok.Namespace, Name: tok.EffectiveSecretName()}, s)).To(Succeed())
	return s
}

func rawToken(tok *v1alpha1.NomadToken) string {
	GinkgoHelper()
	return string(secretOf(tok).Data[tok.EffectiveSecretKey()])
}

// authenticatesViaAPI asks NOMAD itself, the way any client would: a valid PAT reaching a PAT
// endpoint is authenticated and then refused for lack of scopes (403); an invalid one is anonymous (401).
func authenticatesViaAPI(raw string) bool {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodGet, stub.APIRoot(stubHTTP.URL)+"/v1/pats/000000000000000000000000", nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+raw)
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	Expect(resp.StatusCode).To(BeElementOf(http.StatusForbidden, http.StatusUnauthorized))
	return resp.StatusCode == http.StatusForbidden
}

func deleteAndWait(obj client.Object) {
	GinkgoHelper()
	Expect(client.IgnoreNotFound(k8s.Delete(ctx, obj))).To(Succeed())
	Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)) }).Should(BeTrue())
}

// digest is NOMAD's lookup digest of a raw token, for comparing stand-in records without the token.
func digest(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

func ids(records []nomadstub.Record) []string {
	out := make([]string, 0, len(records))
	for _, r := range records {
		out = append(out, r.ID)
	}
	return out
}

func containsRawToken(s string) bool { return strings.Contains(s, "nomad_pat_") }

// waitConnectionIn waits for the NomadConnection ns/name to be Ready=status with reason, and returns it.
func waitConnectionIn(ns, name string, status metav1.ConditionStatus, reason string) *v1alpha1.NomadConnection {
	GinkgoHelper()
	conn := &v1alpha1.NomadConnection{}
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, conn)).To(Succeed())
		cond := meta.FindStatusCondition(conn.Status.Conditions, v1alpha1.ConditionReady)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Status).To(Equal(status), cond.Message)
		g.Expect(cond.Reason).To(Equal(reason), cond.Message)
	}).Should(Succeed())
	return conn
}
