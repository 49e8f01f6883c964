package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

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
// that cannot be read is not refused here: minting reports why (ConnectionNotFound and the like).
// It also says when the connection's policies let a rotation give the token a new PAT
// (rotationAllowedAt; zero: now).
func (r *NomadTokenReconciler) mintRefusal(ctx context.Context, sc *reconcileScope) (refused *failure, rotationAllowed time.Time, err error) {
	rc, err := r.connectionOf(ctx, sc, sc.token.Spec.ConnectionRef.Key())
	if err != nil {
		if isKubernetesError(err) {
			return nil, rotationAllowed, err
		}
		return nil, rotationAllowed, nil
	}
	admitted, err := admitsNamespace(ctx, r, rc.conn, sc.token.Namespace)
	if err != nil {
		return nil, rotationAllowed, err
	}
	if !admitted {
		return &failure{reason: v1alpha1.ReasonConnectionNotAllowed, message: fmt.Sprintf(
			"ClusterNomadConnection %q does not allow namespace %q (spec.allowedNamespaces); ask the platform team to add it, or use a connection this namespace may use", rc.conn.GetName(), sc.token.Namespace)}, rotationAllowed, nil
	}
	ceilings, err := r.ceilingsOf(ctx, rc.conn, sc.token.Namespace)
	if err != nil {
		return nil, rotationAllowed, err
	}
	for _, c := range ceilings {
		if at := rotationAllowedAt(sc.token, c.policy); at.After(rotationAllowed) {
			rotationAllowed = at
		}
	}
	for _, c := range ceilings {
		var places placesTaken
		if c.policy.MaxTokens != nil {
			if places, err = r.placesBefore(ctx, rc.conn, sc.token, sc.now, c); err != nil {
				return nil, rotationAllowed, err
			}
		}
		if v := policyViolation(c.policy, sc.token, places); v != "" {
			return &failure{reason: v1alpha1.ReasonPolicyViolation, message: fmt.Sprintf("%s %q %s: %s", rc.conn.ConnectionKind(), rc.conn.GetName(), c.field, v)}, rotationAllowed, nil
		}
	}
	return nil, rotationAllowed, nil
}

// ceiling is one policy a token must keep within: where it is set, and which namespaces it covers
// (whose tokens share its maxTokens).
type ceiling struct {
	field  string
	policy *v1alpha1.ConnectionPolicy
	covers func(ns string, nsLabels map[string]string) bool
}

// ceilingsOf is ceilingsFor namespace ns, whose labels are read where conn is a ClusterNomadConnection
// (whose policies may select namespaces by label).
func (r *NomadTokenReconciler) ceilingsOf(ctx context.Context, conn v1alpha1.Connection, ns string) ([]ceiling, error) {
	var nsLabels map[string]string
	if conn.GetNamespace() == "" {
		var err error
		if nsLabels, err = namespaceLabels(ctx, r, ns); client.IgnoreNotFound(err) != nil {
			return nil, err
		}
	}
	return ceilingsFor(conn, ns, nsLabels), nil
}

// ceilingsFor lists the policies that bind NomadTokens of namespace ns (labelled nsLabels) on conn:
// spec.policy, for all of its namespaces, and on a ClusterNomadConnection the first of its
// namespacePolicies that matches ns, for the namespaces that entry matches.
func ceilingsFor(conn v1alpha1.Connection, ns string, nsLabels map[string]string) []ceiling {
	var out []ceiling
	if p := conn.ConnectionSpec().Policy; p != nil {
		out = append(out, ceiling{field: "spec.policy", policy: p, covers: func(string, map[string]string) bool { return true }})
	}
	cluster, ok := conn.(*v1alpha1.ClusterNomadConnection)
	if !ok {
		return out
	}
	i, err := firstNamespacePolicy(cluster, ns, nsLabels)
	switch {
	case err != nil:
		// The platform meant to set a ceiling here and mistyped it: refuse (a ceiling of no token)
		// rather than fall back on the looser spec.policy.
		return append(out, ceiling{field: fmt.Sprintf("spec.namespacePolicies[%d].namespaces.selector is invalid (%v), so", i, err),
			policy: &v1alpha1.ConnectionPolicy{MaxTokens: new(int32)}, covers: func(string, map[string]string) bool { return true }})
	case i >= 0:
		// Its maxTokens is shared by the namespaces this entry is the first match of.
		covers := func(ns string, nsLabels map[string]string) bool {
			j, err := firstNamespacePolicy(cluster, ns, nsLabels)
			return err == nil && j == i
		}
		return append(out, ceiling{field: fmt.Sprintf("spec.namespacePolicies[%d].policy", i), policy: &cluster.Spec.NamespacePolicies[i].Policy, covers: covers})
	}
	return out
}

