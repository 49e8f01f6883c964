// Command kubectl-nomadtoken is a kubectl plugin for NomadTokens: `kubectl nomadtoken status`,
// `rotate`, `revoke-now` and `wait`, and `login` for connections. It takes kubectl's connection
// flags (--kubeconfig, --context, -n, ...). status, rotate, revoke-now and wait talk to the API
// server only: everything they show is in the NomadTokens' status, and everything they ask for is an
// annotation the operator acts on.
//
// `kubectl nomadtoken login NAME` (or `login --cluster NAME`) is for connections with
// spec.credentials.method RefreshToken: a person signs in once in a browser (the authorization-code
// flow with PKCE through a loopback redirect to 127.0.0.1, scope offline_access) and the offline
// refresh token goes into the connection's credentials Secret, created with the
// tokens.nomad-operator.dev/credentials label if missing. It talks to NOMAD's Keycloak realm as well
// as to the API server, and never prints a token.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func main() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	if err := newRootCommand(streams, nil).Execute(); err != nil {
		fmt.Fprintln(streams.ErrOut, "error:", err)
		os.Exit(1)
	}
}

// env is what every subcommand needs: where to talk to, and in which namespace.
type env struct {
	config  *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams
	// newClient builds the client; tests replace it with a fake.
	newClient func() (client.WithWatch, error)
	// openBrowser opens a URL for login (unless --no-browser).
	openBrowser func(string) error
}

// newRootCommand is the plugin's command line; c, if not nil, replaces the API server (tests).
func newRootCommand(streams genericiooptions.IOStreams, c client.WithWatch) *cobra.Command {
	e := &env{config: genericclioptions.NewConfigFlags(true), streams: streams, openBrowser: openBrowser}
	e.newClient = e.apiClient
	if c != nil {
		e.newClient = func() (client.WithWatch, error) { return c, nil }
	}
	root := &cobra.Command{
		Use:           "kubectl-nomadtoken",
		Short:         "Show, rotate, revoke and wait for NomadTokens (NOMAD Personal Access Tokens kept in Secrets), and sign connections in",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	e.config.AddFlags(root.PersistentFlags())
	root.AddCommand(newStatusCommand(e), newRotateCommand(e), newRevokeNowCommand(e), newWaitCommand(e), newLoginCommand(e))
	return root
}

func (e *env) apiClient() (client.WithWatch, error) {
	cfg, err := e.config.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	return client.NewWithWatch(cfg, client.Options{Scheme: scheme()})
}

// clientIn is a client and the namespace the command works in, for the commands on one NomadToken.
func (e *env) clientIn() (client.WithWatch, string, error) {
	ns, err := e.namespace()
	if err != nil {
		return nil, "", err
	}
	c, err := e.newClient()
	return c, ns, err
}

// namespace is -n, or the kubeconfig context's namespace, or "default".
func (e *env) namespace() (string, error) {
	ns, _, err := e.config.ToRawKubeConfigLoader().Namespace()
	return ns, err
}
