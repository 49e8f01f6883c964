package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

type row struct{ scenario, figure, value, goal string }

// report collects the figures in the order they were measured.
type report struct {
	rows   []row
	failed []string
}

func (r *report) add(scenario, figure, value, goal string) {
	r.rows = append(r.rows, row{scenario, figure, value, goal})
}

func (r *report) fail(scenario string, err error) {
	r.failed = append(r.failed, scenario)
	r.add(scenario, "FAILED", strings.ReplaceAll(err.Error(), "\n", " "), "")
}

func (r *report) table() string {
	var b strings.Builder
	b.WriteString("| scenario | figure | measured | goal |\n|---|---|---|---|\n")
	for _, x := range r.rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", x.scenario, x.figure, strings.ReplaceAll(x.value, "|", "\\|"), x.goal)
	}
	return b.String()
}

// header says where, when and with what the figures were measured.
func header(cfg config, e *env) string {
	var b strings.Builder
	fmt.Fprintf(&b, "- date: %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "- machine: %d CPUs (%s), %s memory, %s, %s\n", runtime.NumCPU(), cpuModel(), memTotal(), kernel(), runtime.Version())
	fmt.Fprintf(&b, "- manager: %s\n", commit(e.root))
	fmt.Fprintf(&b, "- parameters: N=%d, C=%d, workers=%d, steady window %s (--sync-period %s), %d unrelated Secrets of %d KiB, storm rateLimit qps=%d burst=%d, burst rateLimit %d",
		cfg.n, cfg.c, cfg.workers, cfg.steady, cfg.syncPeriod, cfg.unrelated, cfg.unrelatedKiB, cfg.stormQPS, cfg.stormBurst, cfg.burstQPS)
	if cfg.memoryLimit > 0 {
		fmt.Fprintf(&b, ", manager memory limit %s (Go memory limit %s: 90%%)", mib(float64(cfg.memoryLimit)), mib(0.9*float64(cfg.memoryLimit)))
	} else {
		b.WriteString(", no manager memory limit")
	}
	if len(cfg.managerArgs) > 0 {
		fmt.Fprintf(&b, ", manager flags %s", strings.Join(cfg.managerArgs, " "))
	}
	if !e.managerFlags["max-concurrent-reconciles"] {
		b.WriteString(" (this manager has no --max-concurrent-reconciles: it ran with its built-in workers)")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "- command: `go run ./test/bench %s`\n", strings.Join(os.Args[1:], " "))
	return b.String()
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb float64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%f kB", &kb); err == nil {
				return fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
		}
	}
	return "unknown"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown kernel"
	}
	return "Linux " + strings.TrimSpace(string(b))
}

// commit names the checked-out commit the binaries were built from (make bench builds them first).
func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "log", "-1", "--format=%h %s").Output()
	if err != nil {
		return "unknown commit"
	}
	c := strings.TrimSpace(string(out))
	if len(c) > 90 {
		c = c[:90] + "…"
	}
	if st, _ := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); len(st) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}

// run sets up the world, runs the chosen scenarios in order and reports.
func run(ctx context.Context, cfg config) (err error) {
	e, err := newEnv(ctx, cfg)
	defer func() {
		if e == nil {
			return
		}
		e.stop()
		if err != nil || cfg.keep {
			logf("logs kept in %s", e.dir)
		} else {
			_ = os.RemoveAll(e.dir)
		}
	}()
	if err != nil {
		return err
	}
	b := &bench{env: e, track: newTracker(), rep: &report{}}
	// The informer stops before the control plane does: kube-apiserver waits for open watches.
	trackCtx, stopTracking := context.WithCancel(ctx)
	defer stopTracking()
	if err := b.track.start(trackCtx, e); err != nil {
		return err
	}
	if err := e.startManager(ctx); err != nil {
		return err
	}
	if err := b.waitConnectionsReady(ctx); err != nil {
		return err
	}
	steps := map[string]func(context.Context) error{
		"burst": b.burst, "floor": b.floor, "steady": b.steady, "restart": b.restart,
		"unrelated": b.unrelated, "consumers": b.consumers, "storm": b.storm, "isolation": b.isolation,
	}
	for _, name := range scenarioNames {
		if !cfg.scenarios[name] {
			continue
		}
		logf("== %s", name)
		if name != "burst" {
			waited, err := e.waitIdle(ctx, 15*time.Minute)
			if err != nil {
				b.rep.fail(name, err)
				continue
			}
			b.rep.add(name, "(before it) the manager's work queues drained in", secs(waited), "")
		}
		if err := steps[name](ctx); err != nil {
			b.rep.fail(name, err)
			logf("%s failed: %v", name, err)
			if name == "burst" || ctx.Err() != nil {
				break
			}
		}
	}
	out := "# Benchmark results\n\n" + header(cfg, e) + "\n" + b.rep.table()
	fmt.Println(out)
	if cfg.out != "" {
		path := cfg.out
		if !filepath.IsAbs(path) {
			path = filepath.Join(e.root, path)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			return err
		}
		logf("wrote %s", path)
	}
	if len(b.rep.failed) > 0 {
		return fmt.Errorf("scenarios failed: %s", strings.Join(b.rep.failed, ", "))
	}
	if cfg.smoke && b.creates != cfg.n {
		return fmt.Errorf("smoke: NOMAD creates %d, want %d", b.creates, cfg.n)
	}
	return nil
}
