package harness

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// watchNamespacesFlag is the manager flag that confines it (cmd/manager).
const watchNamespacesFlag = "--watch-namespaces="

// NamespacedInstall is config/namespaced as kustomize builds it: the operator confined to the
// namespaces of its --watch-namespaces, with a Role in each.
type NamespacedInstall struct {
	// Objects is the whole output, in kustomize's order.
	Objects []*unstructured.Unstructured
	// ManagerArgs are the args of the Deployment's manager container.
	ManagerArgs []string
	// WatchNamespaces is ManagerArgs' --watch-namespaces, split at commas.
	WatchNamespaces []string
	// ServiceAccount is the Deployment's identity.
	ServiceAccount types.NamespacedName
}

// LoadNamespacedInstall builds repoRoot/config/namespaced and finds the manager's Deployment in it.
func LoadNamespacedInstall(repoRoot string) (*NamespacedInstall, error) {
	objs, err := Kustomize(filepath.Join(repoRoot, "config", "namespaced"))
	if err != nil {
		return nil, err
	}
	in := &NamespacedInstall{Objects: objs}
	var deployments int
	for _, u := range objs {
		if u.GetKind() != "Deployment" {
			continue
		}
		deployments++
		pod, _, err := unstructured.NestedMap(u.Object, "spec", "template", "spec")
		if err != nil {
			return nil, err
		}
		sa, _ := pod["serviceAccountName"].(string)
		in.ServiceAccount = types.NamespacedName{Namespace: u.GetNamespace(), Name: sa}
		containers, _ := pod["containers"].([]any)
		for _, c := range containers {
			if m, ok := c.(map[string]any); ok && m["name"] == "manager" {
				args, _ := m["args"].([]any)
				for _, a := range args {
					s, _ := a.(string)
					in.ManagerArgs = append(in.ManagerArgs, s)
				}
			}
		}
	}
	if deployments != 1 || in.ServiceAccount.Name == "" {
		return nil, fmt.Errorf("config/namespaced: want one Deployment with a serviceAccountName, found %d", deployments)
	}
	for _, a := range in.ManagerArgs {
		if v, ok := strings.CutPrefix(a, watchNamespacesFlag); ok {
			in.WatchNamespaces = strings.Split(v, ",")
		}
	}
	if len(in.WatchNamespaces) == 0 {
		return nil, errors.New("config/namespaced: the manager has no " + watchNamespacesFlag)
	}
	return in, nil
}

// RenameNamespaces moves the install from the example namespaces to others, as a user does who
// follows config/namespaced/kustomization.yaml: the objects in (and the Namespace objects named) a
// key of rename go to its value, and so do RoleBinding subjects and --watch-namespaces.
func (in *NamespacedInstall) RenameNamespaces(rename map[string]string) error {
	to := func(ns string) string {
		if n, ok := rename[ns]; ok {
			return n
		}
		return ns
	}
	for _, u := range in.Objects {
		u.SetNamespace(to(u.GetNamespace()))
		if u.GetKind() == "Namespace" {
			u.SetName(to(u.GetName()))
		}
		subjects, found, err := unstructured.NestedSlice(u.Object, "subjects")
		if err != nil {
			return err
		}
		for _, s := range subjects {
			if m, ok := s.(map[string]any); ok {
				if ns, ok := m["namespace"].(string); ok {
					m["namespace"] = to(ns)
				}
			}
		}
		if found {
			if err := unstructured.SetNestedSlice(u.Object, subjects, "subjects"); err != nil {
				return err
			}
		}
	}
	for i, ns := range in.WatchNamespaces {
		in.WatchNamespaces[i] = to(ns)
	}
	for i, a := range in.ManagerArgs {
		if strings.HasPrefix(a, watchNamespacesFlag) {
			in.ManagerArgs[i] = watchNamespacesFlag + strings.Join(in.WatchNamespaces, ",")
		}
	}
	in.ServiceAccount.Namespace = to(in.ServiceAccount.Namespace)
	return nil
}

// ProcessArgs are ManagerArgs for a manager run by StartManager, outside a pod: without the
// metrics and probe addresses, which StartManager chooses, and with the leader-election lease in
// the ServiceAccount's namespace, where a pod would have it.
func (in *NamespacedInstall) ProcessArgs() []string {
	args := slices.DeleteFunc(slices.Clone(in.ManagerArgs), func(a string) bool {
		return strings.HasPrefix(a, "--metrics-bind-address") || strings.HasPrefix(a, "--health-probe-bind-address")
	})
	if slices.Contains(args, "--leader-elect") {
		args = append(args, "--leader-election-namespace="+in.ServiceAccount.Namespace)
	}
	return args
}

// InstallNamespaced applies the install's RBAC, ServiceAccount and Namespaces (not the CRDs, which
// the control plane has, nor the Deployment: the test runs the binary), creating the watched
// namespaces first, and writes to kubeconfigPath a kubeconfig that authenticates as the manager's
// ServiceAccount. A manager using it has exactly a confined deployed manager's permissions.
func (cp *ControlPlane) InstallNamespaced(ctx context.Context, in *NamespacedInstall, kubeconfigPath string) error {
	for _, name := range in.WatchNamespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := cp.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	var objs []*unstructured.Unstructured
	for _, u := range in.Objects {
		if k := u.GetKind(); k != "CustomResourceDefinition" && k != "Deployment" {
			objs = append(objs, u)
		}
	}
	if err := Apply(ctx, cp.Client, objs); err != nil {
		return err
	}
	return cp.writeServiceAccountKubeconfig(in.ServiceAccount.Namespace, in.ServiceAccount.Name, kubeconfigPath)
}
