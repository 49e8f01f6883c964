package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// bench holds what the scenarios share.
type bench struct {
	*env
	track *tracker
	rep   *report
	// keys are the burst's NomadTokens.
	keys []types.NamespacedName
	// burstTime and writesPerToken are the burst's figures the floor compares with.
	burstTime      time.Duration
	writesPerToken float64
	creates        int
}

// parallel runs f(i) for i in [0, n) on workers goroutines and returns the first error.
func parallel(ctx context.Context, n, workers int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	go func() {
		defer close(next)
		for i := range n {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// createTokens creates a NomadToken per key on its namespace's connection and records when each
// Create returned.
func (b *bench) createTokens(ctx context.Context, keys []types.NamespacedName, workers int) error {
	return parallel(ctx, len(keys), workers, func(i int) error {
		k := keys[i]
		tok := harness.NomadToken(k.Namespace, k.Name, harness.TenantConnection, v1alpha1.Rotation{})
		if err := b.kube.Create(ctx, tok); err != nil {
			return fmt.Errorf("create NomadToken %s: %w", k, err)
		}
		b.track.markCreated(k, time.Now())
		return nil
	})
}

func (b *bench) waitReady(ctx context.Context, keys []types.NamespacedName, timeout time.Duration, what string) error {
	return waitFor(ctx, timeout, what, func() (bool, string) {
		n := b.track.countReady(keys)
		return n == len(keys), fmt.Sprintf("%d of %d Ready", n, len(keys))
	})
}

func (b *bench) waitConnectionsReady(ctx context.Context) error {
	return waitFor(ctx, 2*time.Minute, "connections Ready", func() (bool, string) {
		var list v1alpha1.NomadConnectionList
		if err := b.kube.List(ctx, &list); err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, c := range list.Items {
			if meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionReady) {
				ready++
			}
		}
		return ready == len(b.namespaces), fmt.Sprintf("%d of %d Ready", ready, len(b.namespaces))
	})
}

// burst: N new NomadTokens at once, spread over C connections.
func (b *bench) burst(ctx context.Context) error {
	const s = "burst"
	n, c := b.cfg.n, b.cfg.c
	for i := range n {
		b.keys = append(b.keys, types.NamespacedName{Namespace: b.namespaces[i%c], Name: fmt.Sprintf("t-%05d", i)})
	}
	before, err := b.read(ctx, true)
	if err != nil {
		return err
	}
	logf("burst: creating %d NomadTokens over %d connections with %d goroutines", n, c, b.cfg.createWorkers)
	start := time.Now()
	var profiled sync.WaitGroup
	if b.cfg.profile > 0 {
		profiled.Go(func() {
			b.saveProfile(ctx, fmt.Sprintf("profile?seconds=%d", int(b.cfg.profile.Seconds())), "burst-cpu.pprof")
		})
	}
	if err := b.createTokens(ctx, b.keys, b.cfg.createWorkers); err != nil {
		return err
	}
	createdIn := time.Since(start)
	logf("burst: all created in %s", createdIn.Round(time.Millisecond))
	if err := b.waitReady(ctx, b.keys, b.cfg.readyTimeout, "burst"); err != nil {
		return err
	}
	ds, _, last := b.track.latencies(b.keys)
	b.burstTime = last.Sub(start)
	if b.cfg.profile > 0 {
		b.saveProfile(ctx, "heap?gc=1", "burst-heap.pprof") // gc=1: what is live now, not as of the last collection
		profiled.Wait()
	}
	after, err := b.read(ctx, true)
	if err != nil {
		return err
	}
	d := diffCalls(after.calls, before.calls)
	b.creates = d["create"]
	others := sumExcept(d, "create")
	b.writesPerToken = (after.metrics.kubeWrites() - before.metrics.kubeWrites()) / float64(n)
	readsPerToken := (after.metrics.kubeReads() - before.metrics.kubeReads()) / float64(n)
	b.rep.add(s, fmt.Sprintf("time to all %d Ready (first create to last Ready)", n), secs(b.burstTime), "")
	b.rep.add(s, "of which the bench's creates took", secs(createdIn), "")
	b.rep.add(s, "create-to-Ready p50 / p99 / max", fmt.Sprintf("%s / %s / %s", secs(percentile(ds, 50)), secs(percentile(ds, 99)), secs(percentile(ds, 100))), "p99 ≤ 60 s")
	b.rep.add(s, "tokens/s", fmt.Sprintf("%.1f", float64(n)/b.burstTime.Seconds()), "")
	b.rep.add(s, "NOMAD creates", fmt.Sprintf("%d", b.creates), fmt.Sprintf("= %d", n))
	b.rep.add(s, "other NOMAD calls per token", fmt.Sprintf("%.3f (%s)", float64(others)/float64(n), perOp(d, n, "create")), "")
	b.rep.add(s, "Kubernetes writes per token (manager)", fmt.Sprintf("%.2f", b.writesPerToken), "")
	b.rep.add(s, "Kubernetes reads per token (manager; GETs incl. lists/watches)", fmt.Sprintf("%.2f", readsPerToken), "")
	b.rep.add(s, "manager CPU time during the burst (share of one core)", fmt.Sprintf("%s (%.0f%%)", secs(after.cpu-before.cpu), 100*(after.cpu-before.cpu).Seconds()/b.burstTime.Seconds()), "")
	b.rep.add(s, "manager RSS / Go heap, idle before", fmt.Sprintf("%s / %s", mib(before.memory.rss), mib(before.memory.heap)), "")
	b.rep.add(s, fmt.Sprintf("manager RSS / Go heap at %d tokens", n), fmt.Sprintf("%s / %s", mib(after.memory.rss), mib(after.memory.heap)), "RSS ≤ 128 MiB at 10,000")
	b.rep.add(s, "manager Go memory limit (GOMEMLIMIT, 90% of -memory-limit)", goMemLimit(b.cfg.memoryLimit), "")
	return nil
}

// saveProfile fetches /debug/pprof/<route> from the manager into the working directory.
func (b *bench) saveProfile(ctx context.Context, route, file string) {
	if b.pprofAddr == "" {
		logf("profile: this manager has no --pprof-bind-address")
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.pprofAddr+"/debug/pprof/"+route, nil)
	if err != nil {
		logf("profile: %v", err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		logf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	path := filepath.Join(b.dir, file)
	f, err := os.Create(path)
	if err != nil {
		logf("profile: %v", err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		logf("profile: %v", err)
		return
	}
	logf("profile: %s (go tool pprof %s %s)", path, b.cfg.managerBin, path)
}

// perOp formats per-token counts of each operation but skip.
func perOp(d map[string]int, n int, skip string) string {
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(d)) {
		if op != skip {
			parts = append(parts, fmt.Sprintf("%s %.3f", op, float64(d[op])/float64(n)))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// reading is what a scenario compares before and after: NOMAD calls at the stand-ins, the manager's
// metrics and, with process, its CPU time and memory (CPU first: reading memory runs a collection).
type reading struct {
	calls   map[string]int
	metrics metrics
	cpu     time.Duration
	memory  memory
}

func (b *bench) read(ctx context.Context, process bool) (reading, error) {
	var r reading
	var err error
	if process {
		if r.cpu, err = b.cpu(); err != nil {
			return r, err
		}
		if r.memory, err = b.memory(ctx); err != nil {
			return r, err
		}
	}
	if r.metrics, err = b.scrape(ctx); err != nil {
		return r, err
	}
	r.calls, err = b.calls(ctx, b.stubs)
	return r, err
}

// sumExcept adds up the calls of every operation but skip.
func sumExcept(d map[string]int, skip ...string) int {
	n := 0
	for op, v := range d {
		if !slices.Contains(skip, op) {
			n += v
		}
	}
	return n
}

// floor: the burst's Kubernetes writes made by a plain client, with -workers goroutines: per token,
// a Secret is created and updated (writes per token - 1) times.
func (b *bench) floor(ctx context.Context) error {
	const s = "floor"
	k := max(int(math.Round(b.writesPerToken)), 1)
	ns := "bench-floor"
	if err := b.kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	logf("floor: %d × %d writes with %d goroutines", b.cfg.n, k, b.cfg.workers)
	start := time.Now()
	err := parallel(ctx, b.cfg.n, b.cfg.workers, func(i int) error {
		sec := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("f-%05d", i), Labels: map[string]string{"bench": "floor"}},
			Data:       map[string][]byte{"token": []byte("nomad_pat_" + strings.Repeat("x", 43))},
		}
		if err := b.kube.Create(ctx, sec); err != nil {
			return err
		}
		for w := 1; w < k; w++ {
			sec.Annotations = map[string]string{"bench/write": fmt.Sprint(w)}
			if err := b.kube.Update(ctx, sec); err != nil {
				return err
			}
		}
		return nil
	})
	took := time.Since(start)
	if err != nil {
		return err
	}
	b.rep.add(s, fmt.Sprintf("%d × %d writes (create + %d updates of a Secret), %d goroutines", b.cfg.n, k, k-1, b.cfg.workers), secs(took), "")
	b.rep.add(s, "operator time / floor time", fmt.Sprintf("%.2f×", b.burstTime.Seconds()/took.Seconds()), "≤ 1.5×")
	if err := b.kube.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(ns)); err != nil {
		return err
	}
	return b.floorOfTheMix(ctx, ns)
}

// floorOfTheMix is a second floor, for the why of the first: the burst's own mix of writes, by a
// plain client with -workers goroutines, with the manager stopped. Per token: the NomadToken's
// create (the bench's in the burst), an update of it (the finalizer), two status updates (intent and
// result, each with the status of a real token of the burst), the Secret's create and an Event.
// NomadTokens are custom resources, which the API server encodes as JSON (Secrets as protobuf), and
// each of their writes reaches two watchers (the manager's and the bench's informers in the burst;
// here the bench's).
func (b *bench) floorOfTheMix(ctx context.Context, ns string) error {
	const s = "floor"
	var real v1alpha1.NomadToken
	if err := b.kube.Get(ctx, b.keys[0], &real); err != nil {
		return err
	}
	if _, err := b.stopManager(); err != nil {
		return err
	}
	logf("floor: the burst's mix of writes for %d tokens with %d goroutines, manager stopped", b.cfg.n, b.cfg.workers)
	start := time.Now()
	err := parallel(ctx, b.cfg.n, b.cfg.workers, func(i int) error {
		name := fmt.Sprintf("m-%05d", i)
		tok := harness.NomadToken(ns, name, "floor-none", v1alpha1.Rotation{})
		if err := b.kube.Create(ctx, tok); err != nil {
			return err
		}
		tok.Labels = map[string]string{"bench/finalizer": "stand-in"}
		if err := b.kube.Update(ctx, tok); err != nil {
			return err
		}
		for range 2 {
			tok.Status = *real.Status.DeepCopy()
			if err := b.kube.Status().Update(ctx, tok); err != nil {
				return err
			}
		}
		sec := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"bench": "floor"}},
			Data:       map[string][]byte{"token": []byte("nomad_pat_" + strings.Repeat("x", 43))},
		}
		if err := b.kube.Create(ctx, sec); err != nil {
			return err
		}
		now := metav1.NewMicroTime(time.Now())
		return b.kube.Create(ctx, &eventsv1.Event{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + ".issued"},
			EventTime:  now, ReportingController: "bench", ReportingInstance: "bench", Action: "Issue",
			Reason: "Issued", Type: corev1.EventTypeNormal, Note: "issued a PAT (floor)",
			Regarding: corev1.ObjectReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "NomadToken", Namespace: ns, Name: name, UID: tok.UID},
		})
	})
	took := time.Since(start)
	if err != nil {
		return err
	}
	b.rep.add(s, fmt.Sprintf("the burst's mix for %d tokens (NomadToken create, update, 2 status updates; Secret; Event), %d goroutines", b.cfg.n, b.cfg.workers), secs(took), "")
	b.rep.add(s, "operator time / floor of the mix", fmt.Sprintf("%.2f×", b.burstTime.Seconds()/took.Seconds()), "")
	for _, obj := range []client.Object{&v1alpha1.NomadToken{}, &corev1.Secret{}, &eventsv1.Event{}} {
		if err := b.kube.DeleteAllOf(ctx, obj, client.InNamespace(ns)); err != nil {
			return err
		}
	}
	return b.startManager(ctx)
}

