package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// defaultWaitTimeout is --timeout's default.
const defaultWaitTimeout = 5 * time.Minute

type waitFlags struct {
	wait    bool
	timeout time.Duration
}

// bind adds --timeout, and --wait unless the command always waits.
func (w *waitFlags) bind(cmd *cobra.Command, always bool) {
	if always {
		w.wait = true
	} else {
		cmd.Flags().BoolVar(&w.wait, "wait", false, "Wait until the operator has handled the request and the token is Ready again.")
	}
	cmd.Flags().DurationVar(&w.timeout, "timeout", defaultWaitTimeout, "How long to wait; on time-out the command fails with the Ready condition's message.")
}

func newWaitCommand(e *env) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:     "wait NAME",
		Short:   "Wait until the NomadToken is Ready for its current spec, or fail after --timeout",
		Example: `  kubectl nomadtoken wait my-token --timeout 2m`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := e.clientIn()
			if err != nil {
				return err
			}
			if _, err := waitUntil(cmd.Context(), c, client.ObjectKey{Namespace: ns, Name: args[0]}, w.timeout, readyForGeneration, "Ready"); err != nil {
				return err
			}
			fmt.Fprintf(e.streams.Out, "nomadtoken/%s Ready\n", args[0])
			return nil
		},
	}
	w.bind(cmd, true)
	return cmd
}

// readyForGeneration: Ready=True, and the operator has reconciled the current spec (a Ready
// condition left from before a spec change does not count).
func readyForGeneration(t *v1alpha1.NomadToken) bool {
	return t.Status.ObservedGeneration >= t.Generation && meta.IsStatusConditionTrue(t.Status.Conditions, v1alpha1.ConditionReady)
}

// waitUntil watches the NomadToken until done holds, for at most timeout. It reads the token, then
// watches it from that resourceVersion; a watch the server ends is started again from a fresh read.
// On time-out the error carries the Ready condition, which says what the operator is waiting for.
func waitUntil(ctx context.Context, c client.WithWatch, key client.ObjectKey, timeout time.Duration,
	done func(*v1alpha1.NomadToken) bool, what string) (*v1alpha1.NomadToken, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last *v1alpha1.NomadToken
	for {
		tok := &v1alpha1.NomadToken{}
		if err := c.Get(ctx, key, tok); err != nil {
			if ctx.Err() != nil {
				return last, timedOut(key, timeout, what, last)
			}
			return nil, err
		}
		last = tok
		if done(tok) {
			return tok, nil
		}
		w, err := c.Watch(ctx, &v1alpha1.NomadTokenList{}, client.InNamespace(key.Namespace),
			client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", key.Name)},
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: tok.ResourceVersion, AllowWatchBookmarks: true}})
		if err != nil {
			if ctx.Err() != nil {
				return last, timedOut(key, timeout, what, last)
			}
			return nil, err
		}
		got, finished, err := follow(ctx, w, key, done, &last)
		w.Stop()
		switch {
		case finished:
			return got, nil
		case err != nil:
			return last, err
		case ctx.Err() != nil:
			return last, timedOut(key, timeout, what, last)
		}
		// The server ended the watch (it does after a while): read and watch again.
	}
}

// follow reads w's events for key until done holds (finished), the token is deleted (err), or the
// watch ends; last is updated with each version seen.
func follow(ctx context.Context, w watch.Interface, key client.ObjectKey, done func(*v1alpha1.NomadToken) bool,
	last **v1alpha1.NomadToken) (*v1alpha1.NomadToken, bool, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, false, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, false, nil
			}
			tok, isToken := ev.Object.(*v1alpha1.NomadToken)
			if !isToken || tok.Name != key.Name || tok.Namespace != key.Namespace {
				if ev.Type == watch.Error {
					return nil, false, nil // e.g. the resourceVersion is too old: read again
				}
				continue
			}
			switch ev.Type {
			case watch.Deleted:
				return nil, false, fmt.Errorf("nomadtoken %s was deleted", key)
			case watch.Added, watch.Modified:
				*last = tok
				if done(tok) {
					return tok, true, nil
				}
			}
		}
	}
}

// errTimedOut marks a time-out; the message says what the token is doing.
var errTimedOut = errors.New("timed out")

func timedOut(key client.ObjectKey, timeout time.Duration, what string, last *v1alpha1.NomadToken) error {
	state := "no status yet"
	if last != nil {
		if c := meta.FindStatusCondition(last.Status.Conditions, v1alpha1.ConditionReady); c != nil {
			state = fmt.Sprintf("Ready=%s (%s): %s", c.Status, c.Reason, c.Message)
			if c.Status == metav1.ConditionTrue && last.Status.ObservedGeneration < last.Generation {
				// Ready, but for an older spec: the operator has not reconciled the latest one yet.
				state += fmt.Sprintf(" [generation %d not reconciled yet, last %d]", last.Generation, last.Status.ObservedGeneration)
			}
		}
	}
	return fmt.Errorf("%w after %s waiting for nomadtoken %s to be %s; %s", errTimedOut, timeout, key, what, state)
}
