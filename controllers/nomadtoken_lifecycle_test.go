package controllers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// These tests hold the lifecycle promises that failures elsewhere must not break: the incident button
// always revokes, the revoke queue never forgets a live PAT, and side steps (restarts, slow writes)
// never cost a PAT or a false Ready.

// refuseRenewal issues the first PAT, then lowers NOMAD's maximum lifetime below the token's, so that
// its renewal is refused (LifetimeExceeded) and the hold-off for that generation is set.
func refuseRenewal(t *testing.T, w *crashWorld) *v1alpha1.NomadToken {
	t.Helper()
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	w.stub.SetMaxLifetimeDays(ptr.To(7))
	w.clock.SetTime(tokenRenewalTime(first).Add(time.Second))
	w.mustReconcile(t)
	if _, held := w.r.holdOffs.Load(w.key); !held {
		t.Fatal("test premise: NOMAD's refusal sets the hold-off")
	}
	return first
}

func TestRevokeNowRevokesWhileNomadRefusesAReplacement(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	first := refuseRenewal(t, w)
	recorder := w.r.Recorder.(*events.FakeRecorder)
	drainEvents(recorder)

	// The token leaked: the user presses the incident button during the hold-off.
	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Annotations = map[string]string{v1alpha1.AnnotationRevokeNow: "incident-42"}
	})
	_ = w.reconcile(t)
	if w.active("bot", first.Status.TokenID) {
		t.Fatal("the leaked PAT is still active: revoke-now waited for a replacement NOMAD refuses")
	}
	tok := w.token(t)
	c := readyCondition(t, tok)
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonRevokedWithoutReplacement ||
		!strings.Contains(c.Message, "exceeds the maximum") || !strings.Contains(c.Message, first.Status.TokenID) {
		t.Fatalf("Ready %s %s %q: want RevokedWithoutReplacement naming the PAT and NOMAD's refusal", c.Status, c.Reason, c.Message)
	}
	if tok.Status.TokenID != "" || len(tok.Status.RevokePending) != 0 || tok.Status.RevokeNowRequestHandled != "incident-42" {
		t.Fatalf("status: tokenID %q, revokePending %v, handled %q", tok.Status.TokenID, tok.Status.RevokePending, tok.Status.RevokeNowRequestHandled)
	}
	if got := drainEvents(recorder); countPrefixed(got, corev1.EventTypeWarning+" "+v1alpha1.ReasonRevokedWithoutReplacement) != 1 {
		t.Errorf("want one Warning RevokedWithoutReplacement, got %q", got)
	}

	// A retry that NOMAD refuses again keeps saying that the token was revoked without a successor.
	w.clock.Step(DefaultUserErrorRetry + time.Second)
	_ = w.reconcile(t)
	if c := readyCondition(t, w.token(t)); c.Reason != v1alpha1.ReasonRevokedWithoutReplacement {
		t.Fatalf("after a refused retry Ready says %s: %s", c.Reason, c.Message)
	}
	// Once NOMAD allows the lifetime again, the next retry mints a PAT into the Secret.
	w.stub.SetMaxLifetimeDays(nil)
	w.clock.Step(DefaultUserErrorRetry + time.Second)
	w.mustReconcile(t)
	if final := w.assertOneActivePATInSecret(t); final.Status.TokenID == first.Status.TokenID {
		t.Fatal("the revoked PAT came back")
	}
}

func TestRevokeNowAlsoRevokesThePreviousPATInItsGracePeriod(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	first, rotated := w.rotateOnce(t)
	w.stub.SetMaxLifetimeDays(ptr.To(7)) // the replacement will be refused
	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Annotations = map[string]string{v1alpha1.AnnotationRevokeNow: "1"}
	})
	_ = w.reconcile(t)
	if w.active("bot", first.Status.TokenID) || w.active("bot", rotated.Status.TokenID) {
		t.Fatalf("active PATs %v after revoke-now: want none", w.stub.ActivePATs("bot"))
	}
}

