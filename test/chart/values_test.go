package chart

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// values.schema.json and the templates' own checks refuse values that would install something
// broken, and say which value is wrong.
func TestChartRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{"replicaCount=2", "leaderElection.enabled=false"}, "needs leaderElection.enabled"},
		{[]string{"unknownKey=1"}, "unknownKey"},
		{[]string{"manager.orphanSweep=sometimes"}, "orphanSweep"},
		{[]string{"manager.nomadPATLimit=0"}, "nomadPATLimit"},
		{[]string{"watchNamespaces[0]=Team_A"}, "watchNamespaces"},
		{[]string{"image.digest=latest"}, "digest"},
		{[]string{"metrics.enabled=false", "metrics.serviceMonitor.enabled=true"}, "needs metrics.enabled"},
		{[]string{"extraArgs[0]=leader-elect"}, "extraArgs"},
		{[]string{`manager.allowedNomadURLs[0]=a.example.org\,b.example.org`}, "allowedNomadURLs"},
	} {
		t.Run(strings.Join(tc.set, ","), func(t *testing.T) {
			_, err := helmTemplate(t, nil, tc.set...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want an error naming %q, got %v", tc.want, err)
			}
		})
	}
}

// What the values turn into: the manager's arguments and the image reference.
func TestChartManagerArguments(t *testing.T) {
	for _, tc := range []struct {
		name         string
		values       []string
		set          []string
		wantArgs     []string
		wantAbsent   []string
		wantImage    string
		wantReplicas int64
	}{
		{
			name: "defaults",
			wantArgs: []string{"--leader-elect=true", "--health-probe-bind-address=:8081",
				"--metrics-bind-address=:8443", "--metrics-secure=true", "--zap-log-level=info"},
			wantAbsent: []string{"--watch-namespaces", "--nomad-pat-limit", "--max-concurrent-reconciles", "--allowed-nomad-urls"},
			wantImage:  "ghcr.io/nomad-operator/nomad-token-operator:v0.1.0", wantReplicas: 1,
		},
		{
			name: "namespaced", values: []string{"values-namespaced.yaml"},
			wantArgs:  []string{"--watch-namespaces=team-a,team-b", "--leader-elect=true"},
			wantImage: "ghcr.io/nomad-operator/nomad-token-operator:v0.1.0", wantReplicas: 1,
		},
		{
			name: "every flag", values: []string{"values-ha.yaml"},
			wantArgs: []string{"--zap-log-level=debug", "--cluster-resource-namespace=nomad-credentials",
				"--nomad-pat-limit=200", "--pat-limit-warning-ratio=0.9", "--orphan-sweep=revoke",
				"--verification-interval=5m", "--max-concurrent-reconciles=8",
				"--connection-max-concurrent-reconciles=2", "--kube-api-qps=50", "--kube-api-burst=100",
				"--nomad-max-in-flight=4", "--nomad-request-timeout=30s", "--nomad-breaker-failures=10"},
			wantImage:    "ghcr.io/nomad-operator/nomad-token-operator@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			wantReplicas: 2,
		},
		{
			name: "large whole numbers from a values file", values: []string{"values-large-numbers.yaml"},
			wantArgs:  []string{"--nomad-pat-limit=1000000", "--pat-limit-warning-ratio=0.75"},
			wantImage: "ghcr.io/nomad-operator/nomad-token-operator:v0.1.0", wantReplicas: 1,
		},
		{
			name: "addresses namespaced connections may call", set: []string{"manager.allowedNomadURLs={https://nomad.example.org/nomad-oasis,nomad-lab.eu}"},
			wantArgs:  []string{"--allowed-nomad-urls=https://nomad.example.org/nomad-oasis,nomad-lab.eu"},
			wantImage: "ghcr.io/nomad-operator/nomad-token-operator:v0.1.0", wantReplicas: 1,
		},
		{
			name: "metrics off, tag", set: []string{"metrics.enabled=false", "image.tag=v9.9.9", "leaderElection.enabled=false"},
			wantArgs:   []string{"--metrics-bind-address=0", "--leader-elect=false"},
			wantAbsent: []string{"--metrics-secure"},
			wantImage:  "ghcr.io/nomad-operator/nomad-token-operator:v9.9.9", wantReplicas: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, tc.values, tc.set...)
			deploy := find(objs, "Deployment", releaseNamespace, releaseName+"-controller-manager")
			if deploy == nil {
				t.Fatal("no Deployment")
			}
			containers, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
			manager := containers[0].(map[string]any)
			args, _, _ := unstructured.NestedStringSlice(manager, "args")
			for _, a := range tc.wantArgs {
				if !slices.Contains(args, a) {
					t.Errorf("args %q lack %s", args, a)
				}
			}
			for _, a := range tc.wantAbsent {
				if slices.ContainsFunc(args, func(s string) bool { return strings.HasPrefix(s, a) }) {
					t.Errorf("args %q have %s", args, a)
				}
			}
			if manager["image"] != tc.wantImage {
				t.Errorf("image %v, want %s", manager["image"], tc.wantImage)
			}
			if r, _, _ := unstructured.NestedInt64(deploy.Object, "spec", "replicas"); r != tc.wantReplicas {
				t.Errorf("replicas %d, want %d", r, tc.wantReplicas)
			}
		})
	}
}

// Namespaced mode grants nothing cluster-wide for the manager's work: its only ClusterRoleBinding
// is the metrics authentication one, which grants no object.
func TestChartNamespacedModeHasNoClusterGrant(t *testing.T) {
	for _, u := range render(t, []string{"values-namespaced.yaml"}) {
		if u.GetKind() == "ClusterRoleBinding" && u.GetName() != releaseName+"-metrics-auth-rolebinding" {
			t.Errorf("namespaced mode binds ClusterRole %s", u.GetName())
		}
		if u.GetKind() == "ClusterRole" && strings.HasPrefix(u.GetName(), releaseName+"-manager-") {
			t.Errorf("namespaced mode renders ClusterRole %s", u.GetName())
		}
	}
}
