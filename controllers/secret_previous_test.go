package controllers

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

const oldRaw = "nomad_pat_OLDOLDOLDOLDOLDOLDOLDOLDOLDOLDOLDOLDOLDOL"

// swappedToken is an issued token that replaced oldRaw's PAT at issuedAt with an Overlap rotation,
// keeping it under previousKey; its grace period ends 10 minutes later.
func swappedToken() *v1alpha1.NomadToken {
	tok := issuedToken()
	tok.Spec.Secret.PreviousKey = "token.previous"
	tok.Status.PreviousTokenID = "665f1c000000000000000000"
	tok.Status.PreviousTokenFingerprint = tokenFingerprint([]byte(oldRaw))
	tok.Status.PreviousTokenRevokeAt = &metav1.Time{Time: issuedAt.Add(10 * time.Minute)}
	return tok
}

// swappedObservation is the snapshot of swappedToken at now, its Secret as the swap wrote it.
func swappedObservation(t *testing.T, now time.Time) *observed {
	tok := swappedToken()
	c := secretContent{raw: []byte(testRaw), facts: currentFacts(tok),
		previous: &previousToken{id: tok.Status.PreviousTokenID, raw: []byte(oldRaw), revokeBy: tok.Status.PreviousTokenRevokeAt.Time}}
	s := renderSecret(nil, tok, desired(t, tok, c))
	s.ManagedFields = managedBy(FieldManager, `{"f:metadata":{"f:annotations":{"f:tokens.nomad-operator.dev/previous-token-id":{},"f:tokens.nomad-operator.dev/previous-revoke-by":{}}},"f:data":{"f:token":{},"f:token.previous":{}}}`)
	return &observed{token: tok, secret: s, now: now}
}

// TestDecidePlansThePreviousKeysRemoval: the Secret loses previousKey in the reconcile in which the
// replaced PAT leaves status, whatever else the plan does, and never when it may not be written.
func TestDecidePlansThePreviousKeysRemoval(t *testing.T) {
	inGrace, pastGrace := issuedAt.Add(time.Minute), issuedAt.Add(11*time.Minute)
	revokeNow := func(o *observed) { o.token.Annotations = map[string]string{v1alpha1.AnnotationRevokeNow: "leak"} }
	tests := []struct {
		name string
		now  time.Time
		edit func(*observed)
		sync bool
	}{
		{name: "during the grace period the Secret keeps it, unwritten", now: inGrace},
		{name: "the grace period ended", now: pastGrace, sync: true},
		{name: "revoke-now, whether a successor comes or not", now: inGrace, edit: revokeNow, sync: true},
		{name: "revoke-now while the platform refuses a successor", now: inGrace, sync: true, edit: func(o *observed) {
			revokeNow(o)
			o.refused = &failure{reason: v1alpha1.ReasonPolicyViolation}
		}},
		{name: "the old PAT left status before (a failed rewrite)", now: inGrace, sync: true, edit: func(o *observed) {
			o.token.Status.PreviousTokenID, o.token.Status.PreviousTokenRevokeAt = "", nil
		}},
		{name: "a renewal due as the grace period ends", now: issuedAt.AddDate(0, 0, 25), sync: true, edit: func(o *observed) {
			o.token.Status.PreviousTokenRevokeAt = &metav1.Time{Time: issuedAt.AddDate(0, 0, 25)}
		}},
		{name: "not on an incomplete observation", now: pastGrace, edit: func(o *observed) { o.incomplete = errors.New("timeout") }},
		{name: "not to a Secret that is not the token's", now: pastGrace, edit: func(o *observed) { o.secret.OwnerReferences = nil }},
		{name: "not while an interrupted issuance is settled", now: pastGrace, edit: func(o *observed) { o.pending = &pendingFindings{} }},
		{name: "not once the current raw token is lost", now: pastGrace, edit: func(o *observed) { o.secret.Data["token"] = []byte("edited") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := swappedObservation(t, tt.now)
			if tt.edit != nil {
				tt.edit(o)
			}
			if p := decide(o); p.syncSecret != tt.sync {
				t.Fatalf("syncSecret = %v, want %v (plan %+v)", p.syncSecret, tt.sync, p)
			}
		})
	}
}

