package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mt(d time.Duration) *metav1.Time { t := metav1.NewTime(testNow.Add(d)); return &t }

func readyToken(ns, name string) v1alpha1.NomadToken {
	return v1alpha1.NomadToken{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 2},
		Status: v1alpha1.NomadTokenStatus{
			ObservedGeneration: 2, TokenID: "pat-1", SecretName: name,
			ExpiresAt: mt(30 * 24 * time.Hour), RenewalTime: mt(20*24*time.Hour + 3*time.Hour), LastUsedAt: mt(-time.Hour),
			Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonIssued, Message: "the Secret holds\nan active PAT"}},
		},
	}
}

func TestTableRow(t *testing.T) {
	fresh := v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "fresh"}}
	late := readyToken("ns", "late")
	late.Status.ExpiresAt, late.Status.RenewalTime, late.Status.LastUsedAt = mt(-time.Minute), mt(-time.Hour), nil
	late.Status.Conditions[0].Status, late.Status.Conditions[0].Reason = metav1.ConditionFalse, v1alpha1.ReasonNomadUnavailable
	stale := readyToken("ns", "stale")
	stale.Generation = 3
	for _, tc := range []struct {
		name string
		tok  v1alpha1.NomadToken
		opts tableOptions
		want string
	}{
		{"a Ready token", readyToken("ns", "ok"), tableOptions{}, "ok Issued 30d 20d 60m ago | True"},
		{"a token the operator has not seen yet", fresh, tableOptions{}, "fresh - - - -"},
		{"expired, renewal overdue, never used", late, tableOptions{}, "late NomadUnavailable expired overdue - | False"},
		{"Ready for an older generation is marked stale", stale, tableOptions{}, "stale Issued (stale) 30d 20d 60m ago | True"},
		{"-A adds the namespace first", readyToken("team-a", "ok"), tableOptions{allNamespaces: true}, "team-a ok Issued 30d 20d 60m ago | True"},
		{"wide adds the PAT, the Secret and the message on one line", readyToken("ns", "ok"), tableOptions{wide: true},
			"ok Issued 30d 20d 60m ago pat-1 ok the Secret holds an active PAT | True"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := tableRow(&tc.tok, tc.opts, testNow)
			if len(row) != len(tableHeader(tc.opts)) {
				t.Fatalf("%d cells for %d columns: %q", len(row), len(tableHeader(tc.opts)), row)
			}
			// Compare without the READY cell, then READY alone: "-" has no status to put after "|".
			ready := 1
			if tc.opts.allNamespaces {
				ready = 2
			}
			rest := append(append([]string{}, row[:ready]...), row[ready+1:]...)
			got := strings.Join(rest, " ")
			if row[ready] != "-" {
				got += " | " + row[ready]
			}
			if got != tc.want {
				t.Errorf("row %q\n got %q\nwant %q", row, got, tc.want)
			}
		})
	}
}

func TestPrintTableAlignsColumns(t *testing.T) {
	var out bytes.Buffer
	tokens := []v1alpha1.NomadToken{readyToken("ns", "a-long-token-name"), readyToken("ns", "b")}
	if err := printTable(&out, tokens, tableOptions{}, testNow); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME ") {
		t.Fatalf("want a header and two rows, got:\n%s", out.String())
	}
	col := strings.Index(lines[0], "READY")
	for _, l := range lines[1:] {
		if l[col:col+4] != "True" {
			t.Errorf("READY column not aligned at %d:\n%s", col, out.String())
		}
	}
}

// runPlugin runs the plugin's command line against c.
func runPlugin(t *testing.T, c client.WithWatch, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCommand(genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}, c)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func fakeClient(objs ...client.Object) client.WithWatch {
	return fake.NewClientBuilder().WithScheme(scheme()).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.NomadToken{}).Build()
}

func TestStatusOutputs(t *testing.T) {
	a, b, other := readyToken("default", "a"), readyToken("default", "b"), readyToken("team-b", "c")
	c := fakeClient(&a, &b, &other)
	t.Run("the table of the namespace", func(t *testing.T) {
		out, _, err := runPlugin(t, c, "", "status", "-n", "default")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "NAMESPACE") || !strings.Contains(out, "\na ") || strings.Contains(out, "\nc ") {
			t.Errorf("want tokens a and b of default only:\n%s", out)
		}
	})
	t.Run("-A lists every namespace", func(t *testing.T) {
		out, _, err := runPlugin(t, c, "", "status", "-A")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out, "NAMESPACE") || !strings.Contains(out, "team-b") || !strings.Contains(out, "default") {
			t.Errorf("want both namespaces:\n%s", out)
		}
	})
	t.Run("-o json is a NomadTokenList", func(t *testing.T) {
		out, _, err := runPlugin(t, c, "", "status", "-n", "default", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var list v1alpha1.NomadTokenList
		if err := json.Unmarshal([]byte(out), &list); err != nil || list.Kind != "NomadTokenList" || len(list.Items) != 2 || list.Items[0].Kind != "NomadToken" {
			t.Errorf("not a NomadTokenList of two (%v):\n%s", err, out)
		}
	})
	t.Run("-o yaml NAME is the token itself", func(t *testing.T) {
		out, _, err := runPlugin(t, c, "", "status", "-n", "default", "b", "-o", "yaml")
		if err != nil {
			t.Fatal(err)
		}
		var tok v1alpha1.NomadToken
		if err := yaml.Unmarshal([]byte(out), &tok); err != nil || tok.Kind != "NomadToken" || tok.Name != "b" || tok.Status.TokenID != "pat-1" {
			t.Errorf("not NomadToken b (%v):\n%s", err, out)
		}
	})
	t.Run("a NAME that does not exist is an error", func(t *testing.T) {
		if _, _, err := runPlugin(t, c, "", "status", "-n", "default", "a", "nope"); err == nil || !strings.Contains(err.Error(), `"nope" not found`) {
			t.Errorf("err %v", err)
		}
	})
	t.Run("an empty namespace says so", func(t *testing.T) {
		out, errOut, err := runPlugin(t, c, "", "status", "-n", "empty")
		if err != nil || out != "" || !strings.Contains(errOut, "No NomadTokens found") {
			t.Errorf("err %v, out %q, errOut %q", err, out, errOut)
		}
	})
}
