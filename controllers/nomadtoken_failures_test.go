package controllers

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// These tests put a NomadToken through failures that overlap with replacements (NOMAD refusing a
// renewal, a connection that is down, incident response at NOMAD's PAT limit) and check the promises
// that must hold anyway: replaced PATs are revoked on time and through the right account, and Ready
// is never True while the Secret's PAT is dead or missing.

func (w *crashWorld) token(t *testing.T) *v1alpha1.NomadToken {
	t.Helper()
	tok := &v1alpha1.NomadToken{}
	if err := w.client.Get(context.Background(), w.key, tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

// oasis is the world's NomadConnection as the API server has it now.
func (w *crashWorld) oasis(t *testing.T) *v1alpha1.NomadConnection {
	t.Helper()
	conn := &v1alpha1.NomadConnection{}
	if err := w.client.Get(context.Background(), client.ObjectKey{Namespace: w.key.Namespace, Name: "oasis"}, conn); err != nil {
		t.Fatal(err)
	}
	return conn
}

func (w *crashWorld) update(t *testing.T, mutate func(*v1alpha1.NomadToken)) {
	t.Helper()
	tok := w.token(t)
	mutate(tok)
	if err := w.client.Update(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}

func (w *crashWorld) mustReconcile(t *testing.T) ctrl.Result {
	t.Helper()
	res, err := w.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: w.key})
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	return res
}

// settle runs the reconcile that settles an interrupted issuance, which asks to be followed at once
// (it plans nothing else), and that next one, which plans on what the settling left.
func (w *crashWorld) settle(t *testing.T) {
	t.Helper()
	if res := w.mustReconcile(t); res.RequeueAfter != settledRecheck {
		t.Fatalf("the settling reconcile asked to be requeued after %s, want %s", res.RequeueAfter, settledRecheck)
	}
	w.mustReconcile(t)
}

// rotateOnce issues the first PAT and lets an Overlap renewal replace it; it returns the token with
// the first PAT in its grace period.
func (w *crashWorld) rotateOnce(t *testing.T) (first, rotated *v1alpha1.NomadToken) {
	t.Helper()
	w.mustReconcile(t)
	first = w.assertOneActivePATInSecret(t)
	w.clock.SetTime(tokenRenewalTime(first).Add(time.Second))
	w.mustReconcile(t)
	rotated = w.token(t)
	if rotated.Status.PreviousTokenID != first.Status.TokenID {
		t.Fatalf("after renewal previous = %q, want %q", rotated.Status.PreviousTokenID, first.Status.TokenID)
	}
	return first, rotated
}

func (w *crashWorld) active(user, id string) bool {
	return slices.ContainsFunc(w.stub.ActivePATs(user), func(r nomadstub.Record) bool { return r.ID == id })
}

func readyCondition(t *testing.T, tok *v1alpha1.NomadToken) metav1.Condition {
	t.Helper()
	for _, c := range tok.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			return c
		}
	}
	t.Fatal("no Ready condition")
	return metav1.Condition{}
}

func TestReplacedPATIsRevokedOnTimeWhileItsSuccessorIsRefused(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	first, rotated := w.rotateOnce(t)

	// During the grace period the spec asks for more than NOMAD allows: every create is refused.
	w.update(t, func(tok *v1alpha1.NomadToken) { tok.Spec.ExpiresInDays = 400 })
	res := w.mustReconcile(t)
	if c := readyCondition(t, w.token(t)); c.Reason != v1alpha1.ReasonLifetimeExceeded {
		t.Fatalf("Ready reason %q, want LifetimeExceeded", c.Reason)
	}
	untilRevoke := rotated.Status.PreviousTokenRevokeAt.Sub(w.clock.Now())
	if res.RequeueAfter <= 0 || res.RequeueAfter > untilRevoke {
		t.Fatalf("requeue after %s: the refusal must not postpone the end of the grace period (%s away)", res.RequeueAfter, untilRevoke)
	}

	w.clock.Step(res.RequeueAfter)
	w.mustReconcile(t) // still held off for the refused generation
	if w.active("bot", first.Status.TokenID) {
		t.Fatal("the replaced PAT outlived its grace period because its successor was refused")
	}
	if !w.active("bot", rotated.Status.TokenID) {
		t.Fatal("the PAT in the Secret must stay active")
	}
	if tok := w.token(t); tok.Status.PreviousTokenID != "" || len(tok.Status.RevokePending) != 0 {
		t.Fatalf("status still tracks replaced PATs: previous %q pending %v", tok.Status.PreviousTokenID, tok.Status.RevokePending)
	}
}

