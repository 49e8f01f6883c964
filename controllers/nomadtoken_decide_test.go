package controllers

import (
	"errors"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

const testRaw = "nomad_pat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

var issuedAt = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// issuedToken is a NomadToken whose status says it holds a 30-day PAT issued at issuedAt.
func issuedToken() *v1alpha1.NomadToken {
	tok := &v1alpha1.NomadToken{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ci", UID: "uid-1", Generation: 1},
		Spec: v1alpha1.NomadTokenSpec{
			ConnectionRef: v1alpha1.ConnectionRef{Name: "oasis"},
			Scopes:        []string{"uploads:read"},
			ExpiresInDays: 30,
		},
	}
	tok.Status = v1alpha1.NomadTokenStatus{
		TokenID:          "665f1c000000000000000001",
		SecretName:       "ci",
		IssuedAt:         &metav1.Time{Time: issuedAt},
		ExpiresAt:        &metav1.Time{Time: issuedAt.AddDate(0, 0, 30)},
		IssuedSpecHash:   materialHash(tok),
		TokenFingerprint: tokenFingerprint([]byte(testRaw)),
	}
	return tok
}

func ownedSecret(tok *v1alpha1.NomadToken, name string, data map[string][]byte) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: tok.Namespace, Name: name}, Data: data}
	setControllerRef(s, tok)
	return s
}

