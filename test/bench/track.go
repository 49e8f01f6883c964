package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// tracker watches every NomadToken and records, with the watch's millisecond view of time, when
// each was first seen Ready with a PAT, and when its PAT changed from a baseline (the storm).
type tracker struct {
	mu      sync.Mutex
	created map[types.NamespacedName]time.Time
	ready   map[types.NamespacedName]time.Time
	tokenID map[types.NamespacedName]string
	// baseline and renewed: a token counts as renewed once it is Ready with a tokenID other than
	// its baseline's.
	baseline map[types.NamespacedName]string
	renewed  map[types.NamespacedName]time.Time
}

func newTracker() *tracker {
	return &tracker{
		created: map[types.NamespacedName]time.Time{}, ready: map[types.NamespacedName]time.Time{},
		tokenID: map[types.NamespacedName]string{}, renewed: map[types.NamespacedName]time.Time{},
	}
}

// start runs an informer on NomadTokens until ctx ends and returns once it has synced.
func (t *tracker) start(ctx context.Context, e *env) error {
	c, err := cache.New(e.kubeRest, cache.Options{Scheme: e.cp.Scheme})
	if err != nil {
		return err
	}
	inf, err := c.GetInformer(ctx, &v1alpha1.NomadToken{})
	if err != nil {
		return err
	}
	observe := func(obj any) {
		if tok, ok := obj.(*v1alpha1.NomadToken); ok {
			t.observe(tok, time.Now())
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
	}); err != nil {
		return err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return fmt.Errorf("the bench's NomadToken informer did not sync")
	}
	return nil
}

func (t *tracker) observe(tok *v1alpha1.NomadToken, now time.Time) {
	key := types.NamespacedName{Namespace: tok.Namespace, Name: tok.Name}
	ready := meta.IsStatusConditionTrue(tok.Status.Conditions, v1alpha1.ConditionReady) && tok.Status.TokenID != ""
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tokenID[key] = tok.Status.TokenID
	if !ready {
		return
	}
	if _, seen := t.ready[key]; !seen {
		t.ready[key] = now
	}
	if base, ok := t.baseline[key]; ok && base != tok.Status.TokenID {
		if _, seen := t.renewed[key]; !seen {
			t.renewed[key] = now
		}
	}
}

// markCreated records when the bench's Create of key returned.
func (t *tracker) markCreated(key types.NamespacedName, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.created[key] = at
}

// latencies are create-to-Ready of keys that are Ready, and how many of keys are not.
func (t *tracker) latencies(keys []types.NamespacedName) (ds []time.Duration, missing int, last time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		r, ok := t.ready[k]
		c, created := t.created[k]
		if !ok || !created {
			missing++
			continue
		}
		// A watch event may arrive before our Create returned; that is no negative latency.
		ds = append(ds, max(r.Sub(c), 0))
		if r.After(last) {
			last = r
		}
	}
	return ds, missing, last
}

// countReady is how many of keys are Ready.
func (t *tracker) countReady(keys []types.NamespacedName) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, k := range keys {
		if _, ok := t.ready[k]; ok {
			n++
		}
	}
	return n
}

// setBaseline makes the current tokenIDs of keys the ones a renewal must replace.
func (t *tracker) setBaseline(keys []types.NamespacedName) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.baseline = map[types.NamespacedName]string{}
	t.renewed = map[types.NamespacedName]time.Time{}
	for _, k := range keys {
		t.baseline[k] = t.tokenID[k]
	}
}

// countRenewed is how many of keys have been renewed since the baseline, and when the last was.
func (t *tracker) countRenewed(keys []types.NamespacedName) (int, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, last := 0, time.Time{}
	for _, k := range keys {
		if r, ok := t.renewed[k]; ok {
			n++
			if r.After(last) {
				last = r
			}
		}
	}
	return n, last
}

// waitFor polls done every 200 ms until it is true, timeout passes or ctx ends; progress is logged
// every 10 s.
func waitFor(ctx context.Context, timeout time.Duration, what string, done func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	lastLog := time.Now()
	for {
		ok, progress := done()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not done within %s (%s)", what, timeout, progress)
		}
		if time.Since(lastLog) >= 10*time.Second {
			logf("%s: %s", what, progress)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
