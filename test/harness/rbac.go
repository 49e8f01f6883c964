package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// kustomizeNamespace is the placeholder namespace config/rbac and config/manager use; config/default
// replaces it.
const kustomizeNamespace = "system"

// InstallRBAC applies config/rbac (the generated manager-role, its binding, the leader-election
// Role and the ServiceAccount) with the placeholder namespace "system" replaced by namespace, and
// writes to kubeconfigPath a kubeconfig that authenticates as that ServiceAccount. A manager using
// it has exactly the permissions a deployed one has, so a missing RBAC marker fails the test.
func (cp *ControlPlane) InstallRBAC(ctx context.Context, repoRoot, namespace, kubeconfigPath string) error {
	objs, err := LoadKustomization(filepath.Join(repoRoot, "config", "rbac"))
	if err != nil {
		return err
	}
	sa := ""
	for _, u := range objs {
		if u.GetNamespace() == kustomizeNamespace {
			u.SetNamespace(namespace)
		}
		if u.GetKind() == "ServiceAccount" {
			sa = u.GetName()
		}
		subjects, _, err := unstructured.NestedSlice(u.Object, "subjects")
		if err != nil {
			return err
		}
		for _, s := range subjects {
			if m, ok := s.(map[string]any); ok && m["namespace"] == kustomizeNamespace {
				m["namespace"] = namespace
			}
		}
		if subjects != nil {
			if err := unstructured.SetNestedSlice(u.Object, subjects, "subjects"); err != nil {
				return err
			}
		}
	}
	if sa == "" {
		return errors.New("config/rbac has no ServiceAccount")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := cp.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if err := Apply(ctx, cp.Client, objs); err != nil {
		return err
	}
	return cp.writeServiceAccountKubeconfig(namespace, sa, kubeconfigPath)
}

// writeServiceAccountKubeconfig writes to path a kubeconfig that authenticates as ServiceAccount
// namespace/name. The API server takes a client certificate's CN as the user name and its O as the
// groups, and RBAC matches a ServiceAccount subject by exactly this user name.
func (cp *ControlPlane) writeServiceAccountKubeconfig(namespace, name, path string) error {
	user, err := cp.Env.AddUser(envtest.User{
		Name:   fmt.Sprintf("system:serviceaccount:%s:%s", namespace, name),
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}, nil)
	if err != nil {
		return err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, kc, 0o600)
}
