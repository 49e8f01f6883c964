package nomad

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
)

// Defaults of GuardOptions; docs/performance.md says why.
const (
	DefaultMaxInFlight        = 4
	DefaultSlotWait           = time.Second
	DefaultMaxRateWait        = 5 * time.Second
	DefaultBreakerFailures    = 3
	DefaultBreakerCooldown    = 30 * time.Second
	DefaultBreakerMaxCooldown = 5 * time.Minute
	// busyRetry is when a request refused for want of a free slot is worth trying again.
	busyRetry = 2 * time.Second
	// probeRetry is when a request refused while the breaker's probe is in flight is worth trying
	// again: the probe's outcome decides, and it is usually known within a moment.
	probeRetry = 2 * time.Second
)

// The refusals of a Guard. Each is wrapped in a Transient *Error with RetryAfter set; errors.Is
// tells them apart. None of them was sent to NOMAD.
var (
	// ErrCircuitOpen: the connection's recent requests failed, so none is sent until the cool-down.
	ErrCircuitOpen = errors.New("circuit breaker open")
	// ErrBusy: every in-flight slot of the connection stayed taken for the whole slot wait.
	ErrBusy = errors.New("in-flight limit reached")
	// ErrThrottled: the connection's rate limit would make the request wait longer than MaxRateWait.
	ErrThrottled = errors.New("rate limit wait too long")
)

// NotSent reports whether err is a Guard's refusal: the request never left this process, so a
// create or rotate refused this way did nothing in NOMAD.
func NotSent(err error) bool {
	return errors.Is(err, ErrCircuitOpen) || errors.Is(err, ErrBusy) || errors.Is(err, ErrThrottled)
}

// Deferred reports a refusal by the connection's own limits while NOMAD itself may be fine (all
// slots busy, or the rate limit): nothing is wrong that a person should see; try again after
// RetryAfterOf(err).
func Deferred(err error) bool { return errors.Is(err, ErrBusy) || errors.Is(err, ErrThrottled) }

// GuardOptions configure the protection of one NOMAD connection (Config.Guard). Zero fields take
// the Default* values.
type GuardOptions struct {
	// MaxInFlight bounds the requests in flight to this connection (waiting for the rate limiter
	// included), and so the reconcile workers one slow NOMAD can hold.
	MaxInFlight int
	// SlotWait is how long a request waits for a free slot before it is refused with ErrBusy.
	SlotWait time.Duration
	// MaxRateWait is the longest wait for the rate limiter; a longer one is refused with
	// ErrThrottled and a RetryAfter of that wait, instead of holding a worker asleep.
	MaxRateWait time.Duration
	// BreakerFailures is how many consecutive failed requests (no answer, or 5xx) open the breaker.
	BreakerFailures int
	// BreakerCooldown is how long the breaker stays open before one probe request goes through;
	// each failed probe doubles it, up to BreakerMaxCooldown.
	BreakerCooldown    time.Duration
	BreakerMaxCooldown time.Duration
	// Clock drives the waits and the breaker; nil means the real clock. It must be a real-time
	// clock in production: the controllers' decision clock may be moved by tests.
	Clock clock.Clock
}