// TestPreviousKeyChangeIsARewrite: setting, renaming or removing previousKey rewrites the Secret
// and owes no PAT.
func TestPreviousKeyChangeIsARewrite(t *testing.T) {
	o := swappedObservation(t, issuedAt.Add(time.Minute))
	o.token.Spec.Secret.PreviousKey = "OLD_TOKEN"
	if p := decide(o); !p.syncSecret || p.mints() {
		t.Fatalf("plan %+v: a renamed previousKey is a rewrite", p)
	}
	c, _ := o.secretContent()
	if c.previous == nil || string(c.previous.raw) != oldRaw {
		t.Fatal("the previous token is found by its fingerprint under the old key name")
	}
	o.token.Spec.Secret.PreviousKey = ""
	if p := decide(o); !p.syncSecret || p.mints() {
		t.Fatalf("plan %+v: removing previousKey is a rewrite", p)
	}
}

// newManagedFieldsWorld is a crash world whose fake API server records and returns managedFields, as
// a real one does: the operator then removes the keys it set and no longer wants.
func newManagedFieldsWorld(t *testing.T) *crashWorld {
	t.Helper()
	w := newCrashWorld(t, interceptor.Funcs{})
	var objs []client.Object
	for name, o := range map[string]client.Object{"oasis": &v1alpha1.NomadConnection{}, "bot": &corev1.Secret{}, "ci": &v1alpha1.NomadToken{}} {
		if err := w.client.Get(context.Background(), client.ObjectKey{Namespace: "team-a", Name: name}, o); err != nil {
			t.Fatal(err)
		}
		o.SetResourceVersion("")
		objs = append(objs, o)
	}
	c := fake.NewClientBuilder().WithScheme(w.client.Scheme()).WithReturnManagedFields().
		WithStatusSubresource(&v1alpha1.NomadToken{}, &v1alpha1.NomadConnection{}).WithObjects(objs...).Build()
	w.client, w.r.Client, w.r.APIReader, w.r.Resolver.Reader = c, c, c, c
	return w
}

// swapInWorld issues a PAT with previousKey set, rotates it, and returns the token before and after.
func swapInWorld(t *testing.T, w *crashWorld) (first, swapped *v1alpha1.NomadToken) {
	t.Helper()
	w.update(t, func(tok *v1alpha1.NomadToken) { tok.Spec.Secret.PreviousKey = "token.previous" })
	w.mustReconcile(t)
	first = w.assertOneActivePATInSecret(t)
	oldRaw := string(w.liveSecret(t).Data["token"])
	w.clock.SetTime(tokenRenewalTime(first).Add(time.Second))
	w.mustReconcile(t)
	swapped = w.token(t)
	s := w.liveSecret(t)
	if swapped.Status.PreviousTokenID != first.Status.TokenID {
		t.Fatalf("test premise: an Overlap swap keeping %s, status has %q", first.Status.TokenID, swapped.Status.PreviousTokenID)
	}
	if string(s.Data["token.previous"]) != oldRaw || string(s.Data["token"]) == oldRaw || !w.stub.Authenticates(oldRaw) {
		t.Fatal("from the swap, previousKey holds the replaced, still valid, raw token beside the new one")
	}
	if s.Annotations[v1alpha1.AnnotationPreviousTokenID] != first.Status.TokenID ||
		s.Annotations[v1alpha1.AnnotationPreviousRevokeBy] != swapped.Status.PreviousTokenRevokeAt.UTC().Format(time.RFC3339) {
		t.Fatalf("annotations %v, want the old PAT's id and its revoke time as status records it (%s)", s.Annotations, swapped.Status.PreviousTokenRevokeAt)
	}
	return first, swapped
}

func assertNoPreviousInSecret(t *testing.T, s *corev1.Secret) {
	t.Helper()
	if _, ok := s.Data["token.previous"]; ok {
		t.Error("previousKey stays after the old PAT left status")
	}
	for _, a := range []string{v1alpha1.AnnotationPreviousTokenID, v1alpha1.AnnotationPreviousRevokeBy} {
		if _, ok := s.Annotations[a]; ok {
			t.Errorf("annotation %s stays after the old PAT left status", a)
		}
	}
}

