package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// defaultOperatorNamespace is where config/default deploys the manager, and so where a
// ClusterNomadConnection's credentials Secret lives unless its spec says otherwise.
const defaultOperatorNamespace = "nomad-operator-system"

type loginOptions struct {
	cluster         bool
	secretNamespace string
	idpHint         string
	listenPort      int
	noBrowser       bool
	timeout         time.Duration
	wait            bool
	waitTimeout     time.Duration
}

func newLoginCommand(e *env) *cobra.Command {
	o := loginOptions{}
	cmd := &cobra.Command{
		Use:   "login NAME",
		Short: "Sign in once in a browser and store an offline refresh token in the connection's credentials Secret",
		Long: `login signs you in to NOMAD's Keycloak realm in a browser and writes the offline refresh token it
gets into the credentials Secret of the NomadConnection NAME (with --cluster, of the
ClusterNomadConnection NAME), for the operator's RefreshToken method. It is the way in for accounts
without a password (ORCID, GitHub or Google through central NOMAD's helmholtz-aai broker).

The connection must have spec.credentials.method: RefreshToken and spec.credentials.oidc.issuerURL
(clientID defaults to nomad_public). login finds the realm's endpoints at
{issuerURL}/.well-known/openid-configuration, listens on 127.0.0.1 for the browser's redirect
(http://127.0.0.1:<port>/callback; the client must allow it, as nomad_public does), and runs the
authorization-code flow with PKCE and scope "openid offline_access". When the connection names
secretRef.clientSecretKey and the Secret holds it, the client secret is sent (a confidential client).

The refresh token goes into spec.credentials.secretRef.name, key secretRef.refreshTokenKey (default
refresh_token). A missing Secret is created with the label tokens.nomad-operator.dev/credentials=true;
an existing one has that one key updated, and only if it already carries the label: the label is the
Secret owner's opt-in, so login never adds it (it prints the kubectl label command instead). A
NomadConnection's Secret is in its namespace; a ClusterNomadConnection's is in the operator's
namespace: spec.credentials.secretRef.namespace, else --secret-namespace.

No token is ever printed. With --wait (the default) login then waits until the connection is Ready
and prints the account it signed in as. A connection that was Ready already is waited for until the
operator reports a sign-in since the write (status.credentials.lastSignInTime); if none comes within
--wait-timeout while it stays Ready, login says so and succeeds.

login's --cluster means "NAME is a ClusterNomadConnection"; it hides kubectl's --cluster (the
kubeconfig cluster) for this command: pick a kubeconfig cluster with --context instead.`,
		Example: `  kubectl nomadtoken login -n team-a oasis
  kubectl nomadtoken login -n team-a oasis --idp-hint helmholtz-aai
  kubectl nomadtoken login --cluster shared-oasis --secret-namespace nomad-operator-system
  ssh -L 8250:127.0.0.1:8250 host kubectl nomadtoken login oasis --no-browser --listen-port 8250`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.login(cmd.Context(), args[0], o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.cluster, "cluster", false, "NAME is a ClusterNomadConnection (its Secret is in the operator's namespace; see --secret-namespace). Hides kubectl's --cluster for this command.")
	f.StringVar(&o.secretNamespace, "secret-namespace", defaultOperatorNamespace, "With --cluster: the namespace of the credentials Secret when spec.credentials.secretRef.namespace is not set (the manager's --cluster-resource-namespace).")
	f.StringVar(&o.idpHint, "idp-hint", "", "Keycloak identity provider to go to directly (kc_idp_hint), e.g. helmholtz-aai for ORCID, GitHub or Google on central NOMAD.")
	f.IntVar(&o.listenPort, "listen-port", 0, "Loopback port for the browser's redirect (http://127.0.0.1:PORT/callback); 0 picks a free one.")
	f.BoolVar(&o.noBrowser, "no-browser", false, "Do not open a browser; only print the URL to open.")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "How long to wait for the sign-in in the browser.")
	f.BoolVar(&o.wait, "wait", true, "After storing the refresh token, wait until the connection is Ready and print the account.")
	f.DurationVar(&o.waitTimeout, "wait-timeout", 2*time.Minute, "How long --wait waits for the connection.")
	return cmd
}

// connRef is the connection login works on.
type connRef struct {
	cluster bool
	key     client.ObjectKey
}

func (r connRef) String() string {
	if r.cluster {
		return v1alpha1.KindClusterNomadConnection + " " + r.key.Name
	}
	return v1alpha1.KindNomadConnection + " " + r.key.Namespace + "/" + r.key.Name
}

func (r connRef) newObject() v1alpha1.Connection {
	if r.cluster {
		return &v1alpha1.ClusterNomadConnection{}
	}
	return &v1alpha1.NomadConnection{}
}

func (r connRef) newList() client.ObjectList {
	if r.cluster {
		return &v1alpha1.ClusterNomadConnectionList{}
	}
	return &v1alpha1.NomadConnectionList{}
}