// rotateAndLoseConnection rotates once (the first PAT in its grace period), deletes the connection
// and lets the grace period end: the first PAT is due for revocation with no connection to do it.
// It returns the first token and the deleted connection's spec.
func rotateAndLoseConnection(t *testing.T, w *crashWorld) (*v1alpha1.NomadToken, v1alpha1.NomadConnectionSpec) {
	t.Helper()
	first, _ := w.rotateOnce(t)
	conn := w.oasis(t)
	// Its in-use hold removed by hand, as a forced prune does.
	conn.Finalizers = nil
	if err := w.client.Update(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	if err := w.client.Delete(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	w.clock.Step(v1alpha1.DefaultGracePeriod + time.Second)
	return first, conn.Spec
}

func TestRevokeQueueWaitsThroughAConnectionPruneAndRecreate(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	recorder := w.r.Recorder.(*events.FakeRecorder)
	first, spec := rotateAndLoseConnection(t, w)
	drainEvents(recorder)

	for range 2 {
		if err := w.reconcile(t); err == nil {
			t.Fatal("reconcile returned no error: a PAT waiting to be revoked must be retried with backoff")
		}
	}
	tok := w.token(t)
	if len(tok.Status.RevokePending) != 1 || tok.Status.RevokePending[0].ID != first.Status.TokenID ||
		!strings.Contains(tok.Status.RevokePending[0].LastError, "oasis") || !isReady(tok.Status.Conditions) {
		t.Fatalf("revokePending %+v, Ready %v: want the PAT kept queued, saying why, and the token Ready", tok.Status.RevokePending, tok.Status.Conditions)
	}
	if got := drainEvents(recorder); countPrefixed(got, corev1.EventTypeWarning+" "+v1alpha1.EventRevokeWaiting) != 1 {
		t.Errorf("want one RevokeWaiting Warning over two retries, got %q", got)
	}

	// GitOps creates the connection again: the next retry revokes the PAT through it.
	recreated := &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "oasis", UID: "conn-uid-2"}, Spec: spec}
	if err := w.client.Create(context.Background(), recreated); err != nil {
		t.Fatal(err)
	}
	w.mustReconcile(t)
	if w.active("bot", first.Status.TokenID) || len(w.token(t).Status.RevokePending) != 0 {
		t.Fatalf("after the connection came back: first PAT active %v, queue %v", w.active("bot", first.Status.TokenID), w.token(t).Status.RevokePending)
	}
	if got := drainEvents(recorder); countPrefixed(got, corev1.EventTypeNormal+" "+v1alpha1.EventPreviousRevoked) != 1 {
		t.Errorf("want PreviousRevoked, got %q", got)
	}
}

func TestRevokeQueueUsesAnotherConnectionOfTheOwner(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.addConnection(t, "oasis-copy", "bot", "pw") // the same NOMAD user under another name
	first, _ := rotateAndLoseConnection(t, w)
	w.mustReconcile(t)
	if w.active("bot", first.Status.TokenID) || len(w.token(t).Status.RevokePending) != 0 {
		t.Fatal("the replaced PAT was not revoked through the other connection of its owner")
	}
}

func TestRevokeQueueNeverTrustsAnotherUsersNotFound(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.stub.AddUser("bot2", "pw2")
	w.addConnection(t, "other-team", "bot2", "pw2")
	first, _ := rotateAndLoseConnection(t, w)
	if err := w.reconcile(t); err == nil {
		t.Fatal("the PAT was taken as revoked through another NOMAD user, whose 404 proves nothing")
	}
	if !w.active("bot", first.Status.TokenID) || len(w.token(t).Status.RevokePending) != 1 {
		t.Fatal("test premise: only its owner can revoke the PAT, and it stays queued")
	}
}

