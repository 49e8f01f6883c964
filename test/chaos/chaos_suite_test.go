// Package chaos kills the real manager binary with SIGKILL at random moments while NomadTokens
// issue and rotate, and then checks that nothing was lost: every NomadToken is Ready, every
// Secret's token authenticates at NOMAD (the stand-in), and the stand-in holds no active PAT that
// no Secret or status accounts for. A second spec runs two managers with leader election and kills
// the leader, and checks that no NomadToken ever had two PATs active at once.
//
// It has a control plane, stand-in and managers of its own, so it never disturbs the e2e suite.
//
//	make test-chaos   # 5 kills, part of `make test`
//	make chaos        # 20 kills, prints the figures
//
// or, after `make build`:
//
//	KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh) MANAGER_BIN=$PWD/bin/manager STUB_BIN=$PWD/bin/nomad-stub \
//	  CHAOS_KILLS=5 go test -count=1 -v ./test/chaos/...
//
// The kill moments and the annotation rotations come from a seeded math/rand. The seed is always
// printed; CHAOS_SEED=<seed> replays the same schedule (the operator's own timing still varies from
// run to run, so a replay makes a failure likely, not certain). CHAOS_KILLS and CHAOS_TOKENS set the
// number of kills (default 5) and NomadTokens (default 12).
//
// A manager killed with -9 cannot release its leader-election lease: the next one waits until it
// expires. When the manager binary has --leader-election-lease-duration (and the renew deadline
// and retry period flags), the managers run with a 6 s lease and every kill's lease is waited out.
// An older binary without them keeps the 15 s default; then, after each kill, once the killed
// process is known to be gone, the kill spec deletes the Lease, standing in for its expiry
// (CHAOS_WAIT_LEASE=1 waits instead). The leader-election spec always waits it out: that is what it
// tests.
//
// Logs (one file per manager process) are kept, and their directory printed, when a spec fails or
// CHAOS_KEEP_LOGS is set.
package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

const (
	// operatorNamespace is where config/default deploys the manager, and where its Lease lives.
	operatorNamespace = "nomad-operator-system"
	// leaseName is cmd/manager's LeaderElectionID.
	leaseName = "nomad-token-operator.tokens.nomad-operator.dev"
	// shortLease is the leader-election lease the managers run with when the binary has the flags
	// for it (--leader-election-lease-duration and friends): a standby takes over from a killed
	// leader within about that time. defaultLease is controller-runtime's, used otherwise.
	shortLease, shortRenewDeadline, shortRetryPeriod = 6 * time.Second, 4 * time.Second, time.Second
	defaultLease                                     = 15 * time.Second
	// verificationInterval keeps the periodic list of every connection busy during the chaos.
	verificationInterval = 5 * time.Second
)

// Everything the specs share; set up once in BeforeSuite.
var (
	repoRoot          string
	workDir           string
	controlPl         *harness.ControlPlane
	stub              *harness.Stub
	managerKubeconfig string
	seed              uint64
	kills             int
	tokenCount        int
	waitLease         bool
	// leaseDuration is the managers' lease: shortLease or defaultLease. With the lease's retry period
	// and slack it bounds how long a new manager waits for a killed one's lease.
	leaseDuration = defaultLease
	leaseArgs     []string
	anyFailure    bool
	setUp         bool
)

func TestChaos(t *testing.T) {
	var missing []string
	for _, v := range []string{"MANAGER_BIN", "STUB_BIN", "KUBEBUILDER_ASSETS"} {
		if os.Getenv(v) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		t.Skipf("the chaos suite needs %v; run `make test-chaos` or `make chaos`, or after `make build`: "+
			"KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh) MANAGER_BIN=$PWD/bin/manager STUB_BIN=$PWD/bin/nomad-stub "+
			"CHAOS_KILLS=5 go test -count=1 -v ./test/chaos/...", missing)
	}
	var err error
	if seed, err = envUint("CHAOS_SEED", uint64(time.Now().UnixNano())); err != nil {
		t.Fatal(err)
	}
	k, err := envUint("CHAOS_KILLS", 5)
	if err != nil {
		t.Fatal(err)
	}
	n, err := envUint("CHAOS_TOKENS", 12)
	if err != nil {
		t.Fatal(err)
	}
	kills, tokenCount, waitLease = int(k), int(n), os.Getenv("CHAOS_WAIT_LEASE") != ""
	// Printed before anything can fail, so that every failure can be replayed.
	fmt.Printf("chaos: seed %d (replay with CHAOS_SEED=%d), %d kills, %d NomadTokens\n", seed, seed, kills, tokenCount)
	RegisterFailHandler(Fail)
	RunSpecs(t, "chaos")
}

