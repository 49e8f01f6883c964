package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// The platform's rules come before NOMAD: a NomadToken may mint through a connection only if the
// connection lets its namespace in (a ClusterNomadConnection's allowedNamespaces; a NomadConnection
// serves its own namespace only, as it is looked up there) and the token keeps within the
// connection's policy. Both are decided from cached objects, so a refused token costs no NOMAD call.

// mintRefusal says why the platform's rules forbid minting for the token now, or nil. A connection
// that cannot be found is not refused here: minting reports it, as before.
func (r *NomadTokenReconciler) mintRefusal(ctx context.Context, obs *observed) (*failure, error) {
	rc, err := r.connectionOf(ctx, obs, obs.token.Spec.ConnectionRef.Key())
	if err != nil {
		if isKubernetesError(err) {
			return nil, err
		}
		return nil, nil
	}
	if cluster, ok := rc.conn.(*v1alpha1.ClusterNomadConnection); ok {
		nsLabels, err := r.namespaceLabels(ctx, obs.token.Namespace)
		if err != nil {
			return nil, err
		}
		allowed, err := namespaceAllowed(cluster.Spec.AllowedNamespaces, obs.token.Namespace, nsLabels)
		if err != nil {
			return &failure{reason: v1alpha1.ReasonConnectionNotAllowed, message: fmt.Sprintf(
				"ClusterNomadConnection %q has an invalid spec.allowedNamespaces.selector (%v), so it allows no namespace; ask the platform team to fix it", cluster.Name, err)}, nil
		}
		if !allowed {
			return &failure{reason: v1alpha1.ReasonConnectionNotAllowed, message: fmt.Sprintf(
				"ClusterNomadConnection %q does not allow namespace %q (spec.allowedNamespaces); ask the platform team to add it, or use a connection this namespace may use", cluster.Name, obs.token.Namespace)}, nil
		}
	}
	policy := rc.conn.ConnectionSpec().Policy
	if policy == nil {
		return nil, nil
	}
	rank := 0
	if policy.MaxTokens != nil {
		if rank, err = r.rankAmongUsers(ctx, rc.conn, obs.token); err != nil {
			return nil, err
		}
	}
	if v := policyViolation(policy, obs.token, rank); v != "" {
		return &failure{reason: v1alpha1.ReasonPolicyViolation, message: fmt.Sprintf("%s %q: %s", rc.conn.ConnectionKind(), rc.conn.GetName(), v)}, nil
	}
	return nil, nil
}

// namespaceAllowed reports whether allowed lets in the namespace named ns, labelled nsLabels.
func namespaceAllowed(allowed v1alpha1.AllowedNamespaces, ns string, nsLabels map[string]string) (bool, error) {
	if slices.Contains(allowed.Names, ns) {
		return true, nil
	}
	if allowed.Selector == nil {
		return false, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(allowed.Selector)
	if err != nil {
		return false, err
	}
	return sel.Matches(labels.Set(nsLabels)), nil
}

// policyViolation names the first ceiling of policy that token's spec breaks, with the limit; ""
// when none. rank is how many NomadTokens using the connection come before this one (oldest first).
func policyViolation(policy *v1alpha1.ConnectionPolicy, token *v1alpha1.NomadToken, rank int) string {
	if len(policy.AllowedScopes) > 0 {
		var refused []string
		for _, s := range token.Spec.Scopes {
			if !slices.Contains(policy.AllowedScopes, s) {
				refused = append(refused, s)
			}
		}
		if len(refused) > 0 {
			return fmt.Sprintf("spec.scopes %s not in policy.allowedScopes [%s]", strings.Join(refused, ", "), strings.Join(policy.AllowedScopes, ", "))
		}
	}
	days := token.EffectiveExpiresInDays()
	if max := policy.MaxExpiresInDays; max != nil && days > int(*max) {
		return fmt.Sprintf("spec.expiresInDays %d exceeds policy.maxExpiresInDays %d", days, *max)
	}
	if max := policy.MaxTokens; max != nil && rank >= int(*max) {
		return fmt.Sprintf("policy.maxTokens is %d and %d older NomadTokens use the connection already", *max, rank)
	}
	return ""
}

// rankAmongUsers counts the NomadTokens minting through conn (spec.connectionRef) that come before
// token: created earlier, or at the same second and first by namespace/name. Tokens being deleted
// give up their place. Oldest first means that lowering maxTokens never takes the slot of a token
// that had it, ahead of one created later.
func (r *NomadTokenReconciler) rankAmongUsers(ctx context.Context, conn v1alpha1.Connection, token *v1alpha1.NomadToken) (int, error) {
	users, err := tokensDependingOn(ctx, r, conn.GetNamespace(), conn.Key(), client.UnsafeDisableDeepCopy)
	if err != nil {
		return 0, err
	}
	rank := 0
	for i := range users {
		t := &users[i]
		if t.UID != token.UID && t.Spec.ConnectionRef.Key() == conn.Key() && t.DeletionTimestamp.IsZero() && olderThan(t, token) {
			rank++
		}
	}
	return rank, nil
}

// olderThan orders NomadTokens by creation, then by namespace/name.
func olderThan(a, b *v1alpha1.NomadToken) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

// namespaceLabels reads a namespace's labels from the metadata-only cache.
func (r *NomadTokenReconciler) namespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := r.Get(ctx, types.NamespacedName{Name: name}, ns); err != nil {
		return nil, err
	}
	return ns.Labels, nil
}