func TestPendingIssuanceIsRecoveredDespiteASecretConflict(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.stub.InjectFault("create", 1, nomadstub.Fault{LoseResponse: true})
	if err := w.reconcile(t); err == nil {
		t.Fatal("test premise: the create's answer is lost")
	}
	orphans := w.stub.ActivePATs("bot")
	if len(orphans) != 1 {
		t.Fatalf("test premise: NOMAD created the PAT; active %v", orphans)
	}
	// Meanwhile someone creates a Secret of the token's name.
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ci"}, Data: map[string][]byte{"x": []byte("y")}}
	if err := w.client.Create(context.Background(), foreign); err != nil {
		t.Fatal(err)
	}
	w.settle(t)
	if w.active("bot", orphans[0].ID) {
		t.Fatal("the orphan of the lost create stays active while the Secret conflicts")
	}
	if c := readyCondition(t, w.token(t)); c.Reason != v1alpha1.ReasonSecretConflict {
		t.Fatalf("Ready reason %s, want SecretConflict", c.Reason)
	}
}

func TestAdoptedPATKeepsTheTimeItsIssuanceStarted(t *testing.T) {
	w, lose := newWorldLosingAStatusWrite(t)
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	rotatedAt := tokenRenewalTime(first).Add(time.Second)
	w.clock.SetTime(rotatedAt)
	lose.loseNth(2) // the closing write after the Secret holds the new PAT
	if err := w.reconcile(t); !errors.Is(err, errInjected) {
		t.Fatalf("rotating: %v, want the injected failure", err)
	}
	w.clock.Step(time.Hour) // the operator comes back an hour later
	w.mustReconcile(t)
	tok := w.token(t)
	if tok.Status.LastRotationTime == nil || !tok.Status.LastRotationTime.Time.Equal(rotatedAt) {
		t.Fatalf("lastRotationTime %v, want %v: restart targets rolled since then would be rolled again", tok.Status.LastRotationTime, rotatedAt)
	}
}

func TestFailedRestartKeepsAGoodPATReady(t *testing.T) {
	failPatch := true
	w := newCrashWorld(t, interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if _, ok := obj.(*appsv1.Deployment); ok && failPatch {
				return apierrors.NewForbidden(appsv1.Resource("deployments"), obj.GetName(), errors.New("injected"))
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
	})
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "uploader", Annotations: optedIn("ci")}}
	if err := w.client.Create(context.Background(), dep); err != nil {
		t.Fatal(err)
	}
	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Spec.Rotation.RestartTargets = []v1alpha1.RestartTarget{{Kind: "Deployment", Name: "uploader"}}
	})
	recorder := w.r.Recorder.(*events.FakeRecorder)
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	w.clock.SetTime(tokenRenewalTime(first).Add(time.Second))
	drainEvents(recorder)

	if err := w.reconcile(t); err == nil {
		t.Fatal("want the failed restart retried with backoff")
	}
	tok := w.token(t)
	if !isReady(tok.Status.Conditions) || tok.Status.TokenID == first.Status.TokenID || tok.Status.PreviousTokenID != first.Status.TokenID {
		t.Fatalf("Ready %v, current %q previous %q: the Secret holds the new PAT, which a failed restart does not make bad",
			tok.Status.Conditions, tok.Status.TokenID, tok.Status.PreviousTokenID)
	}
	if got := drainEvents(recorder); countPrefixed(got, corev1.EventTypeWarning+" "+v1alpha1.EventRestartFailed) != 1 {
		t.Errorf("want a RestartFailed Warning, got %q", got)
	}
	failPatch = false
	w.mustReconcile(t)
	if got := w.token(t).Status.RestartedForTokenID; got != tok.Status.TokenID {
		t.Fatalf("restartedForTokenID %q after the retry, want %q", got, tok.Status.TokenID)
	}
}