func envUint(name string, def uint64) (uint64, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: want a non-negative integer", name, v)
	}
	return n, nil
}

var _ = BeforeSuite(func(ctx SpecContext) {
	var err error
	repoRoot, err = harness.RepoRoot()
	succeed(err)
	workDir, err = os.MkdirTemp("", "nomad-token-operator-chaos-")
	succeed(err)
	// Registered first, so it runs last: logs are kept when anything failed.
	DeferCleanup(func() {
		if anyFailure || !setUp || os.Getenv("CHAOS_KEEP_LOGS") != "" {
			fmt.Printf("chaos: logs kept in %s (seed %d)\n", workDir, seed)
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

	By("starting the NOMAD stand-in binary")
	stub, err = harness.StartStub(ctx, harness.StubOptions{Bin: os.Getenv("STUB_BIN"), Dir: workDir})
	succeed(err)
	DeferCleanup(func() { Expect(stub.Stop(0)).To(Succeed()) })

	By("installing config/rbac, so that every manager runs with a deployed manager's permissions only")
	managerKubeconfig = filepath.Join(workDir, "manager.kubeconfig")
	succeed(controlPl.InstallRBAC(ctx, repoRoot, operatorNamespace, managerKubeconfig))

	// A short lease if the binary can be told; otherwise the kill spec deletes a killed holder's
	// Lease instead of waiting 15 s (unless CHAOS_WAIT_LEASE is set).
	help, _ := exec.CommandContext(ctx, os.Getenv("MANAGER_BIN"), "-h").CombinedOutput()
	if strings.Contains(string(help), "-leader-election-lease-duration") {
		leaseDuration, waitLease = shortLease, true
		leaseArgs = []string{
			"--leader-election-lease-duration=" + shortLease.String(),
			"--leader-election-renew-deadline=" + shortRenewDeadline.String(),
			"--leader-election-retry-period=" + shortRetryPeriod.String(),
		}
	}
	how := "the killed holder's Lease is deleted after each kill (no lease flags in the binary)"
	if waitLease {
		how = fmt.Sprintf("each kill's lease is waited out (%s)", leaseDuration)
	}
	fmt.Printf("chaos: leader-election lease %s; %s\n", leaseDuration, how)
	setUp = true
}, NodeTimeout(2*time.Minute))

// On failure, keep the logs and say where they are.
var _ = AfterEach(func() {
	if CurrentSpecReport().Failed() {
		anyFailure = true
		if stub != nil {
			AddReportEntry("nomad-stub log (tail)", stub.Tail(30))
		}
	}
})

// startManager starts one manager process as deployed (leader election in operatorNamespace) with
// its log in workDir/logName. It does not wait for leadership.
func startManager(ctx context.Context, logName string) *harness.Manager {
	GinkgoHelper()
	m, err := harness.StartManager(ctx, managerOptions(logName))
	succeed(err)
	return m
}

// managerOptions run the manager binary as deployed, with its log in workDir/logName.
func managerOptions(logName string) harness.ManagerOptions {
	return harness.ManagerOptions{
		Bin:        os.Getenv("MANAGER_BIN"),
		Kubeconfig: managerKubeconfig,
		LogPath:    filepath.Join(workDir, logName),
		Args: append([]string{
			// As config/manager deploys it: leader election, with config/rbac's Role.
			"--leader-elect", "--leader-election-namespace=" + operatorNamespace,
			// Debug level: the log around a kill is what a bug report needs.
			"--zap-log-level=debug",
			"--verification-interval=" + verificationInterval.String(),
		}, leaseArgs...),
	}
}

// releaseLease deletes the leader-election Lease. Only call it when no manager that could hold it
// is running: it stands in for the lease of a dead holder expiring.
func releaseLease(ctx context.Context) {
	GinkgoHelper()
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: leaseName}}
	Expect(client.IgnoreNotFound(controlPl.Client.Delete(ctx, lease))).To(Succeed())
}

// succeed fails the node with err's message alone: Gomega would print every wrapped layer of it.
func succeed(err error) {
	GinkgoHelper()
	if err != nil {
		Fail(err.Error())
	}
}

func readyOf(conds []metav1.Condition) metav1.Condition {
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady); c != nil {
		return *c
	}
	return metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionUnknown, Reason: "NotSetYet"}
}
