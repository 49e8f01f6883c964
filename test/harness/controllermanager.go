package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DefaultControllers are the kube-controller-manager controllers the e2e suite runs: namespace
// deletion, ownerReference garbage collection, and the aggregation of ClusterRoles into the
// built-in edit/admin/view (config/rbac's user roles), which a cluster has and envtest lacks.
var DefaultControllers = []string{"namespace", "garbagecollector", "clusterrole-aggregation"}

// ControllerManagerOptions says how to run kube-controller-manager against a test control plane.
type ControllerManagerOptions struct {
	// Bin is the kube-controller-manager binary; default <AssetsDir>/kube-controller-manager.
	Bin string
	// AssetsDir holds the binary (hack/envtest-assets.sh builds it); default $KUBEBUILDER_ASSETS.
	AssetsDir string
	// Kubeconfig is an admin kubeconfig (ControlPlaneOptions.KubeconfigPath). kube-controller-manager
	// uses it for the API, for delegated authentication and authorization, and the start-up check.
	Kubeconfig string
	// LogPath receives its stdout and stderr.
	LogPath string
	// Controllers to run; default DefaultControllers.
	Controllers []string
	// Args are further flags, e.g. --v=4.
	Args []string
	// StartTimeout bounds the start-up check (default 60 s).
	StartTimeout time.Duration
}

// ControllerManager is a running kube-controller-manager.
type ControllerManager struct {
	*Process
}

// StartControllerManager starts kube-controller-manager with the namespace and garbage-collector
// controllers (no leader election, no serving port) and waits until both demonstrably work: in a
// throwaway namespace, a ConfigMap owned by another ConfigMap is collected once its owner is deleted,
// and then the namespace itself is deleted to the end. There is no health endpoint without a serving
// port, and a log line saying a controller started does not mean its informers have synced; the
// check does. It takes about 7 s, 5 of them the namespace controller's fixed wait before it acts on
// a namespace deletion.
func StartControllerManager(ctx context.Context, o ControllerManagerOptions) (*ControllerManager, error) {
	if o.AssetsDir == "" {
		o.AssetsDir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if o.Bin == "" {
		if o.AssetsDir == "" {
			return nil, errors.New("no kube-controller-manager: set KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh)")
		}
		o.Bin = filepath.Join(o.AssetsDir, "kube-controller-manager")
	}
	if _, err := os.Stat(o.Bin); err != nil {
		return nil, fmt.Errorf("%w (hack/envtest-assets.sh builds kube-controller-manager into the assets directory)", err)
	}
	if o.Kubeconfig == "" {
		return nil, errors.New("kube-controller-manager needs an admin kubeconfig")
	}
	if len(o.Controllers) == 0 {
		o.Controllers = DefaultControllers
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	c, err := adminClient(o.Kubeconfig)
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--kubeconfig=" + o.Kubeconfig,
		"--authentication-kubeconfig=" + o.Kubeconfig,
		"--authorization-kubeconfig=" + o.Kubeconfig,
		"--controllers=" + strings.Join(o.Controllers, ","),
		"--leader-elect=false",
		// No serving: nothing scrapes it, and no port to collide with.
		"--secure-port=0",
		// A namespace deletion lists and deletes every resource type of the namespace; the default
		// 20 QPS makes that take seconds on its own.
		"--kube-api-qps=100",
		"--kube-api-burst=200",
	}, o.Args...)
	p, err := StartProcess("kube-controller-manager", o.LogPath, o.Bin, args...)
	if err != nil {
		return nil, err
	}
	if err := checkControllerManager(ctx, c, p, o.StartTimeout); err != nil {
		_ = p.Stop(0)
		return nil, err
	}
	return &ControllerManager{Process: p}, nil
}

// adminClient is a client of the kubeconfig's user with the built-in kinds.
func adminClient(kubeconfig string) (client.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", kubeconfig, err)
	}
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme})
}

// checkControllerManager proves, within timeout, that garbage collection and namespace deletion
// happen: it deletes the owner of a ConfigMap and waits for the ConfigMap to go, then deletes their
// namespace and waits for it to go. Each step names itself if it does not finish.
func checkControllerManager(ctx context.Context, c client.Client, p *Process, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "kcm-check-" + strconv.FormatInt(time.Now().UnixNano()%1_000_000_000, 36),
	}}
	if err := c.Create(ctx, ns); err != nil {
		return fmt.Errorf("kube-controller-manager check: create namespace: %w", err)
	}
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "owner"}}
	if err := c.Create(ctx, owner); err != nil {
		return fmt.Errorf("kube-controller-manager check: create the owner ConfigMap: %w", err)
	}
	dependent := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Namespace: ns.Name, Name: "dependent",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID}},
	}}
	if err := c.Create(ctx, dependent); err != nil {
		return fmt.Errorf("kube-controller-manager check: create the dependent ConfigMap: %w", err)
	}
	if err := c.Delete(ctx, owner); err != nil {
		return fmt.Errorf("kube-controller-manager check: delete the owner ConfigMap: %w", err)
	}
	if err := awaitGone(ctx, c, p, dependent, "the garbage collector to delete a ConfigMap whose owner was deleted"); err != nil {
		return err
	}
	if err := c.Delete(ctx, ns); err != nil {
		return fmt.Errorf("kube-controller-manager check: delete namespace %s: %w", ns.Name, err)
	}
	return awaitGone(ctx, c, p, ns, "the namespace controller to finish deleting namespace "+ns.Name)
}

// awaitGone polls until obj is NotFound, ctx ends or p exits; what is the wait's name in errors.
func awaitGone(ctx context.Context, c client.Client, p *Process, obj client.Object, what string) error {
	key := client.ObjectKeyFromObject(obj)
	err := poll(ctx, time.Hour, p, func() (bool, error) { // ctx carries the real deadline
		// Any other error (a slow API server) is worth another try until the deadline.
		return apierrors.IsNotFound(c.Get(ctx, key, obj)), nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("kube-controller-manager check: gave up waiting for %s (%v); last log lines:\n%s", what, ctx.Err(), p.Tail(20))
		}
		return fmt.Errorf("kube-controller-manager check: waiting for %s: %w", what, err)
	}
	return nil
}
