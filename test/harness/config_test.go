package harness

// Checks of the install manifests that need no cluster. `make verify` runs them (TestConfig*), so
// a regenerated role.yaml or an edited overlay that breaks an install mode fails there.

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/yaml"
)

// Names of the generated ClusterRoles (config/rbac/kustomization.yaml).
const (
	managerRole        = "manager-role"
	managerClusterRole = "manager-cluster-role"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// generatedRoles reads the ClusterRoles of config/rbac/role.yaml by name.
func generatedRoles(t *testing.T) map[string]rbacv1.ClusterRole {
	t.Helper()
	objs, err := LoadKustomization(filepath.Join(repoRoot(t), "config", "rbac"))
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]rbacv1.ClusterRole{}
	for _, u := range objs {
		if u.GetKind() == "ClusterRole" && strings.HasPrefix(u.GetName(), "manager-") {
			roles[u.GetName()] = convert[rbacv1.ClusterRole](t, u)
		}
	}
	if _, ok := roles[managerRole]; !ok {
		t.Fatalf("config/rbac has no ClusterRole %s", managerRole)
	}
	return roles
}

func convert[T any](t *testing.T, u *unstructured.Unstructured) T {
	t.Helper()
	var out T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &out); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

func TestConfigNamespacedGrantsManagerRoleInEachWatchedNamespaceOnly(t *testing.T) {
	want := generatedRoles(t)[managerRole].Rules
	in, err := LoadNamespacedInstall(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	sa := in.ServiceAccount
	roles := map[string][]string{}     // namespace -> Role names
	var granted []string               // namespaces where the manager's Role is bound to it
	inWatched := map[string][]string{} // watched namespace -> every object in it
	for _, u := range in.Objects {
		what := u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
		if slices.Contains(in.WatchNamespaces, u.GetNamespace()) {
			inWatched[u.GetNamespace()] = append(inWatched[u.GetNamespace()], u.GetKind())
		}
		switch u.GetKind() {
		case "ClusterRoleBinding":
			t.Errorf("%s: the confined manager holds no cluster-wide grant", what)
		case "ClusterRole":
			// Only the roles for people, which reach them through edit/admin/view.
			aggregated := false
			for k := range u.GetLabels() {
				aggregated = aggregated || strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-")
			}
			if !aggregated || strings.Contains(u.GetName(), "manager-") {
				t.Errorf("%s: not a user role aggregated into the built-in ones", what)
			}
		case "Role":
			roles[u.GetNamespace()] = append(roles[u.GetNamespace()], u.GetName())
			if u.GetNamespace() == sa.Namespace {
				if !strings.HasSuffix(u.GetName(), "leader-election-role") {
					t.Errorf("%s: the manager's own namespace has only its leader-election Role", what)
				}
				continue
			}
			if got := convert[rbacv1.Role](t, u).Rules; !reflect.DeepEqual(got, want) {
				t.Errorf("%s has rules\n%v\nwant those of the generated %s\n%v", what, got, managerRole, want)
			}
		case "RoleBinding":
			rb := convert[rbacv1.RoleBinding](t, u)
			wantSubject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: sa.Namespace}}
			if !reflect.DeepEqual(rb.Subjects, wantSubject) || rb.RoleRef.Kind != "Role" {
				t.Errorf("%s binds %s %s to %v; want a Role bound to the manager's ServiceAccount %s", what, rb.RoleRef.Kind, rb.RoleRef.Name, rb.Subjects, sa)
			}
			if u.GetNamespace() != sa.Namespace {
				granted = append(granted, u.GetNamespace())
			}
		}
	}
	for ns, kinds := range inWatched {
		if slices.Sort(kinds); !slices.Equal(kinds, []string{"Role", "RoleBinding"}) {
			t.Errorf("watched namespace %s gets %v, want only the manager's Role and RoleBinding"+
				" (is something in config/rbac written by hand without app.kubernetes.io/managed-by: kustomize?)", ns, kinds)
		}
	}
	for ns, names := range roles {
		if len(names) != 1 {
			t.Errorf("namespace %s has Roles %v, want one", ns, names)
		}
	}
	slices.Sort(granted)
	watched := slices.Sorted(slices.Values(in.WatchNamespaces))
	if !slices.Equal(granted, watched) {
		t.Errorf("Roles bound in %v but --watch-namespaces=%s: list the same namespaces in both (config/namespaced/kustomization.yaml)",
			granted, strings.Join(in.WatchNamespaces, ","))
	}
	if len(roles) != len(watched)+1 {
		t.Errorf("Roles in namespaces %v: want one per watched namespace %v and the leader-election one", slices.Sorted(mapKeys(roles)), watched)
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// scopes says whether a group/resource is namespaced: the project's own from config/crd/bases,
// the built-in ones from client-go's scheme (kind) and kustomize's copy of the Kubernetes OpenAPI
// document (scope). The e2e suite checks the same against a real API server's discovery.
func scopes(t *testing.T) func(group, resource string) (namespaced, known bool) {
	t.Helper()
	crds := map[schema.GroupResource]bool{}
	dir := filepath.Join(repoRoot(t), "config", "crd", "bases")
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(b, &crd); err != nil {
			t.Fatalf("%s: %v", f.Name(), err)
		}
		crds[schema.GroupResource{Group: crd.Spec.Group, Resource: crd.Spec.Names.Plural}] = crd.Spec.Scope == apiextensionsv1.NamespaceScoped
	}
	kinds := map[schema.GroupResource][]schema.GroupVersionKind{} // every version of it
	for gvk := range clientgoscheme.Scheme.AllKnownTypes() {
		if gvk.Version == runtime.APIVersionInternal || strings.HasSuffix(gvk.Kind, "List") {
			continue
		}
		plural, _ := meta.UnsafeGuessKindToResource(gvk)
		kinds[plural.GroupResource()] = append(kinds[plural.GroupResource()], gvk)
	}
	return func(group, resource string) (bool, bool) {
		gr := schema.GroupResource{Group: group, Resource: strings.SplitN(resource, "/", 2)[0]}
		if namespaced, ok := crds[gr]; ok {
			return namespaced, true
		}
		for _, gvk := range kinds[gr] { // the document may lack old versions
			if namespaced, ok := openapi.IsNamespaceScoped(kyaml.TypeMeta{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind}); ok {
				return namespaced, true
			}
		}
		return false, false
	}
}