func (o GuardOptions) withDefaults() GuardOptions {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.SlotWait <= 0 {
		o.SlotWait = DefaultSlotWait
	}
	if o.MaxRateWait <= 0 {
		o.MaxRateWait = DefaultMaxRateWait
	}
	if o.BreakerFailures <= 0 {
		o.BreakerFailures = DefaultBreakerFailures
	}
	if o.BreakerCooldown <= 0 {
		o.BreakerCooldown = DefaultBreakerCooldown
	}
	if o.BreakerMaxCooldown < o.BreakerCooldown {
		o.BreakerMaxCooldown = max(DefaultBreakerMaxCooldown, o.BreakerCooldown)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o
}

// guard admits the requests of one connection: the breaker first (a dead NOMAD costs no wait at
// all), then an in-flight slot (bounded wait), then the rate limiter (bounded wait, slot held, so
// that at most MaxInFlight workers ever wait on one connection).
type guard struct {
	opts    GuardOptions
	slots   chan struct{}
	limiter *rate.Limiter // nil: no rate limit
	breaker *breaker
	// lastFreed is when a slot was last given back (unix nanoseconds of opts.Clock): all slots
	// taken and none freed for a whole SlotWait means NOMAD is slow, not merely busy.
	lastFreed atomic.Int64
}

func newGuard(o GuardOptions, limiter *rate.Limiter) *guard {
	o = o.withDefaults()
	g := &guard{
		opts:    o,
		slots:   make(chan struct{}, o.MaxInFlight),
		limiter: limiter,
		breaker: newBreaker(o.BreakerFailures, o.BreakerCooldown, o.BreakerMaxCooldown, o.Clock),
	}
	g.lastFreed.Store(o.Clock.Now().UnixNano())
	return g
}

// freeSlot gives a slot back.
func (g *guard) freeSlot() {
	<-g.slots
	g.lastFreed.Store(g.opts.Clock.Now().UnixNano())
}

// refusal is why the guard did not admit a request, and when to ask again.
type refusal struct {
	cause      error // ErrCircuitOpen, ErrBusy or ErrThrottled
	detail     string
	retryAfter time.Duration
}

// pass is an admitted request; done must be called once with its outcome.
type pass struct {
	g     *guard
	probe bool
}

// outcome of an admitted request, for the breaker.
type outcome int

const (
	answered outcome = iota // NOMAD answered (anything but a 5xx): it is alive
	failed                  // no answer, or a 5xx/408: it counts towards opening the breaker
	neutral                 // the caller gave up: says nothing about NOMAD
)

// enter admits one request, or says why not. A context error (the caller's, or the request
// timeout) while waiting is returned as err.
func (g *guard) enter(ctx context.Context) (*pass, *refusal, error) {
	probe, ref := g.breaker.allow()
	if ref != nil {
		return nil, ref, nil
	}
	p := &pass{g: g, probe: probe}
	if ref, err := g.takeSlot(ctx); ref != nil || err != nil {
		g.breaker.release(probe)
		return nil, ref, err
	}
	if ref, err := g.waitRate(ctx); ref != nil || err != nil {
		g.freeSlot()
		g.breaker.release(probe)
		return nil, ref, err
	}
	return p, nil, nil
}

// done releases the slot and tells the breaker what became of the request.
func (p *pass) done(o outcome, detail string) {
	p.g.freeSlot()
	switch o {
	case answered:
		p.g.breaker.success()
	case failed:
		p.g.breaker.failure(p.probe, detail)
	default:
		p.g.breaker.release(p.probe)
	}
}

func (g *guard) takeSlot(ctx context.Context) (*refusal, error) {
	select {
	case g.slots <- struct{}{}:
		return nil, nil
	default:
	}
	t := g.opts.Clock.NewTimer(g.opts.SlotWait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return nil, nil
	case <-t.C():
		return g.busy(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (g *guard) busy() *refusal {
	return &refusal{cause: ErrBusy, retryAfter: busyRetry, detail: fmt.Sprintf(
		"all %d request slots of this connection stayed busy for %s (NOMAD is slow to answer); not sent, retrying shortly",
		g.opts.MaxInFlight, g.opts.SlotWait)}
}

// waitRate takes a token of the rate limiter, sleeping at most MaxRateWait for it.
func (g *guard) waitRate(ctx context.Context) (*refusal, error) {
	if g.limiter == nil {
		return nil, nil
	}
	now := g.opts.Clock.Now()
	r := g.limiter.ReserveN(now, 1)
	if !r.OK() {
		return &refusal{cause: ErrThrottled, retryAfter: g.opts.MaxRateWait,
			detail: "the connection's rate limit admits no request at all (burst 0); not sent"}, nil
	}
	delay := r.DelayFrom(now)
	if delay <= 0 {
		return nil, nil
	}
	if delay > g.opts.MaxRateWait {
		r.CancelAt(now)
		return &refusal{cause: ErrThrottled, retryAfter: delay, detail: fmt.Sprintf(
			"the connection's rate limit (spec.rateLimit) would delay this request by %s; not sent, retrying then", delay.Round(time.Millisecond))}, nil
	}
	t := g.opts.Clock.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C():
		return nil, nil
	case <-ctx.Done():
		r.CancelAt(g.opts.Clock.Now())
		return nil, ctx.Err()
	}
}

// precheck is the refusal a request would likely meet now, without taking anything: callers use it
// before writing down an intent that a refusal would waste. It refuses when the breaker would, when
// every slot is taken and none was freed for a whole SlotWait (a slow NOMAD: waiting would end
// in ErrBusy; on a merely busy connection slots free up all the time, and the request waits for
// one), and when the rate limiter's wait would exceed MaxRateWait.
func (g *guard) precheck() *refusal {
	if ref := g.breaker.peek(); ref != nil {
		return ref
	}
	if len(g.slots) == cap(g.slots) && g.opts.Clock.Since(time.Unix(0, g.lastFreed.Load())) >= g.opts.SlotWait {
		return g.busy()
	}
	if g.limiter == nil {
		return nil
	}
	now := g.opts.Clock.Now()
	lim := float64(g.limiter.Limit())
	if tokens := g.limiter.TokensAt(now); tokens < 1 && lim > 0 {
		if delay := time.Duration((1 - tokens) / lim * float64(time.Second)); delay > g.opts.MaxRateWait {
			return &refusal{cause: ErrThrottled, retryAfter: delay, detail: fmt.Sprintf(
				"the connection's rate limit (spec.rateLimit) would delay this request by %s; not sent, retrying then", delay.Round(time.Millisecond))}
		}
	}
	return nil
}

// breakerState is where the circuit breaker stands.
type breakerState int

const (
	closed   breakerState = iota // requests go through; consecutive failures are counted
	open                         // no request goes through until the cool-down ends
	halfOpen                     // the cool-down ended: one probe goes through, the others wait for it
)

func (s breakerState) String() string {
	return [...]string{"closed", "open", "half-open"}[s]
}

// breaker is a per-connection circuit breaker. It turns a NOMAD that does not answer into an
// immediate, visible failure instead of one request timeout per caller, and stops the operator from
// sending requests that are bound to time out. Any answer from NOMAD (a 4xx included) closes it.
type breaker struct {
	threshold   int
	baseCool    time.Duration
	maxCool     time.Duration
	clock       clock.PassiveClock
	mu          sync.Mutex
	state       breakerState
	consecutive int           // failures in a row while closed
	cooldown    time.Duration // of the current (or next) open period
	until       time.Time     // end of the open period
	since       time.Time     // when it opened, for a message that stays the same while open
	last        string        // the failure that opened it (or the last failed probe)
	probing     bool          // half-open: the probe is in flight
}

func newBreaker(threshold int, cooldown, maxCooldown time.Duration, c clock.PassiveClock) *breaker {
	return &breaker{threshold: threshold, baseCool: cooldown, maxCool: maxCooldown, cooldown: cooldown, clock: c}
}

// allow admits a request (probe says it is the half-open probe), or refuses it.
func (b *breaker) allow() (probe bool, ref *refusal) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == open && !b.clock.Now().Before(b.until) {
		b.state = halfOpen
	}
	switch {
	case b.state == closed:
		return false, nil
	case b.state == halfOpen && !b.probing:
		b.probing = true
		return true, nil
	}
	return false, b.refusalLocked()
}

// peek is allow without admitting: it neither takes the probe nor changes the state.
func (b *breaker) peek() *refusal {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == closed || b.state == open && !b.clock.Now().Before(b.until) || b.state == halfOpen && !b.probing {
		return nil
	}
	return b.refusalLocked()
}

func (b *breaker) refusalLocked() *refusal {
	if b.state == halfOpen {
		return &refusal{cause: ErrCircuitOpen, retryAfter: probeRetry, detail: fmt.Sprintf(
			"circuit breaker open since %s: one probe request is testing NOMAD again after it failed (%s); not sent",
			b.since.UTC().Format(time.RFC3339), b.last)}
	}
	return &refusal{cause: ErrCircuitOpen, retryAfter: b.until.Sub(b.clock.Now()), detail: fmt.Sprintf(
		"circuit breaker open since %s after %d requests in a row failed (the last: %s); no request is sent to this NOMAD until %s",
		b.since.UTC().Format(time.RFC3339), b.threshold, b.last, b.until.UTC().Format(time.RFC3339))}
}

// success records an answer: NOMAD is alive.
func (b *breaker) success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state, b.consecutive, b.cooldown, b.probing = closed, 0, b.baseCool, false
}

// failure records a failed request; probe says it was the half-open probe.
func (b *breaker) failure(probe bool, detail string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	switch {
	case probe:
		b.probing = false
		b.cooldown = min(2*b.cooldown, b.maxCool)
		b.openLocked(now, detail)
	case b.state == closed:
		b.consecutive++
		if b.consecutive >= b.threshold {
			b.since = now
			b.openLocked(now, detail)
		}
	}
	// A request admitted before the breaker opened and failing afterwards adds nothing.
}

func (b *breaker) openLocked(now time.Time, detail string) {
	b.state, b.until, b.last, b.consecutive = open, now.Add(b.cooldown), detail, 0
}

// release gives the probe back when its request ended without telling anything (the caller gave
// up, or it was never sent): the next request becomes the probe.
func (b *breaker) release(probe bool) {
	if !probe {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
}

// snapshot is the breaker's state, for tests and logs.
func (b *breaker) snapshot() (breakerState, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state, b.until
}
