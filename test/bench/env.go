package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// operatorNamespace is where config/default deploys the manager.
const operatorNamespace = "nomad-operator-system"

// env is one bench run's world: the control plane, one stand-in per connection, the manager.
type env struct {
	cfg      config
	root     string
	dir      string
	cp       *harness.ControlPlane
	kube     client.Client // the admin user, with client-side rate limiting off
	kubeRest *rest.Config
	stubs    []*harness.Stub
	// namespaces[i] holds connection i ("oasis") and its share of the tokens.
	namespaces []string

	mgr           *harness.Manager
	mgrKubeconfig string
	metricsAddr   string
	pprofAddr     string
	// managerFlags are the flags this manager binary knows, from its -help.
	managerFlags map[string]bool
	// starts counts manager starts; each appends to manager.log.
	starts int
	// clockOffset is how far the storm moved every stand-in's clock, and so the manager's.
	clockOffset time.Duration
}

func newEnv(ctx context.Context, cfg config) (*env, error) {
	root, err := harness.RepoRoot()
	if err != nil {
		return nil, err
	}
	for _, p := range []*string{&cfg.managerBin, &cfg.stubBin} {
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(root, *p)
		}
	}
	dir, err := os.MkdirTemp("", "nomad-token-operator-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, root: root, dir: dir}
	if e.managerFlags, err = knownFlags(cfg.managerBin); err != nil {
		return e, err
	}
	logf("working directory %s", dir)
	logf("starting kube-apiserver and etcd")
	if e.cp, err = harness.StartControlPlane(harness.ControlPlaneOptions{RepoRoot: root, KubeconfigPath: filepath.Join(dir, "kubeconfig")}); err != nil {
		return e, err
	}
	e.kubeRest = rest.CopyConfig(e.cp.Config)
	e.kubeRest.QPS, e.kubeRest.Burst = -1, 0 // no client-side limit: the bench must not be its own bottleneck
	if e.kube, err = client.New(e.kubeRest, client.Options{Scheme: e.cp.Scheme}); err != nil {
		return e, err
	}
	perConn := (cfg.n + cfg.c - 1) / cfg.c
	// Overlap keeps the old PAT active while the new one is issued, and isolation/restart add a few.
	maxActive := 2*perConn + 100
	logf("starting %d NOMAD stand-ins (max %d active PATs per user)", cfg.c, maxActive)
	for i := range cfg.c {
		sdir := filepath.Join(dir, fmt.Sprintf("nomad-%d", i))
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			return e, err
		}
		s, err := harness.StartStub(ctx, harness.StubOptions{Bin: cfg.stubBin, Dir: sdir, Args: []string{"--max-active=" + strconv.Itoa(maxActive)}})
		if err != nil {
			return e, err
		}
		e.stubs = append(e.stubs, s)
		ns := fmt.Sprintf("bench-%d", i)
		if _, _, _, err := harness.CreateTenant(ctx, e.kube, s, ns); err != nil {
			return e, err
		}
		e.namespaces = append(e.namespaces, ns)
	}
	if err := e.setRateLimit(ctx, int32(cfg.burstQPS), int32(cfg.burstQPS)); err != nil {
		return e, err
	}
	e.mgrKubeconfig = filepath.Join(dir, "manager.kubeconfig")
	if err := e.cp.InstallRBAC(ctx, root, operatorNamespace, e.mgrKubeconfig); err != nil {
		return e, err
	}
	return e, nil
}

// knownFlags runs bin -help and collects the flag names it lists, so that the bench passes a flag
// only to a binary that has it (the concurrency flags are newer than some binaries it measures).
func knownFlags(bin string) (map[string]bool, error) {
	out, _ := exec.Command(bin, "-help").CombinedOutput()
	flags := map[string]bool{}
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], "-") {
			flags[strings.TrimLeft(f[0], "-")] = true
		}
	}
	if !flags["kubeconfig"] {
		return nil, fmt.Errorf("%s -help lists no --kubeconfig; is it the manager? output:\n%s", bin, out)
	}
	return flags, nil
}

// setRateLimit sets every connection's spec.rateLimit.
func (e *env) setRateLimit(ctx context.Context, qps, burst int32) error {
	for _, ns := range e.namespaces {
		conn := &v1alpha1.NomadConnection{}
		if err := e.kube.Get(ctx, types.NamespacedName{Namespace: ns, Name: harness.TenantConnection}, conn); err != nil {
			return err
		}
		patch := client.MergeFrom(conn.DeepCopy())
		conn.Spec.RateLimit = &v1alpha1.RateLimit{QPS: qps, Burst: burst}
		if err := e.kube.Patch(ctx, conn, patch); err != nil {
			return err
		}
	}
	return nil
}

