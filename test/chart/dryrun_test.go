package chart

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

const fieldManager = "chart-test"

// warnings collects the API server's Warning headers (Pod Security, deprecations, unknown fields).
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

// restrictedNamespace is a namespace where Pod Security "restricted" is enforced, warned about and
// audited.
func restrictedNamespace(name string) *corev1.Namespace {
	levels := map[string]string{}
	for _, mode := range []string{"enforce", "warn", "audit"} {
		levels["pod-security.kubernetes.io/"+mode] = "restricted"
		levels["pod-security.kubernetes.io/"+mode+"-version"] = "latest"
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: levels}}
}

// Every value set renders objects that a real kube-apiserver accepts in a dry run, in namespaces
// that enforce Pod Security "restricted", with no error and no warning at all.
func TestChartAppliesInRestrictedNamespaces(t *testing.T) {
	helmBin(t)
	cp, err := harness.StartControlPlane(harness.ControlPlaneOptions{RepoRoot: repoRoot(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	// The chart's own CRDs for real (dry-runs of custom resources need them), and minimal
	// stand-ins for the Prometheus Operator's, which only check kind and group.
	crds := readObjects(t, append(globOrFail(t, filepath.Join(chartDir(t), "crds", "*.yaml")),
		filepath.Join("testdata", "monitoring-crds.yaml"))...)
	for _, crd := range crds {
		if err := cp.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(crd), client.ForceOwnership, client.FieldOwner(fieldManager)); err != nil {
			t.Fatalf("apply CRD %s: %v", crd.GetName(), err)
		}
	}
	waitEstablished(ctx, t, cp.Client, crds)
	for _, ns := range []string{releaseNamespace, "team-a", "team-b"} {
		if err := cp.Client.Create(ctx, restrictedNamespace(ns)); err != nil {
			t.Fatal(err)
		}
	}

	warned := &warnings{}
	cfg := rest.CopyConfig(cp.Config)
	cfg.WarningHandlerWithContext = warned
	c, err := client.New(cfg, client.Options{Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	dryRun := func(u *unstructured.Unstructured) error {
		return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.DryRunAll, client.ForceOwnership, client.FieldOwner(fieldManager))
	}

	// First that the API server does check Pod Security here: else "no warning" proves nothing.
	t.Run("a privileged pod is refused and a privileged Deployment warned about", func(t *testing.T) {
		objs := render(t, nil)
		deploy := find(objs, "Deployment", releaseNamespace, releaseName+"-controller-manager")
		if deploy == nil {
			t.Fatal("no Deployment rendered")
		}
		deploy = deploy.DeepCopy()
		containers, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
		containers[0].(map[string]any)["securityContext"] = map[string]any{"privileged": true}
		if err := unstructured.SetNestedSlice(deploy.Object, containers, "spec", "template", "spec", "containers"); err != nil {
			t.Fatal(err)
		}
		warned.take()
		if err := dryRun(deploy); err != nil {
			t.Fatalf("dry-run of the privileged Deployment: %v", err)
		}
		if w := warned.take(); !containsAny(w, "violate PodSecurity") {
			t.Errorf("a privileged Deployment in a restricted namespace got no Pod Security warning (warnings: %q)", w)
		}
		podSpec, _, _ := unstructured.NestedMap(deploy.Object, "spec", "template", "spec")
		pod := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": "privileged", "namespace": releaseNamespace},
			"spec":     podSpec,
		}}
		if err := dryRun(pod); err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
			t.Errorf("a privileged pod in a restricted namespace was not refused by Pod Security: %v", err)
		}
		warned.take()
	})

	for _, tc := range []struct {
		name   string
		values []string
		// Kinds the value set must render, beyond the Deployment.
		kinds []string
	}{
		{"default values", nil, []string{"ServiceAccount", "Service", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}},
		{"namespaced mode", []string{"values-namespaced.yaml"}, []string{"Role", "RoleBinding"}},
		{"ServiceMonitor and PrometheusRule", []string{"values-monitoring.yaml"}, []string{"ServiceMonitor", "PrometheusRule"}},
		{"two replicas, PDB and manager flags", []string{"values-ha.yaml"}, []string{"PodDisruptionBudget"}},
		{"egress NetworkPolicy", []string{"values-networkpolicy.yaml"}, []string{"NetworkPolicy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, tc.values)
			for _, kind := range append(tc.kinds, "Deployment") {
				if !hasKind(objs, kind) {
					t.Errorf("%s rendered no %s", tc.name, kind)
				}
			}
			warned.take()
			for _, u := range objs {
				if err := dryRun(u); err != nil {
					t.Errorf("%s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
				}
				if w := warned.take(); len(w) > 0 {
					t.Errorf("%s %s/%s: warnings %q", u.GetKind(), u.GetNamespace(), u.GetName(), w)
				}
			}
		})
	}
}

func globOrFail(t *testing.T, pattern string) []string {
	t.Helper()
	paths, err := filepath.Glob(pattern)
	if err != nil || len(paths) == 0 {
		t.Fatalf("nothing matches %s (%v)", pattern, err)
	}
	return paths
}

func hasKind(objs []*unstructured.Unstructured, kind string) bool {
	for _, u := range objs {
		if u.GetKind() == kind {
			return true
		}
	}
	return false
}

func containsAny(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// waitEstablished waits until the API server serves every CRD (no time limit of its own: the
// test's -timeout is the limit).
func waitEstablished(ctx context.Context, t *testing.T, c client.Client, crds []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range crds {
		err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			crd := &unstructured.Unstructured{}
			crd.SetGroupVersionKind(u.GroupVersionKind())
			if err := c.Get(ctx, client.ObjectKey{Name: u.GetName()}, crd); err != nil {
				return false, err
			}
			conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, cond := range conditions {
				m, _ := cond.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("CRD %s: %v", u.GetName(), err)
		}
	}
}
