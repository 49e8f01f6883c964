package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// trimManagedFields is the cache's transform. managedFields are a large share of every cached
// object's bytes (at 10,000 NomadTokens, a fifth of the manager's heap), and the operator reads them
// only on its own Secrets, and there only its own entries (fieldsOwnedBy): every other object drops
// them, and Secrets keep the operator's entries alone. So a write never sends cached managedFields
// back (see updateSecret): a request with none leaves the server's as they are.
var trimManagedFields cache.TransformFunc = func(obj any) (any, error) {
	acc, err := meta.Accessor(obj)
	if err != nil || len(acc.GetManagedFields()) == 0 {
		return obj, nil // a tombstone (DeletedFinalStateUnknown), or nothing to trim
	}
	if _, isSecret := obj.(*corev1.Secret); !isSecret {
		acc.SetManagedFields(nil)
		return obj, nil
	}
	var ours []metav1.ManagedFieldsEntry
	for _, f := range acc.GetManagedFields() {
		if f.Manager == FieldManager {
			ours = append(ours, f)
		}
	}
	acc.SetManagedFields(ours)
	return obj, nil
}
