package main

import (
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"no samples give zero", nil, 50, 0},
		{"one sample is every percentile", ms(7), 99, 7 * time.Millisecond},
		{"p50 of an even count is the lower middle (nearest rank)", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of 100 samples is the 99th", ms(seq(100)...), 99, 99 * time.Millisecond},
		{"p99 of 10 samples is the largest", ms(seq(10)...), 99, 10 * time.Millisecond},
		{"p100 is the maximum", ms(5, 9, 1), 100, 9 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.in, tc.p); got != tc.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tc.in, tc.p, got, tc.want)
			}
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestPeakInWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	at := func(ms ...int) []time.Time {
		out := make([]time.Time, len(ms))
		for i, m := range ms {
			out[i] = t0.Add(time.Duration(m) * time.Millisecond)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   []time.Time
		want int
	}{
		{"nothing", nil, 0},
		{"a window holds what lies less than w apart", at(0, 500, 999), 3},
		{"a request exactly w later is the next window's", at(0, 1000), 1},
		{"the densest second counts, wherever it starts", at(0, 1500, 1600, 1700, 2400, 2600), 4},
		{"unsorted input is sorted first", at(1700, 0, 1600, 1500), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := peakInWindow(tc.in, time.Second); got != tc.want {
				t.Errorf("peakInWindow = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP rest_client_requests_total Number of HTTP requests, partitioned by status code, method, and host.
# TYPE rest_client_requests_total counter
rest_client_requests_total{code="200",host="127.0.0.1:6443",method="GET"} 120
rest_client_requests_total{code="201",host="127.0.0.1:6443",method="POST"} 30
rest_client_requests_total{code="200",host="127.0.0.1:6443",method="PUT"} 45
rest_client_requests_total{code="409",host="127.0.0.1:6443",method="PUT"} 2
rest_client_requests_total{code="200",host="127.0.0.1:6443",method="PATCH"} 3
rest_client_requests_total{code="200",host="127.0.0.1:6443",method="DELETE"} 1
go_memstats_heap_alloc_bytes 1.2345e+07
odd_label{path="a\"b\\c",x=""} 1
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.kubeWrites(); got != 81 {
		t.Errorf("writes = %v, want 81 (POST, PUT incl. conflicts, PATCH, DELETE)", got)
	}
	if got := m.kubeReads(); got != 120 {
		t.Errorf("reads = %v, want 120", got)
	}
	if got := m.sum("go_memstats_heap_alloc_bytes", nil); got != 12345000 {
		t.Errorf("heap = %v", got)
	}
	if got := m["odd_label"][0].labels["path"]; got != `a"b\c` {
		t.Errorf("escaped label = %q", got)
	}
	if got := m.sum("missing", nil); got != 0 {
		t.Errorf("a metric never served sums to %v", got)
	}
}

func TestParseMetricsRejectsGarbage(t *testing.T) {
	for _, in := range []string{"name_only", `m{a="b} 1`, "m notanumber"} {
		if _, err := parseMetrics(strings.NewReader(in)); err == nil {
			t.Errorf("%q parsed without error", in)
		}
	}
}

func TestParseStubLogLine(t *testing.T) {
	loc := time.UTC
	for _, tc := range []struct {
		name string
		line string
		ok   bool
		want stubRequest
	}{
		{
			"a PAT create arrived its duration before it was logged",
			"nomad-stub: 2026/12/02 00:52:16.500000 POST /nomad-oasis/api/v1/auth/pats 200 250ms",
			true,
			stubRequest{At: time.Date(2026, 12, 2, 0, 52, 16, 250_000_000, loc), Method: "POST", Path: "/nomad-oasis/api/v1/auth/pats", Status: "200"},
		},
		{
			"microsecond durations parse",
			"nomad-stub: 2026/12/02 00:52:16.000100 GET /nomad-oasis/api/v1/auth/pats 200 100µs",
			true,
			stubRequest{At: time.Date(2026, 12, 2, 0, 52, 16, 0, loc), Method: "GET", Path: "/nomad-oasis/api/v1/auth/pats", Status: "200"},
		},
		{"admin routes are the bench's own", "nomad-stub: 2026/12/02 00:52:16.000100 GET /_stub/calls 200 10µs", false, stubRequest{}},
		{"the start-up line is no request", "nomad-stub: 2026/12/02 00:52:16.000100 serving at http://127.0.0.1:1 (API root x; users a; max lifetime 365 days; max active 100; access tokens 5m0s)", false, stubRequest{}},
		{"shutdown is no request", "nomad-stub: 2026/12/02 00:52:16.000100 shutting down", false, stubRequest{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseStubLogLine(tc.line, loc)
			if ok != tc.ok || got != tc.want {
				t.Errorf("got %+v %v, want %+v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestVMRSS(t *testing.T) {
	got, err := vmRSS("Name:\tmanager\nVmPeak:\t  900 kB\nVmRSS:\t   53248 kB\nThreads:\t9\n")
	if err != nil || got != 53248*1024 {
		t.Errorf("vmRSS = %d, %v", got, err)
	}
	if _, err := vmRSS("Name:\tzombie\n"); err == nil {
		t.Error("a status without VmRSS gave no error")
	}
}

func TestCPUTime(t *testing.T) {
	stat := "4242 (my manager) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 12 0 100 0 0\n"
	got, err := cpuTime(stat)
	if err != nil || got != 3*time.Second {
		t.Errorf("cpuTime = %v, %v; want 3s (250+50 ticks)", got, err)
	}
	if _, err := cpuTime("4242 (x) S 1"); err == nil {
		t.Error("a short line gave no error")
	}
}
