package monitoring

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// repoFile reads a file of the repository.
func repoFile(t *testing.T, path string) []byte {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The alerts tell whoever is paged what to do: each has a severity, a for:, and a summary and a
// description. (promtool checks the PromQL and runs the alerts' unit tests: make test-rules.)
func TestRulesFileIsComplete(t *testing.T) {
	pr, err := ParsePrometheusRule(repoFile(t, "config/prometheus/rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Alert == "" {
				t.Errorf("group %s: a rule without alert: %q (recording rules are not expected here)", g.Name, r.Expr)
				continue
			}
			if d, err := time.ParseDuration(r.For); err != nil || d <= 0 {
				t.Errorf("%s: for %q, want a positive duration", r.Alert, r.For)
			}
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description"} {
				if len(strings.Fields(r.Annotations[a])) < 8 {
					t.Errorf("%s: annotation %s is missing or too short to say what to do: %q", r.Alert, a, r.Annotations[a])
				}
			}
			if len(MetricNames(r.Expr)) == 0 {
				t.Errorf("%s: expr %q selects no metric", r.Alert, r.Expr)
			}
		}
	}
	// The alerts the issue asks for.
	for _, want := range []string{"NomadTokenRenewalOverdue", "NomadTokenNotReady", "NomadConnectionDown",
		"NomadConnectionNearPATLimit", "NomadTokenPATRevokeAbandoned", "NomadTokenRevokeStuck"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alert %s is missing", want)
		}
	}
	// Every alert has a unit test in rules_test.yaml.
	tests := string(repoFile(t, "config/prometheus/rules_test.yaml"))
	for _, a := range alerts {
		if !strings.Contains(tests, "alertname: "+a+"\n") {
			t.Errorf("alert %s has no promtool test in config/prometheus/rules_test.yaml", a)
		}
	}
}

func TestRuleFileIsTheGroups(t *testing.T) {
	pr, err := ParsePrometheusRule(repoFile(t, "config/prometheus/rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := pr.RuleFile()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if !strings.HasPrefix(s, "groups:\n") || strings.Contains(s, "apiVersion") || strings.Contains(s, "PrometheusRule") {
		t.Errorf("RuleFile is not a plain rule file:\n%s", s)
	}
	if _, err := ParsePrometheusRule([]byte("apiVersion: v1\nkind: ConfigMap\n")); err == nil {
		t.Error("a ConfigMap was taken for a PrometheusRule")
	}
}

func TestDashboardParses(t *testing.T) {
	exprs, err := DashboardExpressions(repoFile(t, "config/grafana/nomad-token-operator.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(exprs) < 15 {
		t.Fatalf("only %d queries found in the dashboard", len(exprs))
	}
	for _, e := range exprs {
		if len(MetricNames(e)) == 0 {
			t.Errorf("dashboard query %q selects no metric", e)
		}
	}
	dash := string(repoFile(t, "config/grafana/nomad-token-operator.json"))
	if !strings.Contains(dash, `"uid": "${datasource}"`) || !strings.Contains(dash, `"type": "datasource"`) {
		t.Error("the dashboard's panels do not use a datasource variable")
	}
}

func TestDashboardExpressions(t *testing.T) {
	dash := `{"panels": [
	  {"type": "row", "panels": [{"targets": [{"expr": "a"}]}]},
	  {"targets": [{"expr": "b"}, {"expr": ""}, {"refId": "C"}]}],
	 "templating": {"list": [
	  {"type": "datasource", "query": "prometheus"},
	  {"type": "query", "name": "ns", "query": {"query": "label_values(c{x=\"y\"}, namespace)"}},
	  {"type": "query", "name": "old", "query": "label_values(d, name)"}]}}`
	got, err := DashboardExpressions([]byte(dash))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", `c{x="y"}`, "d"}; !slices.Equal(got, want) {
		t.Errorf("DashboardExpressions = %q, want %q", got, want)
	}
	if _, err := DashboardExpressions([]byte(`{"panels": [], "templating": {"list": [{"type": "query", "query": "query_result(up)"}]}}`)); err == nil {
		t.Error("a variable query it cannot read was accepted")
	}
	if _, err := DashboardExpressions([]byte(`{"title": "x"}`)); err == nil {
		t.Error("JSON without panels was taken for a dashboard")
	}
}
