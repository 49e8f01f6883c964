package e2e

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// stubRealmPath is where the stand-in serves its Keycloak realm, as a docker-compose Oasis does.
const stubRealmPath = "/keycloak/auth/realms/nomad"

// `kubectl nomadtoken login` (PLUGIN_BIN) against the stand-in's Keycloak realm and the real manager:
// the test plays the browser, the stand-in's authorize endpoint signs the account in without a form.
var _ = Describe("kubectl nomadtoken login", Ordered, func() {
	const ns = "e2e-plugin-login"
	var (
		realmStub *harness.Stub
		issuer    string
		user      = ns + "-person"
	)
	BeforeAll(func(ctx SpecContext) {
		if os.Getenv("PLUGIN_BIN") == "" {
			Skip("PLUGIN_BIN is not set: `make test-e2e` sets it to bin/kubectl-nomadtoken")
		}
		// A stand-in of its own whose authorize endpoint signs in this spec's account.
		realmStub, _ = startOwnStub(ctx, "login-stub", harness.StubOptions{
			User: user, Password: user + "-password", Args: []string{"--authorize-user=" + user},
		})
		issuer = realmStub.Addr + stubRealmPath
		Expect(servesRealm(ctx, issuer)).To(BeTrue(), "the login stand-in serves the realm")
	})

	It("stores an offline refresh token in a new labelled Secret, the connection becomes Ready, and no token is printed", func(ctx SpecContext) {
		c := controlPl.Client
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			Expect(err).NotTo(HaveOccurred())
		}
		conn := &v1alpha1.NomadConnection{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "oasis"},
			Spec: v1alpha1.NomadConnectionSpec{
				URL: realmStub.APIURL,
				Credentials: v1alpha1.Credentials{
					Method:    v1alpha1.CredentialMethodRefreshToken,
					SecretRef: v1alpha1.CredentialsSecretRef{Name: "nomad-person"},
					OIDC:      &v1alpha1.OIDCProvider{IssuerURL: issuer},
				},
			},
		}
		Expect(c.Create(ctx, conn)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(client.IgnoreNotFound(c.Delete(ctx, conn))).To(Succeed()) })
		secretKey := client.ObjectKey{Namespace: ns, Name: "nomad-person"}

		run := startPluginLogin(ctx, "login", "-n", ns, "oasis", "--no-browser", "--wait-timeout", "1m")
		var signInURL string
		Eventually(ctx, run.url).WithTimeout(30*time.Second).Should(Receive(&signInURL), run.stderr)

		By("playing the browser: the realm signs in and redirects to the plugin's loopback callback")
		resp, err := http.Get(signInURL)
		Expect(err).NotTo(HaveOccurred())
		page, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusOK), string(page))
		Expect(string(page)).To(ContainSubstring("Signed in; you can close this window"))

		// The plugin's refresh token, read before the manager may rotate it.
		var seen []string
		var sec corev1.Secret
		eventually(ctx, func(g Gomega) {
			g.Expect(c.Get(ctx, secretKey, &sec)).To(Succeed())
			g.Expect(sec.Data).To(HaveKey(v1alpha1.DefaultRefreshTokenKey))
		}).Should(Succeed())
		seen = append(seen, string(sec.Data[v1alpha1.DefaultRefreshTokenKey]))

		out, errOut, err := run.wait()
		Expect(err).NotTo(HaveOccurred(), "exit status; stderr:\n%s", errOut)
		Expect(out).To(ContainSubstring("Signed in as " + user))
		Expect(out).To(ContainSubstring("NomadConnection " + ns + "/oasis is Ready"))

		Expect(c.Get(ctx, secretKey, &sec)).To(Succeed())
		Expect(sec.Labels).To(HaveKeyWithValue(v1alpha1.LabelCredentials, "true"))
		Expect(sec.Type).To(Equal(corev1.SecretTypeOpaque))
		Expect(sec.Data[v1alpha1.DefaultRefreshTokenKey]).NotTo(BeEmpty())
		seen = append(seen, string(sec.Data[v1alpha1.DefaultRefreshTokenKey]))

		Expect(c.Get(ctx, client.ObjectKeyFromObject(conn), conn)).To(Succeed())
		Expect(readyOf(conn.Status.Conditions).Status).To(Equal(metav1.ConditionTrue), "Ready condition")

		for i, tok := range seen {
			Expect(strings.Contains(out+errOut+string(page), tok)).To(BeFalse(), "refresh token #%d in the plugin's output", i)
		}
		By("signing in again on the Ready connection: login waits for the sign-in with the new refresh token")
		again := startPluginLogin(ctx, "login", "-n", ns, "oasis", "--no-browser", "--wait-timeout", "1m")
		Eventually(ctx, again.url).WithTimeout(30*time.Second).Should(Receive(&signInURL), again.stderr)
		resp, err = http.Get(signInURL)
		Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		out, errOut, err = again.wait()
		Expect(err).NotTo(HaveOccurred(), "exit status; stderr:\n%s", errOut)
		Expect(out).To(Equal("Signed in as "+user+"; NomadConnection "+ns+"/oasis is Ready.\n"), "not the answer of a timeout")
		Expect(c.Get(ctx, client.ObjectKeyFromObject(conn), conn)).To(Succeed())
		Expect(conn.Status.Credentials).NotTo(BeNil())
		Expect(conn.Status.Credentials.SignInRequest).To(Equal(conn.Annotations[v1alpha1.AnnotationSignIn]))
		Expect(c.Get(ctx, secretKey, &sec)).To(Succeed())
		seen = append(seen, string(sec.Data[v1alpha1.DefaultRefreshTokenKey]))
		Expect(strings.Contains(out+errOut, seen[len(seen)-1])).To(BeFalse())

		leaks, err := harness.ScanFile(manager.LogPath, seen...)
		Expect(err).NotTo(HaveOccurred())
		Expect(leaks).To(BeEmpty(), "refresh tokens in the manager log")
	})
})

