package controllers_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/controllers"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// manualNamespace is hidden from the suite's manager, for specs that drive a reconciler by hand.
const manualNamespace = "manual"

// operatorNamespace plays the operator's own namespace: ClusterNomadConnections' Secrets live there.
const operatorNamespace = "nomad-operator-system"

// suiteWorkers is the suite manager's NomadToken worker count.
const suiteWorkers = 8

var (
	testEnv *envtest.Environment
	restCfg *rest.Config
	k8s     client.Client // direct, uncached: what a user's kubectl sees
	scheme  = runtime.NewScheme()
	stub    *nomadstub.Server
	// stubClock is NOMAD's clock and the operator's: a spec can move both to a renewal time days
	// ahead, and moves it back when it ends.
	stubClock = nomadstub.NewOffsetClock()
	stubHTTP  *httptest.Server
	mgrCache  cache.Cache
	ctx       context.Context
	cancel    context.CancelFunc
	logBuffer = &syncBuffer{}
)

// TestControllers runs the envtest specs. Without a control plane (KUBEBUILDER_ASSETS unset, as in
// `make test-unit`) it skips: the pure tests of this package (decide, the Ready verdict, renewal,
// policy) run on their own.
func TestControllers(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("no control plane: set KUBEBUILDER_ASSETS to run the envtest specs (make test-envtest)")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controllers (envtest + NOMAD stand-in)")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(&teeWriter{logBuffer}), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	var err error
	restCfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred(), "set KUBEBUILDER_ASSETS, e.g. via `make test-envtest`")
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(v1alpha1.AddToScheme(scheme)).To(Succeed())
	k8s, err = client.New(restCfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: ctrlObjectMeta(manualNamespace)})).To(Succeed())
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: ctrlObjectMeta(operatorNamespace)})).To(Succeed())

	stubOpts := nomadstub.DefaultOptions()
	stubOpts.Clock = stubClock
	stub, stubHTTP = nomadstub.Start(stubOpts)

	// A 1 s resync makes "steady state is silent" observable: every token is reconciled again
	// every second, and must cost nothing.
	cacheOpts := controllers.CacheOptions(time.Second, nil)
	cacheOpts.DefaultFieldSelector = fields.OneTermNotEqualSelector("metadata.namespace", manualNamespace)
	// Cluster-scoped objects support no metadata.namespace field selector; they are watched whole.
	namespaces := &metav1.PartialObjectMetadata{}
	namespaces.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	cacheOpts.ByObject[namespaces] = cache.ByObject{Field: fields.Everything()}
	cacheOpts.ByObject[&v1alpha1.ClusterNomadConnection{}] = cache.ByObject{Field: fields.Everything()}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:    scheme,
		Metrics:   metricsserver.Options{BindAddress: "0"},
		Cache:     cacheOpts,
		NewClient: countingWrites,
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(controllers.Setup(mgr, controllers.Settings{
		VerificationInterval: time.Hour,
		UserErrorRetry:       time.Minute,
		// Shorter than Eventually's timeout, which UserErrorRetry is not: a fixed or newly labelled
		// Secret is found by the connection's own re-read, not by a retry of the refused settings.
		SecretRetryInterval: 2 * time.Second,
		// A workload annotated to opt in as a restart target is noticed within seconds, not an hour.
		RestartTargetsRecheck: 2 * time.Second,
		Clock:                 stubClock,
		// ClusterNomadConnections' Secrets live here, as in the operator's namespace of a cluster.
		ClusterResourceNamespace: operatorNamespace,
		// Several workers, as in production, so that the specs run with reconciles of different
		// tokens interleaved; more than the connections' in-flight limit (nomad.DefaultMaxInFlight),
		// so that the isolation spec can show a hung NOMAD holding only that many of them.
		MaxConcurrentReconciles:           suiteWorkers,
		ConnectionMaxConcurrentReconciles: 2,
	})).To(Succeed())
	mgrCache = mgr.GetCache()
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	cancel()
	if stubHTTP != nil {
		stubHTTP.Close()
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// syncBuffer collects every log line of the suite, so a spec can prove no raw token was logged.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// teeWriter writes logs to the buffer and to Ginkgo's writer (shown for failed specs).
type teeWriter struct{ buf *syncBuffer }

func (t *teeWriter) Write(p []byte) (int, error) {
	_, _ = t.buf.Write(p)
	return GinkgoWriter.Write(p)
}

var nameCounter int

// uniqueName returns a fresh DNS-safe name with prefix.
func uniqueName(prefix string) string {
	nameCounter++
	return fmt.Sprintf("%s-%d-%d", prefix, GinkgoParallelProcess(), nameCounter)
}

// operatorWrites counts, per namespace, every write the manager's client sends to the API server
// (no-op updates included, which leave resourceVersion alone but still cost a request).
var operatorWrites = struct {
	sync.Mutex
	byNamespace map[string]int
}{byNamespace: map[string]int{}}

func writesIn(ns string) int {
	operatorWrites.Lock()
	defer operatorWrites.Unlock()
	return operatorWrites.byNamespace[ns]
}

func countWrite(obj client.Object) {
	operatorWrites.Lock()
	defer operatorWrites.Unlock()
	operatorWrites.byNamespace[obj.GetNamespace()]++
}

// countingWrites is the manager's client, counting its writes.
func countingWrites(cfg *rest.Config, opts client.Options) (client.Client, error) {
	c, err := client.NewWithWatch(cfg, opts)
	if err != nil {
		return nil, err
	}
	return interceptor.NewClient(c, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, o ...client.CreateOption) error {
			countWrite(obj)
			return c.Create(ctx, obj, o...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, o ...client.UpdateOption) error {
			countWrite(obj)
			return c.Update(ctx, obj, o...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, o ...client.PatchOption) error {
			countWrite(obj)
			return c.Patch(ctx, obj, p, o...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, o ...client.DeleteOption) error {
			countWrite(obj)
			return c.Delete(ctx, obj, o...)
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, o ...client.SubResourceUpdateOption) error {
			countWrite(obj)
			return c.SubResource(sub).Update(ctx, obj, o...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, o ...client.SubResourcePatchOption) error {
			countWrite(obj)
			return c.SubResource(sub).Patch(ctx, obj, p, o...)
		},
	}), nil
}
