package connection

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// writeBack returns the nomad.OIDCConfig.RefreshTokenRotated of a connection whose refresh token is
// key of Secret namespace/name. A realm with "Revoke Refresh Token" on answers each refresh with a new
// refresh token and refuses the previous one from then on, so the new one must be in the Secret before
// the access token is used: after a restart, or on another leader, the Secret is all there is.
//
// The write is a merge patch of that one key, locked to the resourceVersion just read (a concurrent
// edit makes it fail, and the next sign-in tries again), and only on a Secret that still carries the
// opt-in label. The Secret is overwritten while it holds previous or any other refresh token the
// connection's client has held (a sync that put an older one back, a stale read): those are spent.
// A token the client never held was written by the Secret's owner since (kubectl nomadtoken login,
// say): theirs wins and nothing is written; the pool then builds a client from it.
func (r *Resolver) writeBack(conn client.Object, namespace, name, key string) func(ctx context.Context, previous, current string) error {
	uid, connKey := string(conn.GetUID()), client.ObjectKeyFromObject(conn)
	return func(ctx context.Context, previous, current string) error {
		if r.Writer == nil {
			return fmt.Errorf("cannot store the rotated refresh token in Secret %s/%s: the resolver has no writer", namespace, name)
		}
		s := &corev1.Secret{}
		if err := r.Reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, s); err != nil {
			return fmt.Errorf("reading Secret %s/%s to store the rotated refresh token: %w", namespace, name, err)
		}
		if !OptedIn(s) {
			return notOptedIn("credentials", s)
		}
		stored := string(s.Data[key])
		live := r.Pool.LiveRefreshToken(uid, stored)
		switch {
		case stored == current:
			return nil // stored already (an earlier attempt whose answer was lost)
		case stored == live:
			return nil // the Secret holds the token the client sends next: a later rotation was stored
		case stored != previous && live == "":
			log.FromContext(ctx).Info("credentials Secret holds a refresh token the connection never used; keeping the Secret's",
				"connection", connKey, "secret", types.NamespacedName{Namespace: namespace, Name: name}, "key", key)
			return nil
		}
		base := s.DeepCopy()
		s.Data[key] = []byte(current)
		if err := r.Writer.Patch(ctx, s, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			if apierrors.IsForbidden(err) || apierrors.IsInvalid(err) {
				// Retrying cannot help: the Secret is immutable, a policy refuses the change, or the
				// operator may not patch it. Only a person can fix that.
				return &ConfigError{Reason: v1alpha1.ReasonRefreshTokenNotStored, Err: err, Message: fmt.Sprintf(
					"the realm rotated the refresh token and key %q of Secret %s/%s refuses the new one (%s): make the Secret "+
						"mutable and let the operator patch it; until then the new token lives only in the operator's memory, "+
						"and a restart loses it (then sign in again with kubectl nomadtoken login)",
					key, namespace, name, apierrors.ReasonForError(err))}
			}
			return fmt.Errorf("storing the rotated refresh token in key %q of Secret %s/%s: %w", key, namespace, name, err)
		}
		log.FromContext(ctx).V(1).Info("stored the rotated refresh token", "connection", connKey, "secret", types.NamespacedName{Namespace: namespace, Name: name}, "key", key)
		return nil
	}
}

// storeLiveRefreshToken stores the pooled client's live refresh token when it moved on from the
// Secret's (a rotation whose write-back failed), before anything may replace that client: a client
// built from the Secret's spent token, after a spec change say, would find the realm refusing it and
// the live token lost with the old client. cfg then starts from the live token.
func (r *Resolver) storeLiveRefreshToken(ctx context.Context, conn client.Object, cfg *nomad.Config) error {
	o := &cfg.OIDC
	if o.RefreshToken == "" || o.RefreshTokenRotated == nil {
		return nil
	}
	live := r.Pool.LiveRefreshToken(string(conn.GetUID()), o.RefreshToken)
	if live == "" || live == o.RefreshToken {
		return nil
	}
	if err := o.RefreshTokenRotated(ctx, o.RefreshToken, live); err != nil {
		if apierrors.IsConflict(err) {
			// The Secret changed since it was read: most likely the client's own write-back of this
			// very rotation, which the next read shows. Go on with the Secret as read: the pool keeps
			// the client, which holds its token, unless the spec changed at this very moment too.
			return nil
		}
		return err
	}
	o.RefreshToken = live
	return nil
}
