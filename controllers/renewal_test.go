package controllers

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

var renewalIssued = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func days(n int) time.Time { return renewalIssued.AddDate(0, 0, n) }

func TestRenewalTimeBeforeJitter(t *testing.T) {
	tests := []struct {
		name    string
		expires time.Time
		rot     v1alpha1.Rotation
		want    time.Time
	}{
		{"default renews at two thirds of the lifetime", days(30), v1alpha1.Rotation{}, days(20)},
		{"default works from the real lifetime, not the requested one", days(9), v1alpha1.Rotation{}, days(6)},
		{"renewBefore counts back from expiry", days(30), v1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: 240 * time.Hour}}, days(20)},
		{"renewBefore at least the lifetime falls back to the default", days(5),
			v1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: 240 * time.Hour}}, renewalIssued.Add(80 * time.Hour)},
		{"percentage is the share left at renewal", days(100), v1alpha1.Rotation{RenewBeforePercentage: ptr.To[int32](25)}, days(75)},
		{"the floor keeps grace plus propagation before expiry (Overlap)", days(1),
			v1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: time.Minute}}, days(1).Add(-12 * time.Minute)},
		{"the floor is only propagation for Rotate", days(1),
			v1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: time.Minute}, Strategy: v1alpha1.RotationRotate}, days(1).Add(-2 * time.Minute)},
		{"a longer grace period raises the floor", days(1),
			v1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: time.Hour}, GracePeriod: &metav1.Duration{Duration: 3 * time.Hour}},
			days(1).Add(-3*time.Hour - 2*time.Minute)},
		{"the floor never exceeds half the lifetime", days(1),
			v1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: time.Hour}, GracePeriod: &metav1.Duration{Duration: 20 * time.Hour}},
			renewalIssued.Add(12 * time.Hour)},
		{"a zero lifetime renews at once", renewalIssued, v1alpha1.Rotation{}, renewalIssued},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// An empty seed still jitters; compare against the window instead of an exact time.
			got := renewalTime(renewalIssued, tt.expires, tt.rot, "seed")
			window := min(time.Duration(float64(tt.want.Sub(renewalIssued))*jitterShare), maxJitter)
			if got.After(tt.want) || !got.After(tt.want.Add(-window-time.Nanosecond)) {
				t.Errorf("renewalTime = %s, want within (%s, %s]", got, tt.want.Add(-window), tt.want)
			}
		})
	}
}

func TestRenewalJitterIsStableBoundedAndSpread(t *testing.T) {
	expires := days(30)
	planned := days(20)
	a := renewalTime(renewalIssued, expires, v1alpha1.Rotation{}, "uid-1/pat-1")
	if b := renewalTime(renewalIssued, expires, v1alpha1.Rotation{}, "uid-1/pat-1"); !a.Equal(b) {
		t.Fatalf("jitter must be stable for one token and PAT: %s != %s", a, b)
	}
	perSecond := map[int64]int{}
	for i := range 1000 {
		got := renewalTime(renewalIssued, expires, v1alpha1.Rotation{}, fmt.Sprintf("uid-%d/pat", i))
		if got.After(planned) || got.Before(planned.Add(-maxJitter)) {
			t.Fatalf("token %d renews at %s, outside [%s, %s]", i, got, planned.Add(-maxJitter), planned)
		}
		perSecond[got.Unix()]++
	}
	// 1000 tokens over a 30-minute window: about 770 distinct seconds when spread uniformly, and
	// hardly ever more than a handful in one second.
	busiest := 0
	for _, n := range perSecond {
		busiest = max(busiest, n)
	}
	if len(perSecond) < 700 || busiest > 6 {
		t.Errorf("1000 tokens created together renew in %d distinct seconds, up to %d in one", len(perSecond), busiest)
	}
}

func TestJitterNeverPassesTheFloor(t *testing.T) {
	expires := renewalIssued.Add(24 * time.Hour)
	rot := v1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: time.Second}, Strategy: v1alpha1.RotationRotate}
	for i := range 200 {
		got := renewalTime(renewalIssued, expires, rot, fmt.Sprint(i))
		if got.After(expires.Add(-propagationAllowance)) {
			t.Fatalf("renewal %s is closer to expiry than the floor", got)
		}
	}
}

// The planned time is what status stores (whole seconds), whether it is computed from NOMAD's answer
// (with fractions) or from the stored status: otherwise every reconcile would see a different renewal
// time than the stored one and write status again.
func TestRenewalTimeIsTheSameFromNomadsAnswerAndFromStoredStatus(t *testing.T) {
	for i := range 50 {
		fresh := issuedToken()
		fresh.UID = types.UID(fmt.Sprintf("uid-%d", i))
		fraction := time.Duration(i) * 19 * time.Millisecond
		fresh.Status.IssuedAt = &metav1.Time{Time: issuedAt.Add(fraction)}
		fresh.Status.ExpiresAt = &metav1.Time{Time: issuedAt.AddDate(0, 0, 30).Add(fraction)}
		stored := fresh.DeepCopy()
		stored.Status.IssuedAt.Time = stored.Status.IssuedAt.Truncate(time.Second)
		stored.Status.ExpiresAt.Time = stored.Status.ExpiresAt.Truncate(time.Second)

		planned := tokenRenewalTime(fresh)
		if planned.Nanosecond() != 0 || !planned.Equal(tokenRenewalTime(stored)) {
			t.Fatalf("uid-%d: from the answer %s, from status %s: want the same whole second", i,
				planned.Format(time.RFC3339Nano), tokenRenewalTime(stored).Format(time.RFC3339Nano))
		}
	}
}
