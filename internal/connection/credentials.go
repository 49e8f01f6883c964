package connection

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// credentials fills cfg's sign-in settings from the credentials Secret creds of connection conn, as
// its method says which keys to read. Every key it needs must be present and non-empty.
func (r *Resolver) credentials(cfg *nomad.Config, conn client.Object, creds *corev1.Secret, c v1alpha1.Credentials) error {
	ref := c.SecretRef
	method := c.MethodOrDefault()
	cfg.Method = nomad.CredentialMethod(method)
	if method == v1alpha1.CredentialMethodPassword {
		username, err := secretValue(creds, defaulted(ref.UsernameKey, v1alpha1.DefaultUsernameKey))
		if err != nil {
			return err
		}
		password, err := secretValue(creds, defaulted(ref.PasswordKey, v1alpha1.DefaultPasswordKey))
		if err != nil {
			return err
		}
		cfg.Username, cfg.Password = string(username), string(password)
		return nil
	}
	if c.OIDC == nil {
		// The CRD's CEL rule refuses this; an object stored before the rule existed may still have it.
		return &ConfigError{Reason: v1alpha1.ReasonInvalidSpec, SpecOnly: true,
			Message: fmt.Sprintf("spec.credentials.oidc is required with method %s: set issuerURL to NOMAD's Keycloak realm", method)}
	}
	cfg.OIDC = nomad.OIDCConfig{IssuerURL: c.OIDC.IssuerURL, ClientID: c.ClientID()}
	if secretKey := c.ClientSecretKey(); secretKey != "" {
		secret, err := secretValue(creds, secretKey)
		if err != nil {
			return err
		}
		cfg.OIDC.ClientSecret = string(secret)
	}
	if method == v1alpha1.CredentialMethodRefreshToken {
		key := c.RefreshTokenKey()
		rt, err := secretValue(creds, key)
		if err != nil {
			return err
		}
		cfg.OIDC.RefreshToken = string(rt)
		cfg.OIDC.RefreshTokenRotated = r.writeBack(conn, creds.Namespace, creds.Name, key)
	}
	return nil
}
