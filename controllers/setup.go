package controllers

import (
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/connection"
	"github.com/nomad-operator/nomad-token-operator/internal/metrics"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// The cache's informer lists and watches Secrets: the label selector narrows what it holds, but RBAC
// cannot grant by label, so this covers every Secret of the watched namespaces. The sweep's live list
// of retained Secrets needs list too (nomadconnection_sweep.go).
// +kubebuilder:rbac:groups="",resources=secrets,verbs=list;watch

// CacheOptions restricts the Secret cache to the operator's own Secrets: watching every Secret of the
// cluster would hold all of them in memory and needs far broader access. With namespaces (Settings.
// WatchNamespaces) every namespaced informer lists and watches only those, one per namespace, so a
// Role in each of them is all the manager needs; nil caches the whole cluster.
func CacheOptions(syncPeriod time.Duration, namespaces []string) cache.Options {
	opts := cache.Options{
		SyncPeriod:       &syncPeriod,
		DefaultTransform: trimManagedFields,
		ByObject: map[client.Object]cache.ByObject{
			// Namespaces unset: the Secret informers follow DefaultNamespaces like every other.
			&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue})},
		},
	}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = make(map[string]cache.Config, len(namespaces))
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// nomadBackoff is the per-object retry schedule after a transient failure: each retry is a call to
// someone's NOMAD server, so it starts at a second (not controller-runtime's 5 ms) and doubles up to
// five minutes.
func nomadBackoff() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, 5*time.Minute)
}

// Default worker counts (--max-concurrent-reconciles, --connection-max-concurrent-reconciles). A
// reconcile spends nearly all its time waiting on the API server or NOMAD, so workers are cheap
// goroutines, not cores: 16 keep the API server busy on two cores, while each connection's
// in-flight limit (nomad.DefaultMaxInFlight) keeps one slow NOMAD from holding more than a quarter
// of them. Connections are few and checked rarely: 4 workers suffice.
const (
	DefaultMaxConcurrentReconciles           = 16
	DefaultConnectionMaxConcurrentReconciles = 4
)

// Settings are the tunables of the controllers.
type Settings struct {
	// MaxConcurrentReconciles is the NomadToken controller's worker count; 0 means
	// DefaultMaxConcurrentReconciles. controller-runtime never hands one NomadToken to two workers.
	MaxConcurrentReconciles int
	// ConnectionMaxConcurrentReconciles is the worker count of each connection controller; 0 means
	// DefaultConnectionMaxConcurrentReconciles.
	ConnectionMaxConcurrentReconciles int
	// NomadGuard protects every connection's client from a slow or dead NOMAD: in-flight limit,
	// circuit breaker, bounded rate-limit wait (zero fields: nomad's Default* values).
	NomadGuard nomad.GuardOptions
	// NomadRequestTimeout bounds each request to NOMAD; 0 means nomad.DefaultRequestTimeout.
	NomadRequestTimeout  time.Duration
	VerificationInterval time.Duration
	UserErrorRetry       time.Duration
	// RestartTargetsRecheck is how often the opt-in of a NomadToken's restart targets is read again
	// without a rotation or spec change; 0 means VerificationInterval.
	RestartTargetsRecheck time.Duration
	// SecretRetryInterval is how often a connection re-reads Secrets that are missing, incomplete,
	// not labelled, or whose credentials NOMAD refused (no NOMAD call); 0 means 30 s. Tests shorten it.
	SecretRetryInterval time.Duration
	// LastUsedGranularity is the precision of status.lastUsedAt; 0 means DefaultLastUsedGranularity.
	LastUsedGranularity time.Duration
	// OrphanSweep is what connection checks do with orphaned PATs; "" means SweepDryRun.
	OrphanSweep SweepMode
	// Clock drives every decision; nil means the real clock. Tests pass a fake one.
	Clock clock.PassiveClock
	// NewClient builds NOMAD clients; nil means the HTTP client. Tests may wrap it.
	NewClient connection.NewClientFunc
	// WatchNamespaces confines the operator to these namespaces (--watch-namespaces); nil means the
	// whole cluster. The manager's cache must be built for the same list (CacheOptions). Confined,
	// the operator needs no cluster-scoped permission (config/namespaced grants a Role per
	// namespace), so nothing cluster-scoped may be watched or read then: ClusterNomadConnections and
	// Namespaces are served only when len(WatchNamespaces) == 0, and live reads name a namespace.
	WatchNamespaces []string
	// ClusterResourceNamespace is where ClusterNomadConnections' credentials and CA Secrets live:
	// the operator's own namespace.
	ClusterResourceNamespace string
	// AllowedNomadURLs are the NOMAD and OIDC issuer addresses namespaced NomadConnections may use
	// (--allowed-nomad-urls); nil allows any. ClusterNomadConnections are not restricted.
	AllowedNomadURLs *connection.URLAllowlist
	// PATLimit is NOMAD's per-user cap on active PATs; 0 means DefaultPATLimit.
	PATLimit int
	// PATLimitWarning is the share of PATLimit at which a connection reports NearPATLimit; 0 means
	// DefaultPATLimitWarning.
	PATLimitWarning float64
	// Progress, if set, sees every reconcile start and finish (the manager's liveness check).
	Progress ReconcileObserver
}

