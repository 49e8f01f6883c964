package controllers

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// Every list may decide the fate of an old PAT waiting past its grace period: the list wakes its
// token even when nothing about the current PAT changed.
func TestAListWakesATokenWaitingForItsConsumers(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	v := NewVerifier(0)
	token := func(name string, graceEnd time.Time) v1alpha1.NomadToken {
		return v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name},
			Spec: v1alpha1.NomadTokenSpec{ConnectionRef: v1alpha1.ConnectionRef{Name: "oasis"}},
			Status: v1alpha1.NomadTokenStatus{TokenID: "cur-" + name, ConnectionName: "oasis", IssuedAt: &metav1.Time{Time: now.Add(-time.Hour)},
				PreviousTokenID: "old-" + name, PreviousTokenRevokeAt: &metav1.Time{Time: graceEnd},
				PreviousTokenRevokeBy: &metav1.Time{Time: now.Add(time.Hour)}}}
	}
	waiting, inGrace := token("waiting", now.Add(-time.Minute)), token("in-grace", now.Add(time.Minute))
	conn := &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "oasis"}}
	active := []nomad.PAT{{ID: "cur-waiting"}, {ID: "old-waiting"}, {ID: "cur-in-grace"}, {ID: "old-in-grace"}}
	v.record(context.Background(), conn, "acct", active, now, 0, []v1alpha1.NomadToken{waiting, inGrace})
	var woken []string
	for len(v.Events()) > 0 {
		woken = append(woken, (<-v.Events()).Object.GetName())
	}
	if len(woken) != 1 || woken[0] != "waiting" {
		t.Fatalf("woken %v, want only the token waiting past its grace period", woken)
	}
}

// A list requested in the second of the swap, before the old PAT even existed, says nothing about
// it: status keeps the swap in whole seconds, and a PAT missing from a list is confirmed by a GET.
// (Found in e2e: the old PAT in use was revoked as soon as gracePeriod ended.)
func TestAListFromTheSecondOfTheSwapSaysNothingOfTheOldPAT(t *testing.T) {
	sec := time.Date(2026, 12, 6, 11, 8, 23, 0, time.UTC)
	v := NewVerifier(0)
	v.lists[types.NamespacedName{Namespace: "team-a", Name: "oasis"}] = activeList{
		account: "bot", byID: map[string]nomad.PAT{}, takenAt: sec.Add(241 * time.Millisecond),
	}
	r := &NomadTokenReconciler{Verifier: v}
	revokeAt, revokeBy, swap := metav1.NewTime(sec.Add(3*time.Second)), metav1.NewTime(sec.Add(61*time.Second)), metav1.NewTime(sec)
	token := &v1alpha1.NomadToken{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "uploader"},
		Spec: v1alpha1.NomadTokenSpec{ConnectionRef: v1alpha1.ConnectionRef{Name: "oasis"}, Rotation: v1alpha1.Rotation{
			GracePeriod: &metav1.Duration{Duration: 2 * time.Second},
			WaitForConsumers: &v1alpha1.WaitForConsumers{UnusedFor: metav1.Duration{Duration: 6 * time.Second},
				MaxGracePeriod: metav1.Duration{Duration: time.Minute}},
		}},
		Status: v1alpha1.NomadTokenStatus{TokenID: "B", PreviousTokenID: "A", Account: "bot", LastRotationTime: &swap,
			PreviousTokenRevokeAt: &revokeAt, PreviousTokenRevokeBy: &revokeBy},
	}
	w := oldPATWaitOf(token)
	w.use = r.oldPATUse(token)
	if got := judgeOldPAT(revokeAt.Time, w); got.fate == revokeAtOnce || !got.wantsLook {
		t.Errorf("verdict %+v on a list from before the swap: want the PAT kept and one look", got)
	}
}