func TestSecretWriteWithUnknownResultIsReadBackBeforeRevoking(t *testing.T) {
	// Every write of the Secret lands, and every answer is a timeout, through all the retries.
	timeouts := 0
	landThenTimeOut := func(write func() error) error {
		if err := write(); err != nil || timeouts >= 4 {
			return err
		}
		timeouts++
		return apierrors.NewTimeoutError("injected", 1)
	}
	w := newCrashWorld(t, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if _, ok := obj.(*corev1.Secret); ok && !createDryRun(opts) {
				return landThenTimeOut(func() error { return c.Create(ctx, obj, opts...) })
			}
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if _, ok := obj.(*corev1.Secret); ok && !updateDryRun(opts) {
				return landThenTimeOut(func() error { return c.Update(ctx, obj, opts...) })
			}
			return c.Update(ctx, obj, opts...)
		},
	})
	_ = w.reconcile(t)
	if timeouts < 2 {
		t.Fatalf("test premise: the writes timed out %d times", timeouts)
	}
	w.mustReconcile(t)
	w.assertOneActivePATInSecret(t)
	if got := w.stub.Calls()["create"]; got != 1 {
		t.Fatalf("creates = %d: the PAT the Secret holds was revoked as unusable and replaced", got)
	}
}

func TestHoldOffOfADeletedNomadTokenIsForgotten(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	refuseRenewal(t, w)
	if err := w.client.Delete(context.Background(), w.token(t)); err != nil {
		t.Fatal(err)
	}
	w.mustReconcile(t) // finalizes
	w.mustReconcile(t) // NotFound
	if _, held := w.r.holdOffs.Load(types.NamespacedName{Namespace: "team-a", Name: "ci"}); held {
		t.Fatal("the hold-off of a deleted NomadToken is kept")
	}
}

func TestAdoptionFollowsHowThePATWasObtainedNotTodaysStrategy(t *testing.T) {
	w, lose := newWorldLosingAStatusWrite(t)
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	w.clock.SetTime(tokenRenewalTime(first).Add(time.Second))
	lose.loseNth(2) // an Overlap renewal's closing write is lost
	if err := w.reconcile(t); !errors.Is(err, errInjected) {
		t.Fatalf("rotating: %v, want the injected failure", err)
	}
	// GitOps switches the (non-material) strategy before the operator comes back.
	w.update(t, func(tok *v1alpha1.NomadToken) { tok.Spec.Rotation.Strategy = v1alpha1.RotationRotate })
	w.mustReconcile(t)
	tok := w.token(t)
	if tok.Status.PreviousTokenID != first.Status.TokenID {
		t.Fatalf("previous %q after adoption: the Overlap renewal's old PAT (%s, active %v) is no longer tracked",
			tok.Status.PreviousTokenID, first.Status.TokenID, w.active("bot", first.Status.TokenID))
	}
}

func TestRevokeNowDuringAnOutageSaysThePATIsQueuedNotRevoked(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	w.stub.InjectFault("create", 100, nomadstub.Fault{Status: 503})
	w.stub.InjectFault("revoke", 100, nomadstub.Fault{Status: 503})
	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Annotations = map[string]string{v1alpha1.AnnotationRevokeNow: "1"}
	})
	_ = w.reconcile(t)
	tok := w.token(t)
	c := readyCondition(t, tok)
	if c.Reason != v1alpha1.ReasonRevokedWithoutReplacement || !strings.Contains(c.Message, "queued PAT "+first.Status.TokenID) {
		t.Fatalf("Ready %s %q: NOMAD did not answer the revoke, so the PAT must be reported queued, not revoked", c.Reason, c.Message)
	}
	if len(tok.Status.RevokePending) != 1 || tok.Status.RevokePending[0].ID != first.Status.TokenID {
		t.Fatalf("revokePending %v: the PAT must stay queued", tok.Status.RevokePending)
	}
	w.stub.ClearFaults()
	_ = w.reconcile(t)
	if w.active("bot", first.Status.TokenID) {
		t.Fatal("the queued PAT was not revoked once NOMAD answered again")
	}
}