// Setup registers both controllers with mgr; they share one pool of NOMAD clients.
func Setup(mgr ctrl.Manager, s Settings) error {
	if s.Clock == nil {
		s.Clock = clock.RealClock{}
	}
	guard := s.NomadGuard
	resolver := &connection.Resolver{
		Reader: mgr.GetAPIReader(),
		// Only reconcilers sign in, and they run on the leader alone: a rotated refresh token is
		// refreshed and written back by one replica only.
		Writer: mgr.GetClient(),
		Pool: &connection.Pool{Clock: s.Clock, Log: ctrl.Log.WithName("nomad"), NewClient: s.NewClient,
			Guard: &guard, RequestTimeout: s.NomadRequestTimeout, Observer: requestObserver},
		ClusterResourceNamespace: s.ClusterResourceNamespace,
		AllowedURLs:              s.AllowedNomadURLs,
	}
	clusterWide := len(s.WatchNamespaces) == 0
	if clusterWide && s.ClusterResourceNamespace == "" {
		return errors.New("ClusterNomadConnections need a cluster resource namespace (--cluster-resource-namespace, default the pod's namespace)")
	}
	// The state gauges read the manager's cache at scrape time (internal/metrics/state.go).
	if err := metrics.RegisterStateCollector(metrics.NewStateCollector(mgr.GetClient(), clusterWide).OnlyWhenLeading(mgr.Elected())); err != nil {
		return err
	}
	verifier := NewVerifier(s.LastUsedGranularity)
	recorder := mgr.GetEventRecorder("nomad-token-operator")
	kinds := []string{v1alpha1.KindNomadConnection}
	if clusterWide {
		kinds = append(kinds, v1alpha1.KindClusterNomadConnection)
	}
	for _, kind := range kinds {
		if err := (&NomadConnectionReconciler{
			Client:              mgr.GetClient(),
			Kind:                kind,
			ClusterConnections:  clusterWide,
			APIReader:           mgr.GetAPIReader(),
			Recorder:            recorder,
			Resolver:            resolver,
			CheckInterval:       s.VerificationInterval,
			UserErrorRetry:      s.UserErrorRetry,
			SecretRetryInterval: s.SecretRetryInterval,
			Clock:               s.Clock,
			Verifier:            verifier,
			Sweep:               s.OrphanSweep,
			PATLimit:            s.PATLimit,
			PATLimitWarning:     s.PATLimitWarning,
			Namespaces:          s.WatchNamespaces,
			Workers:             orDefaultInt(s.ConnectionMaxConcurrentReconciles, DefaultConnectionMaxConcurrentReconciles),
			Progress:            s.Progress,
		}).SetupWithManager(mgr); err != nil {
			return err
		}
	}
	return (&NomadTokenReconciler{
		Client:                mgr.GetClient(),
		APIReader:             mgr.GetAPIReader(),
		Resolver:              resolver,
		Recorder:              recorder,
		Clock:                 s.Clock,
		UserErrorRetry:        s.UserErrorRetry,
		Verifier:              verifier,
		ClusterConnections:    clusterWide,
		RestartTargetsRecheck: orDefault(s.RestartTargetsRecheck, s.VerificationInterval),
		Workers:               orDefaultInt(s.MaxConcurrentReconciles, DefaultMaxConcurrentReconciles),
		Progress:              s.Progress,
	}).SetupWithManager(mgr)
}

// requestObserver counts the requests of the client of the connection named name.
func requestObserver(name types.NamespacedName) nomad.Observer {
	return metrics.ObserverFor(metrics.ConnectionNamed(name.Namespace, name.Name))
}

// orDefaultInt is n, or def when n is not set (<= 0).
func orDefaultInt(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}
