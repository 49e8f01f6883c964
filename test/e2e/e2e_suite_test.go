// Package e2e runs the real manager binary against a real kube-apiserver and etcd (envtest) and the
// real NOMAD stand-in binary, and checks what a user sees: conditions, the Secret, and NOMAD's own
// view of the PAT. A real kube-controller-manager runs the namespace and garbage-collector
// controllers, so namespace deletion and ownerReference garbage collection happen as in a cluster.
//
//	make test-e2e
//
// or, after `make build`:
//
//	KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh) MANAGER_BIN=$PWD/bin/manager STUB_BIN=$PWD/bin/nomad-stub PLUGIN_BIN=$PWD/bin/kubectl-nomadtoken \
//	  go test -count=1 ./test/e2e/...
//
// The logs of the manager, the stand-in and kube-controller-manager are kept (their directory is printed) when a spec fails
// or E2E_KEEP_LOGS is set.
package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// operatorNamespace is where config/default deploys the manager.
const operatorNamespace = "nomad-operator-system"

// verificationInterval is the manager's --verification-interval here (10m by default): short, so that
// a PAT revoked in NOMAD behind the operator's back is noticed within a spec's patience. Every spec
// runs with it, which also keeps the periodic verification busy during rotations.
const verificationInterval = 5 * time.Second

// Everything the specs share; set up once in BeforeSuite.
var (
	repoRoot  string
	workDir   string
	controlPl *harness.ControlPlane
	kcm       *harness.ControllerManager
	stub      *harness.Stub
	// manager is the suite's manager, cluster-wide as config/default deploys it. A spec that needs
	// the objects to itself stops it and starts it again (stopSuiteManager, startSuiteManager).
	manager           *harness.Manager
	managerKubeconfig string
	// metricsAddr is where the suite's manager serves its metrics (host:port, HTTPS).
	metricsAddr string
	// anyFailure keeps the logs for a look afterwards; so does a setup that never finished.
	anyFailure bool
	setUp      bool
)

func TestE2E(t *testing.T) {
	var missing []string
	for _, v := range []string{"MANAGER_BIN", "STUB_BIN", "KUBEBUILDER_ASSETS"} {
		if os.Getenv(v) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		t.Skipf("e2e needs %v; run `make test-e2e`, or after `make build`: "+
			"KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh) MANAGER_BIN=$PWD/bin/manager STUB_BIN=$PWD/bin/nomad-stub go test ./test/e2e/...", missing)
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "e2e")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	// controller-runtime's clients log (rarely); a client made late, as the RBAC specs make theirs,
	// would otherwise print a warning with a stack trace that no logger was set.
	logf.SetLogger(GinkgoLogr)
	var err error
	repoRoot, err = harness.RepoRoot()
	succeed(err)
	workDir, err = os.MkdirTemp("", "nomad-token-operator-e2e-")
	succeed(err)
	// Registered first, so it runs last: logs are kept when anything failed.
	DeferCleanup(func() {
		if anyFailure || !setUp || os.Getenv("E2E_KEEP_LOGS") != "" {
			fmt.Printf("e2e: logs kept in %s\n", workDir)
			return
		}
		_ = os.RemoveAll(workDir)
	})

	By("starting kube-apiserver and etcd with the CRDs")
	controlPl, err = harness.StartControlPlane(harness.ControlPlaneOptions{
		RepoRoot:       repoRoot,
		KubeconfigPath: filepath.Join(workDir, "kubeconfig"),
	})
	succeed(err)
	DeferCleanup(func() { Expect(controlPl.Stop()).To(Succeed()) })

	By("starting kube-controller-manager with the namespace and garbage-collector controllers")
	kcm, err = harness.StartControllerManager(ctx, harness.ControllerManagerOptions{
		Kubeconfig: controlPl.Kubeconfig,
		LogPath:    filepath.Join(workDir, "kube-controller-manager.log"),
	})
	succeed(err)
	// Stopped after the manager (cleanups run last-in first-out) and before the API server.
	DeferCleanup(func() { Expect(kcm.Stop(0)).To(Succeed()) })

	By("starting the NOMAD stand-in binary")
	stub, err = harness.StartStub(ctx, harness.StubOptions{Bin: os.Getenv("STUB_BIN"), Dir: workDir})
	succeed(err)
	DeferCleanup(func() { Expect(stub.Stop(0)).To(Succeed()) })

	By("installing config/rbac, so that the manager runs with a deployed manager's permissions only")
	managerKubeconfig = filepath.Join(workDir, "manager.kubeconfig")
	succeed(controlPl.InstallRBAC(ctx, repoRoot, operatorNamespace, managerKubeconfig))

	By("starting the manager binary")
	startSuiteManager(ctx)
	// The manager stops first (cleanups run last-in first-out), while the API server still answers.
	DeferCleanup(stopSuiteManager)
	setUp = true
}, NodeTimeout(3*time.Minute))

