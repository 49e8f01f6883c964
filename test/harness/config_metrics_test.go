package harness

import (
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

func kustomized(t *testing.T, dir ...string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := Kustomize(filepath.Join(append([]string{repoRoot(t), "config"}, dir...)...))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// The cluster-wide install serves metrics as agreed: HTTPS on 8443 behind the API server's
// authentication and authorization, a Service that selects the manager's pods, the manager allowed
// to review tokens and access, and metrics-reader for scrapers.
func TestConfigDefaultServesSecureMetrics(t *testing.T) {
	var svc *corev1.Service
	var podLabels map[string]string
	var args []string
	roles := map[string]rbacv1.ClusterRole{}
	bindings := map[string]rbacv1.ClusterRoleBinding{}
	for _, u := range kustomized(t, "default") {
		switch u.GetKind() {
		case "Service":
			if u.GetName() == "nomad-token-operator-metrics" {
				s := convert[corev1.Service](t, u)
				svc = &s
			}
		case "Deployment":
			args = convertArgs(t, u)
			podLabels, _, _ = unstructured.NestedStringMap(u.Object, "spec", "template", "metadata", "labels")
		case "ClusterRole":
			roles[u.GetName()] = convert[rbacv1.ClusterRole](t, u)
		case "ClusterRoleBinding":
			b := convert[rbacv1.ClusterRoleBinding](t, u)
			bindings[b.RoleRef.Name] = b
		}
	}
	for _, want := range []string{"--metrics-bind-address=:8443", "--metrics-secure=true"} {
		if !slices.Contains(args, want) {
			t.Errorf("manager args %v lack %s", args, want)
		}
	}
	if svc == nil {
		t.Fatal("config/default has no Service nomad-token-operator-metrics")
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "https" || svc.Spec.Ports[0].Port != 8443 {
		t.Errorf("metrics Service ports = %+v, want one named https on 8443", svc.Spec.Ports)
	}
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(podLabels)) {
		t.Errorf("metrics Service selector %v does not select the manager's pods %v", svc.Spec.Selector, podLabels)
	}
	reader := roles["nomad-token-operator-metrics-reader"]
	if len(reader.Rules) != 1 || !slices.Equal(reader.Rules[0].NonResourceURLs, []string{"/metrics"}) || !slices.Equal(reader.Rules[0].Verbs, []string{"get"}) {
		t.Errorf("metrics-reader rules = %+v, want get on /metrics", reader.Rules)
	}
	auth := roles["nomad-token-operator-metrics-auth-role"]
	granted := map[string]bool{}
	for _, r := range auth.Rules {
		for _, res := range r.Resources {
			if slices.Contains(r.Verbs, "create") {
				granted[res] = true
			}
		}
	}
	if !granted["tokenreviews"] || !granted["subjectaccessreviews"] {
		t.Errorf("metrics-auth-role rules = %+v, want create on tokenreviews and subjectaccessreviews", auth.Rules)
	}
	b, ok := bindings["nomad-token-operator-metrics-auth-role"]
	if !ok || len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != "nomad-token-operator-controller-manager" ||
		b.Subjects[0].Namespace != "nomad-operator-system" {
		t.Errorf("metrics-auth-role is not bound to the manager's ServiceAccount: %+v", b)
	}
}

// The namespaced install has no cluster-wide grant to review tokens, so its manager serves metrics
// over plain HTTP instead of refusing every scrape.
func TestConfigNamespacedServesPlainMetrics(t *testing.T) {
	for _, u := range kustomized(t, "namespaced") {
		if u.GetKind() != "Deployment" {
			continue
		}
		args := convertArgs(t, u)
		if !slices.Contains(args, "--metrics-secure=false") || slices.Contains(args, "--metrics-secure=true") {
			t.Errorf("namespaced manager args %v: want --metrics-secure=false only", args)
		}
	}
}
