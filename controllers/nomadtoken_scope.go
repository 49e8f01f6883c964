package controllers

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// reconcileScope is the working state of one reconcile: the NomadToken whose status it writes, the
// Secrets as it last read or wrote them, and the connections and NOMAD clients it resolved (once per
// reconcile). The act steps change it. decide never sees it: decide sees the observed snapshot, taken
// before any step ran, so a plan cannot depend on the order in which steps happened to run.
type reconcileScope struct {
	token *v1alpha1.NomadToken
	// stored is the status as the API server has it: as read, then as the intent write left it.
	stored *v1alpha1.NomadTokenStatus
	// secret is the Secret at the token's current secret name, nil when there is none; previous is
	// the owned Secret at status.secretName when spec.secret.name moved away from it. Both follow
	// this reconcile's own writes.
	secret   *corev1.Secret
	previous *corev1.Secret
	// connections caches, by connection key, the connections and NOMAD clients this reconcile used
	// (clientOf).
	connections map[string]*resolvedConnection
	now         time.Time
}

// snapshot copies what decide may look at, so that no later step changes it under the plan.
func (sc *reconcileScope) snapshot(o *observed) *observed {
	o.token = sc.token.DeepCopy()
	o.secret = sc.secret.DeepCopy()
	o.previous = sc.previous.DeepCopy()
	o.now = sc.now
	return o
}
