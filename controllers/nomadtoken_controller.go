package controllers

import (
	"context"
	"errors"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/connection"
)

// DefaultUserErrorRetry is how long a NomadToken waits after an error only a person can fix before
// it asks NOMAD again (a spec change retries at once). Some fixes happen outside Kubernetes (revoking
// stale PATs, raising NOMAD's lifetime cap), so it does try again, slowly.
const DefaultUserErrorRetry = 15 * time.Minute

// NomadTokenReconciler keeps a NomadToken's PAT in its Secret.
type NomadTokenReconciler struct {
	client.Client
	// APIReader reads around the cache. The cache holds only Secrets the operator labelled, so a
	// Secret missing from it may still exist (a user's Secret of the same name) and is looked up live.
	APIReader client.Reader
	Resolver  *connection.Resolver
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	// UserErrorRetry overrides DefaultUserErrorRetry when > 0.
	UserErrorRetry time.Duration
	// Verifier, when set, brings the connection's periodic list of active PATs, so a PAT revoked in
	// NOMAD by someone else is replaced.
	Verifier *Verifier
	// ClusterConnections says ClusterNomadConnections are served (not in the namespaced install
	// mode, which has no access to cluster-scoped objects).
	ClusterConnections bool
	// RestartTargetsRecheck is how often the opt-in of an unchanged token's restart targets is read
	// again (optInCheckDue); 0 means DefaultVerificationInterval.
	RestartTargetsRecheck time.Duration
	// Workers is how many NomadTokens are reconciled at once (never one token twice); < 1 means 1.
	Workers int
	// PATs counts PATs issued, rotated, revoked and given up on; nil means the metrics' counters.
	PATs PATRecorder
	// Progress, if set, sees each reconcile start and finish (Settings.Progress).
	Progress ReconcileObserver

	// holdOffs remembers, per NomadToken, that NOMAD refused its current generation, and until when
	// not to ask again: resyncs and connection events must not turn into a hot retry loop against
	// someone's NOMAD. In memory on purpose: after a restart, one more attempt is harmless.
	holdOffs sync.Map // types.NamespacedName -> holdOff
	// optInChecks remembers, per NomadToken, when its restart targets were last read.
	optInChecks sync.Map // types.NamespacedName -> time.Time
	// oldPATLooks keeps, per previous PAT id, the last narrow look at its use (lookAtOldPAT), until it
	// leaves status (queuePrevious). In memory: after a restart, the next list or one GET replaces it.
	oldPATLooks sync.Map // PAT id -> patUse
	// rolloutsDone remembers, per NomadToken, the PAT for which its restart targets were last read
	// as rolled out, so a wait reads them no more (consumers_rollout.go).
	rolloutsDone sync.Map // types.NamespacedName -> PAT id
}

// holdOff is NOMAD's refusal of one generation of one NomadToken (by UID: a NomadToken deleted and
// created again under the same name starts afresh).
type holdOff struct {
	uid        types.UID
	generation int64
	until      time.Time
	refusal    failure // what NOMAD said, for Ready once the PAT it could not replace expires
	// rotateRequest is the rotate annotation's value when NOMAD refused: only another one bypasses.
	rotateRequest string
}

// bypassedBy reports a request of a person that the hold-off does not hold back: a revoke-now value
// not yet acted on (it revokes, minted successor or not), or a rotate value NOMAD has not refused.
func (h *holdOff) bypassedBy(token *v1alpha1.NomadToken) bool {
	return revokeNowRequested(token) || rotateRequested(token) && token.Annotations[v1alpha1.AnnotationRotate] != h.rotateRequest
}

// +kubebuilder:rbac:groups=tokens.nomad-operator.dev,resources=nomadtokens,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=tokens.nomad-operator.dev,resources=nomadtokens/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tokens.nomad-operator.dev,resources=nomadtokens/finalizers,verbs=update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch,roleName=manager-cluster-role

// Secret verbs are declared beside the code that needs each (setup.go, nomadtoken_observe.go,
// nomadtoken_writesecret.go, nomadtoken_finalize.go, nomadconnection_inuse.go,
// nomadconnection_sweep.go); controller-gen merges them into one rule. Only the in-use
// finalizer of credentials Secrets is patched.

