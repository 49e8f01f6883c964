package controllers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// managedBy builds managedFields saying manager set the given labels and data keys.
func managedBy(manager, fieldsJSON string) []metav1.ManagedFieldsEntry {
	return []metav1.ManagedFieldsEntry{{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate,
		FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fieldsJSON)}}}
}

// desired is desiredSecret for a test that expects it to render.
func desired(t *testing.T, tok *v1alpha1.NomadToken, c secretContent) secretShape {
	t.Helper()
	want, err := desiredSecret(tok, c)
	if err != nil {
		t.Fatalf("desiredSecret: %v", err)
	}
	return want
}

// secretHolding is a new Secret of tok holding raw with facts, as the operator writes it for a spec
// without templates or previousKey (so it always renders).
func secretHolding(tok *v1alpha1.NomadToken, raw []byte, facts tokenSecretFacts) *corev1.Secret {
	want, err := desiredSecret(tok, secretContent{raw: raw, facts: facts})
	if err != nil {
		panic(err)
	}
	return renderSecret(nil, tok, want)
}

func TestRenderSecretRemovesOnlyWhatTheOperatorSet(t *testing.T) {
	tok := issuedToken()
	tok.Spec.Secret.Key = "NOMAD_TOKEN"
	live := ownedSecret(tok, "ci", map[string][]byte{"token": []byte(testRaw), "extra": []byte("x")})
	live.Labels = map[string]string{"old": "1", "argocd.argoproj.io/instance": "a"}
	live.ManagedFields = managedBy(FieldManager, `{"f:metadata":{"f:labels":{"f:old":{}}},"f:data":{"f:token":{}}}`)

	want := desired(t, tok, secretContent{raw: []byte(testRaw), facts: currentFacts(tok)})
	got := renderSecret(live, tok, want)
	if _, ok := got.Labels["old"]; ok {
		t.Error("label the operator set and the spec dropped must be removed")
	}
	if got.Labels["argocd.argoproj.io/instance"] != "a" {
		t.Error("label set by another tool must be kept")
	}
	if _, ok := got.Data["token"]; ok {
		t.Error("the old key the operator set must be removed")
	}
	if string(got.Data["extra"]) != "x" || string(got.Data["NOMAD_TOKEN"]) != testRaw {
		t.Errorf("data = %v keys", len(got.Data))
	}
	if got.Type != corev1.SecretTypeOpaque || !ownedBy(got, tok) {
		t.Error("rendered Secret must be Opaque and controlled by the token")
	}
	if secretInSync(live, tok, want) {
		t.Error("live Secret differs from the render, so it is not in sync")
	}
	got.ManagedFields = managedBy(FieldManager, `{"f:metadata":{"f:labels":{"f:app.kubernetes.io/managed-by":{}}},"f:data":{"f:NOMAD_TOKEN":{}}}`)
	if !secretInSync(got, tok, want) {
		t.Error("a rendered Secret is in sync")
	}
}

// withTemplate is tok with spec.secret.template.data set to data.
func withTemplate(tok *v1alpha1.NomadToken, data map[string]string) *v1alpha1.NomadToken {
	tok.Spec.Secret.Template = &v1alpha1.SecretDataTemplate{Data: data}
	return tok
}

const testAPIRoot = "https://nomad-lab.eu/prod/v1/api"

// TestTemplatedSecretInSync: a rendered key is part of the Secret's shape: a value that differs, or a
// template key the spec dropped, is a rewrite; another tool's key is not.
func TestTemplatedSecretInSync(t *testing.T) {
	tok := withTemplate(issuedToken(), map[string]string{"NOMAD_CLIENT_URL": "{{ .URL }}", "NOMAD_CLIENT_ACCESS_TOKEN": "{{ .Token }}"})
	c := secretContent{raw: []byte(testRaw), facts: currentFacts(tok), apiRoot: testAPIRoot}
	live := renderSecret(nil, tok, desired(t, tok, c))
	live.Data["other-tool"] = []byte("x")
	live.ManagedFields = managedBy(FieldManager, `{"f:data":{"f:token":{},"f:NOMAD_CLIENT_URL":{},"f:NOMAD_CLIENT_ACCESS_TOKEN":{}}}`)
	if string(live.Data["NOMAD_CLIENT_URL"]) != testAPIRoot || string(live.Data["NOMAD_CLIENT_ACCESS_TOKEN"]) != testRaw {
		t.Fatalf("rendered %q %q", live.Data["NOMAD_CLIENT_URL"], live.Data["NOMAD_CLIENT_ACCESS_TOKEN"])
	}
	if !secretInSync(live, tok, desired(t, tok, c)) {
		t.Fatal("a Secret rendered from the same template and data is in sync")
	}

	changed := tok.DeepCopy()
	changed.Spec.Secret.Template.Data["NOMAD_CLIENT_URL"] = "{{ .URL }}/v1"
	if secretInSync(live, changed, desired(t, changed, c)) {
		t.Error("a template whose rendered value changed must rewrite the Secret")
	}
	moved := c
	moved.apiRoot = "https://oasis.example.org/nomad-oasis/api"
	if secretInSync(live, tok, desired(t, tok, moved)) {
		t.Error("a connection whose URL changed must rewrite the Secret")
	}

	dropped := withTemplate(issuedToken(), map[string]string{"NOMAD_CLIENT_ACCESS_TOKEN": "{{ .Token }}"})
	want := desired(t, dropped, c)
	if secretInSync(live, dropped, want) {
		t.Error("a template key the spec dropped must be removed")
	}
	got := renderSecret(live, dropped, want)
	if _, ok := got.Data["NOMAD_CLIENT_URL"]; ok {
		t.Error("the dropped template key, set by the operator, must go")
	}
	if string(got.Data["other-tool"]) != "x" || string(got.Data["token"]) != testRaw {
		t.Error("the token and another tool's key must stay")
	}
}

