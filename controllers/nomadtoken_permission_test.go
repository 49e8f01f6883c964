package controllers

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

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
	tests := []struct {
		name   string
		policy v1alpha1.ConnectionPolicy
		token  *v1alpha1.NomadToken
		rank   int
		want   string // a part of the violation; "" for none
	}{
		{name: "no ceilings", token: token(365, "uploads:write")},
		{name: "scopes allowed", policy: v1alpha1.ConnectionPolicy{AllowedScopes: []string{"uploads:read", "uploads:write"}}, token: token(30, "uploads:read")},
		{name: "a scope not allowed is named, with the allowed ones", policy: v1alpha1.ConnectionPolicy{AllowedScopes: []string{"uploads:read"}},
			token: token(30, "uploads:read", "entries:write"), want: "spec.scopes entries:write not in policy.allowedScopes [uploads:read]"},
		{name: "lifetime at the ceiling", policy: v1alpha1.ConnectionPolicy{MaxExpiresInDays: ptr.To[int32](30)}, token: token(30, "a:b")},
		{name: "lifetime over the ceiling", policy: v1alpha1.ConnectionPolicy{MaxExpiresInDays: ptr.To[int32](30)}, token: token(31, "a:b"),
			want: "spec.expiresInDays 31 exceeds policy.maxExpiresInDays 30"},
		{name: "an undefaulted lifetime counts as the default 30 days", policy: v1alpha1.ConnectionPolicy{MaxExpiresInDays: ptr.To[int32](7)}, token: token(0, "a:b"),
			want: "spec.expiresInDays 30 exceeds"},
		{name: "within maxTokens", policy: v1alpha1.ConnectionPolicy{MaxTokens: ptr.To[int32](2)}, token: token(30, "a:b"), rank: 1},
		{name: "one token too many", policy: v1alpha1.ConnectionPolicy{MaxTokens: ptr.To[int32](2)}, token: token(30, "a:b"), rank: 2,
			want: "policy.maxTokens is 2 and as many NomadTokens that come first use the connection already"},
		{name: "maxTokens 0 serves nobody", policy: v1alpha1.ConnectionPolicy{MaxTokens: ptr.To[int32](0)}, token: token(30, "a:b"), want: "policy.maxTokens is 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := policyViolation(&tt.policy, tt.token, tt.rank)
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
		policyViolation(got[1].policy, &v1alpha1.NomadToken{}, 0) == "" {
		t.Fatalf("ceilings %+v: an invalid selector must refuse", got)
	}
}
