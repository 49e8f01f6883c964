package controllers

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/connection"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// conditionError is an error only a person can fix; reason and message go into the Ready condition.
type conditionError struct {
	reason  string
	message string
}

func (e *conditionError) Error() string { return e.message }

// failure is how the outcome of a failed step is reported: a condition reason, a message that says what
// to change, and whether retrying later (with backoff) can help without anyone acting.
type failure struct {
	reason    string
	message   string
	transient bool
}

// classify turns any error of a reconcile step into a failure. Messages carry NOMAD's own words
// (its "detail"), never a token: the nomad package scrubs them.
func classify(err error) failure {
	var ce *conditionError
	if errors.As(err, &ce) {
		return failure{reason: ce.reason, message: ce.message}
	}
	var cfg *connection.ConfigError
	if errors.As(err, &cfg) {
		return failure{reason: cfg.Reason, message: cfg.Message}
	}
	var ne *nomad.Error
	if !errors.As(err, &ne) {
		return failure{reason: v1alpha1.ReasonNomadUnavailable, message: err.Error(), transient: true}
	}
	switch ne.Code {
	case nomad.CodeCredentialsInvalid:
		return failure{v1alpha1.ReasonCredentialsInvalid, fmt.Sprintf("NOMAD or its realm refused the connection's credentials (%s): fix the credentials Secret; the NomadConnection's Ready condition says how for its method", ne.Detail), false}
	case nomad.CodeIssuerInvalid:
		return failure{v1alpha1.ReasonInvalidSpec, fmt.Sprintf("the OIDC issuer does not answer as NOMAD's Keycloak realm (%s): fix spec.credentials.oidc.issuerURL", ne.Detail), false}
	case nomad.CodeForbidden, nomad.CodeUnauthorized:
		return failure{v1alpha1.ReasonForbidden, fmt.Sprintf("NOMAD refused the bot account (%s): it must be a user NOMAD knows and allows on this Oasis", ne.Detail), false}
	case nomad.CodeInvalidScopes:
		return failure{v1alpha1.ReasonInvalidScopes, fmt.Sprintf("NOMAD refused the scopes (%s): fix spec.scopes", ne.Detail), false}
	case nomad.CodeLifetimeExceeded:
		return failure{v1alpha1.ReasonLifetimeExceeded, fmt.Sprintf("NOMAD refused the lifetime (%s): lower spec.expiresInDays", ne.Detail), false}
	case nomad.CodeTokenLimitReached:
		return failure{v1alpha1.ReasonTokenLimitReached, fmt.Sprintf("NOMAD refused a new PAT (%s): revoke unused PATs of the bot account or use another account", ne.Detail), false}
	case nomad.CodeTransient:
		return failure{v1alpha1.ReasonNomadUnavailable, fmt.Sprintf("NOMAD did not answer usefully, will retry: %s", ne.Error()), true}
	default:
		return failure{v1alpha1.ReasonNomadRejected, fmt.Sprintf("NOMAD rejected the request: %s", ne.Error()), false}
	}
}

func setCondition(conds *[]metav1.Condition, generation int64, condType string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	})
}

func isReady(conds []metav1.Condition) bool {
	return meta.IsStatusConditionTrue(conds, v1alpha1.ConditionReady)
}

// orDefault is d, or def when d is not set (<= 0).
func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
