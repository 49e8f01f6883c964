package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// observe gathers what decide looks at, and returns it as a snapshot that no later step changes.
// It reads and records what it saw (the PAT's owner and last use, as NOMAD listed them), and changes
// nothing outside: an issuance whose outcome is unknown (status.pendingIssuance) is looked up in NOMAD
// here, and settled by the act stage as decide plans it. If a read fails, o.incomplete says why and
// nothing is minted on partial knowledge.
func (r *NomadTokenReconciler) observe(ctx context.Context, sc *reconcileScope) *observed {
	token := sc.token
	o := &observed{heldOff: r.heldOff(token)}
	if c := meta.FindStatusCondition(sc.stored.Conditions, v1alpha1.ConditionReady); c != nil {
		o.readyBefore = c.DeepCopy()
	}
	backfillMinter(token)
	defer sc.snapshot(o)
	// An interrupted issuance is settled by what the Secrets hold: that is read from the API server,
	// since the cache may still show them from before the interruption (adopting from a stale copy
	// would revoke the PAT the Secret really holds).
	var reader client.Reader = r
	if token.Status.PendingIssuance != nil {
		reader = r.APIReader
	}
	if o.incomplete = r.loadSecrets(ctx, sc, reader); o.incomplete != nil {
		return o
	}
	if sc.secret != nil && !ownedBy(sc.secret, token) {
		if o.adoptSecret, o.incomplete = r.secretAdoptable(ctx, sc.secret, token); o.incomplete != nil {
			return o
		}
	}
	if token.Status.PendingIssuance != nil {
		// Settled before anything else is decided, whatever else holds (even a conflicting Secret
		// must not keep an orphaned PAT alive): the next reconcile plans on the settled status.
		o.pending, o.incomplete = r.findPendingIssuance(ctx, sc)
		return o
	}
	if o.incomplete = r.verifyInNomad(ctx, sc, o); o.incomplete != nil {
		return o
	}
	o.oldPAT = r.observeOldPAT(ctx, sc)
	if o.refused, o.rotationAllowedAt, o.incomplete = r.mintRefusal(ctx, sc); o.incomplete != nil {
		return o
	}
	o.apiRoots = r.templateAPIRoots(ctx, sc)
	o.awaitingHold = r.awaitingHold(ctx, sc)
	if o.refused == nil && (o.adoptSecret || sc.secret != nil && ownedBy(sc.secret, token)) {
		o.restored, o.incomplete = r.findRestoredPAT(ctx, sc)
	}
	return o
}

// loadSecrets reads, through reader, the Secret at the wanted name and, after spec.secret.name
// changed, the owned one at the old name.
func (r *NomadTokenReconciler) loadSecrets(ctx context.Context, sc *reconcileScope, reader client.Reader) error {
	token := sc.token
	var err error
	if sc.secret, err = r.getSecret(ctx, reader, token.Namespace, token.EffectiveSecretName()); err != nil {
		return err
	}
	if prev := token.Status.SecretName; prev != "" && prev != token.EffectiveSecretName() {
		s, err := r.getSecret(ctx, reader, token.Namespace, prev)
		if err != nil {
			return err
		}
		if s != nil && ownedBy(s, token) {
			sc.previous = s
		}
	}
	return nil
}

// A Secret the cache does not hold (not labelled: someone else's, or a credentials Secret) is read
// live; so is the token's Secret after a write that may have landed (nomadtoken_issue.go).
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

// getSecret reads through reader (the cache, or the API server) and, on a miss, from the API server: a
// Secret without the operator's label is invisible to the cache but must still never be overwritten.
func (r *NomadTokenReconciler) getSecret(ctx context.Context, reader client.Reader, namespace, name string) (*corev1.Secret, error) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	s := &corev1.Secret{}
	err := reader.Get(ctx, key, s)
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

// heldOff returns NOMAD's recent refusal of this generation of token while its hold-off lasts.
func (r *NomadTokenReconciler) heldOff(token *v1alpha1.NomadToken) *holdOff {
	key := types.NamespacedName{Namespace: token.Namespace, Name: token.Name}
	v, ok := r.holdOffs.Load(key)
	if !ok {
		return nil
	}
	h := v.(holdOff)
	if h.uid != token.UID || h.generation != token.Generation || !r.Clock.Now().Before(h.until) {
		r.holdOffs.Delete(key)
		return nil
	}
	return &h
}

// holdOffFor stores NOMAD's refusal of token's generation until now+retry.
func (r *NomadTokenReconciler) holdOffFor(token *v1alpha1.NomadToken, refusal failure, retry time.Duration) {
	r.holdOffs.Store(types.NamespacedName{Namespace: token.Namespace, Name: token.Name},
		holdOff{uid: token.UID, generation: token.Generation, until: r.Clock.Now().Add(retry), refusal: refusal,
			rotateRequest: token.Annotations[v1alpha1.AnnotationRotate]})
}
