package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// The consumers scenario's waitForConsumers settings: short enough for a bench, in the same order as
// in a cluster (gracePeriod < unusedFor < maxGracePeriod).
const (
	consumersGrace    = 5 * time.Second
	consumersUnused   = 10 * time.Second
	consumersMaxGrace = 2 * time.Minute
	// consumerEvery is how often a consumer uses the old PAT it holds.
	consumerEvery = 2 * time.Second
	// probeID is the PAT id a consumer's request names: a well-formed id of no PAT, so that NOMAD
	// authenticates the bearer PAT (setting its last_used_at) and answers 403 (harness.ProbePAT).
	probeID = "000000000000000000000000"
)

// oldPAT is one rotation of the consumers scenario, as NOMAD saw it.
type oldPAT struct {
	key          types.NamespacedName
	stub         int
	oldID, newID string
	raw          []byte
	inUse        bool
	// From the stand-in's state, in its clock: the new PAT's creation (the swap, to a few ms), the
	// old PAT's last use and revocation.
	swap, lastUsed, revoked time.Time
}

// consumers: a wave of rotations (the rotate annotation) of -consumers-n of the burst's tokens, given
// spec.rotation.waitForConsumers first. Every old PAT was used just before the wave, as the pods that
// hold it do; a share of them (-consumers-in-use) stays in use by a consumer loop, once every
// consumerEvery, until -consumers-use-for after the wave began, so that the wait past gracePeriod is
// exercised. The manager runs with --verification-interval=-consumers-verification-interval for the
// scenario. It counts NOMAD's requests by kind from just before the wave until every old PAT is revoked
// (the consumers' own requests, GETs of probeID, told apart in the stand-ins' logs), and the times.
// The tokens get their former spec.rotation back afterwards.
func (b *bench) consumers(ctx context.Context) (err error) {
	const s = "consumers"
	cfg := b.cfg
	n := min(cfg.consumersN, len(b.keys))
	keys := b.keys[:n]
	stubOf := map[string]int{}
	for i, ns := range b.namespaces {
		stubOf[ns] = i
	}
	patPath := map[string]v1alpha1.PATPathMode{}
	for _, ns := range b.namespaces {
		var conn v1alpha1.NomadConnection
		if err := b.kube.Get(ctx, types.NamespacedName{Namespace: ns, Name: harness.TenantConnection}, &conn); err != nil {
			return err
		}
		patPath[ns] = conn.Status.PATPath
	}

	logf("consumers: restarting the manager with --verification-interval=%s; giving %d tokens waitForConsumers", cfg.consumersVerify, n)
	if _, err := b.restartManager(ctx, "--verification-interval="+cfg.consumersVerify.String()); err != nil {
		return err
	}
	defer func() {
		// The former spec.rotation (none) and the manager's usual flags, for the scenarios after.
		restore := []byte(`{"spec":{"rotation":{"gracePeriod":null,"waitForConsumers":null}}}`)
		if e := b.patchAll(context.WithoutCancel(ctx), keys, restore); e != nil && err == nil {
			err = e
		}
		if _, e := b.restartManager(context.WithoutCancel(ctx)); e != nil && err == nil {
			err = e
		}
	}()
	spec := fmt.Appendf(nil, `{"spec":{"rotation":{"gracePeriod":%q,"waitForConsumers":{"unusedFor":%q,"maxGracePeriod":%q}}}}`,
		consumersGrace, consumersUnused, consumersMaxGrace)
	if err := b.patchAll(ctx, keys, spec); err != nil {
		return err
	}
	if _, err := b.waitIdle(ctx, cfg.readyTimeout); err != nil {
		return err
	}

	// The old PATs, and one use of each: the pods that hold a PAT use it up to the rotation.
	pats := make([]*oldPAT, n)
	perNS := map[string]int{}
	for i, k := range keys {
		// The in-use share, spread evenly over the connections (key i is on connection i mod C).
		j := perNS[k.Namespace]
		perNS[k.Namespace]++
		f := cfg.consumersInUse
		pats[i] = &oldPAT{key: k, stub: stubOf[k.Namespace], inUse: int(float64(j+1)*f) > int(float64(j)*f)}
	}
	if err := parallel(ctx, n, cfg.workers, func(i int) error {
		p := pats[i]
		var sec corev1.Secret
		if err := b.kube.Get(ctx, p.key, &sec); err != nil {
			return err
		}
		p.raw, p.oldID = sec.Data[v1alpha1.DefaultSecretKey], sec.Annotations[v1alpha1.AnnotationTokenID]
		if p.oldID == "" || len(p.raw) == 0 {
			return fmt.Errorf("consumers: Secret %s holds no PAT", p.key)
		}
		res, err := harness.ProbePAT(ctx, b.stubs[p.stub].APIURL, patPath[p.key.Namespace], p.raw)
		if err != nil {
			return err
		}
		if !res.Valid() {
			return fmt.Errorf("consumers: NOMAD refused the PAT of %s before the wave: %s", p.key, res)
		}
		return nil
	}); err != nil {
		return err
	}
	inUse := slices.DeleteFunc(slices.Clone(pats), func(p *oldPAT) bool { return !p.inUse })

	before, err := b.read(ctx, false)
	if err != nil {
		return err
	}
	windowStart := time.Now()
	b.track.setBaseline(keys)

	// The consumer loop: every in-use old PAT once every consumerEvery until useFor after the wave.
	waveStart := time.Now()
	stopUse := waveStart.Add(cfg.consumersUseFor)
	var refusedInUse, useErrors, uses atomic.Int64
	var loop sync.WaitGroup
	loop.Go(func() {
		for at := waveStart; at.Before(stopUse); at = at.Add(consumerEvery) {
			sleep(ctx, time.Until(at))
			if ctx.Err() != nil {
				return
			}
			_ = parallel(ctx, len(inUse), cfg.workers, func(i int) error {
				p := inUse[i]
				res, err := harness.ProbePAT(ctx, b.stubs[p.stub].APIURL, patPath[p.key.Namespace], p.raw)
				switch {
				case err != nil:
					useErrors.Add(1)
				case res.Valid():
					uses.Add(1)
				default: // revoked while its consumer still used it
					refusedInUse.Add(1)
				}
				return nil
			})
		}
	})

	logf("consumers: rotating %d tokens (%d old PATs in use until %s after the wave)", n, len(inUse), cfg.consumersUseFor)
	rotate := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.AnnotationRotate, "bench-consumers-"+waveStart.UTC().Format("150405"))
	if err := b.patchAll(ctx, keys, rotate); err != nil {
		loop.Wait()
		return err
	}
	waveSent := time.Since(waveStart)
	if err := waitFor(ctx, cfg.readyTimeout, "consumers: rotations", func() (bool, string) {
		n, _ := b.track.countRenewed(keys)
		return n == len(keys), fmt.Sprintf("%d of %d rotated", n, len(keys))
	}); err != nil {
		loop.Wait()
		return err
	}
	_, lastRotated := b.track.countRenewed(keys)
	ids := b.tokenIDs()
	for _, p := range pats {
		p.newID = ids[p.key]
	}

	// Until every old PAT is revoked, as NOMAD has it.
	var states map[string]harness.StubPAT
	err = waitFor(ctx, consumersMaxGrace+cfg.consumersUseFor+5*time.Minute, "consumers: old PATs revoked", func() (bool, string) {
		var e error
		if states, e = b.stubPATs(ctx); e != nil {
			return false, e.Error()
		}
		left := 0
		for _, p := range pats {
			if !states[p.oldID].Revoked {
				left++
			}
		}
		return left == 0, fmt.Sprintf("%d of %d old PATs still active", left, n)
	})
	allRevoked := time.Since(waveStart)
	loop.Wait()
	if err != nil {
		return err
	}
	after, err := b.read(ctx, false)
	if err != nil {
		return err
	}
	windowEnd := time.Now()
	if states, err = b.stubPATs(ctx); err != nil {
		return err
	}
	for _, p := range pats {
		old, cur := states[p.oldID], states[p.newID]
		p.swap, _ = harness.ParseStubTime(cur.CreatedAt)
		if old.LastUsedAt != nil {
			p.lastUsed, _ = harness.ParseStubTime(*old.LastUsedAt)
		}
		if old.RevokedAt != nil {
			p.revoked, _ = harness.ParseStubTime(*old.RevokedAt)
		}
	}

	// NOMAD's requests in the window by kind; the operator's GETs by the PAT they name.
	d := diffCalls(after.calls, before.calls)
	consumerGets, opGets, revokes, err := b.classifyGets(windowStart, windowEnd)
	if err != nil {
		return err
	}
	d["get"] -= consumerGets
	if d["get"] == 0 {
		delete(d, "get")
	}
	getsOf := func(group []*oldPAT) float64 {
		total := 0
		for _, p := range group {
			total += opGets[p.oldID]
		}
		return float64(total) / float64(max(len(group), 1))
	}
	idle := slices.DeleteFunc(slices.Clone(pats), func(p *oldPAT) bool { return p.inUse })
	otherGets := 0
	for id, c := range opGets {
		if !slices.ContainsFunc(pats, func(p *oldPAT) bool { return p.oldID == id }) {
			otherGets += c
		}
	}
	maxRevokes := 0
	for _, p := range pats {
		maxRevokes = max(maxRevokes, revokes[p.oldID])
	}

	// The rule allows a revocation once gracePeriod has passed since the swap and NOMAD has seen no
	// use for unusedFor; how long after that each old PAT went is the wait's latency.
	var lateIdle, lateInUse, sinceSwap []time.Duration
	early, atDeadline := 0, 0
	for _, p := range pats {
		sinceSwap = append(sinceSwap, p.revoked.Sub(p.swap))
		sinceUse := p.revoked.Sub(p.lastUsed)
		allowed := maxTime(p.swap.Add(consumersGrace), p.lastUsed.Add(consumersUnused))
		if p.inUse {
			lateInUse = append(lateInUse, p.revoked.Sub(allowed))
		} else {
			lateIdle = append(lateIdle, p.revoked.Sub(allowed))
		}
		if sinceUse < consumersUnused || p.revoked.Sub(p.swap) < consumersGrace {
			early++
		}
		if p.revoked.Sub(p.swap) >= consumersMaxGrace-time.Second {
			atDeadline++
		}
	}
	dist := func(ds []time.Duration) string {
		return fmt.Sprintf("%s / %s / %s", secs(percentile(ds, 50)), secs(percentile(ds, 99)), secs(percentile(ds, 100)))
	}

	b.rep.add(s, "rotations (gracePeriod 5s, waitForConsumers unusedFor 10s, maxGracePeriod 2m; manager --verification-interval "+cfg.consumersVerify.String()+")",
		fmt.Sprintf("%d over %d connections", n, len(perNS)), "")
	b.rep.add(s, fmt.Sprintf("old PATs kept in use by a consumer (one use every %s, until %s after the wave)", consumerEvery, cfg.consumersUseFor),
		fmt.Sprintf("%d (%d uses accepted, %d refused, %d failed requests)", len(inUse), uses.Load(), refusedInUse.Load(), useErrors.Load()), "0 refused")
	b.rep.add(s, "NOMAD calls per rotation by kind (the consumers' own requests left out)", perOp(d, n, ""), "create 1, revoke 1")
	b.rep.add(s, "NOMAD calls in the window (wave to last old PAT revoked)", counts(d), "")
	b.rep.add(s, "GETs per rotation (of the old PAT): all / idle old PATs / in-use old PATs",
		fmt.Sprintf("%.3f / %.3f / %.3f", getsOf(pats), getsOf(idle), getsOf(inUse)), "≤ 1 per decision")
	if otherGets > 0 || maxRevokes > 1 {
		b.rep.add(s, "GETs of other PATs; most revoke requests for one old PAT", fmt.Sprintf("%d; %d", otherGets, maxRevokes), "0; 1")
	}
	// A connection check is a PAT-path probe (a list request with page_size=0) and the paged list.
	b.rep.add(s, "list requests per connection and verification interval in the window (path probe + pages)",
		fmt.Sprintf("%.2f (%d in %s over %d connections)", float64(d["list"])/float64(b.cfg.c)/max(windowEnd.Sub(windowStart).Seconds()/cfg.consumersVerify.Seconds(), 1),
			d["list"], secs(windowEnd.Sub(windowStart)), b.cfg.c),
		"the periodic check, whatever the rotations")
	b.rep.add(s, fmt.Sprintf("wall time from the wave: rotate annotations sent / all %d rotated / all old PATs revoked", n),
		fmt.Sprintf("%s / %s / %s", secs(waveSent), secs(lastRotated.Sub(waveStart)), secs(allRevoked)), "")
	b.rep.add(s, "old PAT revoked after the swap, p50 / p99 / max", dist(sinceSwap), "")
	b.rep.add(s, "idle old PATs (last used just before the wave): revoked after the rule allowed it (gracePeriod since the swap, unusedFor since the last use), p50 / p99 / max",
		dist(lateIdle), "")
	if len(inUse) > 0 {
		b.rep.add(s, "in-use old PATs: revoked after the rule allowed it (unusedFor since the consumer's last use), p50 / p99 / max",
			dist(lateInUse), fmt.Sprintf("≤ one verification interval (%s)", cfg.consumersVerify))
	}
	b.rep.add(s, "old PATs revoked before gracePeriod or unusedFor; at maxGracePeriod", fmt.Sprintf("%d; %d", early, atDeadline), "0; 0")
	return nil
}

