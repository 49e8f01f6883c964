package chart

// The chart must not drift from what `make manifests` generates and config/ installs: same CRDs,
// same RBAC in both install modes, same alerts. `make manifests` copies the generated files into
// the chart and `make verify` fails on uncommitted drift; these tests catch a chart edited by hand
// or a copy that was skipped.

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

func TestChartCRDsAreTheGeneratedOnes(t *testing.T) {
	generated, err := filepath.Glob(filepath.Join(repoRoot(t), "config", "crd", "bases", "*.yaml"))
	if err != nil || len(generated) == 0 {
		t.Fatalf("no generated CRDs in config/crd/bases (%v)", err)
	}
	inChart, err := filepath.Glob(filepath.Join(chartDir(t), "crds", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	base := func(paths []string) []string {
		var names []string
		for _, p := range paths {
			names = append(names, filepath.Base(p))
		}
		return names
	}
	if !slices.Equal(base(generated), base(inChart)) {
		t.Fatalf("chart crds/ holds %v, config/crd/bases %v: run `make manifests`", base(inChart), base(generated))
	}
	for _, g := range generated {
		assertSameFile(t, g, filepath.Join(chartDir(t), "crds", filepath.Base(g)))
	}
}

func TestChartManagerRulesAreTheGeneratedOnes(t *testing.T) {
	assertSameFile(t, filepath.Join(repoRoot(t), "config", "rbac", "role.yaml"),
		filepath.Join(chartDir(t), "files", "manager-rbac.yaml"))
}

func assertSameFile(t *testing.T, want, got string) {
	t.Helper()
	w, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	g, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w, g) {
		t.Errorf("%s differs from %s: run `make manifests`", got, want)
	}
}

// The metrics roles the chart always templates (agreed names); config/rbac may not carry them yet,
// and config/namespaced drops every ClusterRoleBinding, so the chart may have them beyond kustomize.
var chartOnlyRBAC = []string{"metrics-reader", "metrics-auth-role", "metrics-auth-rolebinding"}

// The RBAC objects the chart renders for the same release as config/default and config/namespaced
// are the ones kustomize builds from config/: same kinds, namespaces, names, rules, roleRefs and
// subjects. A `make manifests` that changes a generated rule changes config/rbac/role.yaml, and
// with it this comparison until the chart's copy follows.
func TestChartRBACEqualsKustomize(t *testing.T) {
	for _, tc := range []struct {
		name, overlay string
		values        []string
	}{
		{"cluster-wide", "default", nil},
		{"namespaced", "namespaced", []string{"values-namespaced.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kustomized, err := harness.Kustomize(filepath.Join(repoRoot(t), "config", tc.overlay))
			if err != nil {
				t.Fatal(err)
			}
			want := rbacObjects(t, kustomized)
			got := rbacObjects(t, render(t, tc.values))
			for key, w := range want {
				g, ok := got[key]
				if !ok {
					t.Errorf("the chart has no %s (config/%s has)", key, tc.overlay)
					continue
				}
				if !reflect.DeepEqual(w, g) {
					t.Errorf("%s differs from config/%s:\nchart: %+v\nkustomize: %+v", key, tc.overlay, g, w)
				}
			}
			for key := range got {
				if _, ok := want[key]; !ok && !slices.ContainsFunc(chartOnlyRBAC, func(s string) bool {
					return strings.HasSuffix(key, "/"+releaseName+"-"+s)
				}) {
					t.Errorf("the chart has %s, config/%s has not", key, tc.overlay)
				}
			}
		})
	}
}

// rbac is what an RBAC object grants, with every list sorted so that order does not count.
type rbac struct {
	Rules    []rbacv1.PolicyRule
	RoleRef  rbacv1.RoleRef
	Subjects []rbacv1.Subject
}

func rbacObjects(t *testing.T, objs []*unstructured.Unstructured) map[string]rbac {
	t.Helper()
	out := map[string]rbac{}
	for _, u := range objs {
		key := u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
		var r rbac
		switch u.GetKind() {
		case "ClusterRole", "Role":
			var role rbacv1.ClusterRole
			fromUnstructured(t, u, &role)
			r.Rules = normalizeRules(role.Rules)
		case "ClusterRoleBinding", "RoleBinding":
			var b rbacv1.ClusterRoleBinding
			fromUnstructured(t, u, &b)
			r.RoleRef, r.Subjects = b.RoleRef, b.Subjects
		default:
			continue
		}
		out[key] = r
	}
	return out
}

func fromUnstructured(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

func normalizeRules(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	out := make([]rbacv1.PolicyRule, 0, len(rules))
	for _, r := range rules {
		r = *r.DeepCopy()
		for _, l := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames, r.NonResourceURLs} {
			slices.Sort(l)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b rbacv1.PolicyRule) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// The chart's PrometheusRule carries files/prometheus-rules.yaml, a copy of the spec of
// config/prometheus/rules.yaml.
func TestChartAlertsAreConfigPrometheusRules(t *testing.T) {
	path := filepath.Join(repoRoot(t), "config", "prometheus", "rules.yaml")
	if _, err := os.Stat(path); os.IsNotExist(err) {
		t.Skip("config/prometheus/rules.yaml does not exist yet: nothing to compare the chart's alerts with")
	}
	cfg := readObjects(t, path)
	if len(cfg) != 1 || cfg[0].GetKind() != "PrometheusRule" {
		t.Fatalf("config/prometheus/rules.yaml: want one PrometheusRule, got %d objects", len(cfg))
	}
	b, err := os.ReadFile(filepath.Join(chartDir(t), "files", "prometheus-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	copied, err := decode(b)
	if err != nil || len(copied) != 1 {
		t.Fatalf("files/prometheus-rules.yaml: %v", err)
	}
	if !reflect.DeepEqual(cfg[0].Object["spec"], copied[0].Object) {
		t.Error("charts/nomad-token-operator/files/prometheus-rules.yaml is not the spec of config/prometheus/rules.yaml: copy it")
	}
}

// The PrometheusRule carries files/prometheus-rules.yaml unchanged: Helm does not template it, so
// Prometheus's own {{ $labels.x }} in the alerts survive.
func TestChartPrometheusRuleCarriesTheRulesFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir(t), "files", "prometheus-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	copied, err := decode(b)
	if err != nil || len(copied) != 1 || copied[0].Object["groups"] == nil {
		t.Fatalf("files/prometheus-rules.yaml holds no rule groups (%v)", err)
	}
	rendered := find(render(t, []string{"values-monitoring.yaml"}), "PrometheusRule", releaseNamespace, releaseName)
	if rendered == nil {
		t.Fatal("prometheusRule.enabled rendered no PrometheusRule")
	}
	if !reflect.DeepEqual(rendered.Object["spec"], copied[0].Object) {
		t.Errorf("the PrometheusRule's spec is not files/prometheus-rules.yaml:\n%v", rendered.Object["spec"])
	}
	if !strings.Contains(string(b), "{{ $labels.") {
		t.Error("the rules name no $labels: this test would not notice Helm templating them")
	}
}
