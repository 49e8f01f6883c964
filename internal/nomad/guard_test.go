package nomad

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
	testingclock "k8s.io/utils/clock/testing"
)

// step is one thing that happens to a breaker, and what must hold afterwards.
type step struct {
	do string // "allow", "fail", "probe-fail", "succeed", "release-probe", "wait <duration>"
	// after the step:
	state     breakerState
	refused   bool          // for "allow": the request was refused
	probe     bool          // for "allow": the request is the half-open probe
	retryFrom time.Duration // for a refused "allow": its RetryAfter, when > 0
}

func TestBreaker(t *testing.T) {
	const cool = 30 * time.Second
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{name: "closed lets requests through and failures below the threshold do not open it", steps: []step{
			{do: "allow", state: closed},
			{do: "fail", state: closed},
			{do: "fail", state: closed},
			{do: "allow", state: closed},
		}},
		{name: "an answer in between resets the count", steps: []step{
			{do: "fail", state: closed},
			{do: "fail", state: closed},
			{do: "succeed", state: closed},
			{do: "fail", state: closed},
			{do: "fail", state: closed},
			{do: "allow", state: closed},
		}},
		{name: "the threshold of consecutive failures opens it, and open refuses at once until the cool-down ends", steps: []step{
			{do: "fail", state: closed},
			{do: "fail", state: closed},
			{do: "fail", state: open},
			{do: "allow", state: open, refused: true, retryFrom: cool},
			{do: "wait 29s", state: open},
			{do: "allow", state: open, refused: true, retryFrom: time.Second},
		}},
		{name: "after the cool-down one probe goes through and the others wait for it", steps: []step{
			{do: "fail"}, {do: "fail"}, {do: "fail", state: open},
			{do: "wait 30s", state: open},
			{do: "allow", state: halfOpen, probe: true},
			{do: "allow", state: halfOpen, refused: true, retryFrom: probeRetry},
		}},
		{name: "a probe that gets an answer closes it", steps: []step{
			{do: "fail"}, {do: "fail"}, {do: "fail", state: open},
			{do: "wait 30s", state: open},
			{do: "allow", state: halfOpen, probe: true},
			{do: "succeed", state: closed},
			{do: "allow", state: closed},
			{do: "fail", state: closed}, // counting starts again from zero
		}},
		{name: "a failed probe opens it again for twice the cool-down", steps: []step{
			{do: "fail"}, {do: "fail"}, {do: "fail", state: open},
			{do: "wait 30s", state: open},
			{do: "allow", state: halfOpen, probe: true},
			{do: "probe-fail", state: open},
			{do: "allow", state: open, refused: true, retryFrom: 2 * cool},
			{do: "wait 59s", state: open},
			{do: "allow", state: open, refused: true},
			{do: "wait 1s", state: open},
			{do: "allow", state: halfOpen, probe: true},
		}},
		{name: "the cool-down doubles up to its maximum only", steps: []step{
			{do: "fail"}, {do: "fail"}, {do: "fail", state: open},
			{do: "wait 30s", state: open}, {do: "allow", probe: true, state: halfOpen}, {do: "probe-fail", state: open}, // 60s
			{do: "wait 60s", state: open}, {do: "allow", probe: true, state: halfOpen}, {do: "probe-fail", state: open}, // 100s: capped
			{do: "wait 120s", state: open}, {do: "allow", probe: true, state: halfOpen}, {do: "probe-fail", state: open}, // still 100s
			{do: "allow", state: open, refused: true, retryFrom: 100 * time.Second},
		}},
		{name: "a probe whose caller gave up hands the probe to the next request", steps: []step{
			{do: "fail"}, {do: "fail"}, {do: "fail", state: open},
			{do: "wait 30s", state: open},
			{do: "allow", state: halfOpen, probe: true},
			{do: "release-probe", state: halfOpen},
			{do: "allow", state: halfOpen, probe: true},
		}},
		{name: "a late failure of a request admitted before it opened does not extend the open period", steps: []step{
			{do: "fail"}, {do: "fail"}, {do: "fail", state: open},
			{do: "wait 10s", state: open},
			{do: "fail", state: open},
			{do: "allow", state: open, refused: true, retryFrom: 20 * time.Second},
		}},
		{name: "any answer closes it, even one admitted before it opened", steps: []step{
			{do: "fail"}, {do: "fail"}, {do: "fail", state: open},
			{do: "succeed", state: closed},
			{do: "allow", state: closed},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testingclock.NewFakeClock(testEpoch)
			b := newBreaker(3, cool, 100*time.Second, clk)
			for i, s := range tc.steps {
				var probe bool
				var ref *refusal
				switch {
				case s.do == "allow":
					probe, ref = b.allow()
				case s.do == "fail":
					b.failure(false, "nomad create: no answer")
				case s.do == "probe-fail":
					b.failure(true, "nomad create: no answer")
				case s.do == "succeed":
					b.success()
				case s.do == "release-probe":
					b.release(true)
				case strings.HasPrefix(s.do, "wait "):
					d, err := time.ParseDuration(strings.TrimPrefix(s.do, "wait "))
					if err != nil {
						t.Fatal(err)
					}
					clk.Step(d)
				default:
					t.Fatalf("unknown step %q", s.do)
				}
				if st, _ := b.snapshot(); st != s.state {
					t.Fatalf("step %d (%s): state %s, want %s", i, s.do, st, s.state)
				}
				if s.do != "allow" {
					continue
				}
				if (ref != nil) != s.refused || probe != s.probe {
					t.Fatalf("step %d: allow = probe %v, refusal %+v; want probe %v, refused %v", i, probe, ref, s.probe, s.refused)
				}
				if ref != nil {
					if !errors.Is(ref.cause, ErrCircuitOpen) || !strings.Contains(ref.detail, "circuit breaker open") {
						t.Errorf("step %d: refusal %+v does not say the breaker is open", i, ref)
					}
					if s.retryFrom > 0 && ref.retryAfter != s.retryFrom {
						t.Errorf("step %d: retry after %s, want %s", i, ref.retryAfter, s.retryFrom)
					}
				}
			}
		})
	}
}

