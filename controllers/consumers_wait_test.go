package controllers

import (
	"testing"
	"time"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// TestJudgeOldPAT is the waitForConsumers rule: gracePeriod 10m, unusedFor 5m, maxGracePeriod 24h,
// swap at t0. Times are the cluster's; NOMAD's last_used_at is in NOMAD's clock (cluster + offset).
func TestJudgeOldPAT(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	graceEnd, deadline := t0.Add(10*time.Minute), t0.Add(24*time.Hour)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	// seen is a look at NOMAD taken at cluster time seenAt, NOMAD's clock ahead by offset, showing
	// a last use at NOMAD time lastUse (nil: never used).
	seen := func(seenAt time.Duration, offset time.Duration, lastUse *time.Duration) *patUse {
		u := &patUse{seenAt: at(seenAt), nomadOffset: offset}
		if lastUse != nil {
			l := at(*lastUse)
			u.lastUsedAt = &l
		}
		return u
	}
	d := func(x time.Duration) *time.Duration { return &x }
	wait := func(mutate func(*oldPATWait)) oldPATWait {
		w := oldPATWait{revokeAt: &graceEnd, revokeBy: &deadline, swap: t0, unusedFor: 5 * time.Minute}
		if mutate != nil {
			mutate(&w)
		}
		return w
	}
	withUse := func(u *patUse) func(*oldPATWait) { return func(w *oldPATWait) { w.use = u } }
	cases := []struct {
		name string
		now  time.Duration
		wait oldPATWait
		// want
		fate       fate
		reason     string
		wantsLook  bool
		atDeadline bool
		lookAgain  time.Duration // 0: not checked
	}{
		{name: "inside gracePeriod, used or not", now: 9 * time.Minute, wait: wait(withUse(seen(8*time.Minute, 0, d(8*time.Minute)))),
			fate: keep, lookAgain: 10 * time.Minute},
		{name: "no waitForConsumers: revoked when gracePeriod ends", now: 10 * time.Minute,
			wait: wait(func(w *oldPATWait) { w.revokeBy = nil; w.use = seen(10*time.Minute, 0, d(10*time.Minute)) }), fate: revokeAtOnce},
		{name: "never used", now: 10 * time.Minute, wait: wait(withUse(seen(10*time.Minute, 0, nil))), fate: revokeAtOnce},
		{name: "a look from before the swap does not count: look once", now: 10 * time.Minute,
			wait: wait(withUse(seen(-time.Minute, 0, nil))), fate: keep, reason: v1alpha1.ReasonOldTokenInUse, wantsLook: true},
		// status keeps the swap in whole seconds: a list requested in that second may predate it.
		{name: "a look within the second of the swap does not count", now: 10 * time.Minute,
			wait: wait(withUse(seen(500*time.Millisecond, 0, nil))), fate: keep, reason: v1alpha1.ReasonOldTokenInUse, wantsLook: true},
		// A look proves nothing about the uses after it: a consumer may have started again since.
		{name: "a look that showed it never used, taken minutes ago, does not prove it idle now: look once", now: 10*time.Minute + time.Second,
			wait: wait(withUse(seen(time.Minute, 0, nil))), fate: keep, reason: v1alpha1.ReasonOldTokenInUse, wantsLook: true},
		{name: "a look that showed it idle for an hour, 4 minutes ago, does not either", now: 14 * time.Minute,
			wait: wait(withUse(seen(10*time.Minute, 0, d(-time.Hour)))), fate: keep, reason: v1alpha1.ReasonOldTokenInUse, wantsLook: true},
		{name: "a look of a few seconds ago proves it", now: 14 * time.Minute,
			wait: wait(withUse(seen(14*time.Minute-lookCountsFor, 0, d(-time.Hour)))), fate: revokeAtOnce},
		{name: "no look at all when gracePeriod ends: look once", now: 10 * time.Minute, wait: wait(nil),
			fate: keep, reason: v1alpha1.ReasonOldTokenInUse, wantsLook: true},
		{name: "used until just before gracePeriod ended: kept until unusedFor has passed", now: 10 * time.Minute,
			wait: wait(withUse(seen(10*time.Minute, 0, d(9*time.Minute+50*time.Second)))),
			fate: keep, reason: v1alpha1.ReasonOldTokenInUse, lookAgain: 14*time.Minute + 50*time.Second},
		{name: "then revoked by a look taken once unusedFor has passed", now: 15 * time.Minute,
			wait: wait(withUse(seen(15*time.Minute, 0, d(9*time.Minute+50*time.Second)))), fate: revokeAtOnce},
		{name: "the last look is older than the moment it could be proven: look once", now: 15 * time.Minute,
			wait: wait(withUse(seen(10*time.Minute, 0, d(9*time.Minute+50*time.Second)))),
			fate: keep, reason: v1alpha1.ReasonOldTokenInUse, wantsLook: true},
		{name: "a look just taken is not repeated at once", now: 15 * time.Minute,
			wait: wait(withUse(seen(15*time.Minute-time.Second, 0, d(14*time.Minute)))),
			fate: keep, reason: v1alpha1.ReasonOldTokenInUse, wantsLook: false, lookAgain: 19 * time.Minute},
		{name: "used all along: kept past gracePeriod", now: 6 * time.Hour,
			wait: wait(withUse(seen(6*time.Hour-time.Minute, 0, d(6*time.Hour-time.Minute-2*time.Second)))),
			fate: keep, reason: v1alpha1.ReasonOldTokenInUse},
		{name: "used all along, 10 hours into the wait: looked at again no sooner than an hour on", now: 10 * time.Hour,
			wait: wait(func(w *oldPATWait) {
				w.unusedFor = time.Second
				w.use = seen(10*time.Hour, 0, d(10*time.Hour))
			}), fate: keep, reason: v1alpha1.ReasonOldTokenInUse, lookAgain: 11 * time.Hour},
		{name: "used all along: revoked at maxGracePeriod with a Warning", now: 24 * time.Hour,
			wait: wait(withUse(seen(24*time.Hour-time.Minute, 0, d(24*time.Hour-time.Minute)))), fate: revokeAtOnce, atDeadline: true},
		{name: "idle at maxGracePeriod: revoked without a Warning", now: 24 * time.Hour,
			wait: wait(withUse(seen(24*time.Hour-time.Second, 0, d(time.Hour)))), fate: revokeAtOnce},
		// NOMAD's clock 2 minutes behind: a last use 4 minutes ago by NOMAD's clock looks 6 minutes
		// old by the cluster's. Reading it in NOMAD's clock keeps the PAT.
		{name: "NOMAD 2 minutes behind: not revoked early", now: 20 * time.Minute,
			wait: wait(withUse(seen(20*time.Minute, -2*time.Minute, d(14*time.Minute)))),
			fate: keep, reason: v1alpha1.ReasonOldTokenInUse},
		{name: "NOMAD 2 minutes behind: revoked once idle by its own clock", now: 21 * time.Minute,
			wait: wait(withUse(seen(21*time.Minute, -2*time.Minute, d(14*time.Minute)))), fate: revokeAtOnce},
		// NOMAD's clock 2 minutes ahead: a last use that looks 3 minutes old by the cluster's clock
		// is 5 by NOMAD's; it is not kept longer than unusedFor.
		{name: "NOMAD 2 minutes ahead: not kept longer", now: 20 * time.Minute,
			wait: wait(withUse(seen(20*time.Minute, 2*time.Minute, d(17*time.Minute)))), fate: revokeAtOnce},
		{name: "NOMAD 2 minutes ahead: a use in the cluster's future still counts", now: 20 * time.Minute,
			wait: wait(withUse(seen(20*time.Minute, 2*time.Minute, d(21*time.Minute)))),
			fate: keep, reason: v1alpha1.ReasonOldTokenInUse, lookAgain: 24 * time.Minute},
		{name: "NOMAD outage: the last look failed, kept and looked at again", now: 30 * time.Minute,
			wait: wait(func(w *oldPATWait) {
				w.use = seen(20*time.Minute, 0, d(19*time.Minute))
				w.useUnknown = "NOMAD is unavailable"
			}), fate: keep, reason: v1alpha1.ReasonOldTokenUseUnknown, lookAgain: 30*time.Minute + useRetry},
		{name: "NOMAD outage: nothing seen since the swap, kept", now: 30 * time.Minute,
			wait: wait(func(w *oldPATWait) { w.useUnknown = "NOMAD is unavailable" }), fate: keep, reason: v1alpha1.ReasonOldTokenUseUnknown},
		{name: "NOMAD outage: revoked at maxGracePeriod all the same", now: 24 * time.Hour,
			wait: wait(func(w *oldPATWait) { w.useUnknown = "NOMAD is unavailable" }), fate: revokeAtOnce, atDeadline: true},
		{name: "gone in NOMAD: nothing to wait for", now: 11 * time.Minute,
			wait: wait(withUse(&patUse{seenAt: at(11 * time.Minute), gone: true})), fate: revokeAtOnce},
		{name: "revoke-now during the wait", now: time.Hour,
			wait: wait(func(w *oldPATWait) { w.use = seen(time.Hour, 0, d(time.Hour)); w.revokeNow = true }), fate: revokeAtOnce},
		{name: "revoke-now inside gracePeriod", now: time.Minute, wait: wait(func(w *oldPATWait) { w.revokeNow = true }), fate: revokeAtOnce},
		{name: "deletion during the wait", now: time.Hour,
			wait: wait(func(w *oldPATWait) { w.use = seen(time.Hour, 0, d(time.Hour)); w.deleting = true }), fate: revokeAtOnce},
		{name: "the connection's account changed during the wait", now: time.Hour,
			wait: wait(func(w *oldPATWait) { w.use = seen(time.Hour, 0, d(time.Hour)); w.accountMoved = true }), fate: revokeAtOnce},
		{name: "a restart target still rolling out holds an idle PAT", now: time.Hour,
			wait: wait(func(w *oldPATWait) { w.use = seen(time.Hour, 0, nil); w.rolling = []string{"Deployment web"} }),
			fate: keep, reason: v1alpha1.ReasonRolloutInProgress, lookAgain: time.Hour + rolloutRecheck},
		{name: "a rollout that never finishes: revoked at maxGracePeriod with a Warning", now: 24 * time.Hour,
			wait: wait(func(w *oldPATWait) { w.use = seen(24*time.Hour, 0, nil); w.rolling = []string{"Deployment web"} }),
			fate: revokeAtOnce, atDeadline: true},
		{name: "a previous PAT without a time goes at once", now: 0, wait: oldPATWait{}, fate: revokeAtOnce},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := judgeOldPAT(at(c.now), c.wait)
			if got.fate != c.fate || got.reason != c.reason || got.wantsLook != c.wantsLook || got.atDeadline != c.atDeadline {
				t.Errorf("got fate %v reason %q wantsLook %v atDeadline %v; want %v %q %v %v",
					got.fate, got.reason, got.wantsLook, got.atDeadline, c.fate, c.reason, c.wantsLook, c.atDeadline)
			}
			if c.lookAgain != 0 && !got.lookAgainAt.Equal(at(c.lookAgain)) {
				t.Errorf("look again at %s, want %s", got.lookAgainAt.Sub(t0), c.lookAgain)
			}
		})
	}
}