func TestExpiredPATIsNotReadyWhileItsRenewalIsRefused(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.mustReconcile(t)
	issued := w.assertOneActivePATInSecret(t)

	// NOMAD's admin lowered the lifetime cap below the spec's 30 days: renewals are refused. Five
	// minutes before expiry (the operator was down through the renewal time) the PAT still works.
	days := 10
	w.stub.SetMaxLifetimeDays(&days)
	w.clock.SetTime(issued.Status.ExpiresAt.Add(-5 * time.Minute))
	res := w.mustReconcile(t)
	if c := readyCondition(t, w.token(t)); c.Status != metav1.ConditionTrue {
		t.Fatalf("before expiry Ready = %s %s, want True: the PAT in the Secret still works", c.Status, c.Reason)
	}
	if res.RequeueAfter > 5*time.Minute {
		t.Fatalf("requeue after %s, want no later than the expiry 5m away", res.RequeueAfter)
	}

	w.clock.Step(res.RequeueAfter + time.Second)
	w.mustReconcile(t)
	c := readyCondition(t, w.token(t))
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonLifetimeExceeded {
		t.Fatalf("after expiry Ready = %s %s (%s), want False LifetimeExceeded", c.Status, c.Reason, c.Message)
	}
}

func TestRevokeNowAtThePATLimitRotatesTheCompromisedPATAway(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.mustReconcile(t)
	leaked := w.assertOneActivePATInSecret(t)
	w.stub.SetMaxActivePerUser(1)

	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Annotations = map[string]string{v1alpha1.AnnotationRevokeNow: "incident-1"}
	})
	w.mustReconcile(t)
	tok := w.assertOneActivePATInSecret(t)
	if tok.Status.TokenID == leaked.Status.TokenID || w.active("bot", leaked.Status.TokenID) {
		t.Fatal("the compromised PAT is still the active one")
	}
	if tok.Status.RevokeNowRequestHandled != "incident-1" {
		t.Fatalf("revokeNowRequestHandled = %q", tok.Status.RevokeNowRequestHandled)
	}
}

func TestRevokeNowEndsTheGracePeriodWhateverReasonWins(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	first, rotated := w.rotateOnce(t)
	recorder := w.r.Recorder.(*events.FakeRecorder)
	drainEvents(recorder)

	// The Secret is deleted and revoke-now is set at once: SecretMissing comes first in the chain,
	// and must still honour the incident request for the PAT in its grace period.
	if err := w.client.Delete(context.Background(), w.secret()); err != nil {
		t.Fatal(err)
	}
	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Annotations = map[string]string{v1alpha1.AnnotationRevokeNow: "incident-2"}
	})
	w.mustReconcile(t)
	final := w.assertOneActivePATInSecret(t)
	for _, id := range []string{first.Status.TokenID, rotated.Status.TokenID} {
		if w.active("bot", id) {
			t.Errorf("PAT %s is still active after revoke-now", id)
		}
	}
	if final.Status.PreviousTokenID != "" || final.Status.RevokeNowRequestHandled != "incident-2" {
		t.Fatalf("previous %q handled %q", final.Status.PreviousTokenID, final.Status.RevokeNowRequestHandled)
	}
	if countPrefixed(drainEvents(recorder), corev1.EventTypeWarning+" "+IssueRevokeNow) != 1 {
		t.Error("want one RevokeNowRequested Warning Event")
	}
}

func TestRotateWithALostAnswerIsNotReadyUntilSettled(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.update(t, func(tok *v1alpha1.NomadToken) { tok.Spec.Rotation.Strategy = v1alpha1.RotationRotate })
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)

	// NOMAD rotates (revoking the old PAT) and the answer is lost: the Secret's PAT is dead.
	w.clock.SetTime(tokenRenewalTime(first).Add(time.Second))
	w.stub.InjectFault("rotate", 1, nomadstub.Fault{LoseResponse: true})
	if _, err := w.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: w.key}); err == nil {
		t.Fatal("want the lost answer reported")
	}
	if w.active("bot", first.Status.TokenID) {
		t.Fatal("test premise: NOMAD's rotate revokes the old PAT first")
	}
	if c := readyCondition(t, w.token(t)); c.Status != metav1.ConditionFalse {
		t.Fatalf("Ready = %s %s while the Secret holds a revoked PAT", c.Status, c.Reason)
	}

	w.settle(t)
	w.assertOneActivePATInSecret(t)
}

func TestLostSecretWhileTheConnectionIsDownIsNotReady(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.mustReconcile(t)
	w.assertOneActivePATInSecret(t)
	w.setConnectionReady(t, "oasis", metav1.ConditionFalse)

	if err := w.client.Delete(context.Background(), w.secret()); err != nil {
		t.Fatal(err)
	}
	w.mustReconcile(t)
	c := readyCondition(t, w.token(t))
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonConnectionNotReady {
		t.Fatalf("Ready = %s %s with no Secret, want False ConnectionNotReady", c.Status, c.Reason)
	}

	w.setConnectionReady(t, "oasis", metav1.ConditionTrue)
	w.mustReconcile(t)
	w.assertOneActivePATInSecret(t)
}

