package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// ControlPlaneOptions says where things are.
type ControlPlaneOptions struct {
	// RepoRoot holds config/crd/bases, installed at start.
	RepoRoot string
	// AssetsDir holds etcd and kube-apiserver; default $KUBEBUILDER_ASSETS.
	AssetsDir string
	// KubeconfigPath receives a kubeconfig of a system:masters user, for the manager and kubectl.
	KubeconfigPath string
}

// ControlPlane is a running kube-apiserver and etcd with the CRDs installed.
type ControlPlane struct {
	Env *envtest.Environment
	// Config and Client act as an admin (system:masters) user.
	Config *rest.Config
	Client client.Client
	Scheme *runtime.Scheme
	// Kubeconfig is the path of the kubeconfig file written for that user.
	Kubeconfig string

	guarded []int
}

// NewScheme knows the built-in kinds and this project's.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// StartControlPlane starts etcd and kube-apiserver, installs the CRDs and writes the kubeconfig.
func StartControlPlane(o ControlPlaneOptions) (cp *ControlPlane, err error) {
	if o.AssetsDir == "" {
		o.AssetsDir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if o.AssetsDir == "" {
		return nil, errors.New("no envtest assets: set KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh)")
	}
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: o.AssetsDir,
		CRDDirectoryPaths:     []string{filepath.Join(o.RepoRoot, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	if _, err := env.Start(); err != nil {
		// A half-started plane may have left etcd running; Stop tolerates what never started.
		_ = env.Stop()
		return nil, fmt.Errorf("start the control plane: %w", err)
	}
	cp = &ControlPlane{Env: env, Scheme: scheme, Kubeconfig: o.KubeconfigPath}
	defer func() {
		if err != nil {
			_ = cp.Stop()
		}
	}()
	// envtest starts etcd and kube-apiserver in their own groups but does not say their pids.
	if cp.guarded, err = childGroupLeaders("etcd", "kube-apiserver"); err != nil {
		return cp, err
	}
	for _, pid := range cp.guarded {
		if err := guard(pid); err != nil {
			return cp, err
		}
	}
	admin, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return cp, fmt.Errorf("add the admin user: %w", err)
	}
	cp.Config = admin.Config()
	if cp.Client, err = client.New(cp.Config, client.Options{Scheme: scheme}); err != nil {
		return cp, err
	}
	if o.KubeconfigPath != "" {
		kc, err := admin.KubeConfig()
		if err != nil {
			return cp, err
		}
		if err := os.MkdirAll(filepath.Dir(o.KubeconfigPath), 0o755); err != nil {
			return cp, err
		}
		if err := os.WriteFile(o.KubeconfigPath, kc, 0o600); err != nil {
			return cp, err
		}
	}
	return cp, nil
}

// Stop stops kube-apiserver and etcd.
func (cp *ControlPlane) Stop() error {
	err := cp.Env.Stop()
	for _, pid := range cp.guarded {
		unguard(pid)
	}
	cp.guarded = nil
	return err
}
