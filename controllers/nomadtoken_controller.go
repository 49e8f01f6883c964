package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/connection"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// DefaultUserErrorRetry is how long a NomadToken waits after an error only a person can fix before
// it asks NOMAD again (a spec change retries at once). Some fixes happen outside Kubernetes (revoking
// stale PATs, raising NOMAD's lifetime cap), so it does try again, slowly.
const DefaultUserErrorRetry = 15 * time.Minute

// secretConflictRecheck is how soon a SecretConflict is checked again. The conflicting Secret lacks the
// operator's label, so its deletion is not watched; checking costs no NOMAD call.
const secretConflictRecheck = 30 * time.Second

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

	// holdOffs remembers, per NomadToken UID, that NOMAD refused its current generation, and until when
	// not to ask again: resyncs and connection events must not turn into a hot retry loop against
	// someone's NOMAD. In memory on purpose: after a restart, one more attempt is harmless.
	holdOffs sync.Map // types.UID -> holdOff
}

type holdOff struct {
	generation int64
	until      time.Time
	refusal    failure // what NOMAD said, for Ready once the PAT it could not replace expires
}

// +kubebuilder:rbac:groups=tokens.nomad-operator.dev,resources=nomadtokens,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=tokens.nomad-operator.dev,resources=nomadtokens/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tokens.nomad-operator.dev,resources=nomadtokens/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile loads the NomadToken, decides what is owed (recover a lost issuance, issue a PAT, sync the
// Secret, revoke replaced PATs, or nothing) and writes the status once at the end.
func (r *NomadTokenReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	token := &v1alpha1.NomadToken{}
	if err := r.Get(ctx, req.NamespacedName, token); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if token.Status.PendingIssuance != nil {
		// A pending issuance means NOMAD calls; make sure it is not the cache lagging behind this
		// operator's own status write that already completed the issuance.
		if err := r.APIReader.Get(ctx, req.NamespacedName, token); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	if !token.DeletionTimestamp.IsZero() {
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
	stored := token.Status.DeepCopy()
	result, err := r.reconcileToken(ctx, token, stored)
	return r.writeStatus(ctx, token, stored, result, err)
}

func (r *NomadTokenReconciler) reconcileToken(ctx context.Context, token *v1alpha1.NomadToken, stored *v1alpha1.NomadTokenStatus) (ctrl.Result, error) {
	obs, err := r.observe(ctx, token, stored)
	if err != nil {
		return ctrl.Result{}, err
	}
	if obs.secretConflict() {
		r.revokeReplacedAnyway(ctx, obs) // needs no Secret
		result, err := r.fail(ctx, obs, &conditionError{v1alpha1.ReasonSecretConflict, fmt.Sprintf(
			"Secret %q exists and is not owned by this NomadToken; it is never overwritten: delete or rename it, or set spec.secret.name",
			obs.secret.Name)})
		return ctrl.Result{RequeueAfter: min(result.RequeueAfter, secretConflictRecheck)}, err
	}
	if wait, held := r.heldOff(token); held {
		// No new PAT until the hold-off ends, but what is owed anyway still happens: replaced PATs
		// are revoked on time, and a PAT that expired meanwhile is no longer reported Ready.
		r.markExpiredIfRefused(token)
		r.revokeReplacedAnyway(ctx, obs)
		return ctrl.Result{RequeueAfter: r.capWait(token, wait)}, nil
	}
	if err := r.provide(ctx, obs); err != nil {
		// The previous PAT's grace period ends on time even when its successor's step failed.
		r.revokeReplacedAnyway(ctx, obs)
		return r.fail(ctx, obs, err)
	}
	revokeErr := r.revokeReplaced(ctx, obs)
	restartWait, err := r.restartConsumers(ctx, token)
	if err != nil {
		return ctrl.Result{}, err
	}
	result := r.markReady(token)
	if restartWait > 0 && restartWait < result.RequeueAfter {
		result.RequeueAfter = restartWait
	}
	if revokeErr != nil {
		// The Secret holds a good PAT, so Ready stays True; an old PAT that is still active is
		// retried and reported in an Event.
		return r.revocationFailed(ctx, obs, revokeErr, result)
	}
	return result, nil
}

// revokeReplacedAnyway revokes what is due on a path that reports another failure (or none); its own
// failure is only logged, and retried with that path's retry.
func (r *NomadTokenReconciler) revokeReplacedAnyway(ctx context.Context, obs *observed) {
	if err := r.revokeReplaced(ctx, obs); err != nil {
		log.FromContext(ctx).Info("revoking replaced PATs failed", "error", classify(err).message)
	}
}

// revocationFailed reports a replaced PAT that could not be revoked while the current one is fine.
func (r *NomadTokenReconciler) revocationFailed(ctx context.Context, obs *observed, err error, result ctrl.Result) (ctrl.Result, error) {
	if isKubernetesError(err) {
		return r.kubernetesError(ctx, err)
	}
	f := classify(err)
	log.FromContext(ctx).Info("revoking a replaced PAT failed", "reason", f.reason, "message", f.message, "transient", f.transient)
	if f.transient {
		return result, err
	}
	r.Recorder.Eventf(obs.token, nil, corev1.EventTypeWarning, v1alpha1.ReasonRevokeFailed, "Revoke", "%s", f.message)
	return ctrl.Result{RequeueAfter: min(result.RequeueAfter, orDefault(r.UserErrorRetry, DefaultUserErrorRetry))}, nil
}

// provide makes the Secret hold a PAT for the current spec: it settles an interrupted issuance, applies
// the connection's verification, and issues a new PAT or rewrites the Secret as the decision chain says.
func (r *NomadTokenReconciler) provide(ctx context.Context, obs *observed) error {
	if obs.token.Status.PendingIssuance != nil {
		if err := r.recoverPendingIssuance(ctx, obs); err != nil {
			return err
		}
	}
	if err := r.verifyInNomad(ctx, obs); err != nil {
		return err
	}
	if reason := issuanceReason(obs); reason != "" {
		return r.issue(ctx, obs, reason)
	}
	if secretNeedsSync(obs) {
		return r.syncSecret(ctx, obs)
	}
	return nil
}

// observe loads the Secrets the decisions look at.
func (r *NomadTokenReconciler) observe(ctx context.Context, token *v1alpha1.NomadToken, stored *v1alpha1.NomadTokenStatus) (*observed, error) {
	obs := &observed{token: token, now: r.Clock.Now(), stored: stored}
	if c := meta.FindStatusCondition(stored.Conditions, v1alpha1.ConditionReady); c != nil {
		obs.readyBefore = c.DeepCopy()
	}
	backfillMinter(token)
	var err error
	if obs.secret, err = r.getSecret(ctx, token.Namespace, token.EffectiveSecretName()); err != nil {
		return nil, err
	}
	if prev := token.Status.SecretName; prev != "" && prev != token.EffectiveSecretName() {
		s, err := r.getSecret(ctx, token.Namespace, prev)
		if err != nil {
			return nil, err
		}
		if s != nil && ownedBy(s, token) {
			obs.previous = s
		}
	}
	return obs, nil
}

// getSecret reads from the cache and, on a miss, from the API server: a Secret without the operator's
// label is invisible to the cache but must still never be overwritten.
func (r *NomadTokenReconciler) getSecret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	s := &corev1.Secret{}
	err := r.Get(ctx, key, s)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, s)
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// markReady records success: the Secret holds the current PAT. It returns when to look again.
func (r *NomadTokenReconciler) markReady(token *v1alpha1.NomadToken) ctrl.Result {
	st := &token.Status
	renewal := tokenRenewalTime(token)
	st.RenewalTime = &metav1.Time{Time: renewal}
	st.SecretName = token.EffectiveSecretName()
	st.ObservedGeneration = token.Generation
	setCondition(&st.Conditions, token.Generation, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonIssued,
		fmt.Sprintf("Secret %s holds PAT %s, valid until %s", st.SecretName, st.TokenID, st.ExpiresAt.UTC().Format(time.RFC3339)))
	return ctrl.Result{RequeueAfter: r.nextWake(token)}
}

// fail reports err. Errors only a person can fix set Ready=False and wait (no hot retry); transient
// ones back off exponentially (or as NOMAD's Retry-After says). A PAT that is still valid and matches
// the spec keeps Ready=True: consumers are fine, only its replacement is late.
func (r *NomadTokenReconciler) fail(ctx context.Context, obs *observed, err error) (ctrl.Result, error) {
	token := obs.token
	if isKubernetesError(err) {
		// Not NOMAD's doing, and not the user's: the conditions stay as they are.
		return r.kubernetesError(ctx, err)
	}
	f := classify(err)
	st := &token.Status
	stillValid := st.ExpiresAt != nil && r.Clock.Now().Before(st.ExpiresAt.Time) && st.IssuedSpecHash == materialHash(token) &&
		isReady(st.Conditions) && f.reason != v1alpha1.ReasonSecretConflict
	// The same refusal reported again (a retry, or a SecretConflict re-checked) adds no new Event.
	before := obs.readyBefore
	repeated := before != nil && before.Status == metav1.ConditionFalse && before.Reason == f.reason && before.Message == f.message
	if !stillValid {
		setCondition(&st.Conditions, token.Generation, v1alpha1.ConditionReady, metav1.ConditionFalse, f.reason, f.message)
	}
	log.FromContext(ctx).Info("NomadToken step failed", "reason", f.reason, "message", f.message, "transient", f.transient)
	if f.transient {
		if after := nomad.RetryAfterOf(err); after > 0 {
			return ctrl.Result{RequeueAfter: r.capWait(token, after)}, nil
		}
		return ctrl.Result{}, err
	}
	if !repeated {
		r.Recorder.Eventf(token, nil, corev1.EventTypeWarning, f.reason, "Reconcile", "%s", f.message)
	}
	retry := orDefault(r.UserErrorRetry, DefaultUserErrorRetry)
	if nomad.CodeOf(err) != nomad.CodeTransient {
		// NOMAD itself said no: do not ask again for this generation until the retry time.
		r.holdOffs.Store(token.UID, holdOff{generation: token.Generation, until: r.Clock.Now().Add(retry), refusal: f})
	}
	return ctrl.Result{RequeueAfter: r.capWait(token, retry)}, nil
}

// markExpiredIfRefused turns Ready False once the PAT that NOMAD refused to replace has expired: until
// then consumers were fine and Ready stayed True, after it they hold a dead token.
func (r *NomadTokenReconciler) markExpiredIfRefused(token *v1alpha1.NomadToken) {
	st := &token.Status
	if st.ExpiresAt == nil || r.Clock.Now().Before(st.ExpiresAt.Time) || !isReady(st.Conditions) {
		return
	}
	msg := fmt.Sprintf("PAT %s expired at %s", st.TokenID, st.ExpiresAt.UTC().Format(time.RFC3339))
	reason := v1alpha1.ReasonProgressing
	if v, ok := r.holdOffs.Load(token.UID); ok {
		refusal := v.(holdOff).refusal
		reason, msg = refusal.reason, msg+" and its replacement was refused: "+refusal.message
	}
	setCondition(&st.Conditions, token.Generation, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
}

// heldOff reports whether NOMAD refused this generation of token recently, and how long to wait.
func (r *NomadTokenReconciler) heldOff(token *v1alpha1.NomadToken) (time.Duration, bool) {
	v, ok := r.holdOffs.Load(token.UID)
	if !ok {
		return 0, false
	}
	h := v.(holdOff)
	wait := h.until.Sub(r.Clock.Now())
	if h.generation != token.Generation || wait <= 0 {
		r.holdOffs.Delete(token.UID)
		return 0, false
	}
	return wait, true
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
