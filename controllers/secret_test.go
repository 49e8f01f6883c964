package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// managedBy builds managedFields saying manager set the given labels and data keys.
func managedBy(manager, fieldsJSON string) []metav1.ManagedFieldsEntry {
	return []metav1.ManagedFieldsEntry{{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate,
		FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fieldsJSON)}}}
}

func TestRenderSecretRemovesOnlyWhatTheOperatorSet(t *testing.T) {
	tok := issuedToken()
	tok.Spec.Secret.Key = "NOMAD_TOKEN"
	live := ownedSecret(tok, "ci", map[string][]byte{"token": []byte(testRaw), "extra": []byte("x")})
	live.Labels = map[string]string{"old": "1", "argocd.argoproj.io/instance": "a"}
	live.ManagedFields = managedBy(FieldManager, `{"f:metadata":{"f:labels":{"f:old":{}}},"f:data":{"f:token":{}}}`)

	got := renderSecret(live, tok, []byte(testRaw), currentFacts(tok))
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
	if secretInSync(live, tok, []byte(testRaw), currentFacts(tok)) {
		t.Error("live Secret differs from the render, so it is not in sync")
	}
	got.ManagedFields = managedBy(FieldManager, `{"f:metadata":{"f:labels":{"f:app.kubernetes.io/managed-by":{}}},"f:data":{"f:NOMAD_TOKEN":{}}}`)
	if !secretInSync(got, tok, []byte(testRaw), currentFacts(tok)) {
		t.Error("a rendered Secret is in sync")
	}
}
