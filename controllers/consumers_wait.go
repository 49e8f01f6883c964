package controllers

import (
	"time"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// minUseRefresh is the least time between two narrow looks at one old PAT's use: a look that did not
// prove it idle is not repeated at once, whatever the clocks say.
const minUseRefresh = 2 * time.Second

// useRetry is how soon the old PAT's use is looked at again after a look failed (NOMAD down).
const useRetry = 30 * time.Second

// rolloutRecheck is how often restart targets still rolling out are read again: workloads are not
// watched (restartConsumers says why), so the wait polls them, only while it lasts.
const rolloutRecheck = 10 * time.Second

// patUse is what NOMAD showed of one PAT's use.
type patUse struct {
	// lastUsedAt is NOMAD's last_used_at, in NOMAD's clock; nil when it was never used.
	lastUsedAt *time.Time
	// seenAt is when the answer was asked for, in the cluster's clock.
	seenAt time.Time
	// nomadOffset is how far NOMAD's clock was ahead of the cluster's then (estimated low).
	nomadOffset time.Duration
	// gone: NOMAD no longer holds the PAT active (revoked by someone, expired, pruned).
	gone bool
}

// idleFor is how long the PAT had gone unused when NOMAD answered; ok is false for a PAT never used.
// NOMAD's clock at the answer is the cluster's plus the offset: comparing last_used_at with the
// cluster's clock instead would revoke early by as much as NOMAD's clock is behind.
func (u patUse) idleFor() (time.Duration, bool) {
	if u.lastUsedAt == nil {
		return 0, false
	}
	return u.seenAt.Add(u.nomadOffset).Sub(*u.lastUsedAt), true
}

// oldPATWait is what the fate of the PAT an Overlap rotation replaced (the previous PAT) depends on.
type oldPATWait struct {
	// revokeAt is the end of gracePeriod; nil for a previous PAT with no time (revoked at once).
	revokeAt *time.Time
	// revokeBy is when it goes whatever its use (maxGracePeriod); nil without waitForConsumers.
	revokeBy *time.Time
	// swap is when the Secret got the new PAT (whole seconds, as status keeps it): only looks taken
	// since count.
	swap time.Time
	// unusedFor is waitForConsumers.unusedFor.
	unusedFor time.Duration
	// use is the freshest look at the old PAT's use; nil when there was none.
	use *patUse
	// useUnknown is why the last look at its use failed (NOMAD down), "" when it did not.
	useUnknown string
	// rolling names the restart targets whose rollout of the new PAT has not finished.
	rolling []string
	// revokeNow, deleting: incident response and deletion take it at once.
	revokeNow, deleting bool
	// accountMoved: the connection now signs in as another NOMAD user, who can see neither its use
	// nor revoke it; the token is getting a PAT of that user, and the old one is queued at once.
	accountMoved bool
}

// oldPATVerdict is judgeOldPAT's answer.
type oldPATVerdict struct {
	fate fate
	// reason is why a kept PAT waits past gracePeriod (a ConsumersMoved reason; "" inside it).
	reason string
	// atDeadline: revoked at maxGracePeriod although its consumers had not moved.
	atDeadline bool
	// lookAgainAt is when a kept PAT's fate may change without any event.
	lookAgainAt time.Time
	// wantsLook: the freshest look is too old to decide on; look once more now (one narrow request).
	wantsLook bool
}

// judgeOldPAT decides what becomes of the previous PAT at now. It is kept until gracePeriod ends;
// then, without waitForConsumers, it is revoked. With it, it is revoked as soon as a look at NOMAD
// taken just now (within lookCountsFor) shows it unused for unusedFor (or never used), and no
// restart target is still rolling out, and at revokeBy whatever its use. Revoke-now, deletion and an
// account change revoke it at once.
//
// A look proves nothing about uses after it: an older one only tells when a new look could prove
// the PAT idle, and then one narrow request is made (wantsLook). The connection's periodic list wakes
// the tokens that wait, so a list that proves it decides at once, for free.
func judgeOldPAT(now time.Time, w oldPATWait) oldPATVerdict {
	switch {
	case w.revokeNow || w.deleting || w.accountMoved || w.revokeAt == nil:
		return oldPATVerdict{fate: revokeAtOnce}
	case now.Before(*w.revokeAt):
		return oldPATVerdict{fate: keep, lookAgainAt: *w.revokeAt}
	case w.revokeBy == nil:
		return oldPATVerdict{fate: revokeAtOnce}
	case !now.Before(*w.revokeBy):
		return oldPATVerdict{fate: revokeAtOnce, atDeadline: len(w.rolling) > 0 || !w.lastLookIdle()}
	case len(w.rolling) > 0:
		return oldPATVerdict{fate: keep, reason: v1alpha1.ReasonRolloutInProgress, lookAgainAt: earlier(now.Add(rolloutRecheck), *w.revokeBy)}
	case w.useUnknown != "":
		return oldPATVerdict{fate: keep, reason: v1alpha1.ReasonOldTokenUseUnknown, lookAgainAt: earlier(now.Add(useRetry), *w.revokeBy)}
	}
	u := w.freshUse()
	if u != nil && now.Sub(u.seenAt) <= lookCountsFor && w.lastLookIdle() {
		return oldPATVerdict{fate: revokeAtOnce}
	}
	// Not proven idle now: look when a look could prove it, no sooner than minUseRefresh after the
	// last one (and come back then, should that look be held back).
	provable := now // nothing seen since the swap, or it looked idle but that look is too old
	if u != nil && !w.lastLookIdle() {
		// NOMAD's clock passes lastUsedAt+unusedFor at the cluster's clock less the offset.
		provable = u.lastUsedAt.Add(w.unusedFor).Add(-u.nomadOffset)
	}
	if u != nil {
		// Looks back off as the wait grows (a tenth of it): a consumer that never stops costs a
		// bounded number of GETs over maxGracePeriod, however short unusedFor is. The periodic
		// list still wakes the wait, and decides it when it proves the PAT idle.
		floor := max(minUseRefresh, u.seenAt.Sub(w.swap)/10)
		if provable.Before(u.seenAt.Add(floor)) {
			provable = u.seenAt.Add(floor)
		}
	}
	return oldPATVerdict{fate: keep, reason: v1alpha1.ReasonOldTokenInUse,
		lookAgainAt: earlier(provable, *w.revokeBy), wantsLook: !now.Before(provable)}
}

// lookCountsFor is how old a look at the old PAT may be and still prove it idle now: the uses it
// cannot see are that recent at most. A look in the reconcile a list woke, or a GET just made, is.
const lookCountsFor = 5 * time.Second

// lastLookIdle reports a look since the swap that showed the old PAT gone, never used, or unused for
// unusedFor when it was taken.
func (w oldPATWait) lastLookIdle() bool {
	u := w.freshUse()
	if u == nil {
		return false
	}
	idle, used := u.idleFor()
	return u.gone || !used || idle >= w.unusedFor
}

// freshUse is the look at the old PAT's use if it was taken since the swap (before it, consumers had
// no new token to move to, and a list may not even hold the PAT yet). status keeps the swap in whole
// seconds, so a look within the second after it does not count either.
func (w oldPATWait) freshUse() *patUse {
	if w.use == nil || w.use.seenAt.Before(w.swap.Truncate(time.Second).Add(time.Second)) {
		return nil
	}
	return w.use
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
