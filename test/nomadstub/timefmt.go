package nomadstub

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// formatTime renders a datetime the way V-B/C's UTCDateTime does: UTC with a "Z", a six-digit
// fraction when there are microseconds, none at all when there are not.
func formatTime(t time.Time) string {
	t = t.UTC().Truncate(time.Microsecond)
	if t.Nanosecond() == 0 {
		return t.Format("2006-01-02T15:04:05Z")
	}
	return t.Format("2006-01-02T15:04:05.000000Z")
}

// formatTimePtr is formatTime for nullable fields.
func formatTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatTime(*t)
	return &s
}

// storedTime mimics MongoDB, which keeps milliseconds: what create/rotate return (microseconds)
// can differ below the millisecond from what a later GET returns, as on a real Oasis.
func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// responseTime is what create and rotate put in their answer: Python's datetime has microseconds.
func responseTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

var errBadDatetime = errors.New("invalid datetime")

// parseDatetime accepts what pydantic's datetime accepts in practice: ISO-8601 with "T" or a space,
// an optional fraction, an optional "Z" or ±hh:mm offset (naive values are UTC, as NOMAD stores
// UTC), a bare date (midnight UTC), or a Unix timestamp in seconds.
func parseDatetime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errBadDatetime
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "-:T") {
		// NaN, infinities and huge values would wrap around in int64 (pydantic refuses them).
		if math.IsNaN(f) || f < float64(minDatetime.Unix()) || f > float64(maxDate.Unix()) {
			return time.Time{}, errBadDatetime
		}
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
	}
	norm := s
	if len(norm) > 10 && (norm[10] == ' ' || norm[10] == 't') {
		norm = norm[:10] + "T" + norm[11:]
	}
	if strings.HasSuffix(norm, "z") {
		norm = norm[:len(norm)-1] + "Z"
	}
	layouts := []struct {
		layout string
		naive  bool
	}{
		{time.RFC3339Nano, false},
		{"2006-01-02T15:04:05.999999999", true},
		{"2006-01-02T15:04Z07:00", false},
		{"2006-01-02T15:04", true},
		{"2006-01-02", true},
	}
	for _, l := range layouts {
		var (
			t   time.Time
			err error
		)
		if l.naive {
			t, err = time.ParseInLocation(l.layout, norm, time.UTC)
		} else {
			t, err = time.Parse(l.layout, norm)
		}
		if err == nil && !t.Before(minDatetime) && !t.After(maxDate) {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errBadDatetime
}

// minDatetime is Python's datetime.min; maxDate (pats.go) is its max. Go reads year 0000, and an
// offset can carry 9999-12-31 into year 10000 in UTC, which the stand-in (keeping UTC) could not
// echo back; pydantic refuses the former and NOMAD never sees the latter.
var minDatetime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
