package nomadstub

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// OffsetClock is real time plus an adjustable offset. The binary and the e2e suite use it so that a
// running stand-in can be moved forward (token expiry, renewal windows) without restarting it and
// without freezing time, which a long-running manager process would not tolerate.
type OffsetClock struct {
	mu     sync.Mutex
	offset time.Duration
}

var _ clock.PassiveClock = (*OffsetClock)(nil)

// NewOffsetClock returns a clock that starts at real time.
func NewOffsetClock() *OffsetClock { return &OffsetClock{} }

// Now returns the real time shifted by the accumulated offset.
func (c *OffsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Since returns the time elapsed since t on this clock.
func (c *OffsetClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// Advance moves the clock by d (negative values move it back).
func (c *OffsetClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// Offset reports how far the clock has been moved from real time.
func (c *OffsetClock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}
