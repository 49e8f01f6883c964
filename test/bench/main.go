// Command bench measures the operator under load: the real manager binary (bin/manager) against
// envtest's kube-apiserver and etcd and one NOMAD stand-in (bin/nomad-stub) per connection, through
// test/harness. It prints a table of figures and writes it, with the machine and the date, to
// -out (bench/results.md by default). `make bench` runs it with the defaults, `make bench-smoke`
// with N=200 and short windows; neither is part of `make test`, and nothing here asserts a time.
//
//	KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh) go run ./test/bench -n 500 -c 5 -scenarios burst,floor
//
// docs/performance-figures.md explains each figure and how it is measured.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/resource"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// scenarioNames in the order they run. burst always runs: it creates the tokens the others use.
// consumers runs before storm, which moves the clocks and leaves old PATs in their grace period;
// isolation runs last, because it leaves one NOMAD dead.
var scenarioNames = []string{"burst", "floor", "steady", "restart", "unrelated", "consumers", "storm", "isolation"}

type config struct {
	n, c          int
	workers       int
	createWorkers int
	scenarios     map[string]bool
	steady        time.Duration
	syncPeriod    time.Duration
	settle        time.Duration
	unrelated     int
	unrelatedKiB  int
	burstQPS      int
	stormQPS      int
	stormBurst    int
	isoTokens     int
	// consumersN rotations in the consumers scenario (at most -n), consumersInUse the share of their
	// old PATs kept in use until consumersUseFor after the wave, with the manager's
	// --verification-interval at consumersVerify.
	consumersN      int
	consumersInUse  float64
	consumersUseFor time.Duration
	consumersVerify time.Duration
	readyTimeout    time.Duration
	out             string
	smoke           bool
	keep            bool
	profile         time.Duration
	managerBin      string
	stubBin         string
	managerArgs     []string
	// memoryLimit is the container memory limit the manager is told of, in bytes (0: none).
	memoryLimit int64
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	c := config{}
	var scenarios, memoryLimit string
	var extra stringList
	fs.IntVar(&c.n, "n", 10000, "NomadTokens created in the burst")
	fs.IntVar(&c.c, "c", 10, "connections (each its own NOMAD stand-in and bot user); the tokens are spread evenly")
	fs.IntVar(&c.workers, "workers", 16, "concurrency of the floor's plain client and of the bench's own creates; also passed as --max-concurrent-reconciles when the manager has that flag")
	fs.IntVar(&c.createWorkers, "create-workers", 0, "goroutines creating the burst's NomadTokens (default -workers)")
	fs.StringVar(&scenarios, "scenarios", "all", "comma-separated subset of "+strings.Join(scenarioNames, ",")+" (burst always runs)")
	fs.DurationVar(&c.steady, "steady", 5*time.Minute, "length of the steady-state window")
	fs.DurationVar(&c.syncPeriod, "sync-period", 0, "the manager's --sync-period during the steady window, to force resyncs in it (default a third of -steady)")
	fs.DurationVar(&c.settle, "settle", 15*time.Second, "how long the manager is left alone before its memory is read")
	fs.IntVar(&c.unrelated, "unrelated", 10000, "unrelated Secrets created for the unrelated-Secrets figure")
	fs.IntVar(&c.unrelatedKiB, "unrelated-kib", 32, "size of each unrelated Secret's data, KiB")
	fs.IntVar(&c.burstQPS, "burst-qps", 1000, "spec.rateLimit qps and burst of every connection outside the storm: high, so that NOMAD is not the bottleneck")
	fs.IntVar(&c.stormQPS, "storm-qps", 20, "spec.rateLimit.qps of every connection during the renewal storm")
	fs.IntVar(&c.stormBurst, "storm-burst", 20, "spec.rateLimit.burst of every connection during the renewal storm")
	fs.IntVar(&c.isoTokens, "isolation-tokens", 10, "new NomadTokens per live connection while one NOMAD hangs")
	fs.IntVar(&c.consumersN, "consumers-n", 1000, "rotations in the consumers scenario: the first ones of the burst's tokens (at most -n)")
	fs.Float64Var(&c.consumersInUse, "consumers-in-use", 0.1, "share of the consumers scenario's old PATs a consumer keeps using after the rotation")
	fs.DurationVar(&c.consumersUseFor, "consumers-use-for", 30*time.Second, "how long after the consumers scenario's wave its consumers keep using the old PATs")
	fs.DurationVar(&c.consumersVerify, "consumers-verification-interval", 5*time.Second, "the manager's --verification-interval during the consumers scenario (how often each connection lists its PATs, which brings last_used_at)")
	fs.DurationVar(&c.readyTimeout, "ready-timeout", 30*time.Minute, "how long the burst (and the storm) may take before the bench gives up")
	fs.StringVar(&c.out, "out", "bench/results.md", "file the results are written to (relative to the repository root); empty: print only")
	fs.BoolVar(&c.smoke, "smoke", false, "fail unless every figure was produced and NOMAD creates equal -n (no timing checks)")
	fs.DurationVar(&c.profile, "profile", 0, "if set, a CPU profile of the manager over this long from the burst's start, and a heap profile at its end, are saved in the working directory (which is then kept); needs --pprof-bind-address")
	fs.BoolVar(&c.keep, "keep", false, "keep the working directory with the logs (always kept on failure)")
	fs.StringVar(&c.managerBin, "manager-bin", "bin/manager", "manager binary")
	fs.StringVar(&c.stubBin, "stub-bin", "bin/nomad-stub", "NOMAD stand-in binary")
	fs.StringVar(&memoryLimit, "memory-limit", "256Mi", "the manager's container memory limit, as config/manager and the chart set it (a Kubernetes quantity): passed as $CONTAINER_MEMORY_LIMIT, so that the manager sets its Go memory limit to 90% of it; 0: none")
	fs.Var(&extra, "manager-arg", "further manager flag, repeatable, e.g. -manager-arg=--nomad-max-in-flight=8")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.managerArgs = extra
	q, err := resource.ParseQuantity(memoryLimit)
	if err != nil || q.Sign() < 0 {
		return c, fmt.Errorf("-memory-limit: %q is no memory quantity", memoryLimit)
	}
	c.memoryLimit = q.Value()
	if c.profile > 0 {
		c.keep = true
	}
	if c.n < 1 || c.c < 1 || c.n < c.c {
		return c, errors.New("-n and -c must be at least 1, and -n at least -c")
	}
	if c.consumersN < 1 || c.consumersInUse < 0 || c.consumersInUse > 1 || c.consumersVerify <= 0 {
		return c, errors.New("-consumers-n must be at least 1, -consumers-in-use between 0 and 1, -consumers-verification-interval positive")
	}
	if c.workers < 1 {
		return c, errors.New("-workers must be at least 1")
	}
	if c.createWorkers == 0 {
		c.createWorkers = c.workers
	}
	if c.syncPeriod == 0 {
		c.syncPeriod = max(c.steady/3, 5*time.Second).Round(time.Second)
	}
	c.scenarios = map[string]bool{"burst": true}
	for s := range strings.SplitSeq(scenarios, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "all":
			for _, n := range scenarioNames {
				c.scenarios[n] = true
			}
		case slices.Contains(scenarioNames, s):
			c.scenarios[s] = true
		case s != "":
			return c, fmt.Errorf("-scenarios: unknown %q (want %s)", s, strings.Join(scenarioNames, ","))
		}
	}
	return c, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	// controller-runtime's clients (the bench's informer) log only what it need not show.
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
