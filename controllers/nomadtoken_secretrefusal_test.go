package controllers

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// These tests make the API server refuse the token's Secret for good (an invalid label value, a full
// quota, an admission policy) and check that the refusal costs no PAT, is reported, and that
// revoke-now still revokes.

// secretGate refuses Secret writes while closed: every write (refuseDryRun) or only the ones meant to
// land, as when a quota fills between the dry run and the write.
type secretGate struct {
	closed, refuseDryRun bool
	err                  error
}

func (g *secretGate) funcs() interceptor.Funcs {
	refuse := func(obj client.Object, dryRun bool) bool {
		_, isSecret := obj.(*corev1.Secret)
		return isSecret && g.closed && (g.refuseDryRun || !dryRun)
	}
	return interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if refuse(obj, createDryRun(opts)) {
				return g.err
			}
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if refuse(obj, updateDryRun(opts)) {
				return g.err
			}
			return c.Update(ctx, obj, opts...)
		},
	}
}

var (
	invalidLabel = apierrors.NewInvalid(schema.GroupKind{Kind: "Secret"}, "ci", field.ErrorList{
		field.Invalid(field.NewPath("metadata", "labels"), "data science", "a valid label must consist of alphanumeric characters")})
	quotaFull = apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "ci",
		errFromString("exceeded quota: secrets, requested: count/secrets=1, used: count/secrets=10, limited: count/secrets=10"))
)

type errFromString string

func (e errFromString) Error() string { return string(e) }

// pokeFor reconciles the token every step of fake time for d, as a stream of events and resyncs
// would, and returns how many reconciles ran.
func (w *crashWorld) pokeFor(t *testing.T, d, step time.Duration) int {
	t.Helper()
	n := 0
	for end := w.clock.Now().Add(d); w.clock.Now().Before(end); w.clock.Step(step) {
		_ = w.reconcile(t)
		n++
	}
	return n
}

func TestARefusedSecretCostsNoPATAndIsReportedOnce(t *testing.T) {
	gate := &secretGate{closed: true, refuseDryRun: true, err: invalidLabel}
	w := newCrashWorld(t, gate.funcs())
	reconciles := w.pokeFor(t, 10*time.Minute, 5*time.Second)
	calls := w.stub.Calls()
	t.Logf("10 minutes of a refused Secret, %d reconciles: NOMAD calls %v", reconciles, calls)
	if calls["create"] != 0 || calls["rotate"] != 0 {
		t.Fatalf("NOMAD calls %v: a Secret the API server refuses must cost no PAT", calls)
	}
	c := readyCondition(t, w.token(t))
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonSecretRejected || !strings.Contains(c.Message, "data science") {
		t.Fatalf("Ready = %s %s %q, want False SecretRejected with the API server's words", c.Status, c.Reason, c.Message)
	}
	if got := countPrefixed(drainEvents(w.r.Recorder.(*events.FakeRecorder)), "Warning SecretRejected"); got != 1 {
		t.Fatalf("%d SecretRejected Events, want 1", got)
	}
	if w.token(t).Status.PendingIssuance != nil {
		t.Fatal("no intent may be written for a Secret that cannot be written")
	}

	// A spec change is a new generation: it is tried at once, and succeeds once the Secret is accepted.
	gate.closed = false
	w.update(t, func(tok *v1alpha1.NomadToken) {
		tok.Generation++
		tok.Spec.Secret.Labels = map[string]string{"team": "data-science"}
	})
	w.mustReconcile(t)
	w.assertOneActivePATInSecret(t)
}

func TestASecretRefusedAfterTheCreateRevokesThePATAndHoldsOff(t *testing.T) {
	gate := &secretGate{closed: true, err: quotaFull} // the dry run passes; the quota fills before the write
	w := newCrashWorld(t, gate.funcs())
	reconciles := w.pokeFor(t, 10*time.Minute, 5*time.Second)
	calls := w.stub.Calls()
	t.Logf("10 minutes of a Secret refused after the dry run, %d reconciles: NOMAD calls %v", reconciles, calls)
	if calls["create"] != 1 {
		t.Fatalf("creates = %d, want 1: the refusal holds this generation off", calls["create"])
	}
	if active := w.stub.ActivePATs("bot"); len(active) != 0 {
		t.Fatalf("the PAT whose Secret was refused stays active: %v", active)
	}
	if c := readyCondition(t, w.token(t)); c.Reason != v1alpha1.ReasonSecretRejected || !strings.Contains(c.Message, "exceeded quota") {
		t.Fatalf("Ready = %s %s %q, want SecretRejected", c.Status, c.Reason, c.Message)
	}
}

