package nomad

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Layouts NOMAD has sent (nomad-pat-api.md §3): V-B/C send "...Z" with or without a fraction; V-A
// sent naive UTC. Go's fractional-second layout element ".999999999" also accepts no fraction.
var (
	zonedLayouts = []string{
		"2006-01-02T15:04:05.999999999Z07:00", // Z or +hh:mm
		"2006-01-02T15:04:05.999999999Z0700",  // +hhmm
		"2006-01-02T15:04:05.999999999Z07",    // +hh
	}
	naiveLayout = "2006-01-02T15:04:05.999999999"
)

// ParseTime reads a NOMAD datetime: an optional fraction, an optional "Z" or offset, a naive value
// read as UTC, and a space instead of "T" tolerated (Python's str(datetime)). The result is in UTC.
func ParseTime(s string) (time.Time, error) {
	v := strings.TrimSpace(s)
	if len(v) > 10 && v[10] == ' ' {
		v = v[:10] + "T" + v[11:]
	}
	for _, l := range zonedLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return inPythonRange(t.UTC(), s)
		}
	}
	if t, err := time.ParseInLocation(naiveLayout, v, time.UTC); err == nil {
		return inPythonRange(t, s)
	}
	return time.Time{}, fmt.Errorf("not a NOMAD datetime: %q", s)
}

// inPythonRange refuses UTC years outside Python's datetime range (1-9999), which NOMAD cannot
// send: Go reads year 0000, and an offset can push a valid value past either end, and formatTime
// then writes something neither ParseTime nor NOMAD reads back (e.g. "10000-01-01T00:59:59Z").
func inPythonRange(t time.Time, s string) (time.Time, error) {
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, fmt.Errorf("not a NOMAD datetime (year %d in UTC): %q", y, s)
	}
	return t, nil
}

// formatTime writes a datetime for a query parameter; pydantic reads RFC 3339 with a Z.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// wireTime decodes a NOMAD datetime inside JSON. A JSON null leaves a *wireTime nil.
type wireTime struct{ time.Time }

func (w *wireTime) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("datetime is not a string")
	}
	t, err := ParseTime(s)
	if err != nil {
		return err
	}
	w.Time = t
	return nil
}

// ptr returns the time as a *time.Time, nil for a nil wireTime.
func (w *wireTime) ptr() *time.Time {
	if w == nil {
		return nil
	}
	t := w.Time
	return &t
}
