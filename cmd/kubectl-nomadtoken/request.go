package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// request is one of the annotations the operator acts on once per value: rotate or revoke-now.
type request struct {
	annotation string
	// handled is the status field where the operator records the value it acted on.
	handled func(*v1alpha1.NomadToken) string
}

var (
	rotateRequest = request{v1alpha1.AnnotationRotate,
		func(t *v1alpha1.NomadToken) string { return t.Status.RotateRequestHandled }}
	revokeNowRequest = request{v1alpha1.AnnotationRevokeNow,
		func(t *v1alpha1.NomadToken) string { return t.Status.RevokeNowRequestHandled }}
)

func newRotateCommand(e *env) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Replace the NomadToken's PAT now, with its usual strategy (annotation " + v1alpha1.AnnotationRotate + ")",
		Example: `  kubectl nomadtoken rotate my-token
  kubectl nomadtoken rotate my-token --wait --timeout 2m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.ask(cmd.Context(), rotateRequest, args[0], w, "rotation")
		},
	}
	w.bind(cmd, false)
	return cmd
}

func newRevokeNowCommand(e *env) *cobra.Command {
	var (
		yes bool
		w   waitFlags
	)
	cmd := &cobra.Command{
		Use:   "revoke-now NAME",
		Short: "Incident response: issue a new PAT and revoke the current one at once, without grace (annotation " + v1alpha1.AnnotationRevokeNow + ")",
		Long: `revoke-now asks the operator to issue a new PAT, write it to the Secret, and revoke the current
one at once: consumers still holding the old PAT fail until they read the new one. It asks for
confirmation on stdin unless --yes is given, and refuses when there is no answer.`,
		Example: `  kubectl nomadtoken revoke-now my-token
  kubectl nomadtoken revoke-now my-token --yes --wait`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, err := e.namespace()
			if err != nil {
				return err
			}
			if !yes {
				if err := confirm(e.streams.In, e.streams.Out,
					fmt.Sprintf("Revoke the PAT of NomadToken %s/%s now, without grace? Consumers still holding it will fail. [y/N]: ", ns, args[0])); err != nil {
					return err
				}
			}
			return e.ask(cmd.Context(), revokeNowRequest, args[0], w, "revoke-now")
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "Do not ask for confirmation.")
	w.bind(cmd, false)
	return cmd
}

// errNotConfirmed is returned when the user did not answer yes: nothing was changed.
var errNotConfirmed = errors.New("not confirmed: nothing changed (pass --yes to skip the question)")

// confirm asks question on out and reads one line from in: only y or yes goes ahead. No answer at
// all (stdin closed, no terminal) is a refusal, so a script never revokes by accident.
func confirm(in io.Reader, out io.Writer, question string) error {
	fmt.Fprint(out, question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || line == "") {
		fmt.Fprintln(out)
		return errNotConfirmed
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errNotConfirmed
}

// ask sets r's annotation on the NomadToken to a fresh value, with a merge patch of that annotation
// alone (no read-modify-write, no conflict with the operator's status writes), then, with --wait,
// waits until the operator has handled that value and the token is Ready again.
func (e *env) ask(ctx context.Context, r request, name string, w waitFlags, what string) error {
	c, ns, err := e.clientIn()
	if err != nil {
		return err
	}
	value := freshValue(time.Now())
	tok := &v1alpha1.NomadToken{}
	tok.Namespace, tok.Name = ns, name
	if err := c.Patch(ctx, tok, client.RawPatch(types.MergePatchType, annotationPatch(r.annotation, value))); err != nil {
		return err
	}
	fmt.Fprintf(e.streams.Out, "nomadtoken/%s %s requested (%s=%s)\n", name, what, r.annotation, value)
	if !w.wait {
		return nil
	}
	_, err = waitUntil(ctx, c, client.ObjectKeyFromObject(tok), w.timeout, func(t *v1alpha1.NomadToken) bool {
		return r.handled(t) == value && readyForGeneration(t)
	}, what+" handled and Ready")
	if err != nil {
		return err
	}
	fmt.Fprintf(e.streams.Out, "nomadtoken/%s %s done, Ready\n", name, what)
	return nil
}

// freshValue is a request value never used before: the operator acts once per value, so a second
// rotation needs a new one. Nanoseconds keep two requests in the same second apart.
func freshValue(now time.Time) string { return now.UTC().Format(time.RFC3339Nano) }

func annotationPatch(key, value string) []byte {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	return b
}
