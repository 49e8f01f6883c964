package controllers

import (
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// These tests run waitForConsumers through whole reconciles against the NOMAD stand-in, on a fake
// clock: a consumer authenticates with the old PAT, which sets its last_used_at in NOMAD.

// waitingWorld is a crashWorld whose token waits for its consumers (gracePeriod 10m, unusedFor 5m,
// maxGracePeriod 24h), with the connection's verification list wired in. It returns the world after
// the first PAT was issued, and that PAT's raw token.
func waitingWorld(t *testing.T) (*crashWorld, string) {
	t.Helper()
	w := newCrashWorld(t, interceptor.Funcs{})
	w.r.Verifier = NewVerifier(0)
	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Spec.Rotation.GracePeriod = &metav1.Duration{Duration: 10 * time.Minute}
		tok.Spec.Rotation.WaitForConsumers = &v1alpha1.WaitForConsumers{
			UnusedFor: metav1.Duration{Duration: 5 * time.Minute}, MaxGracePeriod: metav1.Duration{Duration: 24 * time.Hour}}
	})
	w.mustReconcile(t)
	return w, string(w.liveSecret(t).Data["token"])
}

// rotate asks for a rotation and reconciles; it returns the replaced PAT's id.
func (w *crashWorld) rotate(t *testing.T, value string) string {
	t.Helper()
	old := w.token(t).Status.TokenID
	w.update(t, func(tok *v1alpha1.NomadToken) {
		metav1.SetMetaDataAnnotation(&tok.ObjectMeta, v1alpha1.AnnotationRotate, value)
	})
	w.mustReconcile(t)
	if got := w.token(t).Status.PreviousTokenID; got != old {
		t.Fatalf("after the rotation previousTokenID = %q, want %q", got, old)
	}
	return old
}