// TestBreakerMessageStaysTheSameWhileOpen: the message ends up in a condition; if it changed with
// every refusal, each retry of each token would be a status write.
func TestBreakerMessageStaysTheSameWhileOpen(t *testing.T) {
	clk := testingclock.NewFakeClock(testEpoch)
	b := newBreaker(1, time.Minute, time.Hour, clk)
	b.failure(false, "nomad create: no answer within the request timeout (30s)")
	_, first := b.allow()
	clk.Step(10 * time.Second)
	_, second := b.allow()
	if first == nil || second == nil || first.detail != second.detail {
		t.Fatalf("refusals %+v and %+v differ", first, second)
	}
	for _, want := range []string{"circuit breaker open since 2026-01-02T03:04:05Z", "1 requests in a row failed",
		"no answer within the request timeout", "until 2026-01-02T03:05:05Z"} {
		if !strings.Contains(first.detail, want) {
			t.Errorf("detail %q lacks %q", first.detail, want)
		}
	}
	if b.peek() == nil {
		t.Error("peek sees no refusal while open")
	}
	clk.Step(time.Minute)
	if b.peek() != nil {
		t.Error("peek refuses after the cool-down: the probe must be allowed")
	}
	if st, _ := b.snapshot(); st != open {
		t.Errorf("peek changed the state to %s", st)
	}
}

func TestGuardInFlightLimit(t *testing.T) {
	for _, tc := range []struct {
		name        string
		maxInFlight int
		held        int  // passes taken and not yet done
		freeOne     bool // one of them is done while the next request waits
		want        string
	}{
		{name: "a free slot admits at once", maxInFlight: 2, held: 1, want: "admitted"},
		{name: "all slots busy for the whole slot wait refuses with ErrBusy", maxInFlight: 2, held: 2, want: "busy"},
		{name: "a slot freed during the wait admits the waiting request", maxInFlight: 2, held: 2, freeOne: true, want: "admitted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testingclock.NewFakeClock(testEpoch)
			g := newGuard(GuardOptions{MaxInFlight: tc.maxInFlight, SlotWait: time.Second, Clock: clk}, nil)
			var held []*pass
			for range tc.held {
				p, ref, err := g.enter(context.Background())
				if p == nil || ref != nil || err != nil {
					t.Fatalf("enter = %v, %+v, %v", p, ref, err)
				}
				held = append(held, p)
			}
			type result struct {
				p   *pass
				ref *refusal
				err error
			}
			got := make(chan result, 1)
			go func() {
				p, ref, err := g.enter(context.Background())
				got <- result{p, ref, err}
			}()
			if tc.held == tc.maxInFlight {
				waitForWaiter(t, clk)
				if tc.freeOne {
					held[0].done(answered, "")
				} else {
					clk.Step(time.Second)
				}
			}
			r := <-got
			switch tc.want {
			case "admitted":
				if r.p == nil || r.ref != nil || r.err != nil {
					t.Fatalf("enter = %v, %+v, %v; want admitted", r.p, r.ref, r.err)
				}
			case "busy":
				if r.ref == nil || !errors.Is(r.ref.cause, ErrBusy) || r.ref.retryAfter <= 0 {
					t.Fatalf("enter = %v, %+v, %v; want ErrBusy with a retry time", r.p, r.ref, r.err)
				}
			}
		})
	}
}