func TestRetainKeepsTheCurrentPATAndRevokesReplacedOnes(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	first, rotated := w.rotateOnce(t)
	w.update(t, func(tok *v1alpha1.NomadToken) { tok.Spec.DeletionPolicy = v1alpha1.DeletionRetain })
	if err := w.client.Delete(context.Background(), w.token(t)); err != nil {
		t.Fatal(err)
	}
	w.mustReconcile(t)
	if w.active("bot", first.Status.TokenID) {
		t.Error("the replaced PAT in its grace period stays active after deletion with Retain: nobody holds it")
	}
	if !w.active("bot", rotated.Status.TokenID) {
		t.Error("Retain must keep the current PAT")
	}
	s := w.secret()
	if err := w.client.Get(context.Background(), w.key, s); err != nil || len(s.OwnerReferences) != 0 {
		t.Errorf("the Secret must stay, released: err %v owners %v", err, s.OwnerReferences)
	}
}

func TestSecretConflictIsCheckedAgainSoonAndReportedOnce(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	theirs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.key.Namespace, Name: w.key.Name}}
	if err := w.client.Create(context.Background(), theirs); err != nil {
		t.Fatal(err)
	}
	recorder := w.r.Recorder.(*events.FakeRecorder)
	for range 2 {
		if res := w.mustReconcile(t); res.RequeueAfter != secretConflictRecheck {
			t.Fatalf("requeue after %s, want %s: the conflicting Secret is not watched", res.RequeueAfter, secretConflictRecheck)
		}
	}
	if n := countPrefixed(drainEvents(recorder), corev1.EventTypeWarning+" "+v1alpha1.ReasonSecretConflict); n != 1 {
		t.Errorf("%d SecretConflict Events for one unchanged conflict, want 1", n)
	}
	if len(w.stub.PATs("bot")) != 0 {
		t.Error("a PAT was minted for a conflicting Secret")
	}

	if err := w.client.Delete(context.Background(), theirs); err != nil {
		t.Fatal(err)
	}
	w.mustReconcile(t)
	w.assertOneActivePATInSecret(t)
}

// secret is the token's Secret, by name only (for Delete, or to Get into).
func (w *crashWorld) secret() *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.key.Namespace, Name: w.key.Name}}
}

func (w *crashWorld) setConnectionReady(t *testing.T, name string, status metav1.ConditionStatus) {
	t.Helper()
	conn := &v1alpha1.NomadConnection{}
	if err := w.client.Get(context.Background(), client.ObjectKey{Namespace: w.key.Namespace, Name: name}, conn); err != nil {
		t.Fatal(err)
	}
	conn.Status.ObservedGeneration = conn.Generation
	setCondition(&conn.Status.Conditions, conn.Generation, v1alpha1.ConditionReady, status, "Test", "set by the test")
	if err := w.client.Status().Update(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
}

func TestARepeatedRefusalIsStoredAsItIsAndReportedOnce(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.mustReconcile(t)
	w.assertOneActivePATInSecret(t)
	w.update(t, func(tok *v1alpha1.NomadToken) { tok.Spec.ExpiresInDays = 400 })
	recorder := w.r.Recorder.(*events.FakeRecorder)
	drainEvents(recorder)

	for i := range 4 {
		res := w.mustReconcile(t)
		tok := w.token(t) // what the API server holds
		if c := readyCondition(t, tok); c.Reason != v1alpha1.ReasonLifetimeExceeded || tok.Status.PendingIssuance != nil {
			t.Fatalf("retry %d: stored Ready %s %s, pendingIssuance %v: the refusal must be what is stored, not the intent",
				i, c.Status, c.Reason, tok.Status.PendingIssuance)
		}
		w.clock.Step(res.RequeueAfter)
	}
	if n := countPrefixed(drainEvents(recorder), corev1.EventTypeWarning+" "+v1alpha1.ReasonLifetimeExceeded); n != 1 {
		t.Errorf("%d Events for one unchanged refusal, want 1", n)
	}
}

func TestSecretConflictDoesNotPostponeTheEndOfAGracePeriod(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	first, rotated := w.rotateOnce(t)
	theirs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.key.Namespace, Name: "taken"}}
	if err := w.client.Create(context.Background(), theirs); err != nil {
		t.Fatal(err)
	}
	w.update(t, func(tok *v1alpha1.NomadToken) { tok.Spec.Secret.Name = "taken" })
	w.mustReconcile(t)
	w.clock.SetTime(rotated.Status.PreviousTokenRevokeAt.Add(time.Second))
	w.mustReconcile(t)
	if w.active("bot", first.Status.TokenID) {
		t.Fatal("a SecretConflict kept the replaced PAT active past its grace period")
	}
}
