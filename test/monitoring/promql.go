package monitoring

import (
	"regexp"
	"slices"
	"strings"
)

var (
	// Removed before identifiers are read: none of them holds a metric name.
	stringLiteral = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	labelMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	rangeOrSubq   = regexp.MustCompile(`\[[^\[\]]*\]`)
	labelLists    = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	grafanaVar    = regexp.MustCompile(`\$\{[^}]*\}|\$\w+|\[\[\w+\]\]`)
	duration      = regexp.MustCompile(`\b\d+(?:\.\d+)?(?:ms|[smhdwy])\b`)
	number        = regexp.MustCompile(`(?i)\b(?:0x[0-9a-f]+|\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?)\b`)
	comment       = regexp.MustCompile(`#[^\n]*`)
	identifier    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
)

// keywords are PromQL words that are not metric names (functions are told by the "(" after them).
var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
	"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true,
	"atan2": true, "start": true, "end": true, "step": true,
}

// MetricNames returns, sorted and once each, the metric names that a PromQL expression selects.
// Grafana's template variables ($var, ${var}, [[var]]) may appear in it. The names of functions
// and aggregations (an identifier followed by "("), keywords, label names and values, durations and
// numbers are not metric names.
func MetricNames(expr string) []string {
	s := stringLiteral.ReplaceAllString(expr, " ")
	s = comment.ReplaceAllString(s, " ")
	s = grafanaVar.ReplaceAllString(s, " ")
	s = labelMatchers.ReplaceAllString(s, " ")
	for prev := ""; prev != s; { // subqueries may nest
		prev, s = s, rangeOrSubq.ReplaceAllString(s, " ")
	}
	s = labelLists.ReplaceAllString(s, " ")
	s = duration.ReplaceAllString(s, " ")
	s = number.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range identifier.FindAllStringIndex(s, -1) {
		word := s[loc[0]:loc[1]]
		if keywords[strings.ToLower(word)] || strings.HasPrefix(strings.TrimLeft(s[loc[1]:], " \t\n"), "(") {
			continue
		}
		names = append(names, word)
	}
	slices.Sort(names)
	return slices.Compact(names)
}
