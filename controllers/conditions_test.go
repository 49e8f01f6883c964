package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/connection"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

func TestClassifyNamesTheReasonAndWhatToChange(t *testing.T) {
	nomadErr := func(code nomad.Code, detail string) error {
		return fmt.Errorf("wrapped: %w", &nomad.Error{Op: "create", Code: code, StatusCode: 400, Detail: detail})
	}
	tests := []struct {
		name      string
		err       error
		reason    string
		transient bool
		says      string
	}{
		{"bad scopes", nomadErr(nomad.CodeInvalidScopes, "Invalid scopes: {'x:y'}"), v1alpha1.ReasonInvalidScopes, false, "fix spec.scopes"},
		{"lifetime", nomadErr(nomad.CodeLifetimeExceeded, "Requested lifetime (400 days) exceeds the maximum allowed (365 days)."),
			v1alpha1.ReasonLifetimeExceeded, false, "lower spec.expiresInDays"},
		{"PAT limit", nomadErr(nomad.CodeTokenLimitReached, "Maximum number of active PAT (100) reached."),
			v1alpha1.ReasonTokenLimitReached, false, "revoke unused PATs"},
		{"password", nomadErr(nomad.CodeCredentialsInvalid, "Incorrect username or password"), v1alpha1.ReasonCredentialsInvalid, false, "credentials Secret"},
		{"an issuer that is no realm", nomadErr(nomad.CodeIssuerInvalid, "GET https://x/.well-known/openid-configuration answered 404"), v1alpha1.ReasonInvalidSpec, false, "spec.credentials.oidc.issuerURL"},
		{"forbidden", nomadErr(nomad.CodeForbidden, "You are not authorized to access this Oasis"), v1alpha1.ReasonForbidden, false, "not authorized"},
		{"other refusal", nomadErr(nomad.CodeBadRequest, "something else"), v1alpha1.ReasonNomadRejected, false, "something else"},
		{"outage", nomadErr(nomad.CodeTransient, "Service Unavailable"), v1alpha1.ReasonNomadUnavailable, true, "will retry"},
		{"unclassified", context.DeadlineExceeded, v1alpha1.ReasonNomadUnavailable, true, "deadline"},
		{"connection Secret", &connection.ConfigError{Reason: v1alpha1.ReasonSecretNotFound, Message: "credentials Secret a/b not found"},
			v1alpha1.ReasonSecretNotFound, false, "not found"},
		{"condition", &conditionError{v1alpha1.ReasonSecretConflict, "Secret x exists"}, v1alpha1.ReasonSecretConflict, false, "exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := classify(tt.err)
			if f.reason != tt.reason || f.transient != tt.transient || !strings.Contains(f.message, tt.says) {
				t.Errorf("classify = %+v, want reason %s transient %v saying %q", f, tt.reason, tt.transient, tt.says)
			}
		})
	}
}
