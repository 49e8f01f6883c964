package e2e

import (
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// A realm that rotates refresh tokens ("Revoke Refresh Token"): the manager stores each new refresh
// token in the connection's Secret before it uses the access token, so a standby that takes over and
// a restarted manager sign in with the Secret's token while the realm refuses the spent one; only the
// leader refreshes; and N NomadTokens, a takeover and a restart cost one refresh each per access-token
// lifetime (the stand-in's is 300 s, longer than this spec), not a loop.
var _ = Describe("a connection signing in with a rotating refresh token", func() {
	It("writes each new refresh token back, survives a takeover and a restart with it, and refreshes once per sign-in", func(ctx SpecContext) {
		c := controlPl.Client
		own, dir := startOwnStub(ctx, "signin-rotation", harness.StubOptions{Args: []string{"--rotate-refresh-tokens"}})
		issuer, err := own.Issuer(ctx)
		Expect(err).NotTo(HaveOccurred())
		first, err := own.IssueRefreshToken(ctx, own.User, true)
		Expect(err).NotTo(HaveOccurred())

		ns := "signin-rotation"
		Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		deleteNamespaceAtCleanup(ns)
		secretKey := client.ObjectKey{Namespace: ns, Name: "nomad-bot"}
		Expect(c.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secretKey.Name, Labels: map[string]string{v1alpha1.LabelCredentials: "true"}},
			StringData: map[string]string{v1alpha1.DefaultRefreshTokenKey: first},
		})).To(Succeed())
		conn := &v1alpha1.NomadConnection{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "oasis"},
			Spec: v1alpha1.NomadConnectionSpec{URL: own.APIURL, Credentials: v1alpha1.Credentials{
				Method:    v1alpha1.CredentialMethodRefreshToken,
				SecretRef: v1alpha1.CredentialsSecretRef{Name: secretKey.Name},
				OIDC:      &v1alpha1.OIDCProvider{IssuerURL: issuer},
			}},
		}
		Expect(c.Create(ctx, conn)).To(Succeed())
		keys := createReadyTokens(ctx, ns, conn.Name, "a", "b", "c", "d", "e", "f", "g", "h", "i", "j")
		refreshes := func() int {
			GinkgoHelper()
			st, err := own.State(ctx)
			Expect(err).NotTo(HaveOccurred())
			return st.Realm.Grants["refresh_token"]
		}
		storedToken := func() string {
			GinkgoHelper()
			s := &corev1.Secret{}
			Expect(c.Get(ctx, secretKey, s)).To(Succeed())
			return string(s.Data[v1alpha1.DefaultRefreshTokenKey])
		}
		Expect(refreshes()).To(Equal(1), "ten NomadTokens share the connection's one sign-in")
		second := storedToken()
		Expect(second).NotTo(Equal(first), "the rotated refresh token is in the Secret")
		Expect(realmRefuses(issuer, first)).To(BeTrue(), "the realm refuses the spent refresh token")

		// checksAfter waits for two checks of the connection after calls were taken: writes that
		// follow the first have landed once the second is made.
		checksAfter := func(calls map[string]int) {
			GinkgoHelper()
			eventually(ctx, func(g Gomega) {
				now, err := own.Calls(ctx)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(now["list"]).To(BeNumerically(">=", calls["list"]+2), "two checks of the connection")
			}).Should(Succeed())
		}
		calls, err := own.Calls(ctx)
		Expect(err).NotTo(HaveOccurred())

		By("a second replica on standby: it signs in nowhere while the leader leads")
		standby, err := harness.StartManager(ctx, harness.ManagerOptions{
			Bin: os.Getenv("MANAGER_BIN"), Kubeconfig: managerKubeconfig, LogPath: filepath.Join(dir, "manager-standby.log"),
			Args: []string{"--leader-elect", "--leader-election-namespace=" + operatorNamespace, "--verification-interval=" + verificationInterval.String()},
		})
		succeed(err)
		DeferCleanup(func() { _ = standby.Stop(20 * time.Second) })
		checksAfter(calls)
		Consistently(ctx, refreshes).WithTimeout(2 * verificationInterval).Should(Equal(1))

		By("the leader stops: the standby takes over and signs in with the Secret's refresh token")
		calls, err = own.Calls(ctx)
		Expect(err).NotTo(HaveOccurred())
		stopSuiteManager()
		checksAfter(calls)
		Expect(refreshes()).To(Equal(2), "one refresh for the new leader")
		third := storedToken()
		Expect(third).NotTo(Equal(second))
		Expect(realmRefuses(issuer, second)).To(BeTrue(), "the realm refuses the spent refresh token")

		By("restarting the manager: it signs in with the Secret's refresh token")
		Expect(standby.Stop(20 * time.Second)).To(Succeed())
		calls, err = own.Calls(ctx)
		Expect(err).NotTo(HaveOccurred())
		startSuiteManager(ctx)
		checksAfter(calls)
		Expect(refreshes()).To(Equal(3), "one refresh for the restarted manager, however many tokens and checks")
		fourth := storedToken()
		Expect(fourth).NotTo(Equal(third))
		Expect(realmRefuses(issuer, third)).To(BeTrue())
		after, err := own.Calls(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(after["login"]).To(BeZero(), "no password login at NOMAD's /auth/token")
		Expect(after["create"]).To(Equal(len(keys)), "one PAT per NomadToken: none minted again")
		for _, key := range keys {
			waitReady(ctx, key)
		}
		leaks, err := harness.ScanFile(manager.LogPath, first, second, third, fourth)
		Expect(err).NotTo(HaveOccurred())
		Expect(leaks).To(BeEmpty(), "refresh tokens in the manager log")
		leaks, err = harness.ScanFile(filepath.Join(dir, "manager-standby.log"), first, second, third, fourth)
		Expect(err).NotTo(HaveOccurred())
		Expect(leaks).To(BeEmpty(), "refresh tokens in the standby's log")
	})
})

// realmRefuses reports whether the realm at issuer refuses a refresh with rt.
func realmRefuses(issuer, rt string) bool {
	GinkgoHelper()
	refused, err := nomadstub.RefreshRefused(issuer, rt)
	Expect(err).NotTo(HaveOccurred())
	return refused
}