// steady: every token Ready, a window with a manager restart at its start and forced resyncs
// (a short --sync-period) inside it.
func (b *bench) steady(ctx context.Context) error {
	const s = "steady"
	took, err := b.verifyConnections(ctx)
	if err != nil {
		return err
	}
	b.rep.add(s, "(before it) every connection checked again, its activeTokens up to date, in", secs(took), "")
	ids := b.tokenIDs()
	rv0, err := b.resourceVersions(ctx)
	if err != nil {
		return err
	}
	before, err := b.read(ctx, false)
	if err != nil {
		return err
	}
	logf("steady: restarting the manager with --sync-period=%s, then %s of quiet", b.cfg.syncPeriod, b.cfg.steady)
	start := time.Now()
	mOld, err := b.restartManager(ctx, "--sync-period="+b.cfg.syncPeriod.String())
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(b.cfg.steady - time.Since(start)):
	}
	after, err := b.read(ctx, false)
	if err != nil {
		return err
	}
	d := diffCalls(after.calls, before.calls)
	beyond := sumExcept(d, "list", "login")
	changed := 0
	for k, id := range b.tokenIDs() {
		if ids[k] != id {
			changed++
		}
	}
	window := time.Since(start)
	rv1, err := b.resourceVersions(ctx)
	if err != nil {
		return err
	}
	changedObjs := map[string]float64{}
	for k, v := range rv1 {
		if rv0[k] != v {
			changedObjs[k.kind]++
		}
	}
	b.rep.add(s, "window (a restart at its start; --sync-period "+b.cfg.syncPeriod.String()+")", secs(window), "")
	b.rep.add(s, "NOMAD calls other than list and login", fmt.Sprintf("%d (%s)", beyond, counts(d)), "0")
	b.rep.add(s, "NOMAD list requests (pages) per connection; logins", fmt.Sprintf("%.1f; %d", float64(d["list"])/float64(b.cfg.c), d["login"]),
		fmt.Sprintf("one paged list (%d pages of %d) per verification", pages(len(b.keys)/b.cfg.c), listPageSize))
	writes := mOld.kubeWrites() - before.metrics.kubeWrites() + after.metrics.kubeWrites()
	byReq := after.metrics.writesByRequest()
	for k, v := range mOld.writesByRequest() {
		byReq[k] += v - before.metrics.writesByRequest()[k]
	}
	b.rep.add(s, "Kubernetes writes (manager, both processes)", fmt.Sprintf("%.0f (%s)", writes, countsF(byReq)), "0")
	b.rep.add(s, "objects whose resourceVersion changed", countsF(changedObjs), "none")
	b.rep.add(s, "tokens whose PAT changed", fmt.Sprint(changed), "0")
	return nil
}