// Reconcile runs the four stages of a NomadToken's lifecycle and writes the status once at the end:
//
//	observe: load the Secrets, look up an interrupted issuance, apply NOMAD's last list, note a hold-off;
//	         the result is a snapshot that no later step changes (nomadtoken_observe.go)
//	decide:  a pure function of that snapshot returns the whole plan (nomadtoken_decide.go)
//	act:     named steps carry out the plan and record their outcome (nomadtoken_act.go)
//	report:  Ready is decided once from snapshot, plan and outcome (nomadtoken_ready.go), and the
//	         Events and the next look follow (nomadtoken_report.go)
func (r *NomadTokenReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	token := &v1alpha1.NomadToken{}
	if err := r.Get(ctx, req.NamespacedName, token); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if token.Status.PendingIssuance != nil || !token.DeletionTimestamp.IsZero() {
		// A pending issuance means NOMAD calls; make sure it is not the cache lagging behind this
		// operator's own status write that already completed the issuance. The same for a deletion:
		// a cached copy from before the finalizer went would revoke and give up on PATs again (and
		// count them again).
		if err := r.APIReader.Get(ctx, req.NamespacedName, token); err != nil {
			if apierrors.IsNotFound(err) {
				r.forget(req.NamespacedName)
			}
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	if !token.DeletionTimestamp.IsZero() {
		r.forget(req.NamespacedName)
		return r.finalize(ctx, token)
	}
	if !controllerutil.ContainsFinalizer(token, v1alpha1.FinalizerRevoke) {
		// The finalizer goes on before any PAT exists, so no PAT can outlive its NomadToken unnoticed.
		controllerutil.AddFinalizer(token, v1alpha1.FinalizerRevoke)
		if err := r.Update(ctx, token); err != nil {
			return ctrl.Result{}, err
		}
	}
	// stored is the status as the API server has it; an issuance's intent write moves it on.
	sc := &reconcileScope{token: token, stored: token.Status.DeepCopy(), now: r.Clock.Now()}
	o := r.observe(ctx, sc)
	p := decide(o)
	out := r.act(ctx, sc, o, p)
	if out.learned != nil {
		// Acting revealed a fact before any step ran (who the connection now logs in as): the
		// plan is made again with it, once.
		o = o.learned(*out.learned)
		p = decide(o)
		out = r.act(ctx, sc, o, p)
	}
	result, err := r.report(ctx, sc, o, p, out)
	return r.writeStatus(ctx, token, sc.stored, result, err)
}

// forget drops what is kept in memory about a NomadToken that is gone or going.
func (r *NomadTokenReconciler) forget(key types.NamespacedName) {
	r.holdOffs.Delete(key)
	r.optInChecks.Delete(key)
	r.rolloutsDone.Delete(key)
}

// writeStatus is the closing status write of a reconcile, skipped when nothing changed since the
// status was read or last written (a Ready token on resync costs no write).
func (r *NomadTokenReconciler) writeStatus(ctx context.Context, token *v1alpha1.NomadToken, stored *v1alpha1.NomadTokenStatus, result ctrl.Result, err error) (ctrl.Result, error) {
	if equality.Semantic.DeepEqual(stored, &token.Status) {
		return result, err
	}
	if uerr := r.Status().Update(ctx, token); uerr != nil {
		if err == nil {
			return r.kubernetesError(ctx, uerr)
		}
		return ctrl.Result{}, err
	}
	return result, err
}

// kubernetesError handles a failed API-server call. A conflict means this reconcile worked from an
// outdated object (usually the cache lagging the operator's own write): try again shortly with a
// fresh one; an interrupted issuance is recovered from status, so nothing is lost. Anything else
// backs off.
func (r *NomadTokenReconciler) kubernetesError(ctx context.Context, err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		log.FromContext(ctx).V(1).Info("NomadToken changed during reconcile; retrying with a fresh copy")
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	return ctrl.Result{}, err
}

// isKubernetesError reports whether err came from the API server rather than from NOMAD.
func isKubernetesError(err error) bool {
	var status apierrors.APIStatus
	return errors.As(err, &status)
}