// servesRealm reports whether issuer serves an OIDC discovery document.
func servesRealm(ctx context.Context, issuer string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/.well-known/openid-configuration", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// pluginLogin is a running `kubectl-nomadtoken login`: url receives the URL it prints on stderr.
type pluginLogin struct {
	cmd    *exec.Cmd
	url    chan string
	out    bytes.Buffer
	mu     sync.Mutex
	errOut bytes.Buffer
	read   chan struct{}
}

// startPluginLogin starts PLUGIN_BIN against the suite's API server; wait returns its output.
func startPluginLogin(ctx context.Context, args ...string) *pluginLogin {
	GinkgoHelper()
	args = append([]string{"--kubeconfig", controlPl.Kubeconfig}, args...)
	p := &pluginLogin{url: make(chan string, 1), read: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, os.Getenv("PLUGIN_BIN"), args...)
	p.cmd.Stdout = &p.out
	stderr, err := p.cmd.StderrPipe()
	Expect(err).NotTo(HaveOccurred())
	Expect(p.cmd.Start()).To(Succeed())
	go func() {
		defer close(p.read)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.errOut.WriteString(line + "\n")
			p.mu.Unlock()
			if u, ok := strings.CutPrefix(line, "Open this URL to sign in: "); ok {
				p.url <- u
			}
		}
	}()
	GinkgoWriter.Printf("kubectl-nomadtoken %s\n", strings.Join(args, " "))
	return p
}

// stderr is what the plugin has written to stderr so far.
func (p *pluginLogin) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "no sign-in URL on stderr:\n" + p.errOut.String()
}

func (p *pluginLogin) wait() (string, string, error) {
	<-p.read // all of stderr, before Wait closes the pipe
	err := p.cmd.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	GinkgoWriter.Printf("%s%s", p.out.String(), p.errOut.String())
	return p.out.String(), p.errOut.String(), err
}
