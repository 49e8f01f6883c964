package controllers_test

import (
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

// Signing in without a password: at the stand-in's Keycloak realm, with a refresh token or a
// confidential client's service account; NOMAD accepts the realm's access tokens for the PAT API.
var _ = Describe("Signing in to NOMAD's realm", func() {
	var t *tenant
	BeforeEach(func() { t = newTenant() })

	issuer := func() string { return stub.IssuerURL(stubHTTP.URL) }

	// oidcConnection creates a connection named name signing in with method through the suite's realm,
	// its Secret holding data, and returns it.
	oidcConnection := func(name string, method v1alpha1.CredentialMethod, clientID string, data map[string]string) *v1alpha1.NomadConnection {
		GinkgoHelper()
		Expect(k8s.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: name + "-creds", Labels: map[string]string{v1alpha1.LabelCredentials: "true"}},
			StringData: data,
		})).To(Succeed())
		conn := t.connection(name)
		conn.Spec.Credentials = v1alpha1.Credentials{
			Method:    method,
			SecretRef: v1alpha1.CredentialsSecretRef{Name: name + "-creds"},
			OIDC:      &v1alpha1.OIDCProvider{IssuerURL: issuer(), ClientID: clientID},
		}
		Expect(k8s.Create(ctx, conn)).To(Succeed())
		return conn
	}
	offlineToken := func() string {
		GinkgoHelper()
		rt, err := stub.IssueRefreshToken(t.user, "nomad_public", true)
		Expect(err).NotTo(HaveOccurred())
		return rt
	}
	tokenOn := func(name, conn string) *v1alpha1.NomadToken {
		tok := t.token(name, func(tok *v1alpha1.NomadToken) { tok.Spec.ConnectionRef.Name = conn })
		Expect(k8s.Create(ctx, tok)).To(Succeed())
		return tok
	}
	// itsPAT checks that the token's PAT is an active PAT of the tenant's NOMAD user: it belongs to
	// the account the connection signed in as.
	itsPAT := func(tok *v1alpha1.NomadToken) {
		GinkgoHelper()
		Expect(ids(t.activePATs())).To(ContainElement(tok.Status.TokenID))
		Expect(stub.Authenticates(rawToken(tok))).To(BeTrue())
	}
	grants := func(grant string) int { return stub.Grants()[grant] }
	credentialsOf := func(name string) *v1alpha1.CredentialsStatus {
		conn := &v1alpha1.NomadConnection{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: name}, conn)).To(Succeed())
		return conn.Status.Credentials
	}

	It("issues with a refresh token, without a single password login, as the refresh token's account", func() {
		passwordLogins := stub.Logins(t.user).Attempts
		oidcConnection("rt", v1alpha1.CredentialMethodRefreshToken, "", map[string]string{"refresh_token": offlineToken()})
		waitConnectionIn(t.ns, "rt", metav1.ConditionTrue, v1alpha1.ReasonConnected)
		tok := waitReady(tokenOn("via-refresh", "rt"))
		itsPAT(tok)
		Expect(stub.Logins(t.user).Attempts).To(Equal(passwordLogins), "no password login")
		creds := credentialsOf("rt")
		Expect(creds).NotTo(BeNil())
		Expect(creds.Method).To(Equal(v1alpha1.CredentialMethodRefreshToken))
		Expect(creds.Account).To(Equal(t.user))
		Expect(creds.UserID).NotTo(BeEmpty())
		Expect(creds.LastSignInTime).NotTo(BeNil())
	})

	It("issues with client credentials as the client's service-account user", func() {
		passwordLogins := stub.Logins(t.user).Attempts
		clientID := uniqueName("operator")
		Expect(stub.AddClient(nomadstub.RealmClient{ID: clientID, Secret: "client-secret-do-not-log", ServiceAccountUser: t.user})).To(Succeed())
		oidcConnection("cc", v1alpha1.CredentialMethodClientCredentials, clientID, map[string]string{"client_secret": "client-secret-do-not-log"})
		waitConnectionIn(t.ns, "cc", metav1.ConditionTrue, v1alpha1.ReasonConnected)
		tok := waitReady(tokenOn("via-client", "cc"))
		itsPAT(tok)
		Expect(stub.Logins(t.user).Attempts).To(Equal(passwordLogins), "no password login")
		Expect(credentialsOf("cc").Method).To(Equal(v1alpha1.CredentialMethodClientCredentials))
		Expect(logBuffer.String()).NotTo(ContainSubstring("client-secret-do-not-log"))
	})

	It("reports a wrong client secret as CredentialsInvalid", func() {
		clientID := uniqueName("operator")
		Expect(stub.AddClient(nomadstub.RealmClient{ID: clientID, Secret: "right", ServiceAccountUser: t.user})).To(Succeed())
		oidcConnection("cc-wrong", v1alpha1.CredentialMethodClientCredentials, clientID, map[string]string{"client_secret": "wrong"})
		got := waitConnectionIn(t.ns, "cc-wrong", metav1.ConditionFalse, v1alpha1.ReasonCredentialsInvalid)
		ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
		Expect(ready.Message).To(ContainSubstring("unauthorized_client"))
		Expect(ready.Message).To(ContainSubstring("client_secret"))
	})

	It("flags a plain-http issuer as InsecureTransport", func() {
		oidcConnection("plain", v1alpha1.CredentialMethodRefreshToken, "", map[string]string{"refresh_token": offlineToken()})
		got := waitConnectionIn(t.ns, "plain", metav1.ConditionTrue, v1alpha1.ReasonConnected)
		insecure := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionInsecureTransport)
		Expect(insecure).NotTo(BeNil())
		Expect(insecure.Status).To(Equal(metav1.ConditionTrue))
		Expect(insecure.Message).To(ContainSubstring("issuerURL"))
	})

	Context("with refresh-token rotation on", func() {
		BeforeEach(func() {
			stub.SetRefreshTokenRotation(true)
			DeferCleanup(stub.SetRefreshTokenRotation, false)
		})

		It("writes the rotated refresh token back, and a client built afresh signs in with it while the spent one is refused", func() {
			first := offlineToken()
			conn := oidcConnection("rotating", v1alpha1.CredentialMethodRefreshToken, "", map[string]string{"refresh_token": first})
			waitConnectionIn(t.ns, "rotating", metav1.ConditionTrue, v1alpha1.ReasonConnected)
			secret := &corev1.Secret{}
			Eventually(func(g Gomega) {
				g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: "rotating-creds"}, secret)).To(Succeed())
				g.Expect(string(secret.Data["refresh_token"])).NotTo(Equal(first))
			}).Should(Succeed())
			Expect(refreshRefused(first)).To(BeTrue(), "the realm refuses the spent refresh token")

			By("a client built from the Secret alone, as after a restart: the connection made anew")
			second := string(secret.Data["refresh_token"])
			deleteAndWait(conn)
			refreshes := grants("refresh_token")
			oidcConnection2 := t.connection("rotating")
			oidcConnection2.Spec.Credentials = conn.Spec.Credentials
			Expect(k8s.Create(ctx, oidcConnection2)).To(Succeed())
			waitConnectionIn(t.ns, "rotating", metav1.ConditionTrue, v1alpha1.ReasonConnected)
			Expect(grants("refresh_token")).To(Equal(refreshes + 1))
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: "rotating-creds"}, secret)).To(Succeed())
			Expect(string(secret.Data["refresh_token"])).NotTo(Equal(second), "rotated again, and stored again")
			Expect(logBuffer.String()).NotTo(ContainSubstring(first))
			Expect(logBuffer.String()).NotTo(ContainSubstring(second))
		})

		It("reports a Secret that refuses the rotated refresh token as RefreshTokenNotStored", func() {
			Expect(k8s.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "frozen-creds", Labels: map[string]string{v1alpha1.LabelCredentials: "true"}},
				StringData: map[string]string{"refresh_token": offlineToken()},
				Immutable:  ptr.To(true),
			})).To(Succeed())
			conn := t.connection("frozen")
			conn.Spec.Credentials = v1alpha1.Credentials{Method: v1alpha1.CredentialMethodRefreshToken,
				SecretRef: v1alpha1.CredentialsSecretRef{Name: "frozen-creds"}, OIDC: &v1alpha1.OIDCProvider{IssuerURL: issuer()}}
			Expect(k8s.Create(ctx, conn)).To(Succeed())
			got := waitConnectionIn(t.ns, "frozen", metav1.ConditionFalse, v1alpha1.ReasonRefreshTokenNotStored)
			ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
			Expect(ready.Message).To(ContainSubstring("frozen-creds"))
			stalled := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionStalled)
			Expect(stalled).NotTo(BeNil(), "a person must act")
		})

		It("costs one refresh for 50 NomadTokens on one connection: its own write-back is no new credential", func() {
			oidcConnection("shared", v1alpha1.CredentialMethodRefreshToken, "", map[string]string{"refresh_token": offlineToken()})
			waitConnectionIn(t.ns, "shared", metav1.ConditionTrue, v1alpha1.ReasonConnected)
			refreshes := grants("refresh_token")
			Expect(refreshes).To(BeNumerically(">", 0))
			tokens := make([]*v1alpha1.NomadToken, 0, 50)
			for i := range 50 {
				tokens = append(tokens, tokenOn(uniqueName("many")+"-"+string(rune('a'+i%26)), "shared"))
			}
			for _, tok := range tokens {
				waitReady(tok)
			}
			Expect(t.activePATs()).To(HaveLen(50))
			Consistently(func() int { return grants("refresh_token") }, "2s").Should(Equal(refreshes),
				"the access token of the connection's first sign-in serves every token within its lifetime")
		})
	})

	It("reports a revoked refresh token as CredentialsInvalid with the login command, and a new one in the Secret is tried at once", func() {
		conn := oidcConnection("revoked", v1alpha1.CredentialMethodRefreshToken, "", map[string]string{"refresh_token": offlineToken()})
		waitConnectionIn(t.ns, "revoked", metav1.ConditionTrue, v1alpha1.ReasonConnected)

		Expect(stub.RevokeSessions(t.user)).To(BeTrue())
		stub.ExpireAccessTokens() // the realm signed the user out: the cached access token ends too
		recheck(conn)
		got := waitConnectionIn(t.ns, "revoked", metav1.ConditionFalse, v1alpha1.ReasonCredentialsInvalid)
		ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
		Expect(ready.Message).To(ContainSubstring("invalid_grant"))
		Expect(ready.Message).To(ContainSubstring("kubectl nomadtoken login -n " + t.ns + " revoked"))

		By("a person signs in again: the new refresh token is used without a restart")
		secret := &corev1.Secret{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: "revoked-creds"}, secret)).To(Succeed())
		secret.Data["refresh_token"] = []byte(offlineToken())
		Expect(k8s.Update(ctx, secret)).To(Succeed())
		waitConnectionIn(t.ns, "revoked", metav1.ConditionTrue, v1alpha1.ReasonConnected)
	})

	It("reports a password the realm refuses with a 400 (a pending required action) as CredentialsInvalid, tried once per retry interval", func() {
		Expect(stub.SetRequiredAction(t.user, true)).To(BeTrue())
		DeferCleanup(stub.SetRequiredAction, t.user, false)
		before := stub.Logins(t.user).Attempts
		conn := t.connection("pending")
		Expect(k8s.Create(ctx, conn)).To(Succeed())
		got := waitConnectionIn(t.ns, "pending", metav1.ConditionFalse, v1alpha1.ReasonCredentialsInvalid)
		ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
		Expect(ready.Message).To(ContainSubstring("Account is not fully set up"))
		Expect(ready.Message).To(ContainSubstring("method: RefreshToken"))

		By("NomadTokens waiting for it wake the connection, yet it is not tried again before its retry interval (a minute here)")
		// Longer than minCheckSpacing (5 s), the spacing of checks that failed transiently: a refusal
		// taken for an outage would be tried again within it.
		for i := range 5 {
			tokenOn(uniqueName("waits")+string(rune('a'+i)), "pending")
		}
		Consistently(func() int { return stub.Logins(t.user).Attempts - before }, "8s").Should(Equal(1))
	})
})

