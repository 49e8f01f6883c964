package main

import (
	"testing"
	"time"
)

func TestUntilAndAgo(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"unknown expiry", until(nil, now, "expired"), "-"},
		{"five days and three hours", until(at(5*24*time.Hour+3*time.Hour), now, "expired"), "5d3h"},
		{"twelve minutes", until(at(12*time.Minute), now, "expired"), "12m"},
		{"ninety seconds", until(at(90*time.Second), now, "expired"), "90s"},
		{"a month", until(at(30*24*time.Hour), now, "expired"), "30d"},
		{"exactly now is not yet past", until(at(0), now, "expired"), "0s"},
		{"an expiry gone by", until(at(-time.Second), now, "expired"), "expired"},
		{"a renewal gone by", until(at(-time.Hour), now, "overdue"), "overdue"},
		{"never used", ago(nil, now), "-"},
		{"used two hours ago", ago(at(-2*time.Hour), now), "120m ago"}, // kubectl prints minutes below 3h
		{"used four hours ago", ago(at(-4*time.Hour), now), "4h ago"},
		{"used in the future (clock skew) counts as now", ago(at(time.Minute), now), "0s ago"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}