func TestConfigManagerRolesMatchTheirScope(t *testing.T) {
	scope := scopes(t)
	for name, role := range generatedRoles(t) {
		wantNamespaced := name == managerRole
		if !wantNamespaced && name != managerClusterRole {
			t.Errorf("generated ClusterRole %s: markers name %s (namespaced resources) or %s (cluster-scoped)", name, managerRole, managerClusterRole)
			continue
		}
		for _, rule := range role.Rules {
			for _, g := range rule.APIGroups {
				for _, r := range rule.Resources {
					namespaced, known := scope(g, r)
					switch {
					case !known:
						t.Errorf("%s: resource %q of group %q is unknown here; teach scopes() its scope", name, r, g)
					case namespaced != wantNamespaced && wantNamespaced:
						t.Errorf("%s grants the cluster-scoped %s: its marker needs roleName=%s, or the namespaced install (a Role per namespace) cannot grant it",
							name, schema.GroupResource{Group: g, Resource: r}, managerClusterRole)
					case namespaced != wantNamespaced:
						t.Errorf("%s grants the namespaced %s: its marker belongs in %s (no roleName), or the namespaced install lacks it",
							name, schema.GroupResource{Group: g, Resource: r}, managerRole)
					}
				}
			}
		}
	}
}

func TestConfigDefaultBindsTheManagerClusterWide(t *testing.T) {
	objs, err := Kustomize(filepath.Join(repoRoot(t), "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	bound := map[string]bool{}
	aggregated := map[string]bool{}
	for _, u := range objs {
		switch u.GetKind() {
		case "ClusterRoleBinding":
			crb := convert[rbacv1.ClusterRoleBinding](t, u)
			bound[crb.RoleRef.Name] = true
		case "ClusterRole":
			for k := range u.GetLabels() {
				if strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-") {
					aggregated[u.GetName()+" "+strings.TrimPrefix(k, "rbac.authorization.k8s.io/aggregate-to-")] = true
				}
			}
		case "Deployment":
			if strings.Contains(strings.Join(convertArgs(t, u), " "), watchNamespacesFlag) {
				t.Errorf("config/default confines the manager with %s", watchNamespacesFlag)
			}
		}
	}
	for name := range generatedRoles(t) {
		if !bound["nomad-token-operator-"+name] {
			t.Errorf("config/default binds no ClusterRole %s (bound: %v)", name, bound)
		}
	}
	for _, want := range []string{
		"nomad-token-operator-nomadtoken-editor edit", "nomad-token-operator-nomadtoken-editor admin",
		"nomad-token-operator-nomadtoken-viewer view", "nomad-token-operator-nomadtoken-viewer edit", "nomad-token-operator-nomadtoken-viewer admin",
	} {
		if !aggregated[want] {
			t.Errorf("config/default: %s is not aggregated to %s", strings.Fields(want)[0], strings.Fields(want)[1])
		}
	}
}

func convertArgs(t *testing.T, u *unstructured.Unstructured) []string {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	var args []string
	for _, c := range containers {
		as, _, _ := unstructured.NestedStringSlice(c.(map[string]any), "args")
		args = append(args, as...)
	}
	return args
}