// startManager starts the manager with metrics and (when it has the flag) pprof on loopback ports,
// and extra flags after the bench's own.
func (e *env) startManager(ctx context.Context, extra ...string) error {
	mp, err := freePort()
	if err != nil {
		return err
	}
	e.metricsAddr = "127.0.0.1:" + strconv.Itoa(mp)
	args := []string{"--metrics-bind-address=" + e.metricsAddr, "--metrics-secure=false", "--nomad-pat-limit=" + strconv.Itoa(2*e.cfg.n/e.cfg.c+100)}
	if e.managerFlags["pprof-bind-address"] {
		pp, err := freePort()
		if err != nil {
			return err
		}
		e.pprofAddr = "127.0.0.1:" + strconv.Itoa(pp)
		args = append(args, "--pprof-bind-address="+e.pprofAddr)
	}
	if e.managerFlags["max-concurrent-reconciles"] {
		args = append(args, "--max-concurrent-reconciles="+strconv.Itoa(e.cfg.workers))
	}
	if e.clockOffset != 0 {
		args = append(args, "--testing-clock-offset="+e.clockOffset.String())
	}
	args = append(append(args, e.cfg.managerArgs...), extra...)
	e.starts++
	m, err := harness.StartManager(ctx, harness.ManagerOptions{
		Bin: e.cfg.managerBin, Kubeconfig: e.mgrKubeconfig, LogPath: filepath.Join(e.dir, "manager.log"), Args: args,
		StartTimeout: 2 * time.Minute, Env: e.managerEnv(),
	})
	if err != nil {
		return err
	}
	e.mgr = m
	return nil
}

// managerEnv is what a Deployment's downward API would give the manager: its memory limit.
func (e *env) managerEnv() []string {
	if e.cfg.memoryLimit <= 0 {
		return nil
	}
	return []string{"CONTAINER_MEMORY_LIMIT=" + strconv.FormatInt(e.cfg.memoryLimit, 10)}
}

// stopManager stops the manager cleanly and returns its last scrape.
func (e *env) stopManager() (metrics, error) {
	if e.mgr == nil {
		return metrics{}, nil
	}
	last, scrapeErr := e.scrape(context.Background())
	err := e.mgr.Stop(30 * time.Second)
	e.mgr = nil
	if scrapeErr != nil {
		return nil, scrapeErr
	}
	return last, err
}

// restartManager stops the manager and starts a new one with extra flags. It returns the old one's
// last scrape, so that a window across a restart counts the writes of both.
func (e *env) restartManager(ctx context.Context, extra ...string) (metrics, error) {
	last, err := e.stopManager()
	if err != nil {
		return nil, err
	}
	return last, e.startManager(ctx, extra...)
}

// freePort asks the kernel for a free loopback port, as the harness does for the probes.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// scrape reads the manager's metrics endpoint.
func (e *env) scrape(ctx context.Context) (metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.metricsAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("metrics: %d %s", resp.StatusCode, b)
	}
	return parseMetrics(resp.Body)
}

// memory is the manager's resident set and Go heap right now.
type memory struct{ rss, heap float64 }

func (e *env) memory(ctx context.Context) (memory, error) {
	// With pprof, a heap profile with gc=1 runs a garbage collection first, so the heap read below
	// is what is live rather than wherever the collector happens to be.
	if e.pprofAddr != "" {
		if req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.pprofAddr+"/debug/pprof/heap?gc=1", nil); err == nil {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.mgr.Pid()))
	if err != nil {
		return memory{}, err
	}
	rss, err := vmRSS(string(b))
	if err != nil {
		return memory{}, err
	}
	m, err := e.scrape(ctx)
	if err != nil {
		return memory{}, err
	}
	return memory{rss: float64(rss), heap: m.sum("go_memstats_heap_alloc_bytes", nil)}, nil
}

// waitIdle waits until the manager's work queues (client-go's workqueue_depth, every controller)
// have been empty for 3 s in a row, so that a scenario does not measure the previous one's tail.
// It returns how long that took.
func (e *env) waitIdle(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	var quietSince time.Time
	err := waitFor(ctx, timeout, "manager work queue", func() (bool, string) {
		m, err := e.scrape(ctx)
		if err != nil {
			return false, err.Error()
		}
		depth := m.sum("workqueue_depth", nil)
		if depth > 0 {
			quietSince = time.Time{}
			return false, fmt.Sprintf("%.0f queued", depth)
		}
		if quietSince.IsZero() {
			quietSince = time.Now()
		}
		return time.Since(quietSince) >= 3*time.Second, "empty"
	})
	return time.Since(start), err
}

// cpu is the manager's CPU time (user + system) so far.
func (e *env) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", e.mgr.Pid()))
	if err != nil {
		return 0, err
	}
	return cpuTime(string(b))
}

// calls sums the stand-ins' request counts per operation (GET /_stub/calls).
func (e *env) calls(ctx context.Context, stubs []*harness.Stub) (map[string]int, error) {
	total := map[string]int{}
	for _, s := range stubs {
		c, err := s.Calls(ctx)
		if err != nil {
			return nil, err
		}
		for op, n := range c {
			total[op] += n
		}
	}
	return total, nil
}

func diffCalls(after, before map[string]int) map[string]int {
	out := map[string]int{}
	for op, n := range after {
		if d := n - before[op]; d != 0 {
			out[op] = d
		}
	}
	return out
}

// stop tears everything down; a stopped (SIGSTOPped) stand-in is continued first so that it can exit.
func (e *env) stop() {
	if e.mgr != nil {
		if _, err := e.stopManager(); err != nil {
			logf("stopping the manager: %v", err)
		}
	}
	var wg sync.WaitGroup
	for _, s := range e.stubs {
		_ = syscall.Kill(s.Pid(), syscall.SIGCONT)
		wg.Go(func() { _ = s.Stop(0) })
	}
	wg.Wait()
	if e.cp != nil {
		if err := e.cp.Stop(); err != nil {
			logf("stopping the control plane: %v", err)
		}
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
