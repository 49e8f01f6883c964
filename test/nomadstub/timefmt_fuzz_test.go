package nomadstub

import (
	"testing"
	"time"
)

// FuzzParseDatetime checks the stand-in's reading of datetime query parameters on any string: no
// panic; a result is UTC, within Python's datetime range (years 1-9999), and reads back from
// formatTime (the query echo of the list envelope) as the same instant to the microsecond.
func FuzzParseDatetime(f *testing.F) {
	for _, s := range []string{
		// ISO forms NOMAD and its clients send: Z, naive, fractions of 0/3/6/9 digits, offsets.
		"2026-01-02T03:04:05Z",
		"2026-01-02T03:04:05.123Z",
		"2026-01-02T03:04:05.123456",
		"2026-01-02T03:04:05.123456789+02:00",
		"2026-01-02 03:04:05z",
		"2026-01-02t03:04",
		"2026-01-02T03:04+01:00",
		"2026-01-02",
		// Unix timestamps in seconds, with a fraction, negative.
		"1767323045",
		"1767323045.5",
		"-1.5",
		// Outside Python's range: year 0, an offset past 9999, huge, NaN and infinite timestamps.
		"0000-01-01T00:00:00Z",
		"9999-12-31T23:59:59-01:00",
		"1e300",
		"NaN",
		"inf",
		"-Infinity",
		"1e18",
		// Not datetimes.
		"",
		"yesterday",
		"2026-02-30T00:00:00Z",
		"2026-01-02T03:04:05Zjunk",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseDatetime(s)
		if err != nil {
			return
		}
		if got.Location() != time.UTC || got.Year() < 1 || got.Year() > 9999 {
			t.Fatalf("parseDatetime(%q) = %v: not UTC or outside years 1-9999", s, got)
		}
		back, err := parseDatetime(formatTime(got))
		if err != nil || !back.Equal(got.Truncate(time.Microsecond)) {
			t.Fatalf("parseDatetime(%q) = %v, echoed as %q, reads back as %v, %v", s, got, formatTime(got), back, err)
		}
	})
}