// patchAll merge-patches every NomadToken of keys with patch.
func (b *bench) patchAll(ctx context.Context, keys []types.NamespacedName, patch []byte) error {
	return parallel(ctx, len(keys), b.cfg.workers, func(i int) error {
		tok := &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: keys[i].Namespace, Name: keys[i].Name}}
		if err := b.kube.Patch(ctx, tok, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return fmt.Errorf("patch NomadToken %s: %w", keys[i], err)
		}
		return nil
	})
}

// stubPATs is every PAT of every stand-in by id (their ids are unique across stand-ins: each one's
// ids start with its own creation time and counter, and the bench only compares ids it knows).
func (b *bench) stubPATs(ctx context.Context) (map[string]harness.StubPAT, error) {
	out := map[string]harness.StubPAT{}
	for _, st := range b.stubs {
		state, err := st.State(ctx)
		if err != nil {
			return nil, err
		}
		for _, u := range state.Users {
			for _, p := range u.PATs {
				out[p.ID] = p
			}
		}
	}
	return out, nil
}

// classifyGets reads the stand-ins' logs for the requests between from and to: the GETs of probeID
// (the consumers' uses), the other GETs of one PAT (the operator's) and the DELETEs (revocations) by
// PAT id.
func (b *bench) classifyGets(from, to time.Time) (consumerGets int, gets, revokes map[string]int, err error) {
	gets, revokes = map[string]int{}, map[string]int{}
	for _, st := range b.stubs {
		f, err := os.Open(st.LogPath)
		if err != nil {
			return 0, nil, nil, err
		}
		reqs, err := parseStubLog(f, time.Local)
		f.Close()
		if err != nil {
			return 0, nil, nil, err
		}
		for _, r := range reqs {
			if r.At.Before(from) || r.At.After(to) {
				continue
			}
			path, _, _ := strings.Cut(r.Path, "?")
			dir, id, _ := cutLast(path, "/")
			if !strings.HasSuffix(dir, "/pats") {
				continue
			}
			switch {
			case r.Method == "GET" && id == probeID:
				consumerGets++
			case r.Method == "GET":
				gets[id]++
			case r.Method == "DELETE":
				revokes[id]++
			}
		}
	}
	return consumerGets, gets, revokes, nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}
