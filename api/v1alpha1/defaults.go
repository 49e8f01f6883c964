package v1alpha1

import "time"

// DefaultGracePeriod is how long an Overlap rotation keeps the old PAT valid.
const DefaultGracePeriod = 10 * time.Minute

// EffectiveTokenName is the PAT's name in NOMAD: spec.tokenName, or "<namespace>/<name>".
func (t *NomadToken) EffectiveTokenName() string {
	if t.Spec.TokenName != "" {
		return t.Spec.TokenName
	}
	return t.Namespace + "/" + t.Name
}

// EffectiveSecretName is the Secret holding the raw PAT: spec.secret.name, or the NomadToken's name.
func (t *NomadToken) EffectiveSecretName() string {
	if t.Spec.Secret.Name != "" {
		return t.Spec.Secret.Name
	}
	return t.Name
}

// EffectiveSecretKey is the data key of the raw PAT: spec.secret.key, or "token".
func (t *NomadToken) EffectiveSecretKey() string {
	if t.Spec.Secret.Key != "" {
		return t.Spec.Secret.Key
	}
	return DefaultSecretKey
}

// EffectiveExpiresInDays is spec.expiresInDays, or the default 30 when the API server did not default it.
func (t *NomadToken) EffectiveExpiresInDays() int {
	if t.Spec.ExpiresInDays > 0 {
		return int(t.Spec.ExpiresInDays)
	}
	return 30
}

// EffectiveDeletionPolicy is spec.deletionPolicy, or Revoke.
func (t *NomadToken) EffectiveDeletionPolicy() DeletionPolicy {
	if t.Spec.DeletionPolicy == "" {
		return DeletionRevoke
	}
	return t.Spec.DeletionPolicy
}
