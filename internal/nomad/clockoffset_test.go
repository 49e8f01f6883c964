package nomad

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// NOMAD's last_used_at is in NOMAD's clock; the client learns the skew from the Date header.
func TestClockOffsetComesFromNomadsDateHeader(t *testing.T) {
	for _, skew := range []time.Duration{2 * time.Minute, -2 * time.Minute, 0} {
		f := newFakeNomad(t)
		var date string
		f.handle("GET /api/v1/pats/{id}", func(w http.ResponseWriter, r *http.Request) {
			if date != "" {
				w.Header().Set("Date", date)
			}
			writeJSON(w, 200, patJSON(patID(1), "a", testEpoch, nil, false))
		})
		c, clk := newTestClient(t, f)
		if _, ok := c.ClockOffset(); ok {
			t.Fatal("an offset is known before any answer")
		}
		date = clk.Now().Add(skew).UTC().Format(http.TimeFormat)
		if _, err := c.Get(context.Background(), patID(1)); err != nil {
			t.Fatal(err)
		}
		got, ok := c.ClockOffset()
		// Date has whole seconds, so the estimate is at most a second low, never high.
		if !ok || got > skew || got < skew-time.Second {
			t.Errorf("skew %s: ClockOffset = %s, %v; want within a second below it", skew, got, ok)
		}
		// An answer without a readable Date keeps the last estimate.
		date = "not a date"
		if _, err := c.Get(context.Background(), patID(1)); err != nil {
			t.Fatal(err)
		}
		if again, _ := c.ClockOffset(); again != got {
			t.Errorf("skew %s: an unreadable Date changed the estimate to %s", skew, again)
		}
	}
}
