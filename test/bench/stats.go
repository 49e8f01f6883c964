package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of ds; 0 for no samples.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// peakInWindow is the largest number of times that fall within any window of length w (a window
// [t, t+w) sliding over them). times need not be sorted.
func peakInWindow(times []time.Time, w time.Duration) int {
	s := slices.Clone(times)
	slices.SortFunc(s, func(a, b time.Time) int { return a.Compare(b) })
	peak, i := 0, 0
	for j := range s {
		for s[j].Sub(s[i]) >= w {
			i++
		}
		peak = max(peak, j-i+1)
	}
	return peak
}

// sample is one line of Prometheus' text exposition format.
type sample struct {
	labels map[string]string
	value  float64
}

// metrics is a scrape: samples by metric name.
type metrics map[string][]sample

// sum adds the values of name's samples whose labels satisfy match (nil: all).
func (m metrics) sum(name string, match func(labels map[string]string) bool) float64 {
	total := 0.0
	for _, s := range m[name] {
		if match == nil || match(s.labels) {
			total += s.value
		}
	}
	return total
}

// writeMethods are the HTTP methods of Kubernetes API requests that change something.
var writeMethods = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "DELETE": true}

// kubeWrites is the number of write requests the client-go metric rest_client_requests_total counts.
func (m metrics) kubeWrites() float64 {
	return m.sum("rest_client_requests_total", func(l map[string]string) bool { return writeMethods[l["method"]] })
}

// writesByRequest counts write requests by "METHOD code", e.g. "PUT 200".
func (m metrics) writesByRequest() map[string]float64 {
	out := map[string]float64{}
	for _, s := range m["rest_client_requests_total"] {
		if writeMethods[s.labels["method"]] {
			out[s.labels["method"]+" "+s.labels["code"]] += s.value
		}
	}
	return out
}

// kubeReads is the number of GET requests (gets and lists, watches included) it counts.
func (m metrics) kubeReads() float64 {
	return m.sum("rest_client_requests_total", func(l map[string]string) bool { return l["method"] == "GET" })
}

// parseMetrics reads Prometheus' text exposition format (what controller-runtime's metrics
// endpoint serves): comments are skipped, a sample is `name{k="v",...} value [timestamp]`.
func parseMetrics(r io.Reader) (metrics, error) {
	out := metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", n, err)
		}
		out[name] = append(out[name], s)
	}
	return out, sc.Err()
}

func parseSample(line string) (string, sample, error) {
	s := sample{labels: map[string]string{}}
	end := strings.IndexAny(line, "{ ")
	if end <= 0 {
		return "", s, fmt.Errorf("no value in %q", line)
	}
	name, rest := line[:end], line[end:]
	if rest[0] == '{' {
		var err error
		if rest, err = parseLabels(rest[1:], s.labels); err != nil {
			return "", s, err
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return "", s, fmt.Errorf("no value in %q", line)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return "", s, fmt.Errorf("value of %s: %w", name, err)
	}
	s.value = v
	return name, s, nil
}

// parseLabels reads `k="v",...}` into into and returns what follows the closing brace.
func parseLabels(in string, into map[string]string) (string, error) {
	for {
		in = strings.TrimLeft(in, " ,")
		if strings.HasPrefix(in, "}") {
			return in[1:], nil
		}
		eq := strings.Index(in, `="`)
		if eq <= 0 {
			return "", fmt.Errorf("bad label list near %q", in)
		}
		key := strings.TrimSpace(in[:eq])
		in = in[eq+2:]
		var val strings.Builder
		closed := false
		for i := 0; i < len(in); i++ {
			c := in[i]
			if c == '\\' && i+1 < len(in) {
				i++
				switch in[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(in[i])
				}
				continue
			}
			if c == '"' {
				in, closed = in[i+1:], true
				break
			}
			val.WriteByte(c)
		}
		if !closed {
			return "", fmt.Errorf("unterminated value of label %s", key)
		}
		into[key] = val.String()
	}
}

// stubRequest is one NOMAD request as the stand-in binary logged it.
type stubRequest struct {
	// At is when it arrived: the log line's time (written when the answer left) minus its duration.
	At     time.Time
	Method string
	Path   string
	Status string
}

// parseStubLogLine reads one request line of cmd/nomad-stub's log,
//
//	nomad-stub: 2026/12/02 00:52:16.123456 POST /nomad-oasis/api/v1/auth/pats 200 1.234ms
//
// (local time, as the log package writes it). ok is false for other lines (start-up, shutdown)
// and for the admin routes under /_stub/, which are the bench's own calls, not the operator's.
func parseStubLogLine(line string, loc *time.Location) (stubRequest, bool) {
	line = strings.TrimPrefix(line, "nomad-stub: ")
	f := strings.Fields(line)
	if len(f) != 6 || !strings.HasPrefix(f[3], "/") || strings.HasPrefix(f[3], "/_stub/") {
		return stubRequest{}, false
	}
	if f[2] == "" || strings.ToUpper(f[2]) != f[2] {
		return stubRequest{}, false
	}
	logged, err := time.ParseInLocation("2006/01/02 15:04:05.000000", f[0]+" "+f[1], loc)
	if err != nil {
		return stubRequest{}, false
	}
	took, err := time.ParseDuration(f[5])
	if err != nil {
		return stubRequest{}, false
	}
	return stubRequest{At: logged.Add(-took), Method: f[2], Path: f[3], Status: f[4]}, true
}

// parseStubLog reads every NOMAD request of a stand-in's log.
func parseStubLog(r io.Reader, loc *time.Location) ([]stubRequest, error) {
	var out []stubRequest
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		if req, ok := parseStubLogLine(sc.Text(), loc); ok {
			out = append(out, req)
		}
	}
	return out, sc.Err()
}

// vmRSS reads VmRSS (bytes) from the text of /proc/<pid>/status.
func vmRSS(status string) (int64, error) {
	for line := range strings.SplitSeq(status, "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, err
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no VmRSS line")
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on every Linux port Go
// supports.
const clockTicks = 100

// cpuTime reads the user plus system CPU time from the text of /proc/<pid>/stat. The command
// name (field 2) is in parentheses and may hold spaces, so fields are counted after its last ')'.
func cpuTime(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat line %q", stat)
	}
	var total int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat CPU time %q: %w", v, err)
		}
		total += n
	}
	return time.Duration(total) * time.Second / clockTicks, nil
}

// mib formats a byte count as MiB.
func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

// secs formats a duration in seconds with a precision that suits it.
func secs(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}

// goMemLimit is the Go memory limit a manager told of a container limit of limit bytes sets itself.
func goMemLimit(limit int64) string {
	if limit <= 0 {
		return "none"
	}
	return mib(0.9 * float64(limit))
}
