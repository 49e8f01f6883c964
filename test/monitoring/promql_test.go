package monitoring

import (
	"slices"
	"testing"
)

func TestMetricNames(t *testing.T) {
	tests := []struct {
		name string
		expr string
		want []string
	}{
		{"a bare metric", `up`, []string{"up"}},
		{"label values and names are not metrics", `foo_total{code_class=~"5xx|error",name!="bar_total"}`, []string{"foo_total"}},
		{"functions, aggregations and their label lists", `sum by (name, le) (rate(req_seconds_bucket[5m]))`, []string{"req_seconds_bucket"}},
		{"a quantile's number", `histogram_quantile(0.95, sum without (pod) (rate(x_bucket[$__rate_interval])))`, []string{"x_bucket"}},
		{"binary operators, matching and arithmetic", `(a < time()) and on (namespace, name) (b - time() < 3 * 86400)`, []string{"a", "b"}},
		{"group modifiers", `a * on (x) group_left (y, z) b`, []string{"a", "b"}},
		{"offset and unless", `(c unless c offset 1h) > 0 or increase(c[1h]) > 0`, []string{"c"}},
		{"keywords in any case, bool, scientific numbers", `x > bool 1e3 OR y == Inf`, []string{"x", "y"}},
		{"a subquery", `max_over_time(rate(z_total[5m])[1h:1m])`, []string{"z_total"}},
		{"Grafana variables", `foo{namespace=~"$namespace"} / ${divisor} + [[legacy]] + bar`, []string{"bar", "foo"}},
		{"a function with a space before its parenthesis", `sum (rate (q[5m]))`, []string{"q"}},
		{"recording-rule names with colons", `job:requests:rate5m`, []string{"job:requests:rate5m"}},
		{"each name once, sorted", `b + a + b`, []string{"a", "b"}},
		{"a string with quotes inside", `label_replace(m, "dst", "a \"q\" b", "src", "(.*)")`, []string{"m"}},
		{"a scalar only", `vector(0)`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MetricNames(tt.expr); !slices.Equal(got, tt.want) {
				t.Errorf("MetricNames(%q) = %q, want %q", tt.expr, got, tt.want)
			}
		})
	}
}

func TestExposedNames(t *testing.T) {
	exposition := `# HELP req_seconds How long.
# TYPE req_seconds histogram
req_seconds_bucket{le="0.1"} 1
req_seconds_bucket{le="+Inf"} 2
req_seconds_sum 0.3
req_seconds_count 2
# TYPE up gauge
up 1
ready{condition="True",reason="a b"} 1

`
	want := []string{"ready", "req_seconds_bucket", "req_seconds_count", "req_seconds_sum", "up"}
	if got := ExposedNames(exposition); !slices.Equal(got, want) {
		t.Errorf("ExposedNames = %q, want %q", got, want)
	}
}

func TestMissing(t *testing.T) {
	got := Missing([]string{"c", "a", "b", "c"}, []string{"a"})
	if want := []string{"b", "c"}; !slices.Equal(got, want) {
		t.Errorf("Missing = %q, want %q", got, want)
	}
	if got := Missing([]string{"a"}, []string{"a", "z"}); got != nil {
		t.Errorf("Missing = %q, want none", got)
	}
}