// firstNamespacePolicy is the index of the first namespacePolicies entry that matches namespace ns,
// -1 when none does. An entry with an invalid selector stops the search with an error: which entry
// was meant cannot be told.
func firstNamespacePolicy(cluster *v1alpha1.ClusterNomadConnection, ns string, nsLabels map[string]string) (int, error) {
	for i := range cluster.Spec.NamespacePolicies {
		ok, err := namespaceAllowed(cluster.Spec.NamespacePolicies[i].Namespaces, ns, nsLabels)
		if err != nil {
			return i, err
		}
		if ok {
			return i, nil
		}
	}
	return -1, nil
}

// admitsNamespace reports whether conn serves NomadTokens of namespace ns: a NomadConnection its own
// namespace (it is looked up nowhere else), a ClusterNomadConnection those its allowedNamespaces
// let in. An invalid selector lets nobody in (the API server cannot validate it in CEL).
func admitsNamespace(ctx context.Context, c client.Reader, conn v1alpha1.Connection, ns string) (bool, error) {
	cluster, ok := conn.(*v1alpha1.ClusterNomadConnection)
	if !ok {
		return conn.GetNamespace() == ns, nil
	}
	nsLabels, err := namespaceLabels(ctx, c, ns)
	if err != nil {
		return false, client.IgnoreNotFound(err)
	}
	allowed, err := namespaceAllowed(cluster.Spec.AllowedNamespaces, ns, nsLabels)
	return allowed && err == nil, nil
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
// when none. places is what comes before the token for a place under policy.maxTokens.
func policyViolation(policy *v1alpha1.ConnectionPolicy, token *v1alpha1.NomadToken, places placesTaken) string {
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
	if ceiling := policy.MaxExpiresInDays; ceiling != nil && days > int(*ceiling) {
		return fmt.Sprintf("spec.expiresInDays %d exceeds policy.maxExpiresInDays %d", days, *ceiling)
	}
	if policy.AllowRetain != nil && !*policy.AllowRetain && token.EffectiveDeletionPolicy() == v1alpha1.DeletionRetain {
		return "spec.deletionPolicy Retain is not allowed (policy.allowRetain is false); use Revoke"
	}
	if bound := policy.MinRotationInterval; bound != nil && bound.Duration > 0 {
		if every := renewalSpacing(token); every < bound.Duration {
			return fmt.Sprintf("spec.expiresInDays %d with its spec.rotation renews the PAT every %s, more often than policy.minRotationInterval %s; renew later (a longer lifetime or a smaller renewBefore)",
				days, every, bound.Duration)
		}
	}
	if ceiling := policy.MaxTokens; ceiling != nil && places.total() >= int(*ceiling) {
		return fmt.Sprintf("policy.maxTokens is %d and every place is taken: %s; this one mints when a place frees up", *ceiling, places)
	}
	return ""
}

// placesTaken counts what comes before a NomadToken for a place under a ceiling's maxTokens. Every
// live PAT the ceiling covers takes a place, except the previous PAT of an Overlap rotation, which
// lives on in its NomadToken's place for the grace period (else a rotation at maxTokens: N with N
// NomadTokens could never happen).
type placesTaken struct {
	// tokens is how many NomadTokens come before it (placedBefore): one place each, for the PAT
	// they hold or will mint.
	tokens int
	// queued is how many PATs wait in the revocation queues of those NomadTokens, and in its own.
	queued int
	// leftBehind is how many PATs no NomadToken will revoke as its own: retained ones (deletionPolicy
	// Retain) until they expire, and every PAT of a NomadToken being deleted or moved to another
	// connection. They come before every NomadToken: they are live already.
	leftBehind int
}

func (p placesTaken) total() int { return p.tokens + p.queued + p.leftBehind }

func (p placesTaken) String() string {
	return fmt.Sprintf("%d by NomadTokens that come first (those holding its PATs, then the oldest), %d by PATs queued for revocation, %d by PATs left behind (retained, or of NomadTokens deleted or moved)",
		p.tokens, p.queued, p.leftBehind)
}

// placesBefore counts, among the namespaces ceiling c covers, what comes before token for a
// place under c's maxTokens (placesTaken). Places are sticky: tokens holding a PAT minted through
// conn come first, so admitting a newer token never turns one that was served away (a burst of
// tokens created in the same second cannot reorder them either); among the rest, the oldest come
// first.
func (r *NomadTokenReconciler) placesBefore(ctx context.Context, conn v1alpha1.Connection, token *v1alpha1.NomadToken, now time.Time, c ceiling) (placesTaken, error) {
	key := conn.Key()
	tokens, err := tokensDependingOn(ctx, r, conn.GetNamespace(), key, client.UnsafeDisableDeepCopy)
	if err != nil {
		return placesTaken{}, err
	}
	covered := coveredNamespaces(ctx, r, conn, c.covers)
	admitted := map[string]bool{}
	places := placesTaken{queued: queuedThrough(token, key, now)}
	for i := range tokens {
		t := &tokens[i]
		if t.UID == token.UID {
			continue // its own, counted from the fresh object
		}
		in, err := covered(t.Namespace)
		if err != nil {
			return placesTaken{}, err
		}
		if !in {
			continue
		}
		if t.Spec.ConnectionRef.Key() != key || !t.DeletionTimestamp.IsZero() {
			places.leftBehind += livePATsThrough(t, key, now)
			continue
		}
		ok, known := admitted[t.Namespace]
		if !known {
			if ok, err = admitsNamespace(ctx, r, conn, t.Namespace); err != nil {
				return placesTaken{}, err
			}
			admitted[t.Namespace] = ok
		}
		if ok && placedBefore(t, token, key) {
			places.tokens++
			places.queued += queuedThrough(t, key, now)
		}
	}
	retained := conn.ConnectionStatus().RetainedPATs
	if places.total() < int(*c.policy.MaxTokens) && !holdsPATOf(token, key) {
		// About to take a new place: the cached connection may not show yet a PAT just retained by
		// a NomadToken the cache already shows gone (both are written in that order).
		if retained, err = r.liveRetainedPATs(ctx, conn); err != nil {
			return placesTaken{}, err
		}
	}
	for _, p := range retained {
		ns, _, _ := strings.Cut(p.NomadToken, "/")
		in, err := covered(ns)
		if err != nil {
			return placesTaken{}, err
		}
		if in && alive(p.ExpiresAt, now) {
			places.leftBehind++
		}
	}
	return places, nil
}

// liveRetainedPATs reads conn's status.retainedPATs from the API server.
func (r *NomadTokenReconciler) liveRetainedPATs(ctx context.Context, conn v1alpha1.Connection) ([]v1alpha1.RetainedPAT, error) {
	fresh, ok := conn.DeepCopyObject().(v1alpha1.Connection)
	if !ok {
		return conn.ConnectionStatus().RetainedPATs, nil
	}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(conn), fresh); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return fresh.ConnectionStatus().RetainedPATs, nil
}

