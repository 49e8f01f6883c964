package controllers

import (
	"context"
	"net/http"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// Deletion revokes what it can first, waits for what retrying can still revoke, and does not wait
// for a replaced PAT that nothing the operator holds can revoke (issue 15, item 4).

// newMovedCredentialsWorld is a token whose connection's credentials Secret moved from bot to bot2:
// it holds a PAT of bot2, and the PAT of bot waits in its revoke queue, which no connection can work
// (none logs in as bot any more). It returns the world and bot's PAT.
func newMovedCredentialsWorld(t *testing.T) (*crashWorld, string) {
	t.Helper()
	w := newCrashWorld(t, interceptor.Funcs{})
	w.r.Verifier = NewVerifier(0)
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	w.stub.AddUser("bot2", "pw2")
	w.moveCredentialsTo(t, "bot2", "pw2")
	w.recordList(client.ObjectKey{Namespace: "team-a", Name: "oasis"}, "", nil)
	if err := w.reconcile(t); err == nil || classify(err).reason != v1alpha1.EventRevokeWaiting {
		t.Fatalf("reconcile = %v, want bot's PAT waiting for its owner", err)
	}
	if tok := w.token(t); !w.active("bot2", tok.Status.TokenID) || len(tok.Status.RevokePending) != 1 {
		t.Fatalf("test premise: a PAT of bot2 in status (%q) and bot's queued (%v)", tok.Status.TokenID, tok.Status.RevokePending)
	}
	return w, first.Status.TokenID
}

func TestDeletionRevokesTheCurrentPATAndAbandonsAQueuedOneNoConnectionCanRevoke(t *testing.T) {
	w, left := newMovedCredentialsWorld(t)
	pats := &patEventLog{}
	w.r.PATs = pats
	recorder := w.r.Recorder.(*events.FakeRecorder)
	drainEvents(recorder)

	if err := w.client.Delete(context.Background(), w.token(t)); err != nil {
		t.Fatal(err)
	}
	w.mustReconcile(t)
	if err := w.client.Get(context.Background(), w.key, &v1alpha1.NomadToken{}); err == nil {
		t.Fatal("the deletion waits for a PAT that no connection can revoke (up to its expiry, a year)")
	}
	if active := w.stub.ActivePATs("bot2"); len(active) != 0 {
		t.Fatalf("bot2's PATs %v are still active: the current PAT must be revoked", active)
	}
	if !w.active("bot", left) {
		t.Fatal("test premise: only bot could have revoked its PAT")
	}
	if got, want := pats.take(), []string{"revoked " + oasis, "abandoned " + oasis}; !slices.Equal(got, want) {
		t.Errorf("PAT counters %q, want %q", got, want)
	}
	got := drainEvents(recorder)
	if countPrefixed(got, corev1.EventTypeWarning+" "+v1alpha1.EventRevokeAbandoned) != 1 || !strings.Contains(strings.Join(got, "\n"), left) {
		t.Errorf("want one Warning %s naming %s, got %q", v1alpha1.EventRevokeAbandoned, left, got)
	}
	if countPrefixed(got, corev1.EventTypeWarning+" "+v1alpha1.EventRevokeWaiting) != 0 {
		t.Errorf("an abandoned PAT is not waited for, but a RevokeWaiting says so: %q", got)
	}
	conn := w.oasis(t)
	if ab := conn.Status.AbandonedPATs; len(ab) != 1 || ab[0].ID != left || ab[0].NomadToken != "team-a/ci" || ab[0].ExpiresAt == nil {
		t.Fatalf("connection status.abandonedPATs %+v, want bot's PAT of team-a/ci with its expiry", ab)
	}
}

// An interrupted issuance of the old user can be looked for by no connection either: it does not hold
// the deletion, and is abandoned like the old user's replaced PAT. It has no id, so only the Event
// and the counter tell.
func TestDeletionAbandonsAnInterruptedIssuanceNoConnectionCanLookFor(t *testing.T) {
	w, left := newMovedCredentialsWorld(t)
	tok := w.token(t)
	tok.Status.PendingIssuance = &v1alpha1.PendingIssuance{Marker: "0badc0de-0123456789ab", StartedAt: metav1.NewTime(w.clock.Now()),
		ConnectionName: "oasis", Account: tok.Status.RevokePending[0].Account}
	if err := w.client.Status().Update(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	pats := &patEventLog{}
	w.r.PATs = pats
	recorder := w.r.Recorder.(*events.FakeRecorder)
	drainEvents(recorder)

	if err := w.client.Delete(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	w.mustReconcile(t)
	if err := w.client.Get(context.Background(), w.key, &v1alpha1.NomadToken{}); err == nil {
		t.Fatal("the deletion waits for an interrupted issuance no connection can look for")
	}
	if got, want := pats.take(), []string{"revoked " + oasis, "abandoned " + oasis, "abandoned " + oasis}; !slices.Equal(got, want) {
		t.Errorf("PAT counters %q, want %q", got, want)
	}
	got := drainEvents(recorder)
	if n := countPrefixed(got, corev1.EventTypeWarning+" "+v1alpha1.EventRevokeAbandoned); n != 2 || !strings.Contains(strings.Join(got, "\n"), "0badc0de-0123456789ab") {
		t.Errorf("want two Warnings %s, one naming the interrupted issuance's marker; got %q", v1alpha1.EventRevokeAbandoned, got)
	}
	conn := w.oasis(t)
	if ab := conn.Status.AbandonedPATs; len(ab) != 1 || ab[0].ID != left {
		t.Fatalf("connection status.abandonedPATs %+v, want only the PAT with an id, %s", ab, left)
	}
}

// A failure that retrying can fix (NOMAD not answering) still holds the deletion, names the PAT it
// is about, and abandons nothing; the current PAT is revoked all the same.
func TestDeletionWaitsForATransientFailureAfterRevokingTheCurrentPAT(t *testing.T) {
	w, left := newMovedCredentialsWorld(t)
	// A connection of bot again: bot's PAT can be revoked, once NOMAD answers the check that
	// comes first (the minting connection asks whether its user still owns the PAT).
	w.addConnection(t, "oasis-old", "bot", "pw")
	pats := &patEventLog{}
	w.r.PATs = pats
	w.stub.InjectFault(nomadstub.OpGet, -1, nomadstub.Fault{Status: http.StatusServiceUnavailable})

	if err := w.client.Delete(context.Background(), w.token(t)); err != nil {
		t.Fatal(err)
	}
	if err := w.reconcile(t); err == nil {
		t.Fatal("reconcile = nil, want the NOMAD failure retried with backoff")
	}
	if active := w.stub.ActivePATs("bot2"); len(active) != 0 {
		t.Fatalf("bot2's PATs %v are still active: the current PAT is revoked first, whatever else fails", active)
	}
	tok := w.token(t)
	if tok.Status.TokenID != "" || len(tok.Status.RevokePending) != 1 || tok.Status.RevokePending[0].ID != left {
		t.Fatalf("tokenID %q, revokePending %v: want the revoked PAT out of status and bot's still queued", tok.Status.TokenID, tok.Status.RevokePending)
	}
	ready := meta.FindStatusCondition(tok.Status.Conditions, v1alpha1.ConditionReady)
	if ready == nil || ready.Reason != v1alpha1.ReasonRevokeFailed || !strings.Contains(ready.Message, "cannot revoke PAT "+left) {
		t.Fatalf("Ready %+v: want RevokeFailed naming the PAT that holds the deletion, %s", ready, left)
	}
	if got := pats.take(); !slices.Equal(got, []string{"revoked " + oasis}) {
		t.Fatalf("PAT counters %q: want the current PAT revoked and nothing abandoned", got)
	}

	w.stub.ClearFaults()
	w.mustReconcile(t)
	if err := w.client.Get(context.Background(), w.key, &v1alpha1.NomadToken{}); err == nil {
		t.Fatal("the deletion still waits once NOMAD answers")
	}
	if w.active("bot", left) {
		t.Fatal("bot's PAT is still active: a connection of bot could revoke it")
	}
	if got := pats.take(); !slices.Equal(got, []string{"revoked " + oasis}) {
		t.Fatalf("PAT counters %q: want bot's PAT revoked, once, and the current one not counted again", got)
	}
}

// Retain releases the Secret that holds the PAT (status.secretName), not the one a rename blocked by
// SecretConflict names, and never touches a Secret the token does not own (issue 15, item 6).
func TestRetainReleasesTheSecretThatHoldsThePATAfterABlockedRename(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	theirs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "taken"}, Data: map[string][]byte{"token": []byte("theirs")}}
	if err := w.client.Create(context.Background(), theirs); err != nil {
		t.Fatal(err)
	}
	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Spec.Secret.Name = "taken"
		tok.Spec.DeletionPolicy = v1alpha1.DeletionRetain
	})
	_ = w.reconcile(t)
	tok := w.token(t)
	if ready := meta.FindStatusCondition(tok.Status.Conditions, v1alpha1.ConditionReady); tok.Status.SecretName != "ci" || ready == nil || ready.Reason != v1alpha1.ReasonSecretConflict {
		t.Fatalf("test premise: the rename is blocked and the PAT stays in Secret ci (status.secretName %q, Ready %+v)", tok.Status.SecretName, ready)
	}

	if err := w.client.Delete(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	w.mustReconcile(t)
	if err := w.client.Get(context.Background(), w.key, &v1alpha1.NomadToken{}); err == nil {
		t.Fatal("Retain never blocks a deletion")
	}
	held := &corev1.Secret{}
	if err := w.client.Get(context.Background(), client.ObjectKey{Namespace: "team-a", Name: "ci"}, held); err != nil {
		t.Fatal(err)
	}
	if len(held.OwnerReferences) != 0 || held.Labels[v1alpha1.LabelManagedBy] != "" || held.Labels[v1alpha1.LabelRetained] != "true" {
		t.Fatalf("Secret ci, which holds the retained PAT: ownerReferences %v, labels %v: want it released (garbage collection would delete it)",
			held.OwnerReferences, held.Labels)
	}
	if !w.active("bot", first.Status.TokenID) {
		t.Fatal("Retain revoked the PAT")
	}
	if err := w.client.Get(context.Background(), client.ObjectKeyFromObject(theirs), theirs); err != nil {
		t.Fatal(err)
	}
	if len(theirs.Labels) != 0 || string(theirs.Data["token"]) != "theirs" {
		t.Fatalf("a Secret the token does not own was changed: labels %v", theirs.Labels)
	}
}

