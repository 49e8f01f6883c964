package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// clientFor returns the NOMAD client of the token's connection. Minting waits for a Ready connection,
// so that a wrong password costs one failed login per check interval, not one per NomadToken;
// revoking does not, since it must work while a connection degrades. The connection and its client
// are looked up once per reconcile (the credentials Secret is read live, so not again per step).
func (r *NomadTokenReconciler) clientFor(ctx context.Context, obs *observed, requireReady bool) (nomad.Client, error) {
	token := obs.token
	ref := token.Spec.ConnectionRef
	if obs.conn == nil {
		conn := &v1alpha1.NomadConnection{}
		err := r.Get(ctx, types.NamespacedName{Namespace: token.Namespace, Name: ref.Name}, conn)
		if apierrors.IsNotFound(err) {
			return nil, &conditionError{v1alpha1.ReasonConnectionNotFound,
				fmt.Sprintf("NomadConnection %q not found in namespace %q", ref.Name, token.Namespace)}
		}
		if err != nil {
			return nil, err
		}
		obs.conn = conn
	}
	if requireReady {
		conn := obs.conn
		ready := meta.FindStatusCondition(conn.Status.Conditions, v1alpha1.ConditionReady)
		switch {
		case ready == nil || conn.Status.ObservedGeneration != conn.Generation:
			return nil, &conditionError{v1alpha1.ReasonConnectionNotReady,
				fmt.Sprintf("NomadConnection %q has not been checked yet", ref.Name)}
		case ready.Status != metav1.ConditionTrue:
			return nil, &conditionError{v1alpha1.ReasonConnectionNotReady,
				fmt.Sprintf("NomadConnection %q is not Ready (%s: %s)", ref.Name, ready.Reason, ready.Message)}
		}
	}
	if obs.nc == nil {
		nc, err := r.Resolver.Client(ctx, obs.conn)
		if err != nil {
			return nil, err
		}
		obs.nc = nc
	}
	return obs.nc, nil
}
