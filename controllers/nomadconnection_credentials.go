package controllers

import (
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/connection"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// reportTransport sets InsecureTransport: True while NOMAD's URL or the realm's issuer is plain http
// (the CRD allows http for the issuer on loopback addresses only).
func reportTransport(conn v1alpha1.Connection) {
	spec := conn.ConnectionSpec()
	var plain []string
	if isPlainHTTP(spec.URL) {
		plain = append(plain, "the URL")
	}
	if o := spec.Credentials.OIDC; o != nil && spec.Credentials.MethodOrDefault() != v1alpha1.CredentialMethodPassword && isPlainHTTP(o.IssuerURL) {
		plain = append(plain, "the OIDC issuerURL")
	}
	st := conn.ConnectionStatus()
	if len(plain) > 0 {
		setCondition(&st.Conditions, conn.GetGeneration(), v1alpha1.ConditionInsecureTransport, metav1.ConditionTrue, v1alpha1.ReasonPlainHTTP,
			strings.Join(plain, " and ")+" is plain http: credentials, access tokens and raw PATs cross the network unencrypted; use https outside a local Oasis")
		return
	}
	setCondition(&st.Conditions, conn.GetGeneration(), v1alpha1.ConditionInsecureTransport, metav1.ConditionFalse, v1alpha1.ReasonTLS, "the URL uses https")
}

func isPlainHTTP(u string) bool { return strings.HasPrefix(strings.ToLower(u), "http://") }

// recordSignIn writes what nc's last sign-in showed into status.credentials (hourly at most, see
// connection.CredentialsStatus). A sign-in made since the check started (at checkStart) answers the
// sign-in annotation: kubectl nomadtoken login waits for that echo.
func recordSignIn(conn v1alpha1.Connection, nc nomad.Client, checkStart time.Time) {
	s, ok := nc.SignInState()
	if !ok {
		return
	}
	var request string
	if !s.At.Before(checkStart) {
		request = conn.GetAnnotations()[v1alpha1.AnnotationSignIn]
	}
	st := conn.ConnectionStatus()
	st.Credentials = connection.CredentialsStatus(st.Credentials, conn.ConnectionSpec().Credentials.MethodOrDefault(), s, request)
}

// credentialsRefused is the Ready message of a connection whose credentials NOMAD or its realm
// refused (nomad.CodeCredentialsInvalid): Keycloak's words, and the one thing to do for the method.
func credentialsRefused(conn v1alpha1.Connection, secretNamespace string, detail string) string {
	c := conn.ConnectionSpec().Credentials
	ref := c.SecretRef
	secret := secretNamespace + "/" + ref.Name
	switch c.MethodOrDefault() {
	case v1alpha1.CredentialMethodRefreshToken:
		return fmt.Sprintf("the realm refused the refresh token (%s): it is spent, revoked, or its offline session ended. "+
			"Sign in again with `%s`, which writes a new one into key %q of Secret %s; it is tried at once",
			detail, loginCommand(conn, secretNamespace), c.RefreshTokenKey(), secret)
	case v1alpha1.CredentialMethodClientCredentials:
		return fmt.Sprintf("the realm refused the client credentials (%s): check key %q of Secret %s against client %q's secret, "+
			"and that the client has a service account whose user NOMAD knows",
			detail, c.ClientSecretKey(), secret, c.ClientID())
	default:
		return fmt.Sprintf("NOMAD refused the password sign-in (%s): fix the username or password in Secret %s. "+
			"An account that signs in through ORCID, GitHub or Google (helmholtz-aai) has no password: "+
			"set spec.credentials.method: RefreshToken and run `%s`", detail, secret, loginCommand(conn, secretNamespace))
	}
}

// loginCommand is the kubectl plugin command that signs this connection in afresh. A
// ClusterNomadConnection's Secret lives in the operator's namespace, which the plugin cannot know.
func loginCommand(conn v1alpha1.Connection, secretNamespace string) string {
	if conn.GetNamespace() == "" {
		return fmt.Sprintf("kubectl nomadtoken login --cluster %s --secret-namespace %s", conn.GetName(), secretNamespace)
	}
	return fmt.Sprintf("kubectl nomadtoken login -n %s %s", conn.GetNamespace(), conn.GetName())
}

// nomadDetail is the detail of a *nomad.Error (NOMAD's or Keycloak's own words, scrubbed), or the
// error's text.
func nomadDetail(err error) string {
	var ne *nomad.Error
	if errors.As(err, &ne) {
		return ne.Detail
	}
	return err.Error()
}
