package connection

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

// The allowlist binds the addresses of namespaced connections, and only those that are called.
func TestResolverChecksTheAddressesOfNamespacedConnections(t *testing.T) {
	creds := func(ns string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bot", Labels: map[string]string{v1alpha1.LabelCredentials: "true"}},
			Data: map[string][]byte{"username": []byte("u"), "password": []byte("p"), "refresh_token": []byte("rt")}}
	}
	const evil = "https://evil.example.com/api"
	refreshToken := func(issuer string) v1alpha1.Credentials {
		return v1alpha1.Credentials{Method: v1alpha1.CredentialMethodRefreshToken, SecretRef: v1alpha1.CredentialsSecretRef{Name: "bot"},
			OIDC: &v1alpha1.OIDCProvider{IssuerURL: issuer}}
	}
	for _, tc := range []struct {
		name    string
		conn    v1alpha1.Connection
		refused bool
	}{
		{name: "a namespaced connection to an allowed URL", conn: conn()},
		{name: "a namespaced connection to another URL", refused: true, conn: func() v1alpha1.Connection {
			c := conn()
			c.Spec.URL = evil
			return c
		}()},
		{name: "a namespaced connection signing in at another issuer", refused: true, conn: func() v1alpha1.Connection {
			c := conn()
			c.Spec.Credentials = refreshToken("https://evil.example.com/realms/x")
			return c
		}()},
		{name: "a namespaced connection signing in at an allowed issuer", conn: func() v1alpha1.Connection {
			c := conn()
			c.Spec.Credentials = refreshToken("https://nomad-lab.eu/fairdi/keycloak/auth/realms/fairdi_nomad_prod")
			return c
		}()},
		// With a password, NOMAD itself signs in: the issuer is never called.
		{name: "a password connection with an issuer it does not use", conn: func() v1alpha1.Connection {
			c := conn()
			c.Spec.Credentials.OIDC = &v1alpha1.OIDCProvider{IssuerURL: "https://evil.example.com/realms/x"}
			return c
		}()},
		{name: "a ClusterNomadConnection is an administrator's, to any URL", conn: &v1alpha1.ClusterNomadConnection{
			ObjectMeta: metav1.ObjectMeta{Name: "shared", UID: "cluster-1"},
			Spec: v1alpha1.ClusterNomadConnectionSpec{NomadConnectionSpec: v1alpha1.NomadConnectionSpec{URL: evil,
				Credentials: refreshToken("https://evil.example.com/realms/x")}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := realPoolResolver([]client.Object{creds("team-a"), creds("operator")}...)
			r.ClusterResourceNamespace = "operator"
			var err error
			if r.AllowedURLs, err = ParseURLAllowlist("https://nomad.example.org/nomad-oasis,nomad-lab.eu"); err != nil {
				t.Fatal(err)
			}
			_, err = r.Client(context.Background(), tc.conn)
			var ce *ConfigError
			refused := errors.As(err, &ce) && ce.Reason == v1alpha1.ReasonURLNotAllowed
			if refused != tc.refused || !refused && err != nil {
				t.Fatalf("Client: %v; want refused %v", err, tc.refused)
			}
			if refused && (!ce.SpecOnly || r.Pool.Has(string(tc.conn.GetUID()))) {
				t.Errorf("SpecOnly %v, client pooled %v; want a spec error and no client", ce.SpecOnly, r.Pool.Has(string(tc.conn.GetUID())))
			}
		})
	}
}
