package controllers

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// restoreWithNewUID replaces the world's NomadToken by a copy with a new UID and no status, and lets
// edit change the Secret, as a restore from backup (Velero) leaves them.
func (w *crashWorld) restoreWithNewUID(t *testing.T, edit func(*corev1.Secret)) {
	t.Helper()
	old := w.token(t)
	old.Finalizers = nil
	if err := w.client.Update(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	if err := w.client.Delete(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	restored := &v1alpha1.NomadToken{
		ObjectMeta: metav1.ObjectMeta{Namespace: old.Namespace, Name: old.Name, UID: types.UID("restored-" + string(old.UID)),
			Finalizers: []string{v1alpha1.FinalizerRevoke}},
		Spec: old.Spec,
	}
	if err := w.client.Create(context.Background(), restored); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		s := w.liveSecret(t)
		edit(s)
		if err := w.client.Update(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
}

func (w *crashWorld) liveSecret(t *testing.T) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := w.client.Get(context.Background(), w.key, s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestARestoredTokenTakesOverItsSecretAndItsValidPAT(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*corev1.Secret)
	}{
		{"the Secret's owner reference names the UID from before", nil},
		{"the restore stripped the Secret's owner reference", func(s *corev1.Secret) { s.OwnerReferences = nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newCrashWorld(t, interceptor.Funcs{})
			w.mustReconcile(t)
			before := w.assertOneActivePATInSecret(t)
			w.restoreWithNewUID(t, tt.edit)
			w.mustReconcile(t)
			after := w.assertOneActivePATInSecret(t)
			if after.Status.TokenID != before.Status.TokenID || w.stub.Calls()["create"] != 1 {
				t.Fatalf("PAT %s after %d creates: the restored PAT is valid and must be taken over, not replaced", after.Status.TokenID, w.stub.Calls()["create"])
			}
			if !ownedBy(w.liveSecret(t), after) {
				t.Fatal("the restored token does not control its Secret")
			}
		})
	}
}

func TestASecretTheOperatorDidNotWriteIsNeverAdopted(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.mustReconcile(t)
	w.assertOneActivePATInSecret(t)
	w.restoreWithNewUID(t, func(s *corev1.Secret) { delete(s.Labels, v1alpha1.LabelManagedBy); s.OwnerReferences = nil })
	w.mustReconcile(t)
	if c := readyCondition(t, w.token(t)); c.Reason != v1alpha1.ReasonSecretConflict {
		t.Fatalf("Ready reason %s, want SecretConflict for a Secret without the operator's label", c.Reason)
	}
}

// After revoke-now without a successor, the Secret still names the PAT just queued for revocation:
// that is no restored PAT, and is never taken back (found in review: it was, and Ready read True).
func TestRevokeNowNeverTakesBackThePATItQueued(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	w.stub.InjectFault(nomadstub.OpCreate, -1, nomadstub.Fault{Status: 400, Detail: "refused"})
	w.stub.InjectFault(nomadstub.OpRevoke, 1, nomadstub.Fault{Status: 503})
	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Annotations = map[string]string{v1alpha1.AnnotationRevokeNow: "incident-1"}
	})
	_ = w.reconcile(t)
	_ = w.reconcile(t)
	tok := w.token(t)
	if tok.Status.TokenID == first.Status.TokenID || isReady(tok.Status.Conditions) {
		t.Fatalf("tokenID %q Ready %v: the PAT revoke-now queued was taken back as current", tok.Status.TokenID, isReady(tok.Status.Conditions))
	}
}

// A restore whose connection is not checked yet adopts the Secret and waits to mint (found in review:
// the adoption's success hid the connection's error, and minting ran without a client).
func TestARestoreBeforeTheConnectionIsReadyWaits(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.mustReconcile(t)
	w.assertOneActivePATInSecret(t)
	w.restoreWithNewUID(t, nil)
	w.setConnectionReady(t, "oasis", metav1.ConditionFalse)
	_ = w.reconcile(t)
	if c := readyCondition(t, w.token(t)); c.Reason != v1alpha1.ReasonConnectionNotReady {
		t.Fatalf("Ready reason %s, want ConnectionNotReady", c.Reason)
	}
	w.setConnectionReady(t, "oasis", metav1.ConditionTrue)
	w.mustReconcile(t)
	w.assertOneActivePATInSecret(t)
}