// A Secret the token controls at neither name (a rename interrupted between writing the new Secret
// and deleting the old one) is released too; one with the operator's label that another NomadToken
// controls is not.
func TestRetainReleasesEverySecretTheTokenControls(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.mustReconcile(t)
	tok := w.token(t)
	left := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "left-over",
		Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}}}
	setControllerRef(left, tok)
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "other",
		Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}}}
	setControllerRef(other, &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Name: "other", UID: "other-uid"}})
	for _, s := range []*corev1.Secret{left, other} {
		if err := w.client.Create(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	w.update(t, func(tok *v1alpha1.NomadToken) { tok.Spec.DeletionPolicy = v1alpha1.DeletionRetain })
	if err := w.client.Delete(context.Background(), w.token(t)); err != nil {
		t.Fatal(err)
	}
	w.mustReconcile(t)
	for name, wantOwned := range map[string]bool{"ci": false, "left-over": false, "other": true} {
		s := &corev1.Secret{}
		if err := w.client.Get(context.Background(), client.ObjectKey{Namespace: "team-a", Name: name}, s); err != nil {
			t.Fatal(err)
		}
		if owned := metav1.GetControllerOf(s) != nil; owned != wantOwned {
			t.Errorf("Secret %s: controller ownerReference %v, want %v", name, owned, wantOwned)
		}
	}
}

// A token switched to Retain after its PAT was minted, on a connection whose policy forbids Retain,
// is revoked on deletion: otherwise the PAT would stay active and untracked on the shared account.
func TestRetainForbiddenByPolicyRevokesOnDeletion(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	conn := w.oasis(t)
	conn.Spec.Policy = &v1alpha1.ConnectionPolicy{AllowRetain: ptr.To(false)}
	if err := w.client.Update(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	w.update(t, func(tok *v1alpha1.NomadToken) { tok.Spec.DeletionPolicy = v1alpha1.DeletionRetain })
	if err := w.client.Delete(context.Background(), w.token(t)); err != nil {
		t.Fatal(err)
	}
	_ = w.reconcile(t)
	if w.active("bot", first.Status.TokenID) {
		t.Fatal("the PAT was retained although the connection's policy forbids Retain")
	}
	if got := drainEvents(w.r.Recorder.(*events.FakeRecorder)); countPrefixed(got, "Warning "+v1alpha1.ReasonPolicyViolation) != 1 {
		t.Errorf("want one PolicyViolation Warning saying why, got %q", got)
	}
}

// A reconcile that works from a cached copy of the NomadToken from before its finalizer went (the
// cache lags the operator's own update) must not revoke and give up on its PATs a second time: the
// abandoned PAT would be counted twice (seen in e2e: nomadtoken_pats_revoke_abandoned_total 2).
func TestADeletionSeenAgainFromAStaleCacheCountsNothingTwice(t *testing.T) {
	w, _ := newMovedCredentialsWorld(t)
	pats := &patEventLog{}
	w.r.PATs = pats
	if err := w.client.Delete(context.Background(), w.token(t)); err != nil {
		t.Fatal(err)
	}
	stale := w.token(t) // being deleted, finalizer still on
	w.mustReconcile(t)
	pats.take()
	// The same reconciler, its cache still serving the stale copy; the API server has none.
	objs := []client.Object{stale, w.oasis(t)}
	var secrets corev1.SecretList
	if err := w.client.List(context.Background(), &secrets); err != nil {
		t.Fatal(err)
	}
	for i := range secrets.Items {
		objs = append(objs, &secrets.Items[i])
	}
	cached := fake.NewClientBuilder().WithScheme(w.client.Scheme()).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.NomadToken{}, &v1alpha1.NomadConnection{}).Build()
	w.r.Client = cached
	w.mustReconcile(t)
	if got := pats.take(); len(got) != 0 {
		t.Fatalf("PAT counters %q from a stale copy of a deleted NomadToken, want none", got)
	}
}