// useRaw authenticates at NOMAD with raw, as a consumer would (it sets the PAT's last_used_at).
func (w *crashWorld) useRaw(t *testing.T, raw string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.oasis(t).Spec.URL+"/v1/pats/000000000000000000000000", nil)
	req.Header.Set("Authorization", "Bearer "+raw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func consumersMovedOf(t *testing.T, tok *v1alpha1.NomadToken) metav1.Condition {
	t.Helper()
	c := meta.FindStatusCondition(tok.Status.Conditions, v1alpha1.ConditionConsumersMoved)
	if c == nil {
		t.Fatal("no ConsumersMoved condition")
	}
	return *c
}

func TestAnOldPATInUseIsKeptUntilItsConsumersMove(t *testing.T) {
	w, oldRaw := waitingWorld(t)
	recorder := w.r.Recorder.(*events.FakeRecorder)
	start := w.clock.Now()
	old := w.rotate(t, "1")
	if c := consumersMovedOf(t, w.token(t)); c.Status != metav1.ConditionUnknown || c.Reason != v1alpha1.ReasonGracePeriod {
		t.Fatalf("inside gracePeriod ConsumersMoved = %s/%s, want Unknown/GracePeriod", c.Status, c.Reason)
	}
	drainEvents(recorder)
	// A job that read the old token at start keeps using it every minute for 3 hours; the
	// connection lists its PATs every 5 minutes, and the token is reconciled after each list.
	w.stub.ResetCalls()
	for m := 1; m <= 180; m++ {
		w.clock.SetTime(start.Add(time.Duration(m) * time.Minute))
		w.useRaw(t, oldRaw)
		if m%5 == 0 {
			w.listNow(t)
			w.mustReconcile(t)
		}
	}
	tok := w.token(t)
	if tok.Status.PreviousTokenID != old || !w.active("bot", old) {
		t.Fatalf("3 hours past the rotation, the old PAT in use is gone (previous %q)", tok.Status.PreviousTokenID)
	}
	c := consumersMovedOf(t, tok)
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonOldTokenInUse {
		t.Fatalf("ConsumersMoved = %s/%s %q, want False/OldTokenInUse", c.Status, c.Reason, c.Message)
	}
	if lu := tok.Status.PreviousTokenLastUsedAt; lu == nil || !lu.Time.Equal(start.Add(180*time.Minute)) {
		t.Fatalf("previousTokenLastUsedAt = %v, want the last use at +3h", lu)
	}
	if got := countPrefixed(drainEvents(recorder), corev1.EventTypeNormal+" "+v1alpha1.EventOldTokenInUse); got != 1 {
		t.Fatalf("%d OldTokenInUse Events over 3 hours of waiting, want 1", got)
	}
	if gets := w.stub.Calls()[nomadstub.OpGet]; gets != 180 {
		// 180 are the consumer's own requests: the lists told the operator everything.
		t.Fatalf("%d GETs, want only the consumer's 180: the operator needed none", gets)
	}
	// The job ends. Once a list shows the old PAT unused for unusedFor, it is revoked.
	stop := w.clock.Now()
	for m := 1; m <= 10; m++ {
		w.clock.SetTime(stop.Add(time.Duration(m) * time.Minute))
		w.listNow(t)
		w.mustReconcile(t)
		if !w.active("bot", old) {
			if m < 5 {
				t.Fatalf("revoked %d minutes after the last use, before unusedFor (5m)", m)
			}
			break
		}
	}
	tok = w.token(t)
	if w.active("bot", old) || tok.Status.PreviousTokenID != "" {
		t.Fatal("the old PAT is still active 10 minutes after its last use")
	}
	if c := consumersMovedOf(t, tok); c.Status != metav1.ConditionTrue {
		t.Fatalf("after the revocation ConsumersMoved = %s/%s, want True", c.Status, c.Reason)
	}
	if got := readyCondition(t, tok); got.Status != metav1.ConditionTrue {
		t.Fatalf("Ready = %s/%s while waiting, want True", got.Status, got.Reason)
	}
}

func TestAnOldPATUsedAllAlongIsRevokedAtMaxGracePeriod(t *testing.T) {
	w, oldRaw := waitingWorld(t)
	recorder := w.r.Recorder.(*events.FakeRecorder)
	start := w.clock.Now()
	old := w.rotate(t, "1")
	for h := 1; h < 24; h++ {
		w.clock.SetTime(start.Add(time.Duration(h) * time.Hour))
		w.useRaw(t, oldRaw)
		w.listNow(t)
		res := w.mustReconcile(t)
		if !w.active("bot", old) {
			t.Fatalf("revoked after %dh while in use, before maxGracePeriod", h)
		}
		if res.RequeueAfter <= 0 {
			t.Fatalf("no wake-up asked for while waiting (%v)", res)
		}
	}
	drainEvents(recorder)
	w.clock.SetTime(start.Add(24*time.Hour + time.Second))
	w.useRaw(t, oldRaw)
	w.mustReconcile(t)
	if w.active("bot", old) {
		t.Fatal("the old PAT is still active after maxGracePeriod")
	}
	got := drainEvents(recorder)
	if countPrefixed(got, corev1.EventTypeWarning+" "+v1alpha1.EventMaxGracePeriodReached) != 1 {
		t.Fatalf("Events %q: want one Warning MaxGracePeriodReached naming the last use", got)
	}
}

// When the decision is due and no list since the rotation tells the old PAT's use, one GET does;
// it is not repeated on every reconcile.
func TestAStaleListCostsOneNarrowRequest(t *testing.T) {
	w, _ := waitingWorld(t)
	start := w.clock.Now()
	old := w.rotate(t, "1")
	w.stub.ResetCalls()
	// Past gracePeriod, the last list is from before the rotation; the old PAT was never used.
	w.clock.SetTime(start.Add(10*time.Minute + time.Second))
	w.mustReconcile(t)
	if gets := w.stub.Calls()[nomadstub.OpGet]; gets != 1 {
		t.Fatalf("%d GETs, want exactly one look at the old PAT", gets)
	}
	if w.active("bot", old) {
		t.Fatal("a never-used old PAT was kept past gracePeriod")
	}
}

func TestAStaleLookIsRepeatedOnlyWhenItCouldProveTheOldPATIdle(t *testing.T) {
	w, oldRaw := waitingWorld(t)
	start := w.clock.Now()
	old := w.rotate(t, "1")
	w.clock.SetTime(start.Add(9 * time.Minute))
	w.useRaw(t, oldRaw)
	w.stub.ResetCalls()
	w.clock.SetTime(start.Add(10*time.Minute + time.Second))
	res := w.mustReconcile(t)
	// Used a minute ago: kept, and looked at again when 5 minutes have passed since that use.
	if gets := w.stub.Calls()[nomadstub.OpGet]; gets != 1 || !w.active("bot", old) {
		t.Fatalf("GETs %d, active %v: want one look, and the PAT kept", gets, w.active("bot", old))
	}
	if want := 4*time.Minute - time.Second; res.RequeueAfter != want {
		t.Fatalf("requeue after %s, want %s (when its last use is unusedFor old)", res.RequeueAfter, want)
	}
	for range 3 {
		w.mustReconcile(t) // events in between look at nothing new
	}
	if gets := w.stub.Calls()[nomadstub.OpGet]; gets != 1 {
		t.Fatalf("%d GETs after three more reconciles, want still 1", gets)
	}
	w.clock.SetTime(start.Add(14 * time.Minute))
	w.mustReconcile(t)
	if gets := w.stub.Calls()[nomadstub.OpGet]; gets != 2 || w.active("bot", old) {
		t.Fatalf("GETs %d, active %v once unused for 5m: want a second look, and the PAT revoked", gets, w.active("bot", old))
	}
}

// A NOMAD outage while the old PAT waits: its use cannot be read, so it is kept (and said so), and
// maxGracePeriod still takes it.
func TestANomadOutageDuringTheWaitKeepsTheOldPATUntilMaxGracePeriod(t *testing.T) {
	w, oldRaw := waitingWorld(t)
	start := w.clock.Now()
	old := w.rotate(t, "1")
	w.clock.SetTime(start.Add(9 * time.Minute))
	w.useRaw(t, oldRaw)
	w.stub.InjectFault(nomadstub.OpGet, -1, nomadstub.Fault{Status: http.StatusServiceUnavailable})
	w.clock.SetTime(start.Add(20 * time.Minute))
	_ = w.reconcile(t) // a failed look is no reconcile error; the result does not matter here
	tok := w.token(t)
	if c := consumersMovedOf(t, tok); c.Reason != v1alpha1.ReasonOldTokenUseUnknown || !w.active("bot", old) {
		t.Fatalf("ConsumersMoved %s/%s %q, active %v: want OldTokenUseUnknown and the PAT kept", c.Status, c.Reason, c.Message, w.active("bot", old))
	}
	w.stub.ClearFaults()
	w.clock.SetTime(start.Add(24*time.Hour + time.Second))
	w.mustReconcile(t)
	if w.active("bot", old) {
		t.Fatal("the old PAT outlived maxGracePeriod")
	}
}

// revoke-now during the wait revokes the old PAT at once, with the current one.
func TestRevokeNowDuringTheWaitRevokesTheOldPATAtOnce(t *testing.T) {
	w, oldRaw := waitingWorld(t)
	start := w.clock.Now()
	old := w.rotate(t, "1")
	current := w.token(t).Status.TokenID
	w.clock.SetTime(start.Add(time.Hour))
	w.useRaw(t, oldRaw)
	w.listNow(t)
	w.mustReconcile(t)
	if !w.active("bot", old) {
		t.Fatal("the old PAT in use went before revoke-now")
	}
	w.update(t, func(tok *v1alpha1.NomadToken) {
		metav1.SetMetaDataAnnotation(&tok.ObjectMeta, v1alpha1.AnnotationRevokeNow, "incident")
	})
	w.mustReconcile(t)
	if w.active("bot", old) || w.active("bot", current) {
		t.Fatalf("after revoke-now: old active %v, replaced current active %v; want both revoked", w.active("bot", old), w.active("bot", current))
	}
}

// NOMAD's per-user cap: an old PAT kept longer holds a place. A rotation at the cap revokes that
// waiting PAT first and creates the new one as usual, so the consumers that moved keep their PAT
// through the swap; only if the cap still refuses does it fall back to NOMAD's rotate endpoint.
func TestTheCapFallbackHoldsWhileAnOldPATWaits(t *testing.T) {
	for _, c := range []struct {
		name     string
		cap      int
		rotated  bool // fell back to rotating the current PAT in place
		activeAf int
	}{
		{name: "room after the waiting PAT goes", cap: 2, activeAf: 2},
		{name: "no room even then", cap: 1, rotated: true, activeAf: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, oldRaw := waitingWorld(t)
			recorder := w.r.Recorder.(*events.FakeRecorder)
			start := w.clock.Now()
			old := w.rotate(t, "1")
			current := w.token(t).Status.TokenID
			w.clock.SetTime(start.Add(time.Hour))
			w.useRaw(t, oldRaw)
			w.listNow(t)
			w.mustReconcile(t)
			w.stub.SetMaxActivePerUser(c.cap)                      // the current PAT and the waiting one fill it
			w.clock.SetTime(start.Add(time.Hour + 11*time.Second)) // past the rotate debounce
			drainEvents(recorder)
			w.update(t, func(tok *v1alpha1.NomadToken) {
				metav1.SetMetaDataAnnotation(&tok.ObjectMeta, v1alpha1.AnnotationRotate, "2")
			})
			w.mustReconcile(t)
			tok := w.token(t)
			if got := readyCondition(t, tok); got.Status != metav1.ConditionTrue {
				t.Fatalf("Ready %s/%s %q after a rotation at the cap, want True", got.Status, got.Reason, got.Message)
			}
			got := drainEvents(recorder)
			if w.active("bot", old) || len(w.stub.ActivePATs("bot")) != c.activeAf ||
				countPrefixed(got, corev1.EventTypeWarning+" "+v1alpha1.EventPreviousRevokedAtPATLimit) != 1 {
				t.Fatalf("waiting PAT active %v, %d active PATs (want %d), Events %q: want it revoked first, with a Warning",
					w.active("bot", old), len(w.stub.ActivePATs("bot")), c.activeAf, got)
			}
			fellBack := countPrefixed(got, corev1.EventTypeWarning+" "+v1alpha1.EventFallbackToRotate) == 1
			if fellBack != c.rotated || w.active("bot", current) == c.rotated {
				t.Fatalf("fell back to rotate %v, replaced PAT active %v; want rotate %v", fellBack, w.active("bot", current), c.rotated)
			}
		})
	}
}

// A list that showed the old PAT unused proves nothing about the uses after it: a consumer that
// starts again before gracePeriod ends keeps the PAT (the review's scenario).
func TestAnOldListDoesNotProveTheOldPATIdleNow(t *testing.T) {
	w, oldRaw := waitingWorld(t)
	start := w.clock.Now()
	old := w.rotate(t, "1")
	w.clock.SetTime(start.Add(time.Minute))
	w.listNow(t) // never used yet
	w.mustReconcile(t)
	w.clock.SetTime(start.Add(7 * time.Minute))
	w.useRaw(t, oldRaw)
	w.clock.SetTime(start.Add(10*time.Minute + time.Second))
	w.mustReconcile(t)
	if !w.active("bot", old) {
		t.Fatal("the old PAT used 3 minutes ago was revoked on a list from before that use")
	}
}