// counts formats per-operation counts, zeros left out.
// verifyConnections makes the manager check every connection now, as any change of a connection's
// annotations does, and waits until each one's status.activeTokens counts its tokens' PATs and the
// work queues are empty again. The last checks came before the burst, when there were no PATs: the
// first check of the steady window would otherwise write the catch-up, which the manager owes with or
// without a restart, and the window is meant to measure what a restart and a resync cost.
func (b *bench) verifyConnections(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{"bench.nomad-operator.dev/check":%q}}}`, start.UTC().Format(time.RFC3339Nano)))
	for _, ns := range b.namespaces {
		conn := &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: harness.TenantConnection}}
		if err := b.kube.Patch(ctx, conn, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return 0, err
		}
	}
	err := waitFor(ctx, b.cfg.readyTimeout, "connection checks", func() (bool, string) {
		var list v1alpha1.NomadConnectionList
		if err := b.kube.List(ctx, &list); err != nil {
			return false, err.Error()
		}
		checked := 0
		for _, c := range list.Items {
			st := c.Status
			if st.ActiveTokens != nil && st.NomadTokens != nil && *st.ActiveTokens >= *st.NomadTokens {
				checked++
			}
		}
		return checked == len(list.Items), fmt.Sprintf("%d of %d connections checked", checked, len(list.Items))
	})
	if err != nil {
		return 0, err
	}
	if _, err := b.waitIdle(ctx, b.cfg.readyTimeout); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func counts(d map[string]int) string {
	f := map[string]float64{}
	for k, v := range d {
		f[k] = float64(v)
	}
	return countsF(f)
}

func countsF(d map[string]float64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(d)) {
		if d[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, d[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

type objKey struct{ kind, namespace, name string }

// resourceVersions of every NomadConnection, NomadToken and operator-managed Secret, to tell
// which objects a window's writes touched.
func (b *bench) resourceVersions(ctx context.Context) (map[objKey]string, error) {
	out := map[objKey]string{}
	var conns v1alpha1.NomadConnectionList
	var toks v1alpha1.NomadTokenList
	var secs corev1.SecretList
	for kind, l := range map[string]client.ObjectList{"NomadConnection": &conns, "NomadToken": &toks, "Secret": &secs} {
		var opts []client.ListOption
		if kind == "Secret" {
			opts = append(opts, client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue})
		}
		if err := b.kube.List(ctx, l, opts...); err != nil {
			return nil, err
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			o := it.(client.Object)
			out[objKey{kind, o.GetNamespace(), o.GetName()}] = o.GetResourceVersion()
		}
	}
	return out, nil
}

// listPageSize is the operator's page size when it lists PATs (internal/nomad DefaultListPageSize).
const listPageSize = 100

func pages(n int) int { return max((n+listPageSize-1)/listPageSize, 1) }

// tokenIDs is every tracked token's current PAT id.
func (b *bench) tokenIDs() map[types.NamespacedName]string {
	b.track.mu.Lock()
	defer b.track.mu.Unlock()
	return maps.Clone(b.track.tokenID)
}

// restart: a NomadToken per connection (up to 3) created as soon as a restarted manager answers
// /readyz, while its caches list every object.
func (b *bench) restart(ctx context.Context) error {
	const s = "restart"
	if _, err := b.stopManager(); err != nil {
		return err
	}
	start := time.Now()
	if err := b.startManager(ctx); err != nil {
		return err
	}
	readyz := time.Since(start)
	var probes []types.NamespacedName
	for i := range min(3, b.cfg.c) {
		probes = append(probes, types.NamespacedName{Namespace: b.namespaces[i], Name: "restart-probe"})
	}
	if err := b.createTokens(ctx, probes, len(probes)); err != nil {
		return err
	}
	if err := b.waitReady(ctx, probes, 2*time.Minute, "restart probes"); err != nil {
		return err
	}
	ds, _, _ := b.track.latencies(probes)
	b.rep.add(s, "manager start to /readyz", secs(readyz), "")
	b.rep.add(s, fmt.Sprintf("create-to-Ready of %d tokens created right after /readyz, max", len(probes)), secs(percentile(ds, 100)), "≤ 5 s")
	return nil
}

// unrelated: manager memory with many Secrets it does not manage, against without them; each
// measured on a freshly started manager after settling, and on the running one.
func (b *bench) unrelated(ctx context.Context) error {
	const s = "unrelated"
	ns := "bench-unrelated"
	if err := b.kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	if _, err := b.restartManager(ctx); err != nil {
		return err
	}
	sleep(ctx, b.cfg.settle)
	without, err := b.memory(ctx)
	if err != nil {
		return err
	}
	payload := make([]byte, b.cfg.unrelatedKiB<<10)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	logf("unrelated: creating %d Secrets of %d KiB", b.cfg.unrelated, b.cfg.unrelatedKiB)
	if err := parallel(ctx, b.cfg.unrelated, b.cfg.workers, func(i int) error {
		return b.kube.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("u-%05d", i)},
			Data:       map[string][]byte{"blob": payload},
		})
	}); err != nil {
		return err
	}
	sleep(ctx, b.cfg.settle)
	live, err := b.memory(ctx)
	if err != nil {
		return err
	}
	if _, err := b.restartManager(ctx); err != nil {
		return err
	}
	sleep(ctx, b.cfg.settle)
	fresh, err := b.memory(ctx)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("%d × %d KiB", b.cfg.unrelated, b.cfg.unrelatedKiB)
	b.rep.add(s, "restarted manager RSS / heap, without unrelated Secrets", fmt.Sprintf("%s / %s", mib(without.rss), mib(without.heap)), "")
	b.rep.add(s, "restarted manager RSS / heap, with "+what, fmt.Sprintf("%s / %s", mib(fresh.rss), mib(fresh.heap)), "")
	b.rep.add(s, "RSS growth (restarted manager)", mib(fresh.rss-without.rss), "≤ 5 MiB")
	b.rep.add(s, "RSS growth (running manager, while they were created)", mib(live.rss-without.rss), "")
	return b.kube.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(ns))
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// storm: every token due at once. The manager is stopped, every stand-in's clock is moved past the
// latest renewal time of the burst's tokens, and the manager starts again with its clock as far
// ahead (--testing-clock-offset): a manager back from an outage longer than the renewal margin. Each
// renewal is then a create through the real renewal path; the old PATs are revoked after their
// grace period, after the storm. Each connection's rateLimit is lowered first.
func (b *bench) storm(ctx context.Context) error {
	const s = "storm"
	if !b.managerFlags["testing-clock-offset"] {
		return fmt.Errorf("storm: the manager has no --testing-clock-offset flag")
	}
	qps, burst := b.cfg.stormQPS, b.cfg.stormBurst
	if err := b.setRateLimit(ctx, int32(qps), int32(burst)); err != nil {
		return err
	}
	defer func() { _ = b.setRateLimit(context.Background(), int32(b.cfg.burstQPS), int32(b.cfg.burstQPS)) }()
	if _, err := b.waitIdle(ctx, b.cfg.readyTimeout); err != nil {
		return err
	}
	var list v1alpha1.NomadTokenList
	if err := b.kube.List(ctx, &list); err != nil {
		return err
	}
	var latest time.Time
	for _, t := range list.Items {
		if t.Status.RenewalTime != nil {
			latest = maxTime(latest, t.Status.RenewalTime.Time)
		}
	}
	jump := latest.Sub(time.Now().Add(b.clockOffset)).Round(time.Second) + 10*time.Second
	b.track.setBaseline(b.keys)
	if _, err := b.stopManager(); err != nil {
		return err
	}
	for _, st := range b.stubs {
		if err := st.Admin(ctx, http.MethodPost, "clock/advance?by="+jump.String(), nil, nil); err != nil {
			return err
		}
	}
	b.clockOffset += jump
	logf("storm: clocks moved %s ahead (past the latest renewal time); rateLimit qps=%d burst=%d; restarting the manager", jump, qps, burst)
	start := time.Now()
	if err := b.startManager(ctx); err != nil {
		return err
	}
	if err := waitFor(ctx, b.cfg.readyTimeout, "storm", func() (bool, string) {
		n, _ := b.track.countRenewed(b.keys)
		return n == len(b.keys), fmt.Sprintf("%d of %d renewed", n, len(b.keys))
	}); err != nil {
		return err
	}
	_, last := b.track.countRenewed(b.keys)
	end := time.Now()
	peak1, peak10, worst := 0, 0, 0
	for i, st := range b.stubs {
		f, err := os.Open(st.LogPath)
		if err != nil {
			return err
		}
		reqs, err := parseStubLog(f, time.Local)
		f.Close()
		if err != nil {
			return err
		}
		var at []time.Time
		for _, r := range reqs {
			if !r.At.Before(start) && r.At.Before(end) {
				at = append(at, r.At)
			}
		}
		p1, p10 := peakInWindow(at, time.Second), peakInWindow(at, 10*time.Second)
		if p1 > peak1 {
			peak1, worst = p1, i
		}
		peak10 = max(peak10, p10)
	}
	b.rep.add(s, "clocks moved ahead", jump.String(), "")
	b.rep.add(s, fmt.Sprintf("time until all %d renewed (manager start to last new PAT Ready)", len(b.keys)), secs(last.Sub(start)), "")
	b.rep.add(s, fmt.Sprintf("peak NOMAD requests in any 1 s, busiest NOMAD (nomad-%d)", worst), fmt.Sprint(peak1), fmt.Sprintf("≤ qps+burst = %d", qps+burst))
	b.rep.add(s, "peak NOMAD requests in any 10 s, busiest NOMAD", fmt.Sprint(peak10), fmt.Sprintf("≤ burst+10·qps = %d", burst+10*qps))
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// isolation: connection 0's NOMAD accepts connections and never answers (its stand-in is stopped
// with SIGSTOP; the kernel still completes the TCP handshakes). New tokens on it come first, then
// -isolation-tokens new tokens on every other connection, whose create-to-Ready is reported.
func (b *bench) isolation(ctx context.Context) error {
	const s = "isolation"
	if b.cfg.c < 2 {
		b.rep.add(s, "skipped", "needs -c ≥ 2", "")
		return nil
	}
	dead := b.stubs[0]
	if err := syscall.Kill(dead.Pid(), syscall.SIGSTOP); err != nil {
		return err
	}
	defer func() { _ = syscall.Kill(dead.Pid(), syscall.SIGCONT) }()
	var deadKeys, live []types.NamespacedName
	for j := range b.cfg.isoTokens {
		deadKeys = append(deadKeys, types.NamespacedName{Namespace: b.namespaces[0], Name: fmt.Sprintf("iso-dead-%02d", j)})
	}
	if err := b.createTokens(ctx, deadKeys, b.cfg.workers); err != nil {
		return err
	}
	sleep(ctx, time.Second)
	for i := 1; i < b.cfg.c; i++ {
		for j := range b.cfg.isoTokens {
			live = append(live, types.NamespacedName{Namespace: b.namespaces[i], Name: fmt.Sprintf("iso-%02d", j)})
		}
	}
	const patience = 3 * time.Minute
	if err := b.createTokens(ctx, live, b.cfg.workers); err != nil {
		return err
	}
	waitErr := b.waitReady(ctx, live, patience, "isolation")
	ds, missing, _ := b.track.latencies(live)
	b.rep.add(s, fmt.Sprintf("%d new tokens on %d live connections while nomad-0 hangs: create-to-Ready p50 / p99 / max", len(live), b.cfg.c-1),
		fmt.Sprintf("%s / %s / %s", secs(percentile(ds, 50)), secs(percentile(ds, 99)), secs(percentile(ds, 100))), "p99 ≤ 5 s")
	if waitErr != nil {
		b.rep.add(s, "not Ready within "+patience.String(), fmt.Sprint(missing), "0")
	}
	b.rep.add(s, fmt.Sprintf("the %d new tokens on the dead connection, Ready (expected: none)", len(deadKeys)), fmt.Sprint(b.track.countReady(deadKeys)), "")
	return nil
}
