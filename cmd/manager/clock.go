package main

import (
	"flag"
	"fmt"
	"time"

	"k8s.io/utils/clock"
)

// testingClockOffset is --testing-clock-offset: the benchmark's renewal storm restarts the manager
// with its clock as far ahead as it moved the NOMAD stand-in's, so that every token is due at once
// and the real renewal path runs, not a spec change that imitates it. It is never for production: a
// clock ahead of NOMAD's renews every PAT early.
type testingClockOffset time.Duration

func bindTestingClock(fs *flag.FlagSet) *testingClockOffset {
	var o testingClockOffset
	fs.DurationVar((*time.Duration)(&o), "testing-clock-offset", 0,
		"TESTING ONLY (the benchmark's renewal storm): run the operator's clock this far ahead of real time. Never set it in production.")
	return &o
}

// validate refuses a negative offset: a clock behind NOMAD's would renew late, after PATs expired.
func (o testingClockOffset) validate() error {
	if o < 0 {
		return fmt.Errorf("--testing-clock-offset must not be negative, not %s", time.Duration(o))
	}
	return nil
}

// clock is the operator's clock: the real one, or the real one plus the offset.
func (o testingClockOffset) clock() clock.PassiveClock {
	if o == 0 {
		return clock.RealClock{}
	}
	return offsetClock{offset: time.Duration(o)}
}

type offsetClock struct{ offset time.Duration }

func (c offsetClock) Now() time.Time                  { return time.Now().Add(c.offset) }
func (c offsetClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
