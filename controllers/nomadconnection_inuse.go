package controllers

import (
	"context"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/connection"
)

// dependsOnIndex indexes NomadTokens by every NomadConnection they need: the one they mint through,
// the one that minted their current PAT, and those of their queued revocations and pending issuance.
const dependsOnIndex = "nomadtoken.dependsOn"

// connectionsNeededBy lists the names of the connections token depends on.
func connectionsNeededBy(token *v1alpha1.NomadToken) []string {
	st := token.Status
	names := []string{token.Spec.ConnectionRef.Key(), st.ConnectionName}
	for _, ref := range st.RevokePending {
		names = append(names, ref.ConnectionName)
	}
	if st.PendingIssuance != nil {
		names = append(names, st.PendingIssuance.ConnectionName)
	}
	names = slices.DeleteFunc(names, func(n string) bool { return n == "" })
	slices.Sort(names)
	return slices.Compact(names)
}

// dependents lists the NomadTokens that need conn, from the cache: by name, or as namespace/name for
// a ClusterNomadConnection.
func dependents(ctx context.Context, c client.Reader, conn v1alpha1.Connection) ([]string, error) {
	tokens, err := tokensDependingOn(ctx, c, conn.GetNamespace(), conn.Key(), client.UnsafeDisableDeepCopy)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(tokens))
	for i := range tokens {
		t := &tokens[i]
		if !dependsByStatus(t, conn.Key()) {
			// Only its spec names the connection: it needs it if it may mint through it. A token
			// of a namespace a ClusterNomadConnection does not admit must not pin it.
			admitted, err := admitsNamespace(ctx, c, conn, t.Namespace)
			if err != nil {
				return nil, err
			}
			if !admitted {
				continue
			}
		}
		if conn.GetNamespace() == "" {
			names = append(names, t.Namespace+"/"+t.Name)
		} else {
			names = append(names, t.Name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// dependsByStatus reports whether token's status names the connection of key: its current PAT, a
// queued revocation or a pending issuance was minted through it.
func dependsByStatus(token *v1alpha1.NomadToken, key string) bool {
	st := token.Status
	if st.TokenID != "" && currentMinter(token).connection == key || st.PendingIssuance != nil && pendingMinter(token).connection == key {
		return true
	}
	return slices.ContainsFunc(st.RevokePending, func(ref v1alpha1.PATReference) bool { return orSpecConnection(token, ref.ConnectionName) == key })
}

// secretsOf are the Secrets conn reads: its credentials and, if set, its CA bundle.
func secretsOf(conn v1alpha1.Connection) []string {
	names := []string{conn.ConnectionSpec().Credentials.SecretRef.Name}
	if ref := conn.ConnectionSpec().CASecretRef; ref != nil && ref.Name != "" && ref.Name != names[0] {
		names = append(names, ref.Name)
	}
	return names
}

// syncInUse keeps the in-use finalizer on conn and on the Secrets it reads exactly while NomadTokens
// depend on it, so that a namespace deletion or a GitOps prune in any order leaves the tokens what
// they need to revoke their PATs. The order makes every crash safe: Secrets are held before the
// connection, and let go of before it. A connection being deleted can gain no finalizer, so one that
// nothing used goes at once. It returns the dependents.
// Holding the Secrets means reading them live, so it is done when the connection starts being held,
// when it names other Secrets, and on each full check (recheck), not on every reconcile.
func (r *NomadConnectionReconciler) syncInUse(ctx context.Context, conn v1alpha1.Connection, recheck bool) ([]string, error) {
	deps, err := dependents(ctx, r, conn)
	if err != nil {
		return nil, err
	}
	held := controllerutil.ContainsFinalizer(conn, v1alpha1.FinalizerInUse)
	switch {
	case len(deps) > 0 && (held || conn.GetDeletionTimestamp().IsZero()):
		want := secretsOf(conn)
		if !held || recheck || !slices.Equal(conn.ConnectionStatus().InUseSecrets, want) {
			if err := r.holdSecrets(ctx, conn, want); err != nil {
				return nil, err
			}
		}
		if !held {
			controllerutil.AddFinalizer(conn, v1alpha1.FinalizerInUse)
			if err := r.Update(ctx, conn); err != nil {
				return nil, err
			}
		}
		// Secrets named by an earlier spec are let go of.
		if err := r.releaseSecrets(ctx, conn, without(conn.ConnectionStatus().InUseSecrets, want)); err != nil {
			return nil, err
		}
		conn.ConnectionStatus().InUseSecrets = want
	case !held && recheck:
		// Not held, so nothing should record it either; but a hold of its Secrets may have been
		// written before its own finalizer update failed. A full check, not every reconcile, makes
		// sure no Secret keeps its UID (and with it the finalizer) after it is gone.
		if err := r.releaseSecrets(ctx, conn, secretsOf(conn)); err != nil {
			return nil, err
		}
	case held:
		if err := r.releaseSecrets(ctx, conn, append(conn.ConnectionStatus().InUseSecrets, secretsOf(conn)...)); err != nil {
			return nil, err
		}
		conn.ConnectionStatus().InUseSecrets = nil
		controllerutil.RemoveFinalizer(conn, v1alpha1.FinalizerInUse)
		if err := r.Update(ctx, conn); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
	}
	return deps, nil
}

// Credentials and CA Secrets are read live and patched only to add or remove the in-use finalizer
// (a merge patch of the finalizers alone, never their data).
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;patch

// holdSecrets puts the in-use finalizer on the named Secrets of conn's Secret namespace. A Secret that does
// not exist holds nothing (the connection reports it); one already being deleted keeps what it has.
// The operator writes to no Secret that did not opt in (LabelCredentials): one that lost the label
// is let go of instead, since its owner withdrew it and no NomadToken can use it to revoke anyway.
// Both writes carry the resourceVersion read, so a label added or removed meanwhile makes them fail
// and the next reconcile decide again on what the Secret says then.
func (r *NomadConnectionReconciler) holdSecrets(ctx context.Context, conn v1alpha1.Connection, names []string) error {
	for _, name := range names {
		s, err := r.liveSecret(ctx, r.Resolver.SecretNamespace(conn), name)
		switch {
		case err != nil:
			return err
		case s == nil:
		case !connection.OptedIn(s):
			// Withdrawn by its owner: held by nobody, whoever held it.
			if err := r.setInUse(ctx, s, nil, false); err != nil {
				return err
			}
		case !s.DeletionTimestamp.IsZero():
		default:
			if err := r.setInUse(ctx, s, withHolder(holdersOf(s), string(conn.GetUID())), false); err != nil {
				return err
			}
		}
	}
	return nil
}

// releaseSecrets removes the in-use finalizer from the named Secrets, except from those another
// connection reading the same namespace still holds (a Secret that lost its label is held by none). That is
// read live: two connections sharing a Secret let go of it at about the same moment in a namespace
// deletion, and a cache lagging behind the other's release would leave the Secret held by nobody,
// forever.
func (r *NomadConnectionReconciler) releaseSecrets(ctx context.Context, conn v1alpha1.Connection, names []string) error {
	if len(names) == 0 {
		return nil // nothing to let go of: no live list
	}
	namespace := r.Resolver.SecretNamespace(conn)
	conns, err := r.connections(ctx, r.APIReader, namespace)
	if err != nil {
		return err
	}
	for _, name := range names {
		s, err := r.liveSecret(ctx, namespace, name)
		if err != nil {
			return err
		}
		if s == nil {
			continue
		}
		var holders []string
		if connection.OptedIn(s) {
			holders = slices.DeleteFunc(without(holdersOf(s), []string{string(conn.GetUID())}), func(uid string) bool {
				// A holder that no longer exists (deleted with its finalizer removed by hand) must
				// not keep the Secret forever. One that exists but is not marked held yet stays: it
				// holds its Secrets before itself.
				return !slices.ContainsFunc(conns, func(c v1alpha1.Connection) bool { return string(c.GetUID()) == uid })
			})
		}
		if err := r.setInUse(ctx, s, holders, connection.OptedIn(s) && r.heldByAnother(conns, conn, name)); err != nil {
			return err
		}
	}
	return nil
}

// setInUse records holders (connection UIDs) in Secret s's AnnotationHeldBy and keeps the in-use
// finalizer exactly while there are any, or while stillHeld says a connection holds it without being
// recorded (one that held it before holders were recorded). Each connection's hold is a write of its
// own: two connections holding and releasing one Secret at the same moment then conflict, instead of
// one release removing the finalizer the other just relied on. The patch carries only the finalizers,
// the annotation and s's resourceVersion (never the Secret's data), so it fails with a conflict if
// the Secret changed since it was read; the retry decides again. A Secret gone meanwhile is fine.
func (r *NomadConnectionReconciler) setInUse(ctx context.Context, s *corev1.Secret, holders []string, stillHeld bool) error {
	base := s.DeepCopy()
	if len(holders) > 0 {
		metav1.SetMetaDataAnnotation(&s.ObjectMeta, v1alpha1.AnnotationHeldBy, strings.Join(holders, ","))
	} else {
		delete(s.Annotations, v1alpha1.AnnotationHeldBy)
	}
	if len(holders) > 0 || stillHeld {
		controllerutil.AddFinalizer(s, v1alpha1.FinalizerInUse)
	} else {
		controllerutil.RemoveFinalizer(s, v1alpha1.FinalizerInUse)
	}
	if equality.Semantic.DeepEqual(base.ObjectMeta, s.ObjectMeta) {
		return nil
	}
	patch := client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
	return client.IgnoreNotFound(r.Patch(ctx, s, patch, client.FieldOwner(FieldManager)))
}

// holdersOf lists the connection UIDs a Secret records as holding it.
func holdersOf(s *corev1.Secret) []string {
	v := s.Annotations[v1alpha1.AnnotationHeldBy]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// withHolder adds uid to holders, sorted, once.
func withHolder(holders []string, uid string) []string {
	out := append(slices.Clone(holders), uid)
	slices.Sort(out)
	return slices.Compact(out)
}

// heldByAnother reports whether a connection other than conn, reading Secrets from the same
// namespace, holds Secret name in use.
func (r *NomadConnectionReconciler) heldByAnother(conns []v1alpha1.Connection, conn v1alpha1.Connection, name string) bool {
	for _, c := range conns {
		if c.GetUID() != conn.GetUID() && r.Resolver.SecretNamespace(c) == r.Resolver.SecretNamespace(conn) &&
			controllerutil.ContainsFinalizer(c, v1alpha1.FinalizerInUse) && slices.Contains(secretsOf(c), name) {
			return true
		}
	}
	return false
}

// connections lists the connections of both kinds that may read Secrets of namespace (all of them for
// ""): its NomadConnections, and the ClusterNomadConnections if they are served.
func (r *NomadConnectionReconciler) connections(ctx context.Context, c client.Reader, namespace string) ([]v1alpha1.Connection, error) {
	var out []v1alpha1.Connection
	var conns v1alpha1.NomadConnectionList
	if err := c.List(ctx, &conns, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	for i := range conns.Items {
		out = append(out, &conns.Items[i])
	}
	if !r.ClusterConnections || namespace != "" && namespace != r.Resolver.ClusterResourceNamespace {
		return out, nil
	}
	var clusterConns v1alpha1.ClusterNomadConnectionList
	if err := c.List(ctx, &clusterConns); err != nil {
		return nil, err
	}
	for i := range clusterConns.Items {
		out = append(out, &clusterConns.Items[i])
	}
	return out, nil
}

// liveSecret reads a Secret from the API server (the cache holds only the operator's own Secrets);
// nil when there is none.
func (r *NomadConnectionReconciler) liveSecret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, s)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return s, err
}

// without returns the names in all that are not in drop.
func without(all, drop []string) []string {
	return slices.DeleteFunc(slices.Clone(all), func(n string) bool { return slices.Contains(drop, n) })
}