func TestIssuanceReason(t *testing.T) {
	tests := []struct {
		name     string
		token    func() *v1alpha1.NomadToken
		secret   func(*v1alpha1.NomadToken) *corev1.Secret
		previous func(*v1alpha1.NomadToken) *corev1.Secret
		now      time.Time
		gone     bool
		want     string
	}{
		{
			name:  "a new NomadToken needs its first PAT",
			token: func() *v1alpha1.NomadToken { t := issuedToken(); t.Status = v1alpha1.NomadTokenStatus{}; return t },
			now:   issuedAt, want: IssueNotIssued,
		},
		{
			name:  "a healthy token before its renewal time needs nothing",
			token: issuedToken, now: issuedAt.AddDate(0, 0, 19),
			secret: func(t *v1alpha1.NomadToken) *corev1.Secret {
				return ownedSecret(t, "ci", map[string][]byte{"token": []byte(testRaw)})
			},
		},
		{
			name:  "scopes changed",
			token: func() *v1alpha1.NomadToken { t := issuedToken(); t.Spec.Scopes = []string{"uploads:write"}; return t },
			now:   issuedAt, want: IssueSpecChanged,
		},
		{
			name: "scope order is not a change",
			token: func() *v1alpha1.NomadToken {
				t := issuedToken()
				t.Spec.Scopes = []string{"uploads:write", "uploads:read"}
				t.Status.IssuedSpecHash = materialHash(t)
				t.Spec.Scopes = []string{"uploads:read", "uploads:write"}
				return t
			},
			secret: func(t *v1alpha1.NomadToken) *corev1.Secret {
				return ownedSecret(t, "ci", map[string][]byte{"token": []byte(testRaw)})
			},
			now: issuedAt,
		},
		{
			name:  "the default token name is a material field too",
			token: func() *v1alpha1.NomadToken { t := issuedToken(); t.Spec.TokenName = "renamed"; return t },
			now:   issuedAt, want: IssueSpecChanged,
		},
		{
			name: "secret labels are not material",
			token: func() *v1alpha1.NomadToken {
				t := issuedToken()
				t.Spec.Secret.Labels = map[string]string{"a": "b"}
				return t
			},
			secret: func(t *v1alpha1.NomadToken) *corev1.Secret {
				return ownedSecret(t, "ci", map[string][]byte{"token": []byte(testRaw)})
			},
			now: issuedAt,
		},
		{name: "the Secret is gone", token: issuedToken, now: issuedAt, want: IssueSecretMissing},
		{
			name: "the Secret's token was replaced by hand", token: issuedToken, now: issuedAt, want: IssueSecretEdited,
			secret: func(t *v1alpha1.NomadToken) *corev1.Secret {
				return ownedSecret(t, "ci", map[string][]byte{"token": []byte("pasted")})
			},
		},
		{
			name:  "a changed key finds the token under the old key",
			token: func() *v1alpha1.NomadToken { t := issuedToken(); t.Spec.Secret.Key = "NOMAD_TOKEN"; return t },
			secret: func(t *v1alpha1.NomadToken) *corev1.Secret {
				return ownedSecret(t, "ci", map[string][]byte{"token": []byte(testRaw)})
			},
			now: issuedAt,
		},
		{
			name:  "a renamed Secret finds the token in the previous one",
			token: func() *v1alpha1.NomadToken { t := issuedToken(); t.Spec.Secret.Name = "moved"; return t },
			previous: func(t *v1alpha1.NomadToken) *corev1.Secret {
				return ownedSecret(t, "ci", map[string][]byte{"token": []byte(testRaw)})
			},
			now: issuedAt,
		},
		{
			name: "renewal time reached", token: issuedToken, now: issuedAt.AddDate(0, 0, 20), want: IssueRenewalDue,
			secret: func(t *v1alpha1.NomadToken) *corev1.Secret {
				return ownedSecret(t, "ci", map[string][]byte{"token": []byte(testRaw)})
			},
		},
		{
			name: "renewBefore moves the renewal", now: issuedAt.AddDate(0, 0, 25), want: "",
			token: func() *v1alpha1.NomadToken {
				t := issuedToken()
				t.Spec.Rotation.RenewBefore = &metav1.Duration{Duration: 48 * time.Hour}
				return t
			},
			secret: func(t *v1alpha1.NomadToken) *corev1.Secret {
				return ownedSecret(t, "ci", map[string][]byte{"token": []byte(testRaw)})
			},
		},
		{
			name: "expired while the operator was away", token: issuedToken, now: issuedAt.AddDate(0, 0, 31), want: IssueExpired,
			secret: func(t *v1alpha1.NomadToken) *corev1.Secret {
				return ownedSecret(t, "ci", map[string][]byte{"token": []byte(testRaw)})
			},
		},
		{
			name: "a new rotate annotation value rotates", now: issuedAt, want: IssueRotateRequest,
			token: func() *v1alpha1.NomadToken {
				t := issuedToken()
				t.Annotations = map[string]string{v1alpha1.AnnotationRotate: "2"}
				t.Status.RotateRequestHandled = "1"
				return t
			},
			secret: func(t *v1alpha1.NomadToken) *corev1.Secret {
				return ownedSecret(t, "ci", map[string][]byte{"token": []byte(testRaw)})
			},
		},
		{
			name: "a handled rotate annotation does nothing", now: issuedAt,
			token: func() *v1alpha1.NomadToken {
				t := issuedToken()
				t.Annotations = map[string]string{v1alpha1.AnnotationRotate: "1"}
				t.Status.RotateRequestHandled = "1"
				return t
			},
			secret: func(t *v1alpha1.NomadToken) *corev1.Secret {
				return ownedSecret(t, "ci", map[string][]byte{"token": []byte(testRaw)})
			},
		},
		{
			name: "revoke-now outranks a rotate request", now: issuedAt, want: IssueRevokeNow,
			token: func() *v1alpha1.NomadToken {
				t := issuedToken()
				t.Annotations = map[string]string{v1alpha1.AnnotationRotate: "x", v1alpha1.AnnotationRevokeNow: "incident"}
				return t
			},
			secret: func(t *v1alpha1.NomadToken) *corev1.Secret {
				return ownedSecret(t, "ci", map[string][]byte{"token": []byte(testRaw)})
			},
		},
		{
			name: "a PAT gone in NOMAD is replaced", token: issuedToken, now: issuedAt, want: IssueGoneInNomad, gone: true,
			secret: func(t *v1alpha1.NomadToken) *corev1.Secret {
				return ownedSecret(t, "ci", map[string][]byte{"token": []byte(testRaw)})
			},
		},
		{
			name: "percentage renewal", now: issuedAt.AddDate(0, 0, 27), want: IssueRenewalDue,
			token: func() *v1alpha1.NomadToken {
				t := issuedToken()
				t.Spec.Rotation.RenewBeforePercentage = ptr.To[int32](10)
				return t
			},
			secret: func(t *v1alpha1.NomadToken) *corev1.Secret {
				return ownedSecret(t, "ci", map[string][]byte{"token": []byte(testRaw)})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token()
			obs := &observed{token: tok, now: tt.now, goneInNomad: tt.gone}
			if tt.secret != nil {
				obs.secret = tt.secret(tok)
			}
			if tt.previous != nil {
				obs.previous = tt.previous(tok)
			}
			if got := issuanceReason(obs); got != tt.want {
				t.Errorf("issuanceReason = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSecretConflict(t *testing.T) {
	tok := issuedToken()
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ci"}}
	if !(&observed{token: tok, secret: foreign}).secretConflict() {
		t.Error("a Secret without our controller reference must be a conflict")
	}
	other := issuedToken()
	other.UID = "uid-2"
	if !(&observed{token: tok, secret: ownedSecret(other, "ci", nil)}).secretConflict() {
		t.Error("a Secret controlled by another NomadToken must be a conflict")
	}
	if (&observed{token: tok, secret: ownedSecret(tok, "ci", nil)}).secretConflict() {
		t.Error("our own Secret is no conflict")
	}
}

// atLimit is the fallback at NOMAD's PAT cap: rotating in place, which revokes the old PAT first.
func atLimit(reason string) *attempt {
	return &attempt{reason: reason, via: viaRotate, replaced: alreadyRevoked, restartsConsumers: true}
}

// afterRotate is what follows NOMAD's rotate revoking the old PAT and then refusing (the rotate hazard).
// Both restart the consumers: the Secret of these tests holds a token.
var afterRotate = &attempt{reason: IssueRotateFailed, via: viaCreate, replaced: alreadyRevoked, restartsConsumers: true}

// TestDecide is the lifecycle of a NomadToken as a table: what is observed, and what is owed.
func TestDecide(t *testing.T) {
	withSecret := func(tok *v1alpha1.NomadToken) *observed {
		s := secretHolding(tok, []byte(testRaw), currentFacts(tok))
		setControllerRef(s, tok)
		return &observed{token: tok, secret: s}
	}
	healthy := func(now time.Time) func() *observed {
		return func() *observed { o := withSecret(issuedToken()); o.now = now; return o }
	}
	renewalDue := issuedAt.AddDate(0, 0, 25)
	refused := &holdOff{refusal: failure{reason: v1alpha1.ReasonLifetimeExceeded, message: "NOMAD refused the lifetime"}}
	notAllowed := &failure{reason: v1alpha1.ReasonConnectionNotAllowed, message: "namespace not allowed"}
	annotate := func(o *observed, key, value string) *observed {
		o.token.Annotations = map[string]string{key: value}
		return o
	}
	withPrevious := func(o *observed, revokeAt time.Time) *observed {
		o.token.Status.PreviousTokenID = "665f1c000000000000000000"
		o.token.Status.PreviousTokenRevokeAt = &metav1.Time{Time: revokeAt}
		return o
	}
	tests := []struct {
		name    string
		observe func() *observed
		want    plan
		blocked string // want.blocked's reason
	}{
		{
			name:    "a new NomadToken gets its first PAT; there is nothing to replace",
			observe: func() *observed { o := healthy(issuedAt)(); o.token.Status = v1alpha1.NomadTokenStatus{}; return o },
			want:    plan{mint: attempt{reason: IssueNotIssued, replaced: keep, restartsConsumers: true}},
		},
		{
			name:    "a healthy token before its renewal time owes nothing",
			observe: healthy(issuedAt.AddDate(0, 0, 19)),
			want:    plan{},
		},
		{
			name:    "the previous PAT goes when its grace period ends, with no new PAT",
			observe: func() *observed { return withPrevious(healthy(issuedAt.Add(time.Hour))(), issuedAt.Add(time.Minute)) },
			want:    plan{previous: revokeAtOnce},
		},
		{
			name:    "the previous PAT keeps the rest of its grace period",
			observe: func() *observed { return withPrevious(healthy(issuedAt.Add(time.Minute))(), issuedAt.Add(time.Hour)) },
			want:    plan{previous: keep},
		},
		{
			name:    "renewal with Overlap: the old PAT serves meanwhile and keeps a grace period",
			observe: healthy(renewalDue),
			want:    plan{mint: attempt{reason: IssueRenewalDue, replaced: revokeAfterGrace, restartsConsumers: true}, currentServes: true, atPATLimit: atLimit(IssueRenewalDue), afterRotateRevoked: afterRotate},
		},
		{
			name: "renewal with Rotate: NOMAD's rotate endpoint revokes the old PAT itself",
			observe: func() *observed {
				o := healthy(renewalDue)()
				o.token.Spec.Rotation.Strategy = v1alpha1.RotationRotate
				return o
			},
			want: plan{mint: attempt{reason: IssueRenewalDue, via: viaRotate, replaced: alreadyRevoked, restartsConsumers: true}, currentServes: true, afterRotateRevoked: afterRotate},
		},
		{
			name:    "the Secret is gone: the old PAT's raw token went with it, so it is revoked at once",
			observe: func() *observed { o := healthy(issuedAt)(); o.secret = nil; return o },
			want:    plan{mint: attempt{reason: IssueSecretMissing, replaced: revokeAtOnce}},
		},
		{
			name:    "an expired PAT is replaced and revoked at once, never kept for a grace period",
			observe: healthy(issuedAt.AddDate(0, 0, 31)),
			want:    plan{mint: attempt{reason: IssueExpired, replaced: revokeAtOnce, restartsConsumers: true}},
		},
		{
			name:    "a PAT revoked in NOMAD needs no revocation",
			observe: func() *observed { o := healthy(issuedAt)(); o.goneInNomad = true; return o },
			want:    plan{mint: attempt{reason: IssueGoneInNomad, replaced: alreadyRevoked, restartsConsumers: true}},
		},
		{
			name:    "another NOMAD user cannot rotate the old PAT: it is revoked by its owner instead",
			observe: func() *observed { o := healthy(renewalDue)(); o.accountChanged = true; return o },
			want:    plan{mint: attempt{reason: IssueAccountChanged, replaced: revokeAtOnce, restartsConsumers: true}},
		},
		{
			name:    "the platform's rules refuse the token: its PAT serves until renewal and is not renewed",
			observe: func() *observed { o := healthy(issuedAt)(); o.refused = notAllowed; return o },
			want:    plan{currentServes: true}, blocked: v1alpha1.ReasonConnectionNotAllowed,
		},
		{
			name:    "a refused token due for renewal is not renewed, and NOMAD is not asked",
			observe: func() *observed { o := healthy(renewalDue)(); o.refused = notAllowed; return o },
			want:    plan{mint: attempt{reason: IssueRenewalDue}, currentServes: true}, blocked: v1alpha1.ReasonConnectionNotAllowed,
		},
		{
			name: "a refused token without a PAT gets none",
			observe: func() *observed {
				o := healthy(issuedAt)()
				o.token.Status = v1alpha1.NomadTokenStatus{}
				o.refused = notAllowed
				return o
			},
			want: plan{mint: attempt{reason: IssueNotIssued}}, blocked: v1alpha1.ReasonConnectionNotAllowed,
		},
		{
			name: "revoke-now still revokes a refused token's PAT, without a successor",
			observe: func() *observed {
				o := annotate(healthy(issuedAt)(), v1alpha1.AnnotationRevokeNow, "incident-1")
				o.refused = notAllowed
				return o
			},
			want: plan{mint: attempt{reason: IssueRevokeNow}, previous: revokeAtOnce, revokeOnly: true}, blocked: v1alpha1.ReasonConnectionNotAllowed,
		},
		{
			name:    "a refused token whose Secret is gone revokes its PAT: nobody holds the raw token",
			observe: func() *observed { o := healthy(issuedAt)(); o.secret = nil; o.refused = notAllowed; return o },
			want:    plan{mint: attempt{reason: IssueSecretMissing}, previous: revokeAtOnce, revokeOnly: true}, blocked: v1alpha1.ReasonConnectionNotAllowed,
		},
		{
			name: "a refused token whose Secret was edited revokes its PAT",
			observe: func() *observed {
				o := healthy(issuedAt)()
				o.secret.Data[o.token.EffectiveSecretKey()] = []byte("edited")
				o.refused = notAllowed
				return o
			},
			want: plan{mint: attempt{reason: IssueSecretEdited}, previous: revokeAtOnce, revokeOnly: true}, blocked: v1alpha1.ReasonConnectionNotAllowed,
		},
		{
			name: "a refused token whose spec changed and whose Secret is gone revokes its PAT all the same",
			observe: func() *observed {
				o := healthy(issuedAt)()
				o.token.Spec.ExpiresInDays, o.secret, o.refused = 90, nil, notAllowed
				return o
			},
			want: plan{mint: attempt{reason: IssueSpecChanged}, previous: revokeAtOnce, revokeOnly: true}, blocked: v1alpha1.ReasonConnectionNotAllowed,
		},
		{
			name: "a refused token whose spec changed keeps the PAT it has: it is reported, not replaced",
			observe: func() *observed {
				o := healthy(issuedAt)()
				o.token.Spec.ExpiresInDays = 90
				o.refused = notAllowed
				return o
			},
			want: plan{mint: attempt{reason: IssueSpecChanged}}, blocked: v1alpha1.ReasonConnectionNotAllowed,
		},
		{
			name: "a refused token's previous PAT is still revoked when its grace ends",
			observe: func() *observed {
				o := withPrevious(healthy(issuedAt.Add(time.Hour))(), issuedAt.Add(time.Minute))
				o.refused = notAllowed
				return o
			},
			want: plan{previous: revokeAtOnce, currentServes: true}, blocked: v1alpha1.ReasonConnectionNotAllowed,
		},
		{
			name:    "NOMAD refused this generation: nothing is minted until the hold-off ends",
			observe: func() *observed { o := healthy(renewalDue)(); o.heldOff = refused; return o },
			want:    plan{mint: attempt{reason: IssueRenewalDue}, currentServes: true}, blocked: v1alpha1.ReasonLifetimeExceeded,
		},
		{
			name:    "during a hold-off a missing Secret is owed a PAT that cannot be minted: the old one does not serve",
			observe: func() *observed { o := healthy(issuedAt)(); o.secret, o.heldOff = nil, refused; return o },
			want:    plan{mint: attempt{reason: IssueSecretMissing}}, blocked: v1alpha1.ReasonLifetimeExceeded,
		},
		{
			name: "a rotate request NOMAD already refused does not bypass the hold-off again",
			observe: func() *observed {
				o := healthy(issuedAt)()
				o.heldOff = &holdOff{refusal: refused.refusal, rotateRequest: "1"}
				return annotate(o, v1alpha1.AnnotationRotate, "1")
			},
			want: plan{mint: attempt{reason: IssueRotateRequest}, currentServes: true}, blocked: v1alpha1.ReasonLifetimeExceeded,
		},
		{
			name: "revoke-now revokes even while a conflicting Secret blocks minting",
			observe: func() *observed {
				o := annotate(healthy(issuedAt)(), v1alpha1.AnnotationRevokeNow, "leak")
				o.secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ci"}}
				return o
			},
			want: plan{previous: revokeAtOnce, revokeOnly: true}, blocked: v1alpha1.ReasonSecretConflict,
		},
		{
			name: "revoke-now revokes even when the observation is incomplete",
			observe: func() *observed {
				o := annotate(healthy(issuedAt)(), v1alpha1.AnnotationRevokeNow, "leak")
				o.incomplete = errors.New("recovery failed")
				return o
			},
			want: plan{previous: revokeAtOnce, revokeOnly: true},
		},
		{
			name: "a rotate request bypasses the hold-off",
			observe: func() *observed {
				o := healthy(issuedAt)()
				o.heldOff = refused
				return annotate(o, v1alpha1.AnnotationRotate, "1")
			},
			want: plan{mint: attempt{reason: IssueRotateRequest, replaced: revokeAfterGrace, restartsConsumers: true}, currentServes: true, atPATLimit: atLimit(IssueRotateRequest), afterRotateRevoked: afterRotate},
		},
		{
			name: "revoke-now bypasses the hold-off, revokes every earlier PAT at once, and does not wait for a successor",
			observe: func() *observed {
				o := withPrevious(healthy(issuedAt.Add(time.Minute))(), issuedAt.Add(time.Hour))
				o.heldOff = refused
				return annotate(o, v1alpha1.AnnotationRevokeNow, "leak-1")
			},
			want: plan{mint: attempt{reason: IssueRevokeNow, replaced: revokeAtOnce, restartsConsumers: true}, previous: revokeAtOnce, revokeUnreplaced: true, atPATLimit: atLimit(IssueRevokeNow), afterRotateRevoked: afterRotate},
		},
		{
			name: "revoke-now is satisfied by a PAT minted for another reason",
			observe: func() *observed {
				o := annotate(healthy(issuedAt)(), v1alpha1.AnnotationRevokeNow, "leak-1")
				o.token.Spec.Scopes = []string{"uploads:write"}
				return o
			},
			want: plan{mint: attempt{reason: IssueSpecChanged, replaced: revokeAtOnce, restartsConsumers: true}, previous: revokeAtOnce, revokeUnreplaced: true},
		},
		{
			name: "revoke-now through another NOMAD user cannot rotate in place at the PAT cap",
			observe: func() *observed {
				o := annotate(healthy(issuedAt)(), v1alpha1.AnnotationRevokeNow, "x")
				o.accountChanged = true
				return o
			},
			want: plan{mint: attempt{reason: IssueRevokeNow, replaced: revokeAtOnce, restartsConsumers: true}, previous: revokeAtOnce, revokeUnreplaced: true},
		},
		{
			name: "a Secret that is not ours blocks minting, but a previous PAT still goes on time",
			observe: func() *observed {
				o := withPrevious(healthy(issuedAt.Add(time.Hour))(), issuedAt.Add(time.Minute))
				o.secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ci"}}
				return o
			},
			want: plan{previous: revokeAtOnce}, blocked: v1alpha1.ReasonSecretConflict,
		},
		{
			name:    "an incomplete observation mints nothing",
			observe: func() *observed { o := healthy(renewalDue)(); o.incomplete = errors.New("NOMAD timed out"); return o },
			want:    plan{},
		},
		{
			name: "a connection that does not hold itself for the token yet: the mint waits",
			observe: func() *observed {
				o := healthy(renewalDue)()
				o.awaitingHold = &failure{reason: "Progressing"}
				return o
			},
			want: plan{mint: attempt{reason: IssueRenewalDue}, currentServes: true, awaiting: &failure{reason: "Progressing"}},
		},
		{
			name: "revoke-now does not wait for the connection's hold",
			observe: func() *observed {
				o := annotate(healthy(issuedAt)(), v1alpha1.AnnotationRevokeNow, "leak")
				o.awaitingHold = &failure{reason: "Progressing"}
				return o
			},
			want: plan{mint: attempt{reason: IssueRevokeNow, replaced: revokeAtOnce, restartsConsumers: true}, previous: revokeAtOnce, revokeUnreplaced: true, atPATLimit: atLimit(IssueRevokeNow), afterRotateRevoked: afterRotate},
		},
		{
			name: "new Secret labels rewrite the Secret with the PAT it holds",
			observe: func() *observed {
				o := healthy(issuedAt)()
				o.token.Spec.Secret.Labels = map[string]string{"team": "a"}
				return o
			},
			want: plan{syncSecret: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide(tt.observe())
			blocked := ""
			if got.blocked != nil {
				blocked = got.blocked.reason
			}
			got.blocked = nil
			got.oldPAT = oldPATVerdict{} // TestJudgeOldPAT holds the verdict; previous is compared
			if !reflect.DeepEqual(got, tt.want) || blocked != tt.blocked {
				t.Errorf("decide =\n  %+v blocked %q\nwant\n  %+v blocked %q", got, blocked, tt.want, tt.blocked)
			}
		})
	}
}

// TestSettle is the verdict on an interrupted issuance: which PAT is adopted, with what fate for the
// one it replaced, and which are revoked.
func TestSettle(t *testing.T) {
	adoptedID, strayID := "665f1c0000000000000000aa", "665f1c0000000000000000bb"
	pending := func(edit func(o *observed)) func() *observed {
		return func() *observed {
			tok := issuedToken()
			tok.Status.ConnectionName = "NomadConnection/oasis"
			tok.Status.PendingIssuance = &v1alpha1.PendingIssuance{
				Reason: IssueRenewalDue, ConnectionName: "NomadConnection/oasis", StartedAt: metav1.NewTime(issuedAt.AddDate(0, 0, 25)),
			}
			// The Secret already holds the new PAT: the status write after the Secret write was lost.
			s := secretHolding(tok, []byte("nomad_pat_new"), tokenSecretFacts{TokenID: adoptedID, ExpiresAt: issuedAt.AddDate(0, 0, 60)})
			setControllerRef(s, tok)
			o := &observed{token: tok, secret: s, now: issuedAt.AddDate(0, 0, 25).Add(time.Minute), pending: &pendingFindings{
				reach:     "NomadConnection/oasis",
				untracked: []nomad.PAT{{ID: strayID}, {ID: adoptedID}},
			}}
			if edit != nil {
				edit(o)
			}
			return o
		}
	}
	tests := []struct {
		name        string
		observe     func() *observed
		adoptable   bool
		wantAdopted string
		wantFate    fate
		wantRevoke  []string
		wantLost    bool
	}{
		{
			name:        "an Overlap renewal whose status write was lost: the Secret's PAT is adopted, the old one keeps its grace",
			observe:     pending(nil),
			adoptable:   true,
			wantAdopted: adoptedID, wantFate: revokeAfterGrace, wantRevoke: []string{strayID},
		},
		{
			name:        "revoke-now allows the adopted PAT's predecessor no grace",
			observe:     pending(func(o *observed) { o.token.Annotations = map[string]string{v1alpha1.AnnotationRevokeNow: "leak"} }),
			adoptable:   true,
			wantAdopted: adoptedID, wantFate: revokeAtOnce, wantRevoke: []string{strayID},
		},
		{
			name:        "a PAT adopted from another connection does not share the previous slot",
			observe:     pending(func(o *observed) { o.token.Status.PendingIssuance.ConnectionName = "NomadConnection/other" }),
			adoptable:   true,
			wantAdopted: adoptedID, wantFate: revokeAtOnce, wantRevoke: []string{strayID},
		},
		{
			name:        "a PAT adopted from NOMAD's rotate: the old one is already revoked",
			observe:     pending(func(o *observed) { o.token.Status.PendingIssuance.ViaRotate = true }),
			adoptable:   true,
			wantAdopted: adoptedID, wantFate: alreadyRevoked, wantRevoke: []string{strayID},
		},
		{
			name: "spec.secret.key changed since the interruption: the PAT is found under the old key",
			observe: pending(func(o *observed) {
				o.secret.Data = map[string][]byte{"old-key": []byte("nomad_pat_new")}
			}),
			adoptable:   true,
			wantAdopted: adoptedID, wantFate: revokeAfterGrace, wantRevoke: []string{strayID},
		},
		{
			name: "spec.secret.name changed since the interruption: the PAT is found in the Secret status names",
			observe: pending(func(o *observed) {
				o.previous, o.secret = o.secret, nil
				o.token.Spec.Secret.Name = "renamed"
			}),
			adoptable:   true,
			wantAdopted: adoptedID, wantFate: revokeAfterGrace, wantRevoke: []string{strayID},
		},
		{
			name:       "deletion adopts nothing: every PAT of the issuance is revoked",
			observe:    pending(nil),
			wantRevoke: []string{strayID, adoptedID},
		},
		{
			name:       "a PAT the Secret does not hold is revoked",
			observe:    pending(func(o *observed) { o.secret = nil }),
			adoptable:  true,
			wantRevoke: []string{strayID, adoptedID},
		},
		{
			name:     "no connection logs in as the minting user: the issuance is lost to sight",
			observe:  pending(func(o *observed) { o.pending = &pendingFindings{} }),
			wantLost: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := settle(tt.observe(), tt.adoptable)
			adopted := ""
			if s.adopt != nil {
				adopted = s.adopt.ID
			}
			if adopted != tt.wantAdopted || s.replaced != tt.wantFate || !reflect.DeepEqual(s.revoke, tt.wantRevoke) || s.lost != tt.wantLost {
				t.Errorf("settle = adopt %q fate %v revoke %v lost %v\nwant adopt %q fate %v revoke %v lost %v",
					adopted, s.replaced, s.revoke, s.lost, tt.wantAdopted, tt.wantFate, tt.wantRevoke, tt.wantLost)
			}
		})
	}
	t.Run("decide settles first and plans nothing else", func(t *testing.T) {
		o := pending(func(o *observed) { o.token.Annotations = map[string]string{v1alpha1.AnnotationRotate: "now"} })()
		p := decide(o)
		if p.settle == nil || p.mints() {
			t.Fatalf("decide = %+v, want only the settlement", p)
		}
	})
}
