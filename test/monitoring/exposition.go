package monitoring

import (
	"bufio"
	"slices"
	"strings"
)

// ExposedNames returns, sorted and once each, the names of the samples in a Prometheus text
// exposition (a /metrics body): a histogram's appear as its _bucket, _sum and _count series, as
// PromQL selects them.
func ExposedNames(exposition string) []string {
	var names []string
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ \t"); i > 0 {
			names = append(names, line[:i])
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Missing returns the names of used that exposed lacks, sorted.
func Missing(used, exposed []string) []string {
	var missing []string
	for _, n := range used {
		if !slices.Contains(exposed, n) {
			missing = append(missing, n)
		}
	}
	slices.Sort(missing)
	return slices.Compact(missing)
}
