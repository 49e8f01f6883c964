package connection

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// A new client takes the PAT path from status only when a check of the current spec found it.
func TestKnownPATPath(t *testing.T) {
	ready := func(status metav1.ConditionStatus, gen int64) []metav1.Condition {
		return []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: status, ObservedGeneration: gen, Reason: "x"}}
	}
	for _, tc := range []struct {
		name  string
		gen   int64
		conds []metav1.Condition
		want  nomad.PATPath
	}{
		{"Ready for this generation", 2, ready(metav1.ConditionTrue, 2), nomad.PATPathAuthPats},
		{"Ready for an older generation (a new URL)", 3, ready(metav1.ConditionTrue, 2), ""},
		{"the check of this generation failed", 2, ready(metav1.ConditionFalse, 2), ""},
		{"never checked", 1, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Generation: tc.gen}}
			conn.Status = v1alpha1.NomadConnectionStatus{Conditions: tc.conds, ObservedGeneration: tc.gen, PATPath: v1alpha1.PATPathMode("AuthPats")}
			if got := knownPATPath(conn); got != tc.want {
				t.Fatalf("knownPATPath = %q, want %q", got, tc.want)
			}
		})
	}
}
