package connection

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// StatusTimeGranularity is how far status.credentials' times may lag behind the truth before they
// are written again. An Oasis access token lasts 5 minutes, so an exact lastSignInTime would cost a
// status write at every check of every connection (and break the steady state's "no write"); the
// metrics carry the exact times.
const StatusTimeGranularity = time.Hour

// CredentialsStatus is status.credentials after the sign-in s of a connection signing in with
// method, given what status held before (old, may be nil). request is the sign-in annotation's value
// when s answered it (a sign-in made after it was set), "" otherwise. It returns old itself when
// nothing moved by more than StatusTimeGranularity and no new request was answered, so that an
// unchanged status costs no write.
func CredentialsStatus(old *v1alpha1.CredentialsStatus, method v1alpha1.CredentialMethod, s nomad.SignIn, request string) *v1alpha1.CredentialsStatus {
	next := &v1alpha1.CredentialsStatus{
		Method:                method,
		Account:               s.Account,
		UserID:                s.UserID,
		LastSignInTime:        timeOrNil(s.At),
		RefreshTokenExpiresAt: timeOrNil(s.RefreshTokenExpiresAt),
		SignInRequest:         request,
	}
	if request == "" && old != nil {
		next.SignInRequest = old.SignInRequest
	}
	if old == nil || old.Method != next.Method || old.Account != next.Account || old.UserID != next.UserID || old.SignInRequest != next.SignInRequest ||
		moved(old.LastSignInTime, next.LastSignInTime) || moved(old.RefreshTokenExpiresAt, next.RefreshTokenExpiresAt) {
		return next
	}
	return old
}

// moved reports whether a time went from known to unknown or back, or by more than the granularity.
func moved(was, is *metav1.Time) bool {
	if was == nil || is == nil {
		return (was == nil) != (is == nil)
	}
	d := is.Sub(was.Time)
	return d > StatusTimeGranularity || d < -StatusTimeGranularity
}

// timeOrNil is t in whole seconds (what the API server keeps), nil when t is zero.
func timeOrNil(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	return &metav1.Time{Time: t.UTC().Truncate(time.Second)}
}
