package controllers

import (
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

func TestRotationAllowedAt(t *testing.T) {
	issued := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// pat is a NomadToken holding a PAT issued at issued that lives lifetime, renewed at the default 2/3.
	pat := func(lifetime time.Duration) *v1alpha1.NomadToken {
		return &v1alpha1.NomadToken{
			ObjectMeta: metav1.ObjectMeta{UID: "uid-1"},
			Status: v1alpha1.NomadTokenStatus{TokenID: "pat-1", IssuedAt: &metav1.Time{Time: issued},
				ExpiresAt: &metav1.Time{Time: issued.Add(lifetime)}},
		}
	}
	interval := func(d time.Duration) *v1alpha1.ConnectionPolicy {
		return &v1alpha1.ConnectionPolicy{MinRotationInterval: &metav1.Duration{Duration: d}}
	}
	const day = 24 * time.Hour
	tests := []struct {
		name   string
		token  *v1alpha1.NomadToken
		policy *v1alpha1.ConnectionPolicy
		want   time.Time // zero: nothing bounds a rotation
	}{
		{name: "no policy bounds nothing", token: pat(30 * day)},
		{name: "a policy without minRotationInterval bounds nothing", token: pat(30 * day), policy: &v1alpha1.ConnectionPolicy{MaxTokens: ptr.To[int32](3)}},
		{name: "a zero interval bounds nothing", token: pat(30 * day), policy: interval(0)},
		{name: "nothing issued yet: the first PAT is no rotation", token: &v1alpha1.NomadToken{}, policy: interval(day)},
		{name: "a rotation waits the interval after the current PAT's issuance", token: pat(30 * day), policy: interval(day), want: issued.Add(day)},
		{name: "an interval longer than the time to renewal ends at the renewal: the PAT never expires for it",
			token: pat(3 * day), policy: interval(7 * day), want: tokenRenewalTime(pat(3 * day))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rotationAllowedAt(tt.token, tt.policy); !got.Equal(tt.want) {
				t.Fatalf("rotationAllowedAt = %v, want %v", got, tt.want)
			}
		})
	}
	if renewal := tokenRenewalTime(pat(3 * day)); !renewal.Before(issued.Add(7 * day)) {
		t.Fatalf("the last case needs a renewal (%v) before the interval ends", renewal)
	}
}

