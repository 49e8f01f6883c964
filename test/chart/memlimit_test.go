package chart

import (
	"path/filepath"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

// wantMemoryLimitEnv is how every shipped Deployment tells the manager its container's memory limit,
// of which the manager gives the Go runtime 90% (cmd/manager/memlimit.go).
var wantMemoryLimitEnv = map[string]any{
	"name": "CONTAINER_MEMORY_LIMIT",
	"valueFrom": map[string]any{"resourceFieldRef": map[string]any{
		"containerName": "manager", "resource": "limits.memory", "divisor": "1",
	}},
}

// managerEnv returns the manager container's env entry named name, or nil.
func managerEnv(t *testing.T, deploy *unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	if deploy == nil {
		t.Fatal("no Deployment")
	}
	containers, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	env, _, _ := unstructured.NestedSlice(containers[0].(map[string]any), "env")
	for _, e := range env {
		if e.(map[string]any)["name"] == name {
			return e.(map[string]any)
		}
	}
	return nil
}

func TestChartGivesTheManagerItsMemoryLimit(t *testing.T) {
	deployment := func(objs []*unstructured.Unstructured) *unstructured.Unstructured {
		return find(objs, "Deployment", releaseNamespace, releaseName+"-controller-manager")
	}
	t.Run("with the default limit", func(t *testing.T) {
		if got := managerEnv(t, deployment(render(t, nil)), "CONTAINER_MEMORY_LIMIT"); !reflect.DeepEqual(got, wantMemoryLimitEnv) {
			t.Errorf("env CONTAINER_MEMORY_LIMIT = %v; want %v", got, wantMemoryLimitEnv)
		}
	})
	t.Run("with another limit", func(t *testing.T) {
		if got := managerEnv(t, deployment(render(t, nil, "resources.limits.memory=1Gi")), "CONTAINER_MEMORY_LIMIT"); !reflect.DeepEqual(got, wantMemoryLimitEnv) {
			t.Errorf("env CONTAINER_MEMORY_LIMIT = %v; want %v", got, wantMemoryLimitEnv)
		}
	})
	// The downward API would give the node's memory: no limit to take a share of.
	t.Run("without a limit", func(t *testing.T) {
		if got := managerEnv(t, deployment(render(t, nil, "resources.limits.memory=null")), "CONTAINER_MEMORY_LIMIT"); got != nil {
			t.Errorf("env CONTAINER_MEMORY_LIMIT = %v without a memory limit; want none", got)
		}
	})
}

func TestKustomizeGivesTheManagerItsMemoryLimit(t *testing.T) {
	for _, overlay := range []string{"default", "namespaced"} {
		t.Run(overlay, func(t *testing.T) {
			objs, err := harness.Kustomize(filepath.Join(repoRoot(t), "config", overlay))
			if err != nil {
				t.Fatal(err)
			}
			deploy := find(objs, "Deployment", "nomad-operator-system", "nomad-token-operator-controller-manager")
			if got := managerEnv(t, deploy, "CONTAINER_MEMORY_LIMIT"); !reflect.DeepEqual(got, wantMemoryLimitEnv) {
				t.Errorf("config/%s: env CONTAINER_MEMORY_LIMIT = %v; want %v", overlay, got, wantMemoryLimitEnv)
			}
		})
	}
}
