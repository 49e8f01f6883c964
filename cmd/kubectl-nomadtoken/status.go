package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

func newStatusCommand(e *env) *cobra.Command {
	var allNamespaces bool
	printFlags := genericclioptions.NewPrintFlags("").WithTypeSetter(scheme())
	cmd := &cobra.Command{
		Use:   "status [NAME...]",
		Short: "A table of NomadTokens: Ready, reason, expires-in, renews-in, last-used",
		Example: `  kubectl nomadtoken status
  kubectl nomadtoken status -A
  kubectl nomadtoken status my-token -o yaml`,
		RunE: func(cmd *cobra.Command, names []string) error {
			c, err := e.newClient()
			if err != nil {
				return err
			}
			var opts []client.ListOption
			if !allNamespaces {
				ns, err := e.namespace()
				if err != nil {
					return err
				}
				opts = append(opts, client.InNamespace(ns))
			}
			var list v1alpha1.NomadTokenList
			if err := c.List(cmd.Context(), &list, opts...); err != nil {
				return err
			}
			if len(names) > 0 {
				list.Items = slices.DeleteFunc(list.Items, func(t v1alpha1.NomadToken) bool { return !slices.Contains(names, t.Name) })
				for _, name := range names {
					if !slices.ContainsFunc(list.Items, func(t v1alpha1.NomadToken) bool { return t.Name == name }) {
						return fmt.Errorf("nomadtoken %q not found", name)
					}
				}
			}
			slices.SortFunc(list.Items, func(a, b v1alpha1.NomadToken) int {
				return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
			})
			out := e.streams.Out
			format := ptrOr(printFlags.OutputFormat)
			if format == "" || format == "wide" {
				if len(list.Items) == 0 {
					fmt.Fprintln(e.streams.ErrOut, "No NomadTokens found.")
					return nil
				}
				return printTable(out, list.Items, tableOptions{allNamespaces: allNamespaces, wide: format == "wide"}, time.Now())
			}
			p, err := printFlags.ToPrinter()
			if err != nil {
				return err
			}
			return printObjects(p, out, &list, len(names) == 1)
		},
	}
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "List NomadTokens of every namespace.")
	printFlags.AddFlags(cmd)
	cmd.Flag("output").Usage = "Output format: wide, json, yaml, name, jsonpath=..., go-template=... (default: a table)."
	return cmd
}

// printObjects prints the tokens as a List, or the one token asked for by name as itself (as
// kubectl get does). Objects read with a typed client carry no kind: the printers need it.
func printObjects(p printers.ResourcePrinter, out io.Writer, list *v1alpha1.NomadTokenList, single bool) error {
	for i := range list.Items {
		list.Items[i].SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("NomadToken"))
	}
	if single && len(list.Items) == 1 {
		return p.PrintObj(&list.Items[0], out)
	}
	list.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("NomadTokenList"))
	return p.PrintObj(list, out)
}

type tableOptions struct {
	allNamespaces bool
	wide          bool
}

// tableHeader and tableRow are the columns of `status`; wide adds the PAT, its Secret and the Ready
// condition's message.
func tableHeader(o tableOptions) []string {
	h := []string{"NAME", "READY", "REASON", "EXPIRES-IN", "RENEWS-IN", "LAST-USED"}
	if o.allNamespaces {
		h = append([]string{"NAMESPACE"}, h...)
	}
	if o.wide {
		h = append(h, "TOKEN-ID", "SECRET", "MESSAGE")
	}
	return h
}

func tableRow(t *v1alpha1.NomadToken, o tableOptions, now time.Time) []string {
	ready, reason, message := unknown, unknown, ""
	if c := meta.FindStatusCondition(t.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		ready, reason, message = string(c.Status), c.Reason, c.Message
		if t.Status.ObservedGeneration < t.Generation && c.Status == metav1.ConditionTrue {
			// Ready for an older spec: the operator has not caught up with the latest change.
			reason += " (stale)"
		}
	}
	row := []string{t.Name, ready, reason,
		until(timeOf(t.Status.ExpiresAt), now, "expired"),
		until(timeOf(t.Status.RenewalTime), now, "overdue"),
		ago(timeOf(t.Status.LastUsedAt), now)}
	if o.allNamespaces {
		row = append([]string{t.Namespace}, row...)
	}
	if o.wide {
		row = append(row, orUnknown(t.Status.TokenID), orUnknown(t.Status.SecretName), oneLine(message))
	}
	return row
}

func printTable(out io.Writer, tokens []v1alpha1.NomadToken, o tableOptions, now time.Time) error {
	w := printers.GetNewTabWriter(out)
	fmt.Fprintln(w, strings.Join(tableHeader(o), "\t"))
	for i := range tokens {
		fmt.Fprintln(w, strings.Join(tableRow(&tokens[i], o, now), "\t"))
	}
	return w.Flush()
}

func timeOf(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	return &t.Time
}

func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}

// oneLine keeps a multi-line message from breaking the table.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func ptrOr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	// Secrets, for login.
	if err := corev1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}