// NOMAD's rotate endpoint copies the old PAT's description, so the successor of an adopted PAT carries
// the marker of the UID from before the restore: a lost rotate answer must still find it.
func TestALostRotateOfAnAdoptedPATIsFoundByItsOldMarker(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.update(t, func(tok *v1alpha1.NomadToken) { tok.Spec.Rotation.Strategy = v1alpha1.RotationRotate })
	w.mustReconcile(t)
	w.assertOneActivePATInSecret(t)
	w.restoreWithNewUID(t, func(s *corev1.Secret) { s.OwnerReferences = nil })
	w.mustReconcile(t)
	adopted := w.assertOneActivePATInSecret(t)

	w.clock.SetTime(tokenRenewalTime(adopted).Add(time.Second))
	w.stub.InjectFault("rotate", 1, nomadstub.Fault{LoseResponse: true})
	if err := w.reconcile(t); err == nil {
		t.Fatal("test premise: the rotate's answer is lost")
	}
	w.settle(t)
	w.assertOneActivePATInSecret(t) // the lost successor was found and revoked, not left active
}

// A restored token whose revoke-now value was never acted on (or whose status saying so was lost)
// acts on it: the restore must not take the request as done (found in review).
func TestARestoredTokenStillActsOnRevokeNow(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.mustReconcile(t)
	before := w.assertOneActivePATInSecret(t)
	w.restoreWithNewUID(t, nil)
	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Annotations = map[string]string{v1alpha1.AnnotationRevokeNow: "incident-1"}
	})
	for range 3 {
		w.mustReconcile(t)
	}
	after := w.assertOneActivePATInSecret(t)
	if w.active("bot", before.Status.TokenID) || after.Status.RevokeNowRequestHandled != "incident-1" {
		t.Fatalf("old PAT active %v, handled %q: revoke-now must revoke the PAT the restore took over",
			w.active("bot", before.Status.TokenID), after.Status.RevokeNowRequestHandled)
	}
}

// The previous PAT of an Overlap rotation, in its grace period when the status was lost, is queued
// by the restored token, not left active and tracked by nobody (found in review).
func TestARestoreQueuesThePreviousPATOfTheLostStatus(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	first, _ := w.rotateOnce(t)
	w.restoreWithNewUID(t, nil)
	w.mustReconcile(t)
	w.clock.Step(48 * time.Hour)
	for range 2 {
		w.mustReconcile(t)
	}
	if w.active("bot", first.Status.TokenID) {
		t.Fatalf("PAT %s, in its grace period at the restore, is active and tracked by nobody", first.Status.TokenID)
	}
	w.assertOneActivePATInSecret(t)
}

// A first PAT into a Secret that already held a token owes its consumers a restart, also when the
// status write after the Secret write is lost and recovery adopts the PAT (found in review).
func TestARestartOwedSurvivesALostStatusWrite(t *testing.T) {
	w, lose := newWorldLosingAStatusWrite(t)
	held := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ci",
		Labels:      map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue},
		Annotations: map[string]string{v1alpha1.AnnotationTokenID: "gone"}},
		Data: map[string][]byte{"token": []byte("nomad_pat_old-token-of-a-dead-owner")}}
	if err := w.client.Create(context.Background(), held); err != nil {
		t.Fatal(err)
	}
	lose.loseNth(2) // the intent lands, the status write after the Secret write does not
	_ = w.reconcile(t)
	w.settle(t)
	if tok := w.assertOneActivePATInSecret(t); tok.Status.LastRotationTime == nil {
		t.Fatal("the restart the new PAT owes the Secret's consumers was lost with the status write")
	}
}