func (e *env) login(ctx context.Context, name string, o loginOptions) error {
	c, err := e.newClient()
	if err != nil {
		return err
	}
	ref := connRef{cluster: o.cluster, key: client.ObjectKey{Name: name}}
	if !o.cluster {
		if ref.key.Namespace, err = e.namespace(); err != nil {
			return err
		}
	}
	conn := ref.newObject()
	if err := c.Get(ctx, ref.key, conn); err != nil {
		return fmt.Errorf("reading %s: %w", ref, err)
	}
	spec := conn.ConnectionSpec().Credentials
	if err := checkRefreshTokenMethod(ref, spec); err != nil {
		return err
	}
	sec, err := secretOf(ref, spec, o.secretNamespace)
	if err != nil {
		return err
	}
	// Refuse before the browser, not after it.
	existing, err := sec.checkWritable(ctx, c)
	if err != nil {
		return err
	}
	clientID := spec.ClientID()
	var clientSecret string
	if k := spec.ClientSecretKey(); k != "" {
		if existing != nil && len(existing.Data[k]) > 0 {
			clientSecret = string(existing.Data[k])
		} else {
			fmt.Fprintf(e.streams.ErrOut, "Warning: secretRef.clientSecretKey is %q but Secret %s/%s holds no such key: signing in as a public client.\n",
				k, sec.key.Namespace, sec.key.Name)
		}
	}
	readyBefore := connReady(conn)

	hc, err := realmHTTPClient(ctx, c, conn, sec.key.Namespace, e.streams.ErrOut)
	if err != nil {
		return err
	}
	b := &browserLogin{
		issuer: spec.OIDC.IssuerURL, clientID: clientID, clientSecret: clientSecret, idpHint: o.idpHint,
		listenPort: o.listenPort, timeout: o.timeout, errOut: e.streams.ErrOut, httpClient: hc,
	}
	if !o.noBrowser {
		b.openBrowser = e.openBrowser
	}
	tokens, err := b.run(ctx)
	if err != nil {
		return err
	}
	refreshClaims, _ := nomad.UnverifiedClaims(tokens.refreshToken)
	switch typ := refreshClaims.Typ; typ {
	case "Offline":
	case "":
		fmt.Fprintln(e.streams.ErrOut, "Warning: cannot tell whether the refresh token is an offline token (it is not a Keycloak JWT).")
	default:
		fmt.Fprintf(e.streams.ErrOut, "Warning: the realm returned a refresh token of type %q, not an offline token: it stops working "+
			"when the realm's SSO session idles out (30 minutes by default). Ask the realm's admins to allow the offline_access scope for client %s.\n",
			typ, clientID)
	}
	writtenAt := time.Now()
	if err := sec.write(ctx, c, tokens.refreshToken); err != nil {
		return err
	}
	fmt.Fprintf(e.streams.ErrOut, "Stored the refresh token in %s.\n", sec)
	request, err := requestSignIn(ctx, c, conn)
	if err != nil {
		fmt.Fprintf(e.streams.ErrOut, "Warning: could not ask %s to sign in now (%v); it uses the new refresh token at its next sign-in.\n", ref, err)
	}
	idClaims, _ := nomad.UnverifiedClaims(tokens.idToken)
	account := idClaims.PreferredUsername
	if !o.wait {
		fmt.Fprintf(e.streams.Out, "Signed in as %s; the refresh token is in %s.\n", orSomeone(account), sec)
		return nil
	}
	fmt.Fprintf(e.streams.ErrOut, "Waiting for %s to be Ready (for at most %s)...\n", ref, o.waitTimeout)
	got, fresh, err := waitConnection(ctx, c, ref, o.waitTimeout, readyBefore, writtenAt, request)
	if err != nil {
		return err
	}
	if account == "" {
		if st := got.ConnectionStatus().Credentials; st != nil {
			account = st.Account
		}
	}
	if fresh {
		fmt.Fprintf(e.streams.Out, "Signed in as %s; %s is Ready.\n", orSomeone(account), ref)
	} else {
		fmt.Fprintf(e.streams.Out, "Signed in as %s; %s is Ready, but has not signed in with the new refresh token yet (it will when its current access token ends).\n",
			orSomeone(account), ref)
	}
	return nil
}

func orSomeone(account string) string {
	if account == "" {
		return "an account the realm did not name"
	}
	return account
}

// checkRefreshTokenMethod: login only serves connections that sign in with a refresh token.
func checkRefreshTokenMethod(ref connRef, cred v1alpha1.Credentials) error {
	if m := cred.MethodOrDefault(); m != v1alpha1.CredentialMethodRefreshToken {
		return fmt.Errorf("%s signs in with method %s; login stores a refresh token, for method RefreshToken: "+
			"set spec.credentials.method: RefreshToken and spec.credentials.oidc.issuerURL (the realm's issuer, e.g. "+
			"https://nomad-lab.eu/fairdi/keycloak/auth/realms/fairdi_nomad_prod) and run login again", ref, m)
	}
	if cred.OIDC == nil || cred.OIDC.IssuerURL == "" {
		return fmt.Errorf("%s has no spec.credentials.oidc.issuerURL: set it to the realm's issuer (e.g. "+
			"https://nomad-lab.eu/fairdi/keycloak/auth/realms/fairdi_nomad_prod, or {oasis}/keycloak/auth/realms/nomad)", ref)
	}
	return nil
}

// secretOf is where the connection's refresh token goes.
func secretOf(ref connRef, cred v1alpha1.Credentials, clusterSecretNamespace string) (credentialsSecret, error) {
	s := credentialsSecret{key: client.ObjectKey{Name: cred.SecretRef.Name}, dataKey: cred.RefreshTokenKey()}
	ns := cred.SecretRef.Namespace
	switch {
	case ref.cluster && ns == "":
		ns = clusterSecretNamespace
	case !ref.cluster && ns == "":
		ns = ref.key.Namespace
	case !ref.cluster && ns != ref.key.Namespace:
		return s, fmt.Errorf("%s names a credentials Secret in namespace %s, but a NomadConnection reads only its own namespace: "+
			"drop spec.credentials.secretRef.namespace or set it to %s", ref, ns, ref.key.Namespace)
	}
	s.key.Namespace = ns
	return s, nil
}
