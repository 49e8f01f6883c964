package controllers

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

func TestTrimManagedFields(t *testing.T) {
	entries := func(managers ...string) []metav1.ManagedFieldsEntry {
		var out []metav1.ManagedFieldsEntry
		for _, m := range managers {
			out = append(out, metav1.ManagedFieldsEntry{Manager: m, FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{}}`)}})
		}
		return out
	}
	managersOf := func(obj any) []string {
		var out []string
		for _, mf := range obj.(metav1.Object).GetManagedFields() {
			out = append(out, mf.Manager)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		obj  any
		want []string
	}{
		{"a Secret keeps the operator's entries only", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
			ManagedFields: entries("kubectl", FieldManager, "argocd-controller", FieldManager)}}, []string{FieldManager, FieldManager}},
		{"a Secret without the operator's entries keeps none", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
			ManagedFields: entries("kubectl")}}, nil},
		{"a NomadToken keeps none", &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{
			ManagedFields: entries("kubectl", FieldManager)}}, nil},
		{"namespace metadata keeps none", &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
			ManagedFields: entries("kube-apiserver")}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := trimManagedFields(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			if m := managersOf(got); !slices.Equal(m, tc.want) {
				t.Fatalf("managers = %q, want %q", m, tc.want)
			}
		})
	}
	tombstone := cache.DeletedFinalStateUnknown{Key: "ns/name"}
	if got, err := trimManagedFields(tombstone); err != nil || got != tombstone {
		t.Fatalf("a tombstone must pass unchanged: %v, %v", got, err)
	}
}
