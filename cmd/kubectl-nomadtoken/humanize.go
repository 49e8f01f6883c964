package main

import (
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
)

// unknown is printed for a time the status does not have (yet).
const unknown = "-"

// until is how long from now until t, the way kubectl prints ages (5d3h, 12m, 90s), or past when t
// has gone by: "expired" for an expiry, "overdue" for a renewal that is late.
func until(t *time.Time, now time.Time, past string) string {
	if t == nil {
		return unknown
	}
	d := t.Sub(now)
	if d < 0 {
		return past
	}
	return duration.HumanDuration(d)
}

// ago is how long before now t was ("12m ago"); a t in the future (clock skew) counts as now.
func ago(t *time.Time, now time.Time) string {
	if t == nil {
		return unknown
	}
	return duration.HumanDuration(max(now.Sub(*t), 0)) + " ago"
}