func TestARefusedRenewalIsNotReady(t *testing.T) {
	gate := &secretGate{err: quotaFull}
	w := newCrashWorld(t, gate.funcs())
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	gate.closed, gate.refuseDryRun = true, true // e.g. a policy now refuses the Secret's labels
	w.clock.SetTime(tokenRenewalTime(first).Add(time.Second))
	_ = w.reconcile(t)
	if c := readyCondition(t, w.token(t)); c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonSecretRejected {
		t.Fatalf("Ready = %s %s: a renewal the cluster refuses must be reported before the PAT expires", c.Status, c.Reason)
	}
	if !w.active("bot", first.Status.TokenID) || w.stub.Calls()["create"] != 1 {
		t.Fatal("the current PAT must keep working, and no PAT be created for a refused Secret")
	}
}

func TestRevokeNowRevokesWhenTheSecretIsRefused(t *testing.T) {
	for _, tt := range []struct {
		name         string
		refuseDryRun bool
	}{
		{"refused at the dry run", true},
		{"refused only after the successor was created", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gate := &secretGate{err: quotaFull}
			w := newCrashWorld(t, gate.funcs())
			w.mustReconcile(t)
			leaked := w.assertOneActivePATInSecret(t).Status.TokenID
			gate.closed, gate.refuseDryRun = true, tt.refuseDryRun
			w.update(t, func(tok *v1alpha1.NomadToken) {
				tok.Annotations = map[string]string{v1alpha1.AnnotationRevokeNow: "incident-7"}
			})
			_ = w.reconcile(t)
			if w.active("bot", leaked) {
				t.Fatal("revoke-now left the leaked PAT active because the Secret write failed")
			}
			if active := w.stub.ActivePATs("bot"); len(active) != 0 {
				t.Fatalf("active PATs %v, want none: the successor's Secret was refused", active)
			}
			if c := readyCondition(t, w.token(t)); c.Reason != v1alpha1.ReasonRevokedWithoutReplacement {
				t.Fatalf("Ready reason %s, want RevokedWithoutReplacement", c.Reason)
			}
		})
	}
}

func TestSecretRefusalsAreTheOnesNoRetryChanges(t *testing.T) {
	gr := schema.GroupResource{Resource: "secrets"}
	for _, tt := range []struct {
		err     error
		refused bool
	}{
		{invalidLabel, true},
		{quotaFull, true},
		{apierrors.NewBadRequest("immutable"), true},
		{apierrors.NewRequestEntityTooLargeError("limit is 1048576"), true},
		{apierrors.NewConflict(gr, "ci", errFromString("stale")), false},
		{apierrors.NewServiceUnavailable("etcd"), false},
		{apierrors.NewTimeoutError("slow", 1), false},
		{apierrors.NewTooManyRequests("later", 1), false},
		{&nomad.Error{Code: nomad.CodeForbidden}, false},
	} {
		if got := secretRefused(tt.err); got != tt.refused {
			t.Errorf("secretRefused(%v) = %v, want %v", tt.err, got, tt.refused)
		}
	}
	raw := "nomad_pat_secretsecret"
	for _, quoted := range []error{
		apierrors.NewForbidden(gr, "ci", errFromString("policy quoted "+raw)),
		apierrors.NewInternalError(errFromString("webhook echoed " + base64.StdEncoding.EncodeToString([]byte(raw)))),
	} {
		err := asSecretRejection(quoted, "ci", raw)
		if msg := err.Error(); strings.Contains(msg, raw) || strings.Contains(msg, base64.StdEncoding.EncodeToString([]byte(raw))) {
			t.Fatalf("the raw token reached the message: %s", msg)
		}
		if redacted := withoutRawToken(quoted, raw); secretRefused(quoted) != secretRefused(redacted) || apierrors.IsInternalError(quoted) != apierrors.IsInternalError(redacted) {
			t.Fatalf("redacting changed the error's class: %v", redacted)
		}
	}
}