// TestGuardBoundsTheRateLimiterWait: a short wait is slept (holding the slot), a long one is
// refused with the wait as RetryAfter and gives its reservation back.
func TestGuardBoundsTheRateLimiterWait(t *testing.T) {
	clk := testingclock.NewFakeClock(testEpoch)
	lim := rate.NewLimiter(1, 1) // one request a second
	lim.AllowN(testEpoch, 1)     // the burst is used up: the next token comes in 1 s
	g := newGuard(GuardOptions{MaxInFlight: 4, MaxRateWait: 2 * time.Second, Clock: clk}, lim)

	done := make(chan *pass, 1)
	go func() {
		p, _, _ := g.enter(context.Background())
		done <- p
	}()
	waitForWaiter(t, clk) // sleeping 1 s for the limiter
	if n := len(g.slots); n != 1 {
		t.Errorf("%d slots held while waiting for the limiter, want 1", n)
	}
	clk.Step(time.Second)
	if p := <-done; p == nil {
		t.Fatal("a 1 s wait (under MaxRateWait) was refused")
	}
	// Two more reservations would need 1 s and 2 s; a third 3 s > MaxRateWait.
	lim.ReserveN(clk.Now(), 1)
	lim.ReserveN(clk.Now(), 1)
	if ref := g.precheck(); ref == nil || !errors.Is(ref.cause, ErrThrottled) {
		t.Fatalf("precheck = %+v, want ErrThrottled", ref)
	}
	_, ref, err := g.enter(context.Background())
	if err != nil || ref == nil || !errors.Is(ref.cause, ErrThrottled) || ref.retryAfter != 3*time.Second {
		t.Fatalf("enter = %+v, %v; want ErrThrottled after 3s", ref, err)
	}
	if n := len(g.slots); n != 1 { // the first pass is still held
		t.Errorf("%d slots held after a refusal, want 1 (the refused request gives its slot back)", n)
	}
	if tokens := lim.TokensAt(clk.Now()); tokens < -2.01 || tokens > -1.99 {
		t.Errorf("limiter tokens %.2f, want -2: the refused reservation must be given back", tokens)
	}
}

func waitForWaiter(t *testing.T, clk *testingclock.FakeClock) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !clk.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("nothing waits on the clock")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGuardedClientFailsFastOnceTheBreakerOpens drives the HTTP client against a NOMAD that
// answers 503: after the threshold, requests are refused without reaching it, with an error that
// says so, is transient, was not sent and carries a RetryAfter.
func TestGuardedClientFailsFastOnceTheBreakerOpens(t *testing.T) {
	f := newFakeNomad(t)
	var mu sync.Mutex
	hits := 0
	f.mux.HandleFunc("GET /api/v1/auth/pats/{id}", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	clk := testingclock.NewFakeClock(testEpoch)
	c, _ := newTestClient(t, f, func(cfg *Config) {
		cfg.PATPath = PATPathAuthPats
		cfg.Guard = &GuardOptions{BreakerFailures: 2, BreakerCooldown: time.Minute, Clock: clk}
	})
	ctx := context.Background()
	for range 2 {
		if _, err := c.Get(ctx, "665f1c0ffee0000000000001"); !IsTransient(err) || NotSent(err) {
			t.Fatalf("Get = %v; want a transient error NOMAD sent", err)
		}
	}
	_, err := c.Get(ctx, "665f1c0ffee0000000000001")
	if !IsTransient(err) || !NotSent(err) || Deferred(err) || !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("Get = %v; want the breaker's refusal", err)
	}
	if !strings.Contains(err.Error(), "circuit breaker open") || !strings.Contains(err.Error(), "HTTP 503") {
		t.Errorf("error %q does not say the breaker is open and why", err)
	}
	if RetryAfterOf(err) != time.Minute {
		t.Errorf("RetryAfter = %s, want the cool-down", RetryAfterOf(err))
	}
	if perr := c.Precheck("create"); !errors.Is(perr, ErrCircuitOpen) {
		t.Errorf("Precheck = %v, want the breaker's refusal", perr)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 2 {
		t.Errorf("NOMAD saw %d requests, want 2: the third must not be sent", hits)
	}
}

// TestGuardPrecheckTellsSlowFromBusy: all slots taken is normal on a busy connection (a request
// waits for one); all taken and none freed for a whole SlotWait means NOMAD is slow.
func TestGuardPrecheckTellsSlowFromBusy(t *testing.T) {
	clk := testingclock.NewFakeClock(testEpoch)
	g := newGuard(GuardOptions{MaxInFlight: 2, SlotWait: time.Second, Clock: clk}, nil)
	a, _, _ := g.enter(context.Background())
	if ref := g.precheck(); ref != nil {
		t.Fatalf("precheck with a free slot = %+v", ref)
	}
	b, _, _ := g.enter(context.Background())
	if ref := g.precheck(); ref != nil {
		t.Fatalf("precheck right after the slots filled = %+v; want nil (they may free up at once)", ref)
	}
	clk.Step(time.Second)
	if ref := g.precheck(); ref == nil || !errors.Is(ref.cause, ErrBusy) {
		t.Fatalf("precheck after a SlotWait without a freed slot = %+v; want ErrBusy", ref)
	}
	a.done(answered, "")
	if ref := g.precheck(); ref != nil {
		t.Fatalf("precheck after a slot was freed = %+v", ref)
	}
	c, _, _ := g.enter(context.Background())
	if ref := g.precheck(); ref != nil {
		t.Fatalf("precheck just after a slot was freed and taken again = %+v; want nil", ref)
	}
	b.done(answered, "")
	c.done(answered, "")
}
