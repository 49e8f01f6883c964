package controllers

import (
	"strings"

	"k8s.io/client-go/tools/events"
)

// drainEvents returns every Event a FakeRecorder has recorded so far ("<type> <reason> <note>").
func drainEvents(r *events.FakeRecorder) []string {
	var got []string
	for len(r.Events) > 0 {
		got = append(got, <-r.Events)
	}
	return got
}

// countPrefixed counts the Events that start with prefix, e.g. "Warning RevokeFailed".
func countPrefixed(events []string, prefix string) int {
	n := 0
	for _, e := range events {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}
