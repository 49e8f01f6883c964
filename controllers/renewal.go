package controllers

import (
	"hash/fnv"
	"time"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

const (
	// defaultRenewFraction is how much of a PAT's lifetime passes before it is replaced by default.
	defaultRenewFraction = 2.0 / 3.0
	// propagationAllowance is how long a Secret update may take to reach pods (kubelet syncs mounted
	// Secrets about once a minute); the old PAT must stay valid at least that long after a renewal.
	propagationAllowance = 2 * time.Minute
	// jitterShare and maxJitter bound the spread that keeps many tokens created together from all
	// renewing in the same second: up to 5% of the time to renewal, at most 30 minutes, always earlier.
	jitterShare = 0.05
	maxJitter   = 30 * time.Minute
)

// renewalTime is when a PAT created at issuedAt and expiring at expiresAt is replaced.
//
// It works from NOMAD's answer, not from the request. The planned time comes from renewBefore,
// renewBeforePercentage or the default 2/3 of the lifetime; it is then held at least a safety floor
// before expiry (grace period plus propagation, or half the lifetime for very short PATs), and moved
// earlier by a jitter derived from seed (stable across reconciles, so status does not churn). Jitter
// only ever moves renewal earlier, so it can never push it past the floor.
func renewalTime(issuedAt, expiresAt time.Time, rot v1alpha1.Rotation, seed string) time.Time {
	lifetime := expiresAt.Sub(issuedAt)
	if lifetime <= 0 {
		return issuedAt
	}
	planned := plannedRenewal(issuedAt, expiresAt, lifetime, rot)
	if latest := expiresAt.Add(-safetyFloor(lifetime, rot)); planned.After(latest) {
		planned = latest
	}
	window := min(time.Duration(float64(planned.Sub(issuedAt))*jitterShare), maxJitter)
	// Whole seconds, as status stores it: a fraction would differ from the stored value on every
	// reconcile and cost a status write each time.
	return planned.Add(-jitter(seed, window)).Truncate(time.Second)
}

func plannedRenewal(issuedAt, expiresAt time.Time, lifetime time.Duration, rot v1alpha1.Rotation) time.Time {
	switch {
	case rot.RenewBefore != nil && rot.RenewBefore.Duration > 0 && rot.RenewBefore.Duration < lifetime:
		return expiresAt.Add(-rot.RenewBefore.Duration)
	case rot.RenewBeforePercentage != nil && *rot.RenewBeforePercentage > 0 && *rot.RenewBeforePercentage < 100:
		return expiresAt.Add(-time.Duration(float64(lifetime) * float64(*rot.RenewBeforePercentage) / 100))
	default:
		return issuedAt.Add(time.Duration(float64(lifetime) * defaultRenewFraction))
	}
}

// safetyFloor is the least time left on the old PAT when it is replaced.
func safetyFloor(lifetime time.Duration, rot v1alpha1.Rotation) time.Duration {
	floor := propagationAllowance
	if effectiveStrategy(rot) == v1alpha1.RotationOverlap {
		floor += gracePeriod(rot)
	}
	return min(floor, lifetime/2)
}

// jitter maps seed to a duration in [0, window).
func jitter(seed string, window time.Duration) time.Duration {
	if window <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(seed))
	return time.Duration(h.Sum64() % uint64(window))
}

func effectiveStrategy(rot v1alpha1.Rotation) v1alpha1.RotationStrategy {
	if rot.Strategy == "" {
		return v1alpha1.RotationOverlap
	}
	return rot.Strategy
}

func gracePeriod(rot v1alpha1.Rotation) time.Duration {
	if rot.GracePeriod != nil {
		return max(rot.GracePeriod.Duration, 0) // admission refuses negative ones; objects stored before may have them
	}
	return v1alpha1.DefaultGracePeriod
}

// tokenRenewalTime is renewalTime for the token's current PAT.
func tokenRenewalTime(t *v1alpha1.NomadToken) time.Time {
	st := t.Status
	// Whole seconds in: NOMAD's answer has fractions, the stored status does not, and both must plan
	// the same time.
	return renewalTime(st.IssuedAt.Truncate(time.Second), st.ExpiresAt.Truncate(time.Second), t.Spec.Rotation, string(t.UID)+"/"+st.TokenID)
}