// startSuiteManager starts the suite's manager, appending to manager.log.
func startSuiteManager(ctx context.Context) {
	GinkgoHelper()
	// Metrics as deployed: HTTPS behind the API server's authentication and authorization, here on
	// a free loopback port (metrics_test.go scrapes it).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	succeed(err)
	metricsAddr = ln.Addr().String()
	succeed(ln.Close())
	m, err := harness.StartManager(ctx, harness.ManagerOptions{
		Bin:        os.Getenv("MANAGER_BIN"),
		Kubeconfig: managerKubeconfig,
		LogPath:    filepath.Join(workDir, "manager.log"),
		Args: []string{
			// As deployed (config/manager): leader election, which needs config/rbac's Role.
			"--leader-elect", "--leader-election-namespace=" + operatorNamespace,
			// Debug level, so that the log scan also covers what an operator would turn on to debug.
			"--zap-log-level=debug",
			"--verification-interval=" + verificationInterval.String(),
			// After StartManager's --metrics-bind-address=0: the last one counts.
			"--metrics-bind-address=" + metricsAddr, "--metrics-secure=true",
		},
	})
	succeed(err)
	manager = m
}

// stopSuiteManager stops the suite's manager cleanly, which hands its leader-election Lease back
// at once; a no-op when it is not running.
func stopSuiteManager() {
	GinkgoHelper()
	if manager == nil {
		return
	}
	m := manager
	manager = nil
	Expect(m.Stop(20 * time.Second)).To(Succeed())
}

// On failure, show the end of the manager's, the stand-in's and kube-controller-manager's logs, raw
// PATs redacted.
var _ = AfterEach(func() {
	if !CurrentSpecReport().Failed() {
		return
	}
	anyFailure = true
	if manager != nil {
		AddReportEntry("manager log (tail)", manager.Tail(60))
		if exited, err := manager.Exited(); exited {
			AddReportEntry("manager exited", fmt.Sprint(err))
		}
	}
	if stub != nil {
		AddReportEntry("nomad-stub log (tail)", stub.Tail(30))
	}
	if kcm != nil {
		AddReportEntry("kube-controller-manager log (tail)", kcm.Tail(30))
		if exited, err := kcm.Exited(); exited {
			AddReportEntry("kube-controller-manager exited", fmt.Sprint(err))
		}
	}
})

// succeed fails the node with err's message alone: Gomega would print every wrapped layer of it.
func succeed(err error) {
	GinkgoHelper()
	if err != nil {
		Fail(err.Error())
	}
}

// eventually is Eventually with the suite's usual timeout and poll interval.
func eventually(ctx context.Context, f any) AsyncAssertion {
	return Eventually(ctx, f).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond)
}

// startOwnStub starts a NOMAD stand-in of the spec's own under workDir/name (o's Bin and Dir are
// filled in), so that the calls it counts are that spec's alone, and stops it when the spec ends.
// It returns the stand-in and its directory (its log is there).
func startOwnStub(ctx context.Context, name string, o harness.StubOptions) (*harness.Stub, string) {
	GinkgoHelper()
	o.Bin, o.Dir = os.Getenv("STUB_BIN"), filepath.Join(workDir, name)
	succeed(os.MkdirAll(o.Dir, 0o755))
	own, err := harness.StartStub(ctx, o)
	succeed(err)
	DeferCleanup(func() { Expect(own.Stop(0)).To(Succeed()) })
	return own, o.Dir
}

// createReadyTokens creates a NomadToken of connection conn in ns for each name, deleted (and waited
// for) when the spec ends, waits until all are Ready and returns their keys.
func createReadyTokens(ctx SpecContext, ns, conn string, names ...string) []client.ObjectKey {
	GinkgoHelper()
	c := controlPl.Client
	var keys []client.ObjectKey
	for _, name := range names {
		tok := harness.NomadToken(ns, name, conn, v1alpha1.Rotation{})
		Expect(c.Create(ctx, tok)).To(Succeed())
		keys = append(keys, client.ObjectKeyFromObject(tok))
		DeferCleanup(func(ctx SpecContext) {
			Expect(client.IgnoreNotFound(c.Delete(ctx, tok))).To(Succeed())
			awaitNotFound(ctx, client.ObjectKeyFromObject(tok), &v1alpha1.NomadToken{}, teardownPatience)
		})
	}
	for _, key := range keys {
		waitReady(ctx, key)
	}
	return keys
}
