package main

import (
	"flag"
	"testing"
	"time"

	"k8s.io/utils/clock"
)

func TestTestingClockOffset(t *testing.T) {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o := bindTestingClock(fs)
	if _, real := o.clock().(clock.RealClock); !real {
		t.Fatal("without the flag the clock must be the real one")
	}
	if err := fs.Parse([]string{"--testing-clock-offset=720h"}); err != nil {
		t.Fatal(err)
	}
	if ahead := time.Until(o.clock().Now()); ahead < 719*time.Hour || ahead > 721*time.Hour {
		t.Fatalf("clock is %s ahead, want 720h", ahead)
	}
}

func TestTestingClockOffsetRefusesANegativeOffset(t *testing.T) {
	for _, tc := range []struct {
		offset time.Duration
		ok     bool
	}{{0, true}, {time.Hour, true}, {-time.Second, false}} {
		if err := testingClockOffset(tc.offset).validate(); (err == nil) != tc.ok {
			t.Errorf("offset %s: %v, want ok=%v", tc.offset, err, tc.ok)
		}
	}
}
