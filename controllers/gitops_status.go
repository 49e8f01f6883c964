package controllers

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// readyFalseNeedsPerson says, for every reason Ready=False can carry on a NomadToken or a connection,
// whether only a person can fix it (true: Stalled) or it clears without anyone touching this object
// (false: Reconciling): a retry, NOMAD coming back, or a referenced object appearing or becoming Ready.
// A reference to an object that does not exist yet is not a person's job here: GitOps tools apply a
// connection, its Secret and its tokens together, in no guaranteed order, and the referenced object
// reports its own Stalled if it needs a person. Reasons missing from the table count as Reconciling,
// so a new reason never makes a GitOps tool give up early; TestReadyReasonsAreClassified keeps the
// table complete.
var readyFalseNeedsPerson = map[string]bool{
	// NomadToken.
	v1alpha1.ReasonProgressing:               false,
	v1alpha1.ReasonNomadUnavailable:          false,
	v1alpha1.ReasonConnectionNotFound:        false,
	v1alpha1.ReasonConnectionNotReady:        false,
	v1alpha1.ReasonSecretConflict:            true,
	v1alpha1.ReasonSecretRejected:            true,
	v1alpha1.ReasonSecretTemplateInvalid:     true, // spec.secret.template.data: the current PAT serves, unrenewed
	v1alpha1.ReasonCredentialsInvalid:        true,
	v1alpha1.ReasonInvalidScopes:             true,
	v1alpha1.ReasonLifetimeExceeded:          true,
	v1alpha1.ReasonTokenLimitReached:         true,
	v1alpha1.ReasonForbidden:                 true,
	v1alpha1.ReasonNomadRejected:             true,
	v1alpha1.ReasonConnectionNotAllowed:      true,
	v1alpha1.ReasonPolicyViolation:           true,
	v1alpha1.ReasonRevokeFailed:              true,
	v1alpha1.ReasonRevokedWithoutReplacement: true, // the Secret holds a revoked token: consumers are down
	// NomadConnection and ClusterNomadConnection.
	v1alpha1.ReasonSecretNotFound:         false,
	v1alpha1.ReasonUnreachable:            false,
	v1alpha1.ReasonSecretKeyMissing:       true,
	v1alpha1.ReasonCredentialsNotLabelled: true,
	v1alpha1.ReasonRefreshTokenNotStored:  true,
	v1alpha1.ReasonPATPathNotFound:        true,
	v1alpha1.ReasonInvalidCABundle:        true,
	v1alpha1.ReasonURLNotAllowed:          true, // the spec's address, or the operator's --allowed-nomad-urls
	v1alpha1.ReasonInvalidSpec:            true,
}

// setReadyCondition sets the Ready condition of a NomadToken or a connection, and with it Reconciling
// and Stalled (see ConditionReconciling), so that the three never disagree. It reports whether the
// object is now Stalled: the caller then records generation as observed, because the verdict is
// about this spec and GitOps tools read a lagging observedGeneration as "still working".
func setReadyCondition(conds *[]metav1.Condition, generation int64, status metav1.ConditionStatus, reason, message string) (stalled bool) {
	setCondition(conds, generation, v1alpha1.ConditionReady, status, reason, message)
	stalled = status == metav1.ConditionFalse && readyFalseNeedsPerson[reason]
	reconciling := status != metav1.ConditionTrue && !stalled
	setOrRemove(conds, generation, v1alpha1.ConditionStalled, stalled, reason, message)
	setOrRemove(conds, generation, v1alpha1.ConditionReconciling, reconciling, reason, message)
	return stalled
}

// setOrRemove sets an abnormal-true condition to True, or removes it: kstatus and Flux read an absent
// Reconciling or Stalled as False, and a False one would only be noise in kubectl get.
func setOrRemove(conds *[]metav1.Condition, generation int64, condType string, on bool, reason, message string) {
	if on {
		setCondition(conds, generation, condType, metav1.ConditionTrue, reason, message)
		return
	}
	meta.RemoveStatusCondition(conds, condType)
}
