package controllers

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

func TestCredentialsRefusedSaysWhatToDoForTheMethod(t *testing.T) {
	namespaced := func(m v1alpha1.CredentialMethod) v1alpha1.Connection {
		return &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "oasis"},
			Spec: v1alpha1.NomadConnectionSpec{Credentials: v1alpha1.Credentials{Method: m, SecretRef: v1alpha1.CredentialsSecretRef{Name: "bot"}}}}
	}
	cluster := &v1alpha1.ClusterNomadConnection{ObjectMeta: metav1.ObjectMeta{Name: "shared"},
		Spec: v1alpha1.ClusterNomadConnectionSpec{NomadConnectionSpec: v1alpha1.NomadConnectionSpec{Credentials: v1alpha1.Credentials{
			Method: v1alpha1.CredentialMethodRefreshToken, SecretRef: v1alpha1.CredentialsSecretRef{Name: "bot"}}}}}
	tests := []struct {
		name       string
		conn       v1alpha1.Connection
		secretNS   string
		mustSay    []string
		mustNotSay string
	}{
		{"a password", namespaced(""), "team-a",
			[]string{"Secret team-a/bot", "ORCID, GitHub or Google", "method: RefreshToken", "kubectl nomadtoken login -n team-a oasis"}, ""},
		{"a refresh token", namespaced(v1alpha1.CredentialMethodRefreshToken), "team-a",
			[]string{"kubectl nomadtoken login -n team-a oasis", `key "refresh_token" of Secret team-a/bot`}, "password"},
		{"a refresh token of a ClusterNomadConnection names the Secret's namespace", cluster, "nomad-operator-system",
			[]string{"kubectl nomadtoken login --cluster shared --secret-namespace nomad-operator-system"}, "-n "},
		{"client credentials", namespaced(v1alpha1.CredentialMethodClientCredentials), "team-a",
			[]string{`key "client_secret" of Secret team-a/bot`, `client "nomad_public"`, "service account"}, "kubectl nomadtoken login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := credentialsRefused(tt.conn, tt.secretNS, "invalid_grant: Token is not active")
			for _, want := range append(tt.mustSay, "invalid_grant: Token is not active") {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q:\n%s", want, msg)
				}
			}
			if tt.mustNotSay != "" && strings.Contains(msg, tt.mustNotSay) {
				t.Errorf("message says %q:\n%s", tt.mustNotSay, msg)
			}
		})
	}
}