func TestRevokeNowRevokesWhileASecretConflictBlocksMinting(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	// The Secret moves to a name a user's Secret already has, and then the token leaks.
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "taken"}}
	if err := w.client.Create(context.Background(), foreign); err != nil {
		t.Fatal(err)
	}
	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Spec.Secret.Name = "taken"
		tok.Annotations = map[string]string{v1alpha1.AnnotationRevokeNow: "1"}
	})
	_ = w.reconcile(t)
	if w.active("bot", first.Status.TokenID) {
		t.Fatal("revoke-now was blocked by the SecretConflict")
	}
	if c := readyCondition(t, w.token(t)); c.Reason != v1alpha1.ReasonRevokedWithoutReplacement {
		t.Fatalf("Ready reason %s (%s)", c.Reason, c.Message)
	}
}

func TestARefusedRotateRequestIsNotRetriedHot(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	refuseRenewal(t, w)
	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Annotations = map[string]string{v1alpha1.AnnotationRotate: "1"}
	})
	w.mustReconcile(t) // bypasses the hold-off once, and is refused again
	creates := w.stub.Calls()["create"]
	for range 3 {
		w.mustReconcile(t)
	}
	if got := w.stub.Calls()["create"]; got != creates {
		t.Fatalf("creates %d -> %d: a rotate value NOMAD refused is asked again on every reconcile", creates, got)
	}
	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Annotations = map[string]string{v1alpha1.AnnotationRotate: "2"}
	})
	w.mustReconcile(t)
	if got := w.stub.Calls()["create"]; got != creates+1 {
		t.Fatalf("creates %d -> %d: a new rotate value must be tried once", creates, got)
	}
}

func TestAnInterruptedIssuanceIsSettledThroughAnotherConnectionOfItsOwner(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.addConnection(t, "oasis-copy", "bot", "pw") // the same NOMAD user under another name
	w.stub.InjectFault("create", 1, nomadstub.Fault{LoseResponse: true})
	if err := w.reconcile(t); err == nil {
		t.Fatal("test premise: the create's answer is lost")
	}
	orphan := w.stub.ActivePATs("bot")[0].ID
	// The token moves to the copy and the minting connection is deleted before the operator looks again.
	w.update(t, func(tok *v1alpha1.NomadToken) { tok.Spec.ConnectionRef.Name = "oasis-copy" })
	if err := w.client.Delete(context.Background(), &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "oasis"}}); err != nil {
		t.Fatal(err)
	}
	w.settle(t)
	if w.active("bot", orphan) {
		t.Fatal("the PAT of the lost create stays active: its minting connection is gone, but another one of its owner could revoke it")
	}
	w.assertOneActivePATInSecret(t)
}

// A PAT minted after revoke-now left the token without one replaces a token that env-var pods still
// hold (revoked): they are restarted, although status tracked no PAT before the new one.
func TestAReplacementAfterRevokeNowRestartsItsConsumers(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	app := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "app", Annotations: optedIn("ci")}}
	if err := w.client.Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Spec.Rotation.RestartTargets = []v1alpha1.RestartTarget{{Kind: "Deployment", Name: "app"}}
	})
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	stamp := func() string {
		got := &appsv1.Deployment{}
		if err := w.client.Get(context.Background(), client.ObjectKeyFromObject(app), got); err != nil {
			t.Fatal(err)
		}
		return got.Spec.Template.Annotations[v1alpha1.AnnotationRestartedAt]
	}
	if stamp() != "" {
		t.Fatal("test premise: the first PAT restarts nothing")
	}
	// NOMAD refuses new PATs while the token is revoked: it is left without one.
	w.stub.SetMaxLifetimeDays(ptr.To(7))
	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Annotations = map[string]string{v1alpha1.AnnotationRevokeNow: "incident-9"}
	})
	_ = w.reconcile(t)
	if w.active("bot", first.Status.TokenID) || w.token(t).Status.TokenID != "" {
		t.Fatal("test premise: revoke-now revoked the PAT without a successor")
	}
	w.stub.SetMaxLifetimeDays(nil)
	w.clock.Step(DefaultUserErrorRetry + time.Second)
	w.mustReconcile(t)
	w.assertOneActivePATInSecret(t)
	if stamp() == "" {
		t.Fatal("the consumers hold the revoked token and were not restarted for its replacement")
	}
}