// coveredNamespaces memoises covers over namespaces by name, reading a namespace's labels (from the
// metadata cache) only where conn is a ClusterNomadConnection, whose policies may select by label.
func coveredNamespaces(ctx context.Context, c client.Reader, conn v1alpha1.Connection,
	covers func(ns string, nsLabels map[string]string) bool) func(ns string) (bool, error) {
	seen := map[string]bool{}
	return func(ns string) (bool, error) {
		if in, ok := seen[ns]; ok {
			return in, nil
		}
		var nsLabels map[string]string
		if conn.GetNamespace() == "" {
			var err error
			if nsLabels, err = namespaceLabels(ctx, c, ns); client.IgnoreNotFound(err) != nil {
				return false, err
			}
		}
		seen[ns] = covers(ns, nsLabels)
		return seen[ns], nil
	}
}

// queuedThrough counts the PATs in t's revocation queue that the connection named key minted, that
// have not expired, and that belong to the NOMAD user t's current PAT belongs to. A PAT of an earlier
// user (the credentials moved on) takes no place of the current user's, and a marker entry (an
// interrupted issuance that may have created nothing) is not known to be a PAT at all: counting them
// would refuse the re-mints that moving to another user requires, until they expire.
func queuedThrough(t *v1alpha1.NomadToken, key string, now time.Time) int {
	n := 0
	for _, ref := range t.Status.RevokePending {
		if orSpecConnection(t, ref.ConnectionName) == key && alive(ref.ExpiresAt, now) &&
			ref.Marker == "" && sameAccount(ref.Account, t.Status.Account) {
			n++
		}
	}
	return n
}

