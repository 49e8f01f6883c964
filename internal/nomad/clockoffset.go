package nomad

import (
	"net/http"
	"sync/atomic"
	"time"
)

// clockOffset remembers how far NOMAD's clock is ahead of ours, from the Date header of its last
// answer. NOMAD's timestamps (a PAT's last_used_at) are in NOMAD's clock: judging how long ago one
// was by our clock would be off by any skew between the two.
//
// The estimate errs low: Date is NOMAD's time when it answered, truncated to the second, and our
// time is taken after the answer arrived. A low estimate makes a PAT look more recently used, never
// less, which only ever makes the operator wait longer before revoking it.
type clockOffset struct {
	v atomic.Pointer[time.Duration]
}

// note records the offset an answer's Date header shows, received at local time now.
func (o *clockOffset) note(h http.Header, now time.Time) {
	d, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		return // no Date, or one we cannot read: keep the last estimate
	}
	off := d.Sub(now)
	o.v.Store(&off)
}

// get returns the last estimate; ok is false before any answer carried a Date.
func (o *clockOffset) get() (time.Duration, bool) {
	p := o.v.Load()
	if p == nil {
		return 0, false
	}
	return *p, true
}

// ClockOffset is how far NOMAD's clock was ahead of this client's (negative: behind), as the Date
// header of its last answer showed; ok is false before any answer carried one.
func (c *HTTPClient) ClockOffset() (time.Duration, bool) { return c.offset.get() }
