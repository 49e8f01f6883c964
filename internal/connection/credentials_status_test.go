package connection

import (
	"testing"
	"time"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

func TestCredentialsStatusIsWrittenOnlyWhenSomethingMoved(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	signIn := func(at, refreshEnds time.Time) nomad.SignIn {
		return nomad.SignIn{Method: nomad.MethodRefreshToken, Account: "alice", UserID: "u-1", At: at, RefreshTokenExpiresAt: refreshEnds}
	}
	old := CredentialsStatus(nil, v1alpha1.CredentialMethodRefreshToken, signIn(t0, t0.Add(30*24*time.Hour)), "")
	tests := []struct {
		name    string
		method  v1alpha1.CredentialMethod
		s       nomad.SignIn
		request string
		written bool
	}{
		{"a sign-in five minutes later", v1alpha1.CredentialMethodRefreshToken, signIn(t0.Add(5*time.Minute), t0.Add(30*24*time.Hour+5*time.Minute)), "", false},
		{"a sign-in an hour and a second later", v1alpha1.CredentialMethodRefreshToken, signIn(t0.Add(time.Hour+time.Second), t0.Add(30*24*time.Hour)), "", true},
		{"the refresh token now ends two hours sooner", v1alpha1.CredentialMethodRefreshToken, signIn(t0, t0.Add(30*24*time.Hour-2*time.Hour)), "", true},
		{"the refresh token's end is no longer known", v1alpha1.CredentialMethodRefreshToken, signIn(t0, time.Time{}), "", true},
		{"another account", v1alpha1.CredentialMethodRefreshToken, nomad.SignIn{Account: "bob", UserID: "u-2", At: t0, RefreshTokenExpiresAt: t0.Add(30 * 24 * time.Hour)}, "", true},
		{"another method", v1alpha1.CredentialMethodClientCredentials, signIn(t0, t0.Add(30*24*time.Hour)), "", true},
		{"a sign-in a minute later that answered a login's request", v1alpha1.CredentialMethodRefreshToken, signIn(t0.Add(time.Minute), t0.Add(30*24*time.Hour)), "login-1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CredentialsStatus(old, tt.method, tt.s, tt.request)
			if written := got != old; written != tt.written {
				t.Fatalf("written = %v, want %v (got %+v)", written, tt.written, got)
			}
			if tt.written && (got.Account != tt.s.Account || !got.LastSignInTime.Time.Equal(tt.s.At)) {
				t.Fatalf("got %+v, want the new sign-in %+v", got, tt.s)
			}
		})
	}
}

func TestCredentialsStatusOfAFirstSignIn(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 123456789, time.UTC)
	got := CredentialsStatus(nil, v1alpha1.CredentialMethodPassword, nomad.SignIn{Account: "bot", At: at}, "")
	if got.Method != v1alpha1.CredentialMethodPassword || got.Account != "bot" || got.UserID != "" {
		t.Fatalf("got %+v", got)
	}
	if want := at.Truncate(time.Second); !got.LastSignInTime.Time.Equal(want) {
		t.Fatalf("lastSignInTime = %v, want %v (whole seconds)", got.LastSignInTime, want)
	}
	if got.RefreshTokenExpiresAt != nil {
		t.Fatalf("refreshTokenExpiresAt = %v, want nil: a password sign-in has no refresh token", got.RefreshTokenExpiresAt)
	}
}

func TestAnAnsweredSignInRequestIsKept(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	answered := CredentialsStatus(nil, v1alpha1.CredentialMethodRefreshToken, nomad.SignIn{Account: "alice", At: t0}, "login-1")
	later := CredentialsStatus(answered, v1alpha1.CredentialMethodRefreshToken, nomad.SignIn{Account: "alice", At: t0.Add(2 * time.Hour)}, "")
	if later.SignInRequest != "login-1" {
		t.Fatalf("signInRequest = %q, want the answered login-1 kept by later sign-ins", later.SignInRequest)
	}
}
