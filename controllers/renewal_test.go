package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

func TestRenewalTime(t *testing.T) {
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	days := func(n int) time.Time { return issued.AddDate(0, 0, n) }
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
			v1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: 240 * time.Hour}}, issued.Add(80 * time.Hour)},
		{"percentage is the share left at renewal", days(100), v1alpha1.Rotation{RenewBeforePercentage: ptr.To[int32](25)}, days(75)},
		{"a zero lifetime renews at once", issued, v1alpha1.Rotation{}, issued},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := renewalTime(issued, tt.expires, tt.rot); !got.Equal(tt.want) {
				t.Errorf("renewalTime = %s, want %s", got, tt.want)
			}
		})
	}
}
