package controllers

import (
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// TestReadyVerdict is the Ready condition as a table: what was observed, planned and done, and what
// Ready says at the end of the reconcile (nil: it stays as it was).
func TestReadyVerdict(t *testing.T) {
	now := issuedAt.Add(time.Hour)
	renewalDue := issuedAt.AddDate(0, 0, 25)
	readyTrue := &metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonIssued}
	unreplacedBefore := &metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonRevokedWithoutReplacement}
	seen := func(at time.Time, before *metav1.Condition, edit func(*observed)) func() *observed {
		return func() *observed {
			tok := issuedToken()
			s := secretHolding(tok, []byte(testRaw), currentFacts(tok))
			setControllerRef(s, tok)
			o := &observed{token: tok, secret: s, now: at, readyBefore: before}
			if edit != nil {
				edit(o)
			}
			return o
		}
	}
	noPAT := func(o *observed) { o.token.Status = v1alpha1.NomadTokenStatus{} }
	lifetime := &nomad.Error{Op: "create", Code: nomad.CodeLifetimeExceeded, StatusCode: 400, Detail: "too long"}
	outage := &nomad.Error{Op: "create", Code: nomad.CodeTransient, StatusCode: 503, Detail: "down"}
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "nomadtokens"}, "ci", errors.New("stale"))
	notAllowed := &failure{reason: v1alpha1.ReasonConnectionNotAllowed, message: "namespace not allowed"}
	refusal := &holdOff{refusal: failure{reason: v1alpha1.ReasonLifetimeExceeded, message: "NOMAD refused the lifetime"}}
	newPAT := &issuedFact{id: "665f1c0000000000000000ff", reason: IssueRenewalDue, expiresAt: renewalDue.AddDate(0, 0, 30)}

	tests := []struct {
		name    string
		observe func() *observed
		plan    plan
		out     outcome
		want    *verdict // message checked by substring
	}{
		{
			name:    "a healthy token is Ready with the PAT its Secret holds",
			observe: seen(now, nil, nil),
			want:    &verdict{metav1.ConditionTrue, v1alpha1.ReasonIssued, "holds PAT 665f1c000000000000000001"},
		},
		{
			name:    "a new PAT is Ready with its own id and expiry",
			observe: seen(renewalDue, readyTrue, nil),
			plan:    plan{mint: attempt{reason: IssueRenewalDue}, currentServes: true},
			out:     outcome{issued: newPAT},
			want:    &verdict{metav1.ConditionTrue, v1alpha1.ReasonIssued, "holds PAT 665f1c0000000000000000ff"},
		},
		{
			name:    "NOMAD refuses a first PAT: Ready says why",
			observe: seen(now, nil, noPAT),
			plan:    plan{mint: attempt{reason: IssueNotIssued}},
			out:     outcome{err: lifetime},
			want:    &verdict{metav1.ConditionFalse, v1alpha1.ReasonLifetimeExceeded, "lower spec.expiresInDays"},
		},
		{
			name:    "a failed renewal leaves a PAT that still serves Ready",
			observe: seen(renewalDue, readyTrue, nil),
			plan:    plan{mint: attempt{reason: IssueRenewalDue}, currentServes: true},
			out:     outcome{err: outage},
		},
		{
			name:    "a failed renewal of an expired PAT is not Ready",
			observe: seen(issuedAt.AddDate(0, 0, 31), readyTrue, nil),
			plan:    plan{mint: attempt{reason: IssueExpired}},
			out:     outcome{err: outage},
			want:    &verdict{metav1.ConditionFalse, v1alpha1.ReasonNomadUnavailable, "will retry"},
		},
		{
			name:    "a spec change whose PAT the API server kept from being issued is still issuing",
			observe: seen(now, readyTrue, func(o *observed) { o.token.Spec.ExpiresInDays = 90 }),
			plan:    plan{mint: attempt{reason: IssueSpecChanged}},
			out:     outcome{err: conflict},
			want:    &verdict{metav1.ConditionFalse, v1alpha1.ReasonProgressing, "issuing a PAT (SpecChanged)"},
		},
		{
			name:    "a renewal held back by the connection's own limits changes nothing",
			observe: seen(renewalDue, readyTrue, nil),
			plan:    plan{mint: attempt{reason: IssueRenewalDue}, currentServes: true},
			out:     outcome{err: nomad.ErrBusy},
		},
		{
			name:    "a rotate the API server interrupted may have revoked the Secret's PAT",
			observe: seen(renewalDue, readyTrue, nil),
			plan:    plan{mint: attempt{reason: IssueRenewalDue, via: viaRotate}, currentServes: true},
			out:     outcome{err: conflict, rotateUnsettled: "665f1c000000000000000001"},
			want:    &verdict{metav1.ConditionFalse, v1alpha1.ReasonProgressing, "may already be revoked"},
		},
		{
			name:    "a rotate whose answer was lost is not Ready, even though the PAT was valid",
			observe: seen(renewalDue, readyTrue, nil),
			plan:    plan{mint: attempt{reason: IssueRenewalDue, via: viaRotate}, currentServes: true},
			out:     outcome{err: outage, rotateUnsettled: "665f1c000000000000000001"},
			want:    &verdict{metav1.ConditionFalse, v1alpha1.ReasonNomadUnavailable, ""},
		},
		{
			name:    "revoke-now without a successor says the PAT is revoked",
			observe: seen(now, readyTrue, nil),
			plan:    plan{mint: attempt{reason: IssueRevokeNow}, revokeUnreplaced: true},
			out:     outcome{err: lifetime, unreplaced: "665f1c000000000000000001", revocations: revocations{revoked: []string{"665f1c000000000000000001"}}},
			want:    &verdict{metav1.ConditionFalse, v1alpha1.ReasonRevokedWithoutReplacement, "revoke-now revoked PAT 665f1c000000000000000001"},
		},
		{
			name:    "revoke-now without a successor during an outage says the PAT is queued",
			observe: seen(now, readyTrue, nil),
			plan:    plan{mint: attempt{reason: IssueRevokeNow}, revokeUnreplaced: true},
			out:     outcome{err: outage, unreplaced: "665f1c000000000000000001"},
			want:    &verdict{metav1.ConditionFalse, v1alpha1.ReasonRevokedWithoutReplacement, "queued PAT 665f1c000000000000000001"},
		},
		{
			name:    "a token revoke-now left without a PAT keeps saying so while its successor is refused",
			observe: seen(now, unreplacedBefore, noPAT),
			plan:    plan{mint: attempt{reason: IssueNotIssued}},
			out:     outcome{err: lifetime},
		},
		{
			name:    "the platform's rules refuse the token: Ready is False while its PAT still works",
			observe: seen(now, readyTrue, func(o *observed) { o.refused = notAllowed }),
			plan:    plan{currentServes: true, blocked: notAllowed},
			want:    &verdict{metav1.ConditionFalse, v1alpha1.ReasonConnectionNotAllowed, "keeps working until it expires"},
		},
		{
			name:    "revoke-now on a refused token revokes without a successor",
			observe: seen(now, readyTrue, func(o *observed) { o.refused = notAllowed }),
			plan:    plan{mint: attempt{reason: IssueRevokeNow}, revokeOnly: true, blocked: notAllowed},
			out:     outcome{unreplaced: "665f1c000000000000000001"},
			want:    &verdict{metav1.ConditionFalse, v1alpha1.ReasonRevokedWithoutReplacement, "namespace not allowed"},
		},
		{
			name:    "a hold-off keeps a serving PAT Ready",
			observe: seen(renewalDue, readyTrue, func(o *observed) { o.heldOff = refusal }),
			plan:    plan{mint: attempt{reason: IssueRenewalDue}, currentServes: true, blocked: &refusal.refusal},
		},
		{
			name:    "a hold-off does not keep an expired PAT Ready",
			observe: seen(issuedAt.AddDate(0, 0, 31), readyTrue, func(o *observed) { o.heldOff = refusal }),
			plan:    plan{mint: attempt{reason: IssueExpired}, blocked: &refusal.refusal},
			want:    &verdict{metav1.ConditionFalse, v1alpha1.ReasonLifetimeExceeded, "expired at"},
		},
		{
			name:    "a hold-off does not keep a PAT whose Secret is gone Ready",
			observe: seen(now, readyTrue, func(o *observed) { o.heldOff, o.secret = refusal, nil }),
			plan:    plan{mint: attempt{reason: IssueSecretMissing}, blocked: &refusal.refusal},
			want:    &verdict{metav1.ConditionFalse, v1alpha1.ReasonLifetimeExceeded, "no longer serves (SecretMissing)"},
		},
		{
			name:    "a Secret that is not ours is reported even while the PAT is valid",
			observe: seen(now, readyTrue, nil),
			plan:    plan{blocked: &failure{reason: v1alpha1.ReasonSecretConflict, message: secretConflictMessage("ci")}},
			want:    &verdict{metav1.ConditionFalse, v1alpha1.ReasonSecretConflict, "is not owned by this NomadToken"},
		},
		{
			name:    "settling an interrupted issuance leaves Ready to the reconcile that follows",
			observe: seen(now, nil, nil),
			plan:    plan{settle: &settlement{reach: "NomadConnection/oasis"}},
		},
		{
			name:    "a first PAT waiting for the connection's in-use hold is in progress",
			observe: seen(now, nil, noPAT),
			plan:    plan{mint: attempt{reason: IssueNotIssued}, awaiting: &failure{reason: v1alpha1.ReasonProgressing, message: "waiting for the hold"}},
			want:    &verdict{metav1.ConditionFalse, v1alpha1.ReasonProgressing, "waiting for the hold"},
		},
		{
			name:    "a renewal waiting for the hold keeps a serving PAT Ready",
			observe: seen(renewalDue, readyTrue, nil),
			plan:    plan{mint: attempt{reason: IssueRenewalDue}, currentServes: true, awaiting: &failure{reason: v1alpha1.ReasonProgressing, message: "waiting"}},
		},
		{
			name:    "an observation the API server cut short changes nothing",
			observe: seen(now, readyTrue, func(o *observed) { o.incomplete = conflict }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readyVerdict(tt.observe(), tt.plan, tt.out)
			switch {
			case tt.want == nil && got != nil:
				t.Fatalf("Ready = %+v, want it left as it was", *got)
			case tt.want == nil:
			case got == nil:
				t.Fatalf("Ready left as it was, want %+v", *tt.want)
			case got.status != tt.want.status || got.reason != tt.want.reason || !strings.Contains(got.message, tt.want.message):
				t.Fatalf("Ready = %s %s %q\nwant %s %s containing %q", got.status, got.reason, got.message, tt.want.status, tt.want.reason, tt.want.message)
			}
			if got != nil && strings.Contains(got.message, testRaw) {
				t.Fatal("the raw token reached the condition")
			}
		})
	}
}
