package controllers

import (
	"time"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// defaultRenewFraction is how much of a PAT's lifetime passes before it is replaced by default.
const defaultRenewFraction = 2.0 / 3.0

// renewalTime is when a PAT created at issuedAt and expiring at expiresAt should be replaced.
// It works from NOMAD's answer, not from the request: the server may round or cap the lifetime.
// A renewBefore at least as long as the lifetime would mean "renew at once, forever"; it falls back
// to the default instead.
func renewalTime(issuedAt, expiresAt time.Time, rot v1alpha1.Rotation) time.Time {
	lifetime := expiresAt.Sub(issuedAt)
	if lifetime <= 0 {
		return issuedAt
	}
	switch {
	case rot.RenewBefore != nil && rot.RenewBefore.Duration > 0 && rot.RenewBefore.Duration < lifetime:
		return expiresAt.Add(-rot.RenewBefore.Duration)
	case rot.RenewBeforePercentage != nil && *rot.RenewBeforePercentage > 0 && *rot.RenewBeforePercentage < 100:
		before := time.Duration(float64(lifetime) * float64(*rot.RenewBeforePercentage) / 100)
		return expiresAt.Add(-before)
	default:
		return issuedAt.Add(time.Duration(float64(lifetime) * defaultRenewFraction))
	}
}
