package controllers

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/connection"
)

// CacheOptions restricts the Secret cache to the operator's own Secrets: watching every Secret of the
// cluster would hold all of them in memory and needs far broader access.
func CacheOptions(syncPeriod time.Duration) cache.Options {
	return cache.Options{
		SyncPeriod: &syncPeriod,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue})},
		},
	}
}

// nomadBackoff is the per-object retry schedule after a transient failure: each retry is a call to
// someone's NOMAD server, so it starts at a second (not controller-runtime's 5 ms) and doubles up to
// five minutes.
func nomadBackoff() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, 5*time.Minute)
}

// Settings are the tunables of the controllers.
type Settings struct {
	VerificationInterval time.Duration
	UserErrorRetry       time.Duration
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
}

// Setup registers both controllers with mgr; they share one pool of NOMAD clients.
func Setup(mgr ctrl.Manager, s Settings) error {
	if s.Clock == nil {
		s.Clock = clock.RealClock{}
	}
	resolver := &connection.Resolver{
		Reader: mgr.GetAPIReader(),
		Pool:   &connection.Pool{Clock: s.Clock, Log: ctrl.Log.WithName("nomad"), NewClient: s.NewClient},
	}
	verifier := NewVerifier(s.LastUsedGranularity)
	recorder := mgr.GetEventRecorder("nomad-token-operator")
	if err := (&NomadConnectionReconciler{
		Client:              mgr.GetClient(),
		APIReader:           mgr.GetAPIReader(),
		Recorder:            recorder,
		Resolver:            resolver,
		CheckInterval:       s.VerificationInterval,
		UserErrorRetry:      s.UserErrorRetry,
		SecretRetryInterval: s.SecretRetryInterval,
		Clock:               s.Clock,
		Verifier:            verifier,
		Sweep:               s.OrphanSweep,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&NomadTokenReconciler{
		Client:         mgr.GetClient(),
		APIReader:      mgr.GetAPIReader(),
		Resolver:       resolver,
		Recorder:       recorder,
		Clock:          s.Clock,
		UserErrorRetry: s.UserErrorRetry,
		Verifier:       verifier,
	}).SetupWithManager(mgr)
}
