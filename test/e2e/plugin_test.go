package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// The kubectl plugin (bin/kubectl-nomadtoken, PLUGIN_BIN) against the API server and the real manager.
var _ = Describe("The kubectl plugin kubectl-nomadtoken", Ordered, func() {
	var (
		t, other *tenant
		key      client.ObjectKey
	)
	BeforeAll(func(ctx SpecContext) {
		if os.Getenv("PLUGIN_BIN") == "" {
			Skip("PLUGIN_BIN is not set: `make test-e2e` sets it to bin/kubectl-nomadtoken")
		}
		t = newTenant(ctx, "e2e-plugin")
		other = newTenant(ctx, "e2e-plugin-other")
		key = t.createToken(ctx, "cli", v1alpha1.Rotation{})
		other.createToken(ctx, "cli-other", v1alpha1.Rotation{})
		waitReady(ctx, key)
		waitReady(ctx, client.ObjectKey{Namespace: other.ns, Name: "cli-other"})
	})

	It("status shows the Ready token in a table", func(ctx SpecContext) {
		out, errOut, err := plugin(ctx, "", "status", "-n", t.ns)
		Expect(err).NotTo(HaveOccurred(), errOut)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		Expect(lines).To(HaveLen(2), out)
		Expect(strings.Fields(lines[0])).To(Equal([]string{"NAME", "READY", "REASON", "EXPIRES-IN", "RENEWS-IN", "LAST-USED"}))
		row := strings.Fields(lines[1])
		Expect(row[:3]).To(Equal([]string{"cli", "True", v1alpha1.ReasonIssued}), out)
		Expect(row[3]).To(MatchRegexp(`^\d+d(\d+h)?$`), "expires in about 30 days: %s", out)
	})

	It("status -o json and -o yaml parse, and -A lists several namespaces", func(ctx SpecContext) {
		out, errOut, err := plugin(ctx, "", "status", "-A", "-o", "json")
		Expect(err).NotTo(HaveOccurred(), errOut)
		var list v1alpha1.NomadTokenList
		Expect(json.Unmarshal([]byte(out), &list)).To(Succeed())
		namespaces := map[string]bool{}
		for _, tok := range list.Items {
			namespaces[tok.Namespace] = true
		}
		Expect(namespaces).To(HaveKey(t.ns))
		Expect(namespaces).To(HaveKey(other.ns))

		out, errOut, err = plugin(ctx, "", "status", "-n", t.ns, "cli", "-o", "yaml")
		Expect(err).NotTo(HaveOccurred(), errOut)
		var tok v1alpha1.NomadToken
		Expect(yaml.Unmarshal([]byte(out), &tok)).To(Succeed())
		Expect(tok.Name).To(Equal("cli"))
		Expect(tok.Status.TokenID).NotTo(BeEmpty())

		out, errOut, err = plugin(ctx, "", "status", "-A")
		Expect(err).NotTo(HaveOccurred(), errOut)
		Expect(out).To(HavePrefix("NAMESPACE"))
		Expect(out).To(ContainSubstring(other.ns))
	})

	It("--context picks a context of a kubeconfig with two", func(ctx SpecContext) {
		path := twoContextKubeconfig(t.ns)
		// The current context points at a server that does not exist.
		_, _, err := plugin(ctx, "", "--kubeconfig", path, "--request-timeout", "5s", "status")
		Expect(err).To(HaveOccurred(), "the current context is broken on purpose")
		// The other one works, with its namespace as the default.
		out, errOut, err := plugin(ctx, "", "--kubeconfig", path, "--context", "e2e", "status")
		Expect(err).NotTo(HaveOccurred(), errOut)
		Expect(out).To(MatchRegexp(`(?m)^cli\s+True`))
	})

	It("rotate --wait replaces the PAT", func(ctx SpecContext) {
		before := currentToken(ctx, key)
		out, errOut, err := plugin(ctx, "", "rotate", "cli", "-n", t.ns, "--wait", "--timeout", "1m")
		Expect(err).NotTo(HaveOccurred(), errOut)
		Expect(out).To(ContainSubstring("done, Ready"))
		after := currentToken(ctx, key)
		Expect(after.Status.TokenID).NotTo(Equal(before.Status.TokenID))
		Expect(after.Status.RotateRequestHandled).To(Equal(after.Annotations[v1alpha1.AnnotationRotate]))
	})

	It("revoke-now answered n does nothing; with --yes it revokes the PAT at once", func(ctx SpecContext) {
		before := currentToken(ctx, key)
		raw, _ := t.secretToken(ctx, key)

		out, _, err := plugin(ctx, "n\n", "revoke-now", "cli", "-n", t.ns)
		Expect(err).To(HaveOccurred(), "declined")
		Expect(out).To(ContainSubstring("[y/N]"))
		unchanged := currentToken(ctx, key)
		Expect(unchanged.Annotations).NotTo(HaveKey(v1alpha1.AnnotationRevokeNow))
		Expect(unchanged.Status.TokenID).To(Equal(before.Status.TokenID))

		_, errOut, err := plugin(ctx, "", "revoke-now", "cli", "-n", t.ns, "--yes", "--wait", "--timeout", "1m")
		Expect(err).NotTo(HaveOccurred(), errOut)
		after := currentToken(ctx, key)
		Expect(after.Status.TokenID).NotTo(Equal(before.Status.TokenID))
		Expect(stub.Authenticates(ctx, raw)).To(BeFalse(), "the old PAT is revoked, without grace")
	})

	It("wait returns 0 on Ready, and fails with the reason on time-out for a token that cannot become Ready", func(ctx SpecContext) {
		_, errOut, err := plugin(ctx, "", "wait", "cli", "-n", t.ns, "--timeout", "30s")
		Expect(err).NotTo(HaveOccurred(), errOut)

		lost := neverReadyToken(t.ns, "no-connection")
		Expect(controlPl.Client.Create(ctx, lost)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(client.IgnoreNotFound(controlPl.Client.Delete(ctx, lost))).To(Succeed()) })
		_, errOut, err = plugin(ctx, "", "wait", "no-connection", "-n", t.ns, "--timeout", "3s")
		Expect(err).To(HaveOccurred())
		Expect(errOut).To(ContainSubstring("timed out"))
		Expect(errOut).To(ContainSubstring(v1alpha1.ReasonConnectionNotFound))
	})
})

