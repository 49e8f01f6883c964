package nomad

import (
	"testing"
	"time"
)

// FuzzParseTime checks ParseTime on any string: no panic; a result is UTC; it survives the trip
// through formatTime, which is how the client sends it back as created_after; and a naive value
// means the same instant as the value with "Z" appended (naive is UTC, nomad-pat-api.md §3).
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		// V-B/C: Z with 6 digits, and no fraction for zero microseconds.
		"2026-01-02T03:04:05.123000Z",
		"2026-01-02T03:04:05Z",
		// V-A: naive, with 6 digits or none; milliseconds (MongoDB) with and without Z.
		"2026-01-02T03:04:05.123000",
		"2026-01-02T03:04:05",
		"2026-01-02T03:04:05.123",
		"2026-01-02T03:04:05.123Z",
		// 1 and 9 fraction digits, lowercase z, offsets in each form, a space for T, whitespace.
		"2026-01-02T03:04:05.1Z",
		"2026-01-02T03:04:05.123456789Z",
		"2026-01-02T03:04:05z",
		"2026-01-02T05:04:05+02:00",
		"2026-01-02T05:04:05.5+0200",
		"2026-01-01T22:04:05-05",
		"2026-01-02 03:04:05.123456",
		" 2026-01-02T03:04:05Z\n",
		// Python's range ends: year 1 and 9999, and offsets pushing them past it.
		"0001-01-01T00:00:00",
		"9999-12-31T23:59:59.999999",
		"0001-01-01T00:30:00+01:00",
		"9999-12-31T23:59:59-01:00",
		"0000-01-01T00:00:00Z",
		// Not datetimes: a date alone, out-of-range fields, a timestamp, empty, garbage.
		"2026-01-02",
		"2026-02-30T00:00:00Z",
		"2026-01-02T24:00:00Z",
		"2026-01-02T03:04:60Z",
		"1767323045",
		"",
		"2026-01-02T03:04:05.Z",
		"2026-01-02T03:04:05+25:00",
		"2026-01-02T03:04:05Z+01:00",
		"2026-01-02X03:04:05",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s)
		if err != nil {
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("ParseTime(%q) = %v, not UTC", s, got)
		}
		back, err := ParseTime(formatTime(got))
		if err != nil || !back.Equal(got) {
			t.Fatalf("ParseTime(%q) = %v, which formatTime writes as %q and reads back as %v, %v",
				s, got, formatTime(got), back, err)
		}
		if zoned, err := ParseTime(s + "Z"); err == nil && !zoned.Equal(got) {
			t.Fatalf("naive %q is %v, but with Z it is %v", s, got, zoned)
		}
	})
}
