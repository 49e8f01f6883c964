package controllers

import (
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

func TestCacheOptions(t *testing.T) {
	secretLabel := func(t *testing.T, o cache.Options) string {
		t.Helper()
		for obj, by := range o.ByObject {
			if _, ok := obj.(*corev1.Secret); ok {
				if by.Namespaces != nil {
					t.Errorf("the Secret cache sets namespaces of its own (%v): it must follow DefaultNamespaces", by.Namespaces)
				}
				return by.Label.String()
			}
		}
		t.Fatal("no Secret cache options")
		return ""
	}
	want := v1alpha1.LabelManagedBy + "=" + v1alpha1.ManagedByValue

	t.Run("cluster-wide without namespaces", func(t *testing.T) {
		o := CacheOptions(time.Hour, nil)
		if o.DefaultNamespaces != nil {
			t.Errorf("DefaultNamespaces = %v, want none (every namespace)", o.DefaultNamespaces)
		}
		if got := secretLabel(t, o); got != want {
			t.Errorf("Secret label selector %q, want %q", got, want)
		}
		if o.SyncPeriod == nil || *o.SyncPeriod != time.Hour {
			t.Errorf("SyncPeriod = %v", o.SyncPeriod)
		}
	})
	t.Run("confined to the watched namespaces", func(t *testing.T) {
		o := CacheOptions(time.Hour, []string{"team-a", "team-b"})
		if got := slices.Sorted(maps.Keys(o.DefaultNamespaces)); !slices.Equal(got, []string{"team-a", "team-b"}) {
			t.Errorf("DefaultNamespaces = %v, want team-a and team-b", got)
		}
		if got := secretLabel(t, o); got != want {
			t.Errorf("Secret label selector %q, want %q in the watched namespaces too", got, want)
		}
	})
}