// plugin runs PLUGIN_BIN against the suite's API server (unless args name a kubeconfig) with stdin.
func plugin(ctx context.Context, stdin string, args ...string) (string, string, error) {
	if !strings.Contains(strings.Join(args, " "), "--kubeconfig") {
		args = append([]string{"--kubeconfig", controlPl.Kubeconfig}, args...)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Getenv("PLUGIN_BIN"), args...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
	err := cmd.Run()
	GinkgoWriter.Printf("kubectl-nomadtoken %s\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	return out.String(), errOut.String(), err
}

func currentToken(ctx context.Context, key client.ObjectKey) *v1alpha1.NomadToken {
	GinkgoHelper()
	tok := &v1alpha1.NomadToken{}
	Expect(controlPl.Client.Get(ctx, key, tok)).To(Succeed())
	return tok
}

// neverReadyToken is a NomadToken through a NomadConnection that does not exist: never Ready.
func neverReadyToken(ns, name string) *v1alpha1.NomadToken {
	return &v1alpha1.NomadToken{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.NomadTokenSpec{
			ConnectionRef: v1alpha1.ConnectionRef{Name: "does-not-exist"},
			Scopes:        []string{"uploads:read"},
		},
	}
}

// twoContextKubeconfig writes a kubeconfig whose current context "broken" points at a closed port
// and whose context "e2e" is the suite's admin, with namespace ns.
func twoContextKubeconfig(ns string) string {
	GinkgoHelper()
	cfg, err := clientcmd.LoadFromFile(controlPl.Kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	cur := cfg.Contexts[cfg.CurrentContext]
	Expect(cur).NotTo(BeNil())
	cfg.Clusters["nowhere"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1", InsecureSkipTLSVerify: true}
	cfg.Contexts["broken"] = &clientcmdapi.Context{Cluster: "nowhere", AuthInfo: cur.AuthInfo}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: cur.Cluster, AuthInfo: cur.AuthInfo, Namespace: ns}
	cfg.CurrentContext = "broken"
	path := filepath.Join(workDir, "two-contexts.kubeconfig")
	Expect(clientcmd.WriteToFile(*cfg, path)).To(Succeed())
	return path
}
