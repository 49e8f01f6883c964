package controllers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/connection"
	"github.com/nomad-operator/nomad-token-operator/internal/metrics"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// Defaults of how often a NomadConnection is checked again.
const (
	// DefaultVerificationInterval is how often a Ready connection is checked again (credentials can be
	// revoked in Keycloak at any time) and its tokens verified against NOMAD's list of active PATs:
	// one login (at most) and one paged list call per connection and interval.
	DefaultVerificationInterval = 10 * time.Minute
	// DefaultPATLimit is NOMAD's default cap on a user's active PATs.
	DefaultPATLimit = 100
	// DefaultPATLimitWarning is the share of the cap at which NearPATLimit turns True: Overlap
	// rotation needs a free slot per rotating token, and at the cap it falls back to NOMAD's rotate
	// endpoint (no grace period) or fails.
	DefaultPATLimitWarning = 0.8
	// secretRetryInterval re-reads a missing, incomplete or unlabelled credentials (or CA) Secret, and
	// one whose credentials NOMAD refused; it costs no NOMAD call, and Secrets of users are not
	// watched (the cache holds only the operator's own).
	secretRetryInterval = 30 * time.Second
)

// NomadConnectionReconciler checks that a connection's credentials work and finds its PAT path. One
// instance serves each kind: NomadConnection and ClusterNomadConnection.
type NomadConnectionReconciler struct {
	client.Client
	// PATs counts the orphans the sweep revokes; nil means the metrics' counters.
	PATs PATRecorder
	// Kind is the connection kind served: v1alpha1.KindNomadConnection ("" too) or
	// v1alpha1.KindClusterNomadConnection.
	Kind string
	// ClusterConnections says ClusterNomadConnections are served (not in the namespaced install mode),
	// so they count when Secrets and PATs are accounted for.
	ClusterConnections bool
	// APIReader reads the credentials and CA Secrets, which the cache does not hold.
	APIReader client.Reader
	// Recorder emits Events; nil in tests that need none.
	Recorder events.EventRecorder
	Resolver *connection.Resolver
	// CheckInterval overrides DefaultVerificationInterval when > 0.
	CheckInterval time.Duration
	// UserErrorRetry is how long to wait before trying credentials NOMAD refused again; default
	// DefaultUserErrorRetry. Changed credentials are tried at once (see SecretRetryInterval).
	UserErrorRetry time.Duration
	// SecretRetryInterval overrides secretRetryInterval when > 0.
	SecretRetryInterval time.Duration
	// Clock decides when a check is due.
	Clock clock.PassiveClock
	// Verifier, when set, receives each check's list of active PATs to verify the connection's tokens.
	Verifier *Verifier
	// Sweep is what each check does with orphaned PATs; "" means SweepDryRun.
	Sweep SweepMode
	// PATLimit is NOMAD's per-user cap on active PATs; 0 means DefaultPATLimit.
	PATLimit int
	// PATLimitWarning is the share of PATLimit at which NearPATLimit turns True; 0 means
	// DefaultPATLimitWarning.
	PATLimitWarning float64
	// Namespaces the operator is confined to (Settings.WatchNamespaces); nil means all. Live reads
	// across namespaces are made in each of them, which a Role per namespace allows.
	Namespaces []string
	// Workers is how many connections of this kind are reconciled at once; < 1 means 1.
	Workers int
	// Progress, if set, sees each reconcile start and finish (Settings.Progress).
	Progress ReconcileObserver

	// checked remembers, per connection, the last check, so a resync within the check interval (or a
	// NomadToken event soon after a failed check) costs no NOMAD call. Kept in memory: after a restart one check per connection is cheap.
	// Keyed by name, so that a deleted connection's entry can be dropped on NotFound.
	checked sync.Map // types.NamespacedName -> lastCheck
}

// lastCheck is the last check of a connection: what it was made for (a new object under the same
// name, a new generation or annotation forces a new one), when the next is due, and its error.
type lastCheck struct {
	of   checkKey
	next time.Time
	err  error
	// refused is the fingerprint of the settings (Secrets included) NOMAD refused, if it did: until
	// next, the Secrets are re-read every secretRetryInterval, and changed settings are checked at
	// once, so a fixed password does not wait out the retry interval of the wrong one.
	refused string
}

// checkKey identifies the version of a connection a check was made for.
type checkKey struct {
	uid         types.UID
	generation  int64
	annotations string
}