func TestPreviousKeyLastsUntilTheGracePeriodEnds(t *testing.T) {
	w := newManagedFieldsWorld(t)
	first, _ := swapInWorld(t, w)
	version := w.liveSecret(t).ResourceVersion
	w.clock.Step(time.Minute)
	w.mustReconcile(t)
	if w.liveSecret(t).ResourceVersion != version {
		t.Fatal("during the grace period the Secret is in sync: no write")
	}
	w.clock.Step(v1alpha1.DefaultGracePeriod)
	w.mustReconcile(t)
	if w.active("bot", first.Status.TokenID) {
		t.Fatal("test premise: the old PAT is revoked at the end of the grace period")
	}
	s := w.liveSecret(t)
	assertNoPreviousInSecret(t, s)
	if !w.stub.Authenticates(string(s.Data["token"])) {
		t.Fatal("the current token stays")
	}
}

func TestRevokeNowRemovesThePreviousKey(t *testing.T) {
	for _, tt := range []struct {
		name      string
		successor bool
	}{{"with a successor", true}, {"without a successor", false}} {
		t.Run(tt.name, func(t *testing.T) {
			w := newManagedFieldsWorld(t)
			_, swapped := swapInWorld(t, w)
			current := string(w.liveSecret(t).Data["token"])
			if !tt.successor {
				w.stub.InjectFault("create", -1, nomadstub.Fault{Status: http.StatusForbidden, Detail: "not today"})
				w.stub.InjectFault("rotate", -1, nomadstub.Fault{Status: http.StatusForbidden, Detail: "not today"})
			}
			w.update(t, func(tok *v1alpha1.NomadToken) {
				tok.Annotations = map[string]string{v1alpha1.AnnotationRevokeNow: "incident-7"}
			})
			_ = w.reconcile(t)
			s := w.liveSecret(t)
			assertNoPreviousInSecret(t, s)
			if w.active("bot", swapped.Status.PreviousTokenID) || w.active("bot", swapped.Status.TokenID) {
				t.Fatal("revoke-now revokes the previous and the current PAT")
			}
			if !tt.successor && string(s.Data["token"]) != current {
				t.Fatal("without a successor the Secret keeps the dead current token (docs/rotation.md)")
			}
		})
	}
}

func TestPreviousKeySetLaterMakesNoNOMADCall(t *testing.T) {
	w := newManagedFieldsWorld(t)
	w.mustReconcile(t)
	w.assertOneActivePATInSecret(t)
	w.clock.SetTime(tokenRenewalTime(w.token(t)).Add(time.Second))
	w.mustReconcile(t)
	before := w.stub.Calls()
	w.update(t, func(tok *v1alpha1.NomadToken) { tok.Generation++; tok.Spec.Secret.PreviousKey = "token.previous" })
	w.mustReconcile(t)
	if after := w.stub.Calls(); !sameCalls(before, after) {
		t.Fatalf("NOMAD calls %v -> %v: previousKey is no material field", before, after)
	}
	if s := w.liveSecret(t); s.Data["token.previous"] != nil || s.Annotations[v1alpha1.AnnotationPreviousTokenID] != "" {
		t.Fatal("previousKey set after the swap: the Secret simply has no previous key")
	}
}

// gracePeriod is a promise of at least that long after the Secret holds the new PAT: a write retried
// for seconds moves the grace end, not the latest revoke time the Secret already announced.
func TestSwapDeadlinesRunFromTheWriteThatLanded(t *testing.T) {
	rot := v1alpha1.Rotation{GracePeriod: &metav1.Duration{Duration: 10 * time.Minute},
		WaitForConsumers: &v1alpha1.WaitForConsumers{UnusedFor: metav1.Duration{Duration: time.Minute}, MaxGracePeriod: metav1.Duration{Duration: time.Hour}}}
	before := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	d := oldPATDeadlines(rot, before).landed(rot, before.Add(3*time.Second))
	if want := before.Add(10*time.Minute + 3*time.Second); !d.revokeAt.Time.Equal(want) {
		t.Errorf("grace ends at %s, want %s (10m after the write landed)", d.revokeAt.Time, want)
	}
	if want := before.Add(time.Hour); d.revokeBy == nil || !d.revokeBy.Time.Equal(want) {
		t.Errorf("latest revoke at %v, want %s (as announced)", d.revokeBy, want)
	}
}