// TestPreviousKeyInSecret: the replaced token stays under previousKey with its id and revoke time
// while content keeps it, and goes, annotations included, once it does not.
func TestPreviousKeyInSecret(t *testing.T) {
	tok := issuedToken()
	tok.Spec.Secret.PreviousKey = "token.previous"
	revokeBy := issuedAt.Add(10 * time.Minute)
	prev := &previousToken{id: "665f1c000000000000000000", raw: []byte("nomad_pat_old"), revokeBy: revokeBy}
	c := secretContent{raw: []byte(testRaw), facts: currentFacts(tok), previous: prev}
	live := renderSecret(nil, tok, desired(t, tok, c))
	if string(live.Data["token.previous"]) != "nomad_pat_old" || string(live.Data["token"]) != testRaw ||
		live.Annotations[v1alpha1.AnnotationPreviousTokenID] != prev.id ||
		live.Annotations[v1alpha1.AnnotationPreviousRevokeBy] != revokeBy.Format(time.RFC3339) {
		t.Fatalf("Secret with a previous token: data keys %d, annotations %v", len(live.Data), live.Annotations)
	}
	live.ManagedFields = managedBy(FieldManager, `{"f:metadata":{"f:annotations":{"f:tokens.nomad-operator.dev/previous-token-id":{},"f:tokens.nomad-operator.dev/previous-revoke-by":{}}},"f:data":{"f:token":{},"f:token.previous":{}}}`)
	if !secretInSync(live, tok, desired(t, tok, c)) {
		t.Fatal("the Secret as written at the swap is in sync while the previous PAT is kept")
	}

	c.previous = nil
	want := desired(t, tok, c)
	if secretInSync(live, tok, want) {
		t.Fatal("a Secret that keeps a revoked previous token is not in sync")
	}
	got := renderSecret(live, tok, want)
	if _, ok := got.Data["token.previous"]; ok {
		t.Error("the previous key must go with the previous PAT")
	}
	if _, ok := got.Annotations[v1alpha1.AnnotationPreviousTokenID]; ok {
		t.Error("the previous token id annotation must go")
	}
	if _, ok := got.Annotations[v1alpha1.AnnotationPreviousRevokeBy]; ok {
		t.Error("the previous revoke-by annotation must go")
	}

	without := tok.DeepCopy()
	without.Spec.Secret.PreviousKey = ""
	c.previous = prev
	if got := renderSecret(live, without, desired(t, without, c)); got.Data["token.previous"] != nil {
		t.Error("removing spec.secret.previousKey removes the key")
	}
}

// TestKeptPreviousIsOnlyTheReplacedPAT: after the swap the previous token is read back from the
// Secret only by status's fingerprint.
func TestKeptPreviousIsOnlyTheReplacedPAT(t *testing.T) {
	oldRaw := []byte("nomad_pat_old")
	tok := issuedToken()
	tok.Spec.Secret.PreviousKey = "token.previous"
	tok.Status.PreviousTokenID = "665f1c000000000000000000"
	tok.Status.PreviousTokenFingerprint = tokenFingerprint(oldRaw)
	tok.Status.PreviousTokenRevokeAt = &metav1.Time{Time: issuedAt.Add(10 * time.Minute)}
	tok.Status.PreviousTokenRevokeBy = &metav1.Time{Time: issuedAt.Add(time.Hour)}

	s := ownedSecret(tok, "ci", map[string][]byte{"token": []byte(testRaw), "token.previous": oldRaw})
	got := keptPrevious(tok, s, nil)
	if got == nil || string(got.raw) != string(oldRaw) || !got.revokeBy.Equal(issuedAt.Add(time.Hour)) {
		t.Fatalf("keptPrevious = %+v, want the old raw token, revoked by maxGracePeriod's end", got)
	}
	s.Data["token.previous"] = []byte("nomad_pat_someone-elses")
	if got := keptPrevious(tok, s, nil); got != nil {
		t.Fatal("a value that does not match the recorded fingerprint is never the previous token")
	}
	delete(s.Data, "token.previous")
	if got := keptPrevious(tok, s, nil); got != nil {
		t.Fatal("previousKey set after the swap: the Secret simply has no previous key")
	}
}