// +kubebuilder:rbac:groups=tokens.nomad-operator.dev,resources=nomadconnections,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=tokens.nomad-operator.dev,resources=nomadconnections/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tokens.nomad-operator.dev,resources=nomadconnections/finalizers,verbs=update
// +kubebuilder:rbac:groups=tokens.nomad-operator.dev,resources=clusternomadconnections,verbs=get;list;watch;update;patch,roleName=manager-cluster-role
// +kubebuilder:rbac:groups=tokens.nomad-operator.dev,resources=clusternomadconnections/status,verbs=get;update;patch,roleName=manager-cluster-role
// +kubebuilder:rbac:groups=tokens.nomad-operator.dev,resources=clusternomadconnections/finalizers,verbs=update,roleName=manager-cluster-role

// Reconcile keeps the connection (and its Secrets) while NomadTokens need it, then logs in, resolves
// the PAT path, counts the active PATs and reports it all in status.
func (r *NomadConnectionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	conn := r.newConnection()
	if err := r.Get(ctx, req.NamespacedName, conn); err != nil {
		if apierrors.IsNotFound(err) {
			// Gone: the last chance to drop the pooled client, which holds the bot password and an
			// access token.
			r.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	original := conn.ConnectionStatus().DeepCopy()
	last, wait, fresh := r.recentlyChecked(conn)
	if fresh && last.refused != "" {
		changed, err := r.settingsChanged(ctx, conn, last.refused)
		if err != nil {
			return ctrl.Result{}, err
		}
		fresh = !changed
		wait = min(wait, r.secretRetry())
	}
	deps, err := r.syncInUse(ctx, conn, !fresh)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.countUsers(ctx, conn); err != nil {
		return ctrl.Result{}, err
	}
	switch {
	case !conn.GetDeletionTimestamp().IsZero() && len(deps) > 0 && controllerutil.ContainsFinalizer(conn, v1alpha1.FinalizerInUse):
		// Its tokens revoke their PATs through it while they are deleted; it goes after the last one.
		r.event(conn, corev1.EventTypeNormal, v1alpha1.EventDeletionWaiting, "Delete",
			"deletion waits for the NomadTokens that need this connection to revoke their PATs: "+someOf(deps, 10))
		return ctrl.Result{}, r.writeStatus(ctx, conn, original)
	case !conn.GetDeletionTimestamp().IsZero():
		r.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	case fresh && last.err != nil:
		// A check failed moments ago: say so again, so controller-runtime's backoff keeps growing.
		return ctrl.Result{}, last.err
	case fresh:
		return ctrl.Result{RequeueAfter: wait}, r.writeStatus(ctx, conn, original)
	}
	now := r.Clock.Now()
	result, refused, err := r.check(ctx, conn)
	r.checked.Store(req.NamespacedName, r.checkDone(conn, now, result, refused, err))
	if uerr := r.writeStatus(ctx, conn, original); uerr != nil && err == nil {
		return ctrl.Result{}, uerr
	}
	return result, err
}

// someOf lists at most n of names, and how many more there are: an Event note is limited to 1 kB,
// and a ClusterNomadConnection may have thousands of dependents.
func someOf(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

// writeStatus writes conn's status if it changed since original.
func (r *NomadConnectionReconciler) writeStatus(ctx context.Context, conn v1alpha1.Connection, original *v1alpha1.NomadConnectionStatus) error {
	if equality.Semantic.DeepEqual(original, conn.ConnectionStatus()) {
		return nil
	}
	return client.IgnoreNotFound(r.Status().Update(ctx, conn))
}

// check logs in, resolves the PAT path and lists the active PATs. When NOMAD refuses the settings
// (a wrong password, say), it also returns their fingerprint, taken before the login: had the
// Secrets changed in between, the new settings are then tried once more, never skipped.
func (r *NomadConnectionReconciler) check(ctx context.Context, conn v1alpha1.Connection) (ctrl.Result, string, error) {
	st := conn.ConnectionStatus()
	gen := conn.GetGeneration()
	start := r.Clock.Now()
	reportTransport(conn)
	notReady := func(reason, msg string) {
		setReadyCondition(&st.Conditions, gen, metav1.ConditionFalse, reason, msg)
		st.ObservedGeneration = gen
	}

	tried := r.fingerprint(ctx, conn)
	nc, err := r.Resolver.Client(ctx, conn)
	if err != nil {
		var cfg *connection.ConfigError
		if !errors.As(err, &cfg) {
			// Not the user's mistake: the API server failed to hand out a Secret (429, 500, 503, a
			// refused connection, RBAC). Only the rate-limited retry brings the connection back, as
			// no event would: resyncs are filtered out. Ready keeps what the last check found.
			return ctrl.Result{}, "", err
		}
		notReady(cfg.Reason, cfg.Message)
		if cfg.SpecOnly {
			return ctrl.Result{}, "", nil // only a spec change can help, and it triggers a reconcile
		}
		return ctrl.Result{RequeueAfter: r.secretRetry()}, "", nil
	}
	path, err := nc.Check(ctx)
	var active []nomad.PAT
	// Taken before the list is requested: a PAT created after this is not expected in it.
	listedAt := r.Clock.Now()
	if err == nil {
		active, err = nc.List(ctx, nomad.ListOptions{State: "active"})
	}
	if nomad.Deferred(err) {
		// The connection's own limits held the check back (its tokens keep its slots busy, or its
		// rate limit): nothing is known about NOMAD yet, so Ready stays as it is.
		log.FromContext(ctx).V(1).Info("NomadConnection check deferred", "message", err.Error())
		return ctrl.Result{RequeueAfter: nomad.RetryAfterOf(err)}, "", nil
	}
	if err != nil {
		f := classify(err)
		switch nomad.CodeOf(err) {
		case nomad.CodePathNotFound:
			f.reason = v1alpha1.ReasonPATPathNotFound
		case nomad.CodeCredentialsInvalid:
			f.message = credentialsRefused(conn, r.Resolver.SecretNamespace(conn), nomadDetail(err))
		}
		if f.transient {
			f.reason = v1alpha1.ReasonUnreachable
		}
		notReady(f.reason, f.message)
		log.FromContext(ctx).Info("NomadConnection check failed", "reason", f.reason, "message", f.message)
		if f.transient {
			if after := nomad.RetryAfterOf(err); after > 0 {
				return ctrl.Result{RequeueAfter: after}, "", nil
			}
			return ctrl.Result{}, "", err
		}
		if tried == "" {
			// The Secrets could not be read a moment before (an API server hiccup): nothing to
			// compare a re-read with, so the refused settings simply wait out the retry interval.
			return ctrl.Result{RequeueAfter: orDefault(r.UserErrorRetry, DefaultUserErrorRetry)}, "", nil
		}
		// These settings are not tried again before the retry interval (see checkDone); changed
		// ones are, as soon as a re-read of the Secrets finds them.
		return ctrl.Result{RequeueAfter: r.secretRetry()}, tried, nil
	}
	if r.Verifier != nil {
		tokens, err := tokensOfConnection(ctx, r, conn)
		if err != nil {
			return ctrl.Result{}, "", err
		}
		offset, _ := nc.ClockOffset() // 0 when NOMAD sends no Date: then its clock is taken as ours
		r.Verifier.record(ctx, conn, nc.Account(), active, listedAt, offset, tokens)
	}
	if err := r.sweepOrphans(ctx, conn, nc, active); err != nil {
		// The connection works; the sweep is tried again at the next check.
		log.FromContext(ctx).Info("orphan sweep failed", "error", classify(err).message)
	}
	recordSignIn(conn, nc, start)
	path = pathInUse(nc, path)
	st.PATPath = v1alpha1.PATPathMode(path)
	r.reportPATBudget(conn, len(active))
	st.ObservedGeneration = gen
	setReadyCondition(&st.Conditions, gen, metav1.ConditionTrue, v1alpha1.ReasonConnected,
		fmt.Sprintf("signed in (%s); PAT endpoints found (%s)", conn.ConnectionSpec().Credentials.MethodOrDefault(), path))
	return ctrl.Result{RequeueAfter: orDefault(r.CheckInterval, DefaultVerificationInterval)}, "", nil
}

// pathInUse is the PAT path nc uses after the list, which proves it: a client built after a restart
// takes the path from the connection's status without detecting it (nomad.Config.KnownPATPath), and a
// path NOMAD has since moved is detected again by that list's 404.
func pathInUse(nc nomad.Client, checked nomad.PATPath) nomad.PATPath {
	if p := nc.ResolvedPATPath(); p != "" {
		return p
	}
	return checked
}

// reportPATBudget records how many active PATs the bot account holds, against NOMAD's per-user cap,
// and says so in NearPATLimit once they reach the warning share of it.
func (r *NomadConnectionReconciler) reportPATBudget(conn v1alpha1.Connection, active int) {
	st := conn.ConnectionStatus()
	limit := r.PATLimit
	if limit <= 0 {
		limit = DefaultPATLimit
	}
	share := r.PATLimitWarning
	if share <= 0 {
		share = DefaultPATLimitWarning
	}
	st.ActiveTokens, st.PATLimit = ptr.To(int32(active)), ptr.To(int32(limit))
	threshold := int(math.Ceil(share * float64(limit)))
	if active >= threshold {
		setCondition(&st.Conditions, conn.GetGeneration(), v1alpha1.ConditionNearPATLimit, metav1.ConditionTrue, v1alpha1.ReasonNearPATLimit, fmt.Sprintf(
			"the bot account holds %d active PATs of NOMAD's %d per user (warning at %d): Overlap rotations need a free slot each, and at the cap fall back to NOMAD's rotate endpoint (no grace period) or fail; revoke unused PATs, or spread NomadTokens over more bot accounts",
			active, limit, threshold))
		return
	}
	setCondition(&st.Conditions, conn.GetGeneration(), v1alpha1.ConditionNearPATLimit, metav1.ConditionFalse, v1alpha1.ReasonWithinPATLimit,
		fmt.Sprintf("the bot account holds %d active PATs of NOMAD's %d per user (warning at %d)", active, limit, threshold))
}

// countUsers records how many NomadTokens mint through conn (usersOf), from the cache.
func (r *NomadConnectionReconciler) countUsers(ctx context.Context, conn v1alpha1.Connection) error {
	users, err := usersOf(ctx, r, conn)
	if err != nil {
		return err
	}
	conn.ConnectionStatus().NomadTokens = ptr.To(int32(len(users)))
	return nil
}

// minCheckSpacing is the least time between two checks of an unchanged connection that failed with a
// transient error: events of its NomadTokens must not turn into one login attempt each.
const minCheckSpacing = 5 * time.Second

// recentlyChecked reports whether conn, unchanged, was checked recently enough that no new check is
// due (and how long until one is), with what that check found.
func (r *NomadConnectionReconciler) recentlyChecked(conn v1alpha1.Connection) (lastCheck, time.Duration, bool) {
	v, ok := r.checked.Load(client.ObjectKeyFromObject(conn))
	if !ok {
		return lastCheck{}, 0, false
	}
	last := v.(lastCheck)
	if last.of != checkKeyOf(conn) {
		return lastCheck{}, 0, false
	}
	wait := last.next.Sub(r.Clock.Now())
	return last, wait, wait > 0
}

// checkDone records a check made at for conn, and when the next one is due: after the verification
// interval if it passed, when the failure says to retry, and not sooner than minCheckSpacing
// otherwise. Settings NOMAD refused (refused is their fingerprint) are tried once per retry interval,
// however many NomadTokens wait for them: each try is a failed login, and Keycloak locks accounts out.
func (r *NomadConnectionReconciler) checkDone(conn v1alpha1.Connection, at time.Time, result ctrl.Result, refused string, err error) lastCheck {
	next := result.RequeueAfter
	switch {
	case err != nil:
		next = minCheckSpacing
	case next == 0 || refused != "":
		next = orDefault(r.UserErrorRetry, DefaultUserErrorRetry) // for a spec error: only a spec change helps, which starts afresh
	}
	return lastCheck{of: checkKeyOf(conn), next: at.Add(next), err: err, refused: refused}
}

// secretRetry is how often Secrets are read again while they are missing, unusable or refused.
func (r *NomadConnectionReconciler) secretRetry() time.Duration {
	return orDefault(r.SecretRetryInterval, secretRetryInterval)
}

// fingerprint identifies conn's settings as its Secrets give them now; "" if they do not resolve
// (the check that follows reports why).
func (r *NomadConnectionReconciler) fingerprint(ctx context.Context, conn v1alpha1.Connection) string {
	cfg, err := r.Resolver.Config(ctx, conn)
	if err != nil {
		return ""
	}
	return connection.Fingerprint(cfg)
}

// settingsChanged re-reads conn's Secrets (no NOMAD call) and reports whether they no longer give the
// settings NOMAD refused: a new password, or Secrets that do not resolve any more, which a check then
// reports at no NOMAD cost. Only an API server failure is an error.
func (r *NomadConnectionReconciler) settingsChanged(ctx context.Context, conn v1alpha1.Connection, refused string) (bool, error) {
	cfg, err := r.Resolver.Config(ctx, conn)
	var ce *connection.ConfigError
	if errors.As(err, &ce) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return connection.Fingerprint(cfg) != refused, nil
}

func checkKeyOf(conn v1alpha1.Connection) checkKey {
	return checkKey{uid: conn.GetUID(), generation: conn.GetGeneration(), annotations: fmt.Sprint(conn.GetAnnotations())}
}

// forget drops everything kept in memory for a connection that is gone.
func (r *NomadConnectionReconciler) forget(key types.NamespacedName) {
	r.Resolver.Pool.ForgetConnection(key)
	// Its request and PAT counters go too: series of deleted objects disappear.
	metrics.ForgetConnection(metrics.ConnectionNamed(key.Namespace, key.Name))
	r.checked.Delete(key)
	if r.Verifier != nil {
		r.Verifier.forget(key)
	}
}

// newConnection returns an empty object of the kind served.
func (r *NomadConnectionReconciler) newConnection() v1alpha1.Connection {
	if r.Kind == v1alpha1.KindClusterNomadConnection {
		return &v1alpha1.ClusterNomadConnection{}
	}
	return &v1alpha1.NomadConnection{}
}

// SetupWithManager watches the connections of its kind (status writes do not trigger a new check) and
// the NomadTokens that depend on them, whenever that dependency starts or ends.
func (r *NomadConnectionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(r.newConnection(), builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{},
			predicate.AnnotationChangedPredicate{}, deletionStarted{}))).
		Watches(&v1alpha1.NomadToken{}, batchedEnqueue(r.connectionsOfToken, r.notHoldingYet), builder.WithPredicates(dependencyChanged{})).
		Named(strings.ToLower(r.newConnection().ConnectionKind())).
		WithOptions(controller.Options{RateLimiter: nomadBackoff(), MaxConcurrentReconciles: max(r.Workers, 1)}).
		Complete(watchedBy(r, r.Progress, strings.ToLower(r.newConnection().ConnectionKind())))
}

// dependencyBatch is how long a connection that already holds its dependents waits after a
// NomadToken started or stopped depending on it before it is reconciled, so that the events of a
// burst (10,000 new tokens, a namespace deleted) are taken together: each reconcile lists every token
// of the connection to count its users and hold its Secrets, and one per event would cost a burst
// quadratic work.
const dependencyBatch = time.Second

// batchedEnqueue enqueues the requests mapFn returns after dependencyBatch, or at once when urgent
// says so. The work queue keeps one pending entry per request, at the earliest time asked, so every
// event within a batch joins it.
func batchedEnqueue(mapFn handler.MapFunc, urgent func(context.Context, reconcile.Request) bool) handler.EventHandler {
	add := func(ctx context.Context, obj client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		for _, req := range mapFn(ctx, obj) {
			if urgent(ctx, req) {
				q.Add(req)
				continue
			}
			q.AddAfter(req, dependencyBatch)
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.ObjectOld, q)
			add(ctx, e.ObjectNew, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
	}
}

// notHoldingYet reports whether the connection does not hold its dependents yet (no in-use
// finalizer), or is not in the cache. Its first dependent must not wait for a batch: the hold is what
// keeps a GitOps prune from deleting the connection before the token revoked its PAT through it.
func (r *NomadConnectionReconciler) notHoldingYet(ctx context.Context, req reconcile.Request) bool {
	conn := r.newConnection()
	if err := r.Get(ctx, req.NamespacedName, conn); err != nil {
		return true
	}
	return !controllerutil.ContainsFinalizer(conn, v1alpha1.FinalizerInUse)
}

// connectionsOfToken maps a NomadToken to the connections of the served kind it depends on.
func (r *NomadConnectionReconciler) connectionsOfToken(_ context.Context, o client.Object) []reconcile.Request {
	token := o.(*v1alpha1.NomadToken)
	var reqs []reconcile.Request
	for _, key := range connectionsNeededBy(token) {
		if kind, name := connectionObjectKey(token.Namespace, key); kind == r.newConnection().ConnectionKind() {
			reqs = append(reqs, reconcile.Request{NamespacedName: name})
		}
	}
	return reqs
}

// dependencyChanged passes the NomadToken events that start or end a dependency on a connection:
// creation, deletion, and updates that change the connections it needs (not every status write).
type dependencyChanged struct{ predicate.Funcs }

func (dependencyChanged) Update(e event.UpdateEvent) bool {
	return !slices.Equal(connectionsNeededBy(e.ObjectOld.(*v1alpha1.NomadToken)), connectionsNeededBy(e.ObjectNew.(*v1alpha1.NomadToken)))
}
