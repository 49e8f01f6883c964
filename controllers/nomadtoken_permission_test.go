package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

func TestNamespaceAllowed(t *testing.T) {
	team := map[string]string{"nomad-access": "true"}
	tests := []struct {
		name    string
		allowed v1alpha1.AllowedNamespaces
		labels  map[string]string
		want    bool
		wantErr bool
	}{
		{name: "empty allows nobody", allowed: v1alpha1.AllowedNamespaces{}, labels: team},
		{name: "by name", allowed: v1alpha1.AllowedNamespaces{Names: []string{"team-b", "team-a"}}, want: true},
		{name: "another name", allowed: v1alpha1.AllowedNamespaces{Names: []string{"team-b"}}, labels: team},
		{name: "by selector", allowed: v1alpha1.AllowedNamespaces{Selector: &metav1.LabelSelector{MatchLabels: team}}, labels: team, want: true},
		{name: "selector not matching", allowed: v1alpha1.AllowedNamespaces{Selector: &metav1.LabelSelector{MatchLabels: team}},
			labels: map[string]string{"nomad-access": "false"}},
		{name: "selector, namespace without labels", allowed: v1alpha1.AllowedNamespaces{Selector: &metav1.LabelSelector{MatchLabels: team}}},
		{name: "an empty selector matches every namespace", allowed: v1alpha1.AllowedNamespaces{Selector: &metav1.LabelSelector{}}, want: true},
		{name: "name or selector", allowed: v1alpha1.AllowedNamespaces{Names: []string{"team-a"}, Selector: &metav1.LabelSelector{MatchLabels: team}}, want: true},
		{name: "an invalid selector allows nobody", wantErr: true, allowed: v1alpha1.AllowedNamespaces{Selector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Sometimes"}}}}, labels: team},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := namespaceAllowed(tt.allowed, "team-a", tt.labels)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("namespaceAllowed = %v, %v; want %v (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestPolicyViolation(t *testing.T) {
	token := func(days int32, scopes ...string) *v1alpha1.NomadToken {
		return &v1alpha1.NomadToken{Spec: v1alpha1.NomadTokenSpec{Scopes: scopes, ExpiresInDays: days}}
	}
	retain := func(tok *v1alpha1.NomadToken) *v1alpha1.NomadToken {
		tok.Spec.DeletionPolicy = v1alpha1.DeletionRetain
		return tok
	}
	renewBefore := func(tok *v1alpha1.NomadToken, d time.Duration) *v1alpha1.NomadToken {
		tok.Spec.Rotation.RenewBefore = &metav1.Duration{Duration: d}
		return tok
	}
	every := func(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
	tests := []struct {
		name   string
		policy v1alpha1.ConnectionPolicy
		token  *v1alpha1.NomadToken
		places placesTaken
		want   string // a part of the violation; "" for none
	}{
		{name: "no ceilings", token: token(365, "uploads:write"), places: placesTaken{tokens: 5, queued: 5, leftBehind: 5}},
		{name: "scopes allowed", policy: v1alpha1.ConnectionPolicy{AllowedScopes: []string{"uploads:read", "uploads:write"}}, token: token(30, "uploads:read")},
		{name: "a scope not allowed is named, with the allowed ones", policy: v1alpha1.ConnectionPolicy{AllowedScopes: []string{"uploads:read"}},
			token: token(30, "uploads:read", "entries:write"), want: "spec.scopes entries:write not in policy.allowedScopes [uploads:read]"},
		{name: "lifetime at the ceiling", policy: v1alpha1.ConnectionPolicy{MaxExpiresInDays: ptr.To[int32](30)}, token: token(30, "a:b")},
		{name: "lifetime over the ceiling", policy: v1alpha1.ConnectionPolicy{MaxExpiresInDays: ptr.To[int32](30)}, token: token(31, "a:b"),
			want: "spec.expiresInDays 31 exceeds policy.maxExpiresInDays 30"},
		{name: "an undefaulted lifetime counts as the default 30 days", policy: v1alpha1.ConnectionPolicy{MaxExpiresInDays: ptr.To[int32](7)}, token: token(0, "a:b"),
			want: "spec.expiresInDays 30 exceeds"},
		{name: "within maxTokens", policy: v1alpha1.ConnectionPolicy{MaxTokens: ptr.To[int32](2)}, token: token(30, "a:b"), places: placesTaken{tokens: 1}},
		{name: "one token too many", policy: v1alpha1.ConnectionPolicy{MaxTokens: ptr.To[int32](2)}, token: token(30, "a:b"), places: placesTaken{tokens: 2},
			want: "policy.maxTokens is 2 and every place is taken: 2 by NomadTokens that come first"},
		{name: "maxTokens 0 serves nobody", policy: v1alpha1.ConnectionPolicy{MaxTokens: ptr.To[int32](0)}, token: token(30, "a:b"), want: "policy.maxTokens is 0"},
		{name: "a retained PAT takes the only place", policy: v1alpha1.ConnectionPolicy{MaxTokens: ptr.To[int32](1)}, token: token(30, "a:b"),
			places: placesTaken{leftBehind: 1}, want: "1 by PATs left behind (retained, or of NomadTokens deleted or moved)"},
		{name: "queued PATs take places", policy: v1alpha1.ConnectionPolicy{MaxTokens: ptr.To[int32](3)}, token: token(30, "a:b"),
			places: placesTaken{tokens: 1, queued: 2}, want: "2 by PATs queued for revocation"},
		{name: "places taken below the ceiling", policy: v1alpha1.ConnectionPolicy{MaxTokens: ptr.To[int32](4)}, token: token(30, "a:b"),
			places: placesTaken{tokens: 1, queued: 1, leftBehind: 1}},
		{name: "Retain allowed by default", policy: v1alpha1.ConnectionPolicy{}, token: retain(token(30, "a:b"))},
		{name: "Retain allowed explicitly", policy: v1alpha1.ConnectionPolicy{AllowRetain: ptr.To(true)}, token: retain(token(30, "a:b"))},
		{name: "Retain forbidden", policy: v1alpha1.ConnectionPolicy{AllowRetain: ptr.To(false)}, token: retain(token(30, "a:b")),
			want: "spec.deletionPolicy Retain is not allowed (policy.allowRetain is false)"},
		{name: "Revoke under a policy forbidding Retain", policy: v1alpha1.ConnectionPolicy{AllowRetain: ptr.To(false)}, token: token(30, "a:b")},
		{name: "the default renewal (2/3 of 30 days) keeps to a 7-day interval", policy: v1alpha1.ConnectionPolicy{MinRotationInterval: every(7 * 24 * time.Hour)},
			token: token(30, "a:b")},
		{name: "a 1-day PAT renewed at 2/3 breaks a 24h interval", policy: v1alpha1.ConnectionPolicy{MinRotationInterval: every(24 * time.Hour)},
			token: token(1, "a:b"), want: "spec.expiresInDays 1 with its spec.rotation renews the PAT every 16h0m0s, more often than policy.minRotationInterval 24h0m0s"},
		{name: "renewBeforePercentage 99 of a day breaks a 1h interval", policy: v1alpha1.ConnectionPolicy{MinRotationInterval: every(time.Hour)},
			token: func() *v1alpha1.NomadToken {
				tok := token(1, "a:b")
				tok.Spec.Rotation.RenewBeforePercentage = ptr.To[int32](99)
				return tok
			}(), want: "renews the PAT every 14m24s"},
		{name: "renewBefore leaving exactly the interval", policy: v1alpha1.ConnectionPolicy{MinRotationInterval: every(24 * time.Hour)},
			token: renewBefore(token(2, "a:b"), 24*time.Hour)},
		{name: "renewBefore leaving less than the interval", policy: v1alpha1.ConnectionPolicy{MinRotationInterval: every(24 * time.Hour)},
			token: renewBefore(token(2, "a:b"), 25*time.Hour), want: "renews the PAT every 23h0m0s"},
		{name: "a zero interval bounds nothing", policy: v1alpha1.ConnectionPolicy{MinRotationInterval: every(0)}, token: token(1, "a:b")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := policyViolation(&tt.policy, tt.token, tt.places)
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Fatalf("policyViolation = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPlacedBefore(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	later := metav1.NewTime(at.Add(time.Second))
	mk := func(ns, name string, created metav1.Time, mintedBy string) *v1alpha1.NomadToken {
		tok := &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: created}}
		if mintedBy != "" {
			tok.Status.TokenID, tok.Status.ConnectionName = "pat", mintedBy
		}
		return tok
	}
	const key = "ClusterNomadConnection/shared"
	tests := []struct {
		name string
		a, b *v1alpha1.NomadToken
		want bool
	}{
		{"the earlier creation comes first, whatever the names", mk("b", "x", at, ""), mk("a", "a", later, ""), true},
		{"the later creation comes after", mk("a", "a", later, ""), mk("b", "x", at, ""), false},
		{"created in the same second: namespace/name decides", mk("a", "z", at, ""), mk("b", "a", at, ""), true},
		{"created in the same second, the other way round", mk("b", "a", at, ""), mk("a", "z", at, ""), false},
		{"a holder of this connection's PAT comes before an older token without one", mk("b", "new", later, key), mk("a", "old", at, ""), true},
		{"an older token without a PAT comes after a holder", mk("a", "old", at, ""), mk("b", "new", later, key), false},
		{"a PAT of another connection does not hold a place here", mk("b", "new", later, "oasis"), mk("a", "old", at, ""), false},
		{"two holders: the older first", mk("a", "old", at, key), mk("b", "new", later, key), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := placedBefore(tt.a, tt.b, key); got != tt.want {
				t.Fatalf("placedBefore = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCeilingsFor(t *testing.T) {
	days := func(n int32) v1alpha1.ConnectionPolicy { return v1alpha1.ConnectionPolicy{MaxExpiresInDays: ptr.To(n)} }
	global := days(90)
	cluster := &v1alpha1.ClusterNomadConnection{Spec: v1alpha1.ClusterNomadConnectionSpec{
		NomadConnectionSpec: v1alpha1.NomadConnectionSpec{Policy: &global},
		NamespacePolicies: []v1alpha1.NamespacePolicy{
			{Namespaces: v1alpha1.AllowedNamespaces{Names: []string{"team-b"}}, Policy: days(30)},
			{Namespaces: v1alpha1.AllowedNamespaces{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "sandbox"}}}, Policy: days(7)},
			{Namespaces: v1alpha1.AllowedNamespaces{Names: []string{"team-b"}}, Policy: days(1)}, // never reached: the first match wins
		},
	}}
	tests := []struct {
		name   string
		conn   v1alpha1.Connection
		ns     string
		labels map[string]string
		want   []string // the fields of the ceilings, in order
	}{
		{name: "a namespace no entry matches: spec.policy alone", conn: cluster, ns: "team-a", want: []string{"spec.policy"}},
		{name: "by name: spec.policy and its entry", conn: cluster, ns: "team-b", want: []string{"spec.policy", "spec.namespacePolicies[0].policy"}},
		{name: "by label", conn: cluster, ns: "lab", labels: map[string]string{"tier": "sandbox"}, want: []string{"spec.policy", "spec.namespacePolicies[1].policy"}},
		{name: "a NomadConnection has its policy only", conn: &v1alpha1.NomadConnection{Spec: v1alpha1.NomadConnectionSpec{Policy: &global}}, ns: "team-b", want: []string{"spec.policy"}},
		{name: "no policy at all", conn: &v1alpha1.NomadConnection{}, ns: "team-a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, c := range ceilingsFor(tt.conn, tt.ns, tt.labels) {
				got = append(got, c.field)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("ceilings = %v, want %v", got, tt.want)
			}
		})
	}
	// An entry's maxTokens is shared by the namespaces it is the first match of, and only by them.
	entry := ceilingsFor(cluster, "lab", map[string]string{"tier": "sandbox"})[1]
	if !entry.covers("other-lab", map[string]string{"tier": "sandbox"}) || entry.covers("team-a", nil) ||
		entry.covers("team-b", map[string]string{"tier": "sandbox"}) {
		t.Fatal("the entry must cover exactly the namespaces it is the first match of (team-b is entry 0's)")
	}
	// A mistyped selector refuses every token it might have meant, rather than leaving spec.policy alone.
	broken := cluster.DeepCopy()
	broken.Spec.NamespacePolicies[0].Namespaces = v1alpha1.AllowedNamespaces{Selector: &metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Sometimes"}}}}
	got := ceilingsFor(broken, "team-a", nil)
	if len(got) != 2 || !strings.Contains(got[1].field, "namespacePolicies[0].namespaces.selector is invalid") ||
		policyViolation(got[1].policy, &v1alpha1.NomadToken{}, placesTaken{}) == "" {
		t.Fatalf("ceilings %+v: an invalid selector must refuse", got)
	}
}

func TestPlacesBefore(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(d)} }
	created := metav1.NewTime(now.Add(-time.Hour))
	n := 0
	// mk is a NomadToken of team-a on oasis, created an hour ago (later tokens a second later each).
	mk := func(name string, mutate ...func(*v1alpha1.NomadToken)) *v1alpha1.NomadToken {
		n++
		tok := &v1alpha1.NomadToken{
			ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name, UID: types.UID(name + "-uid"),
				CreationTimestamp: metav1.NewTime(created.Add(time.Duration(n) * time.Second))},
			Spec: v1alpha1.NomadTokenSpec{ConnectionRef: v1alpha1.ConnectionRef{Name: "oasis"}, Scopes: []string{"uploads:read"}},
		}
		for _, m := range mutate {
			m(tok)
		}
		return tok
	}
	holding := func(id string) func(*v1alpha1.NomadToken) {
		return func(tok *v1alpha1.NomadToken) {
			tok.Status.TokenID, tok.Status.ConnectionName, tok.Status.ExpiresAt = id, "oasis", at(24*time.Hour)
		}
	}
	previous := func(id string) func(*v1alpha1.NomadToken) {
		return func(tok *v1alpha1.NomadToken) {
			tok.Status.PreviousTokenID, tok.Status.PreviousTokenExpiresAt = id, at(time.Hour)
		}
	}
	queued := func(id string, expiresAt *metav1.Time) func(*v1alpha1.NomadToken) {
		return func(tok *v1alpha1.NomadToken) {
			tok.Status.RevokePending = append(tok.Status.RevokePending, v1alpha1.PATReference{ID: id, ConnectionName: "oasis", ExpiresAt: expiresAt})
		}
	}
	deleting := func(tok *v1alpha1.NomadToken) {
		tok.DeletionTimestamp, tok.Finalizers = &metav1.Time{Time: now}, []string{v1alpha1.FinalizerRevoke}
	}
	retained := func(id, owner string, expiresAt *metav1.Time) v1alpha1.RetainedPAT {
		return v1alpha1.RetainedPAT{ID: id, NomadToken: owner, ExpiresAt: expiresAt}
	}
	tests := []struct {
		name     string
		token    *v1alpha1.NomadToken
		others   []*v1alpha1.NomadToken
		retained []v1alpha1.RetainedPAT
		// cached is what the cached connection shows of retained, when it lags behind the API server.
		cached *[]v1alpha1.RetainedPAT
		want   placesTaken
	}{
		{name: "alone", token: mk("new")},
		{name: "the Retain-delete loop: a retained PAT of the namespace takes a place",
			token: mk("round-2"), retained: []v1alpha1.RetainedPAT{retained("pat-1", "team-a/round-1", at(30*24*time.Hour))},
			want: placesTaken{leftBehind: 1}},
		{name: "a retained PAT takes its place until it expires",
			token: mk("new"), retained: []v1alpha1.RetainedPAT{retained("old", "team-a/gone", at(-time.Second)), retained("kept", "team-a/x", nil)},
			want: placesTaken{leftBehind: 1}},
		{name: "the connection's cache lags behind a retained PAT: a token about to take a new place reads it live",
			token: mk("round-2"), retained: []v1alpha1.RetainedPAT{retained("pat-1", "team-a/round-1", at(time.Hour))}, cached: &[]v1alpha1.RetainedPAT{},
			want: placesTaken{leftBehind: 1}},
		{name: "every PAT of a token being deleted takes a place until it goes",
			token: mk("new"), others: []*v1alpha1.NomadToken{mk("leaving", holding("c"), previous("p"), queued("q", at(time.Hour)), deleting)},
			want: placesTaken{leftBehind: 3}},
		{name: "PATs of a token moved to another connection, not yet revoked, take places",
			token: mk("new"), others: []*v1alpha1.NomadToken{mk("moved", holding("c"), func(tok *v1alpha1.NomadToken) { tok.Spec.ConnectionRef.Name = "other" })},
			want: placesTaken{leftBehind: 1}},
		{name: "a holder comes first, its previous PAT lives in its place, its queue takes places",
			token: mk("new"), others: []*v1alpha1.NomadToken{mk("holder", holding("c"), previous("p"), queued("q", at(time.Hour)))},
			want: placesTaken{tokens: 1, queued: 1}},
		{name: "an Overlap rotation: its own previous PAT takes no place",
			token: mk("rotating", holding("c"), previous("p"))},
		{name: "its own queued PATs take places, expired ones not",
			token: mk("stuck", holding("c"), queued("q1", at(time.Hour)), queued("q2", at(-time.Hour)), queued("q3", nil)),
			want:  placesTaken{queued: 2}},
		{name: "the queue of a token that comes after it is not its concern",
			token: mk("first", holding("c")), others: []*v1alpha1.NomadToken{mk("second", holding("d"), queued("q", at(time.Hour)))}},
		{name: "a newer token without a PAT comes after",
			token: mk("old-waiting"), others: []*v1alpha1.NomadToken{mk("newer")}, want: placesTaken{}},
		{name: "a queued PAT another connection minted is not counted here",
			token: mk("t", holding("c"), func(tok *v1alpha1.NomadToken) {
				tok.Status.RevokePending = []v1alpha1.PATReference{{ID: "q", ConnectionName: "elsewhere", ExpiresAt: at(time.Hour)}}
			})},
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "oasis"},
				Status: v1alpha1.NomadConnectionStatus{RetainedPATs: tt.retained}}
			objs := []client.Object{conn.DeepCopy(), tt.token}
			for _, o := range tt.others {
				objs = append(objs, o)
			}
			c := fake.NewClientBuilder().WithScheme(scheme).WithStatusSubresource(&v1alpha1.NomadConnection{}).
				WithIndex(&v1alpha1.NomadToken{}, dependsOnIndex, func(o client.Object) []string { return connectionsNeededBy(o.(*v1alpha1.NomadToken)) }).
				WithObjects(objs...).Build()
			r := &NomadTokenReconciler{Client: c, APIReader: c}
			if tt.cached != nil {
				conn.Status.RetainedPATs = *tt.cached
			}
			policy := &v1alpha1.ConnectionPolicy{MaxTokens: ptr.To[int32](5)}
			c1 := ceiling{field: "spec.policy", policy: policy, covers: func(string, map[string]string) bool { return true }}
			got, err := r.placesBefore(context.Background(), conn, tt.token, now, c1)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("placesBefore = %+v, want %+v", got, tt.want)
			}
		})
	}
}
