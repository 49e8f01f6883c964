package controllers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
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

func TestReplacementFor(t *testing.T) {
	for reason, want := range map[string]replacement{
		IssueRenewalDue: rotation, IssueRotateRequest: rotation, IssueExpired: rotation,
		IssueSpecChanged: revokeAtOnce, IssueRevokeNow: revokeAtOnce, IssueGoneInNomad: revokeAtOnce,
		IssueSecretEdited: revokeAtOnce, IssueSecretMissing: revokeAtOnce, IssueNotIssued: revokeAtOnce,
	} {
		if got := replacementFor(reason); got != want {
			t.Errorf("replacementFor(%s) = %v, want %v", reason, got, want)
		}
	}
}
