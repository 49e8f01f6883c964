package controllers

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// A Secret write the API server refuses every time (labels or annotations it finds invalid, a full
// count/secrets quota, an admission policy, Secrets made immutable) must not cost a PAT per retry: a
// PAT created for a Secret that cannot be written is revoked at once, and NOMAD keeps every revoked
// PAT for a year. So the write is tried first as a server-side dry run, before the intent, and a
// refusal holds the generation off like NOMAD's own refusals.

// dryRunPlaceholder stands in for the raw token in the dry run: the same shape as a PAT, never valid.
const dryRunPlaceholder = "nomad_pat_dry-run-placeholder-never-a-token-0000000000"

// trySecretWrite asks the API server whether it would accept the token's Secret as the next issuance
// writes it, without writing anything. nil means yes (or that the answer says nothing about the
// Secret: a stale resourceVersion, which the real write retries).
func (r *NomadTokenReconciler) trySecretWrite(ctx context.Context, sc *reconcileScope) error {
	token := sc.token
	now := r.Clock.Now()
	facts := tokenSecretFacts{TokenID: "dry-run", IssuedAt: now, ExpiresAt: now.Add(time.Duration(token.EffectiveExpiresInDays()) * 24 * time.Hour)}
	// The template keys are rendered too (with the placeholder): they count towards the Secret's size
	// and what admission policies see. The previous key is left out: it is only known at the swap.
	want, err := desiredSecret(token, secretContent{raw: []byte(dryRunPlaceholder), facts: facts,
		apiRoot: r.apiRootFor(ctx, sc, token.Spec.ConnectionRef.Key())})
	if err != nil {
		return asTemplateRefusal(err)
	}
	desired := renderSecret(sc.secret, token, want)
	if sc.secret == nil {
		err = r.Create(ctx, desired, client.DryRunAll, client.FieldOwner(FieldManager))
	} else {
		desired.ManagedFields = nil // as updateSecret: the server keeps everyone's entries
		err = r.Update(ctx, desired, client.DryRunAll, client.FieldOwner(FieldManager))
	}
	if err == nil || apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		return nil
	}
	return asSecretRejection(err, token.EffectiveSecretName(), "")
}

// secretRefused reports an API server answer that no retry changes: the Secret as the spec shapes it
// is invalid, or a quota, an admission policy or RBAC forbids it.
func secretRefused(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsRequestEntityTooLargeError(err)
}

// asSecretRejection turns a refused Secret write into the SecretRejected condition with the API
// server's words, and leaves any other error as it is. raw, when set, is cut from the message: an
// admission webhook may quote the object it refused.
func asSecretRejection(err error, secretName, raw string) error {
	err = withoutRawToken(err, raw)
	if !secretRefused(err) {
		return err
	}
	msg := err.Error()
	return &conditionError{v1alpha1.ReasonSecretRejected, fmt.Sprintf(
		"the API server refuses to write Secret %q: %s. Fix spec.secret (labels, annotations), the namespace's quota or the admission policy; no PAT is minted for this generation until the retry interval has passed",
		secretName, msg)}
}

// withoutRawToken returns err with raw (as written, or base64-encoded as in a Secret's JSON) cut from
// its message, keeping the API server's status for the callers that classify it. An error that does
// not quote raw is returned as it is.
func withoutRawToken(err error, raw string) error {
	if err == nil || raw == "" {
		return err
	}
	encoded := base64.StdEncoding.EncodeToString([]byte(raw))
	msg := err.Error()
	if !strings.Contains(msg, raw) && !strings.Contains(msg, encoded) {
		return err
	}
	redact := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(s, raw, "[redacted]"), encoded, "[redacted]")
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		st := status.Status()
		st.Message, st.Details = redact(st.Message), nil
		return &apierrors.StatusError{ErrStatus: st}
	}
	return errors.New(redact(msg))
}

// isSecretRejection reports the SecretRejected condition.
func isSecretRejection(err error) bool {
	var ce *conditionError
	return errors.As(err, &ce) && ce.reason == v1alpha1.ReasonSecretRejected
}
