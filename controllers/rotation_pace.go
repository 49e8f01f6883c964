package controllers

import (
	"time"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// How often a NomadToken may get a new PAT through a rotation is the platform's to bound, with a
// connection policy's minRotationInterval: every PAT costs the shared bot account a create, a
// revocation and a year of NOMAD's memory of it, whoever asked for it. Two rules share the bound:
//
//   - a rotation requested with the rotate annotation waits until minRotationInterval has passed
//     since the current PAT was issued (whatever issued it), or until its planned renewal comes
//     first (rotationAllowedAt);
//   - a spec whose renewal schedule would rotate more often than that is a policy violation
//     (renewalSpacing), so planned renewals keep to the bound without ever being held back: a PAT
//     is never left to expire for the sake of the interval.
//
// Without a policy (or without minRotationInterval) a rotate request is served once per annotation
// value, and at most one every rotateRequestDebounce: a burst of requests (a script, a GitOps tool
// flapping the annotation) gets one rotation, not one each.

// rotateRequestDebounce is the least time between a rotation and the next one a rotate request gets.
const rotateRequestDebounce = 10 * time.Second

// rotateRequestDueAt is when a rotate request may be served: after the policy's pace
// (o.rotationAllowedAt) and the debounce since the last rotation, whichever ends later.
func rotateRequestDueAt(o *observed) time.Time {
	due := o.rotationAllowedAt
	if last := o.token.Status.LastRotationTime; last != nil && last.Add(rotateRequestDebounce).After(due) {
		due = last.Add(rotateRequestDebounce)
	}
	return due
}

// rotationAllowedAt is the earliest time a rotation (RotateRequested or RenewalDue) may give token a
// new PAT under policy; the zero time when nothing bounds it. It is never later than the token's
// planned renewal, so it only ever holds back a rotate request.
func rotationAllowedAt(token *v1alpha1.NomadToken, policy *v1alpha1.ConnectionPolicy) time.Time {
	st := token.Status
	if policy == nil || policy.MinRotationInterval == nil || policy.MinRotationInterval.Duration <= 0 ||
		st.IssuedAt == nil || st.ExpiresAt == nil {
		return time.Time{}
	}
	allowed := st.IssuedAt.Add(policy.MinRotationInterval.Duration)
	if renewal := tokenRenewalTime(token); renewal.Before(allowed) {
		return renewal
	}
	return allowed
}

// renewalSpacing is how long the token's spec keeps a PAT before its planned renewal, for a PAT
// that NOMAD gives the full spec.expiresInDays: the renewBefore, renewBeforePercentage or default
// share of the lifetime, held the safety floor before expiry. The jitter that spreads renewals (at
// most 5%, at most 30 minutes, earlier) is left out: it is the operator's, not the spec's.
func renewalSpacing(token *v1alpha1.NomadToken) time.Duration {
	lifetime := time.Duration(token.EffectiveExpiresInDays()) * 24 * time.Hour
	var issued time.Time // any instant: only the difference counts
	expires := issued.Add(lifetime)
	planned := plannedRenewal(issued, expires, lifetime, token.Spec.Rotation)
	if latest := expires.Add(-safetyFloor(lifetime, token.Spec.Rotation)); planned.After(latest) {
		planned = latest
	}
	return planned.Sub(issued)
}