func TestRenewalSpacing(t *testing.T) {
	const day = 24 * time.Hour
	token := func(days int32, rot v1alpha1.Rotation) *v1alpha1.NomadToken {
		return &v1alpha1.NomadToken{Spec: v1alpha1.NomadTokenSpec{ExpiresInDays: days, Rotation: rot}}
	}
	tests := []struct {
		name  string
		token *v1alpha1.NomadToken
		want  time.Duration
	}{
		{name: "the default: 2/3 of the lifetime", token: token(30, v1alpha1.Rotation{}), want: 20 * day},
		{name: "an undefaulted lifetime is 30 days", token: token(0, v1alpha1.Rotation{}), want: 20 * day},
		{name: "renewBefore", token: token(30, v1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: 10 * day}}), want: 20 * day},
		{name: "renewBeforePercentage", token: token(10, v1alpha1.Rotation{RenewBeforePercentage: ptr.To[int32](90)}), want: day},
		{name: "held the safety floor before expiry (grace period and propagation)",
			token: token(1, v1alpha1.Rotation{RenewBefore: &metav1.Duration{Duration: time.Minute}, GracePeriod: &metav1.Duration{Duration: time.Hour}}),
			want:  day - time.Hour - propagationAllowance},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := renewalSpacing(tt.token); got != tt.want {
				t.Fatalf("renewalSpacing = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestIssuanceReasonWaitsForTheRotationPace: a rotation (requested or planned) gives no new PAT
// before rotationAllowedAt; reasons that are no rotation are not held back.
func TestIssuanceReasonWaitsForTheRotationPace(t *testing.T) {
	requested := func(tok *v1alpha1.NomadToken) { tok.Annotations = map[string]string{v1alpha1.AnnotationRotate: "r1"} }
	tests := []struct {
		name    string
		mutate  func(*v1alpha1.NomadToken)
		now     time.Time
		allowed time.Time
		want    string
	}{
		{name: "a rotate request within the interval waits", mutate: requested, now: issuedAt.Add(time.Minute), allowed: issuedAt.Add(time.Hour)},
		{name: "a rotate request once the interval has passed", mutate: requested, now: issuedAt.Add(time.Hour), allowed: issuedAt.Add(time.Hour), want: IssueRotateRequest},
		{name: "a rotate request without a bound", mutate: requested, now: issuedAt.Add(time.Second), want: IssueRotateRequest},
		{name: "a rotate request right after a rotation is debounced", now: issuedAt.Add(time.Hour + 3*time.Second),
			mutate: func(tok *v1alpha1.NomadToken) {
				requested(tok)
				tok.Status.LastRotationTime = &metav1.Time{Time: issuedAt.Add(time.Hour)}
			}},
		{name: "a rotate request once the debounce has passed", now: issuedAt.Add(time.Hour + rotateRequestDebounce), want: IssueRotateRequest,
			mutate: func(tok *v1alpha1.NomadToken) {
				requested(tok)
				tok.Status.LastRotationTime = &metav1.Time{Time: issuedAt.Add(time.Hour)}
			}},
		{name: "a renewal is never held back past its time (rotationAllowedAt ends there)", now: issuedAt.AddDate(0, 0, 25),
			allowed: issuedAt.AddDate(0, 0, 20), want: IssueRenewalDue},
		{name: "revoke-now is no rotation: it does not wait", now: issuedAt.Add(time.Minute), allowed: issuedAt.Add(time.Hour), want: IssueRevokeNow,
			mutate: func(tok *v1alpha1.NomadToken) { tok.Annotations = map[string]string{v1alpha1.AnnotationRevokeNow: "x"} }},
		{name: "a spec change is no rotation: it does not wait", now: issuedAt.Add(time.Minute), allowed: issuedAt.Add(time.Hour), want: IssueSpecChanged,
			mutate: func(tok *v1alpha1.NomadToken) { tok.Spec.Scopes = []string{"uploads:write"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := issuedToken()
			if tt.mutate != nil {
				tt.mutate(tok)
			}
			obs := &observed{token: tok, now: tt.now, rotationAllowedAt: tt.allowed,
				secret: ownedSecret(tok, "ci", map[string][]byte{"token": []byte(testRaw)})}
			if got := issuanceReason(obs); got != tt.want {
				t.Fatalf("issuanceReason = %q, want %q", got, tt.want)
			}
		})
	}
}

// A burst of rotate requests gets one rotation per debounce window, and the request that waits is
// served when the window ends, without any other event.
func TestABurstOfRotateRequestsIsDebounced(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.mustReconcile(t)
	w.assertOneActivePATInSecret(t)
	rotate := func(value string) ctrl.Result {
		w.update(t, func(tok *v1alpha1.NomadToken) { tok.Annotations = map[string]string{v1alpha1.AnnotationRotate: value} })
		return w.mustReconcile(t)
	}
	rotate("1")
	if got := w.stub.Calls()["create"]; got != 2 {
		t.Fatalf("creates = %d after the first rotate request, want 2", got)
	}
	w.clock.Step(3 * time.Second)
	res := rotate("2")
	if got := w.stub.Calls()["create"]; got != 2 {
		t.Fatalf("creates = %d: a rotate request 3 s after a rotation must wait for the debounce", got)
	}
	if want := rotateRequestDebounce - 3*time.Second; res.RequeueAfter != want {
		t.Fatalf("requeue after %s, want %s: the waiting request is served when the debounce ends", res.RequeueAfter, want)
	}
	w.clock.Step(res.RequeueAfter)
	w.mustReconcile(t)
	if got := w.stub.Calls()["create"]; got != 3 {
		t.Fatalf("creates = %d after the debounce, want 3", got)
	}
}
