package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

func TestConfirm(t *testing.T) {
	for _, tc := range []struct {
		answer string
		ok     bool
	}{
		{"y\n", true}, {"yes\n", true}, {"Y\n", true}, {" yes \n", true}, {"y", true},
		{"n\n", false}, {"\n", false}, {"no\n", false}, {"yess\n", false},
		{"", false}, // no terminal, no answer: refuse
	} {
		var out strings.Builder
		err := confirm(strings.NewReader(tc.answer), &out, "sure? ")
		if (err == nil) != tc.ok {
			t.Errorf("answer %q: err %v, want ok=%v", tc.answer, err, tc.ok)
		}
		if !strings.HasPrefix(out.String(), "sure? ") {
			t.Errorf("answer %q: the question was not asked: %q", tc.answer, out.String())
		}
	}
}

func annotations(t *testing.T, c client.Client, name string) map[string]string {
	t.Helper()
	var tok v1alpha1.NomadToken
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, &tok); err != nil {
		t.Fatal(err)
	}
	return tok.Annotations
}

func TestRotateAndRevokeNowSetAFreshAnnotation(t *testing.T) {
	tok := readyToken("default", "a")
	tok.Annotations = map[string]string{"keep": "me", v1alpha1.AnnotationRotate: "old"}
	c := fakeClient(&tok)

	if _, _, err := runPlugin(t, c, "", "rotate", "a", "-n", "default"); err != nil {
		t.Fatal(err)
	}
	first := annotations(t, c, "a")
	if v := first[v1alpha1.AnnotationRotate]; v == "old" || v == "" {
		t.Errorf("rotate annotation %q, want a fresh value", v)
	}
	if first["keep"] != "me" {
		t.Error("the merge patch dropped another annotation")
	}
	if _, _, err := runPlugin(t, c, "", "rotate", "a", "-n", "default"); err != nil {
		t.Fatal(err)
	}
	if annotations(t, c, "a")[v1alpha1.AnnotationRotate] == first[v1alpha1.AnnotationRotate] {
		t.Error("a second rotate reused the value: the operator would ignore it")
	}

	t.Run("revoke-now answered n does nothing", func(t *testing.T) {
		out, _, err := runPlugin(t, c, "n\n", "revoke-now", "a", "-n", "default")
		if !errors.Is(err, errNotConfirmed) || !strings.Contains(out, "[y/N]") {
			t.Errorf("err %v, out %q", err, out)
		}
		if _, set := annotations(t, c, "a")[v1alpha1.AnnotationRevokeNow]; set {
			t.Error("revoke-now annotation set without confirmation")
		}
	})
	t.Run("revoke-now without an answer refuses", func(t *testing.T) {
		if _, _, err := runPlugin(t, c, "", "revoke-now", "a", "-n", "default"); !errors.Is(err, errNotConfirmed) {
			t.Errorf("err %v", err)
		}
		if _, set := annotations(t, c, "a")[v1alpha1.AnnotationRevokeNow]; set {
			t.Error("revoke-now annotation set without an answer")
		}
	})
	t.Run("revoke-now --yes sets it", func(t *testing.T) {
		if _, _, err := runPlugin(t, c, "", "revoke-now", "a", "-n", "default", "--yes"); err != nil {
			t.Fatal(err)
		}
		if annotations(t, c, "a")[v1alpha1.AnnotationRevokeNow] == "" {
			t.Error("revoke-now annotation not set")
		}
	})
	t.Run("a missing token is an error", func(t *testing.T) {
		if _, _, err := runPlugin(t, c, "", "rotate", "nope", "-n", "default"); err == nil {
			t.Error("rotate of a missing NomadToken succeeded")
		}
	})
}

func TestReadyForGeneration(t *testing.T) {
	ready := readyToken("ns", "a")
	newer := readyToken("ns", "a")
	newer.Generation = 3
	notReady := readyToken("ns", "a")
	notReady.Status.Conditions[0].Status = metav1.ConditionFalse
	for name, tc := range map[string]struct {
		tok  v1alpha1.NomadToken
		want bool
	}{"Ready for its generation": {ready, true}, "Ready for an older generation": {newer, false},
		"not Ready": {notReady, false}, "no status": {v1alpha1.NomadToken{}, false}} {
		if got := readyForGeneration(&tc.tok); got != tc.want {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
}

func TestWait(t *testing.T) {
	ready := readyToken("default", "ready")
	stuck := readyToken("default", "stuck")
	stuck.Status.Conditions[0].Status, stuck.Status.Conditions[0].Reason = metav1.ConditionFalse, v1alpha1.ReasonCredentialsInvalid
	stuck.Status.Conditions[0].Message = "NOMAD refused the bot's password"
	c := fakeClient(&ready, &stuck)
	if out, _, err := runPlugin(t, c, "", "wait", "ready", "-n", "default"); err != nil || !strings.Contains(out, "Ready") {
		t.Errorf("wait for a Ready token: %v %q", err, out)
	}
	_, _, err := runPlugin(t, c, "", "wait", "stuck", "-n", "default", "--timeout", "100ms")
	if !errors.Is(err, errTimedOut) || !strings.Contains(err.Error(), "CredentialsInvalid") || !strings.Contains(err.Error(), "refused the bot's password") {
		t.Errorf("wait for a token that cannot become Ready: %v", err)
	}

	t.Run("the watch sees the token turn Ready", func(t *testing.T) {
		done := make(chan error, 1)
		go func() {
			_, err := waitUntil(context.Background(), c, client.ObjectKeyFromObject(&stuck), time.Minute, readyForGeneration, "Ready")
			done <- err
		}()
		// Keep turning it Ready until the waiter returns: the fake's watch does not replay changes
		// made before it started.
		for {
			var tok v1alpha1.NomadToken
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(&stuck), &tok); err != nil {
				t.Fatal(err)
			}
			tok.Status.Conditions[0].Status = metav1.ConditionTrue
			tok.Status.Conditions[0].Message = time.Now().String()
			if err := c.Status().Update(context.Background(), &tok); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}