// livePATsThrough counts every PAT of t (current, previous, queued) that the connection named key
// minted and that has not expired.
func livePATsThrough(t *v1alpha1.NomadToken, key string, now time.Time) int {
	st := t.Status
	n := queuedThrough(t, key, now)
	if currentMinter(t).connection != key {
		return n
	}
	if st.TokenID != "" && alive(st.ExpiresAt, now) {
		n++
	}
	if st.PreviousTokenID != "" && alive(st.PreviousTokenExpiresAt, now) {
		n++
	}
	return n
}

// alive reports a PAT expiring at expiresAt (nil: not known) as still active at now.
func alive(expiresAt *metav1.Time, now time.Time) bool {
	return expiresAt == nil || now.Before(expiresAt.Time)
}

// usersOf lists the NomadTokens that mint through conn: those whose spec.connectionRef names it,
// from namespaces it admits, not being deleted. Read-only: they are not copied.
func usersOf(ctx context.Context, c client.Reader, conn v1alpha1.Connection) ([]v1alpha1.NomadToken, error) {
	tokens, err := tokensDependingOn(ctx, c, conn.GetNamespace(), conn.Key(), client.UnsafeDisableDeepCopy)
	if err != nil {
		return nil, err
	}
	admitted := map[string]bool{}
	users := tokens[:0:0]
	for i := range tokens {
		t := &tokens[i]
		if t.Spec.ConnectionRef.Key() != conn.Key() || !t.DeletionTimestamp.IsZero() {
			continue
		}
		ok, known := admitted[t.Namespace]
		if !known {
			if ok, err = admitsNamespace(ctx, c, conn, t.Namespace); err != nil {
				return nil, err
			}
			admitted[t.Namespace] = ok
		}
		if ok {
			users = append(users, *t)
		}
	}
	return users, nil
}

// placedBefore orders NomadTokens for places on the connection named key: holders of a PAT minted
// through it first, then by creation, then by namespace/name.
func placedBefore(a, b *v1alpha1.NomadToken, key string) bool {
	if ha, hb := holdsPATOf(a, key), holdsPATOf(b, key); ha != hb {
		return ha
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

// holdsPATOf reports whether t's current PAT was minted through the connection named key.
func holdsPATOf(t *v1alpha1.NomadToken, key string) bool {
	return t.Status.TokenID != "" && currentMinter(t).connection == key
}

// namespaceLabels reads a namespace's labels from the metadata-only cache.
func namespaceLabels(ctx context.Context, c client.Reader, name string) (map[string]string, error) {
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := c.Get(ctx, types.NamespacedName{Name: name}, ns); err != nil {
		return nil, err
	}
	return ns.Labels, nil
}