// refreshRefused reports whether the suite's realm refuses a refresh with rt.
func refreshRefused(rt string) bool {
	GinkgoHelper()
	refused, err := nomadstub.RefreshRefused(stub.IssuerURL(stubHTTP.URL), rt)
	Expect(err).NotTo(HaveOccurred())
	return refused
}

// recheck makes the connection check itself now: a changed annotation starts a new check.
func recheck(conn *v1alpha1.NomadConnection) {
	GinkgoHelper()
	fresh := &v1alpha1.NomadConnection{}
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(conn), fresh)).To(Succeed())
	if fresh.Annotations == nil {
		fresh.Annotations = map[string]string{}
	}
	fresh.Annotations["test/recheck"] = uniqueName("r")
	Expect(k8s.Update(ctx, fresh)).To(Succeed())
}

var _ = Describe("NomadConnection admission of credentials", func() {
	DescribeTable("the API server judges spec.credentials",
		func(creds v1alpha1.Credentials, message string) {
			conn := &v1alpha1.NomadConnection{
				ObjectMeta: metav1.ObjectMeta{Namespace: manualNamespace, Name: uniqueName("admission")},
				Spec:       v1alpha1.NomadConnectionSpec{URL: "https://nomad.example.org/nomad-oasis/api", Credentials: creds},
			}
			err := k8s.Create(ctx, conn)
			if message == "" {
				Expect(err).NotTo(HaveOccurred())
				Expect(k8s.Delete(ctx, conn)).To(Succeed())
				return
			}
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("Password needs no oidc", v1alpha1.Credentials{SecretRef: v1alpha1.CredentialsSecretRef{Name: "bot"}}, ""),
		Entry("RefreshToken without oidc", v1alpha1.Credentials{Method: v1alpha1.CredentialMethodRefreshToken,
			SecretRef: v1alpha1.CredentialsSecretRef{Name: "bot"}}, "oidc is required unless method is Password"),
		Entry("ClientCredentials without oidc", v1alpha1.Credentials{Method: v1alpha1.CredentialMethodClientCredentials,
			SecretRef: v1alpha1.CredentialsSecretRef{Name: "bot"}}, "oidc is required unless method is Password"),
		Entry("an unknown method", v1alpha1.Credentials{Method: "Kerberos", SecretRef: v1alpha1.CredentialsSecretRef{Name: "bot"}}, "spec.credentials.method"),
		Entry("an https issuer", oidcCredentials("https://nomad-lab.eu/fairdi/keycloak/auth/realms/fairdi_nomad_prod"), ""),
		Entry("a plain-http issuer on 127.0.0.1", oidcCredentials("http://127.0.0.1:8080/keycloak/auth/realms/nomad"), ""),
		Entry("a plain-http issuer on localhost", oidcCredentials("http://localhost/realms/nomad"), ""),
		Entry("a plain-http issuer on [::1]", oidcCredentials("http://[::1]:8080/realms/nomad"), ""),
		Entry("a plain-http issuer elsewhere", oidcCredentials("http://keycloak.example.org/realms/nomad"), "issuerURL must be https, or http on a loopback address"),
		Entry("a host that only starts like a loopback address", oidcCredentials("http://127.0.0.1.example.org/realms/nomad"), "issuerURL must be https, or http on a loopback address"),
		Entry("no URL at all", oidcCredentials("keycloak"), "issuerURL must be https, or http on a loopback address"),
	)
})

func oidcCredentials(issuer string) v1alpha1.Credentials {
	return v1alpha1.Credentials{Method: v1alpha1.CredentialMethodRefreshToken, SecretRef: v1alpha1.CredentialsSecretRef{Name: "bot"},
		OIDC: &v1alpha1.OIDCProvider{IssuerURL: issuer}}
}
