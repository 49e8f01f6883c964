package connection

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// Values of the Secrets below that no error message may carry.
const (
	optInUser     = "bot-user-name-value"
	optInPassword = "bot-password-value-never-shown"
)

// labelled returns s with its labels replaced by labels (nil: none at all).
func labelled(s *corev1.Secret, labels map[string]string) *corev1.Secret {
	s.Labels = labels
	return s
}

func TestOnlySecretsLabelledTrueAreReadAsCredentials(t *testing.T) {
	caPEM := testCAPEM(t)
	creds := func(labels map[string]string) *corev1.Secret {
		return labelled(secret("bot", map[string]string{"username": optInUser, "password": optInPassword}), labels)
	}
	ca := func(labels map[string]string) *corev1.Secret {
		return labelled(secret("ca", map[string]string{"ca.crt": caPEM}), labels)
	}
	optIn := map[string]string{v1alpha1.LabelCredentials: "true"}
	withCA := func(c *v1alpha1.NomadConnection) { c.Spec.CASecretRef = &v1alpha1.CASecretRef{Name: "ca"} }
	tests := []struct {
		name    string
		secrets []*corev1.Secret
		mutate  func(*v1alpha1.NomadConnection)
		// refused names the Secret refused ("" = the credentials are used); says is what its message
		// must also contain.
		refused string
		says    []string
	}{
		{name: "labelled \"true\": used", secrets: []*corev1.Secret{creds(optIn)}},
		{name: "labelled \"true\" with its own key names: used",
			secrets: []*corev1.Secret{secret("bot", map[string]string{"user": optInUser, "pw": optInPassword})},
			mutate: func(c *v1alpha1.NomadConnection) {
				c.Spec.Credentials.SecretRef.UsernameKey, c.Spec.Credentials.SecretRef.PasswordKey = "user", "pw"
			}},
		{name: "labelled credentials and CA Secret: used", secrets: []*corev1.Secret{creds(optIn), ca(optIn)}, mutate: withCA},
		{name: "no labels at all", secrets: []*corev1.Secret{creds(nil)}, refused: "credentials Secret team-a/bot",
			says: []string{"has no label", "kubectl label secret -n team-a bot tokens.nomad-operator.dev/credentials=true"}},
		{name: "other labels only", secrets: []*corev1.Secret{creds(map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue})},
			refused: "credentials Secret team-a/bot", says: []string{"has no label"}},
		{name: "labelled \"false\"", secrets: []*corev1.Secret{creds(map[string]string{v1alpha1.LabelCredentials: "false"})},
			refused: "credentials Secret team-a/bot",
			says:    []string{`is "false"`, "kubectl label --overwrite secret -n team-a bot tokens.nomad-operator.dev/credentials=true"}},
		{name: "labelled \"True\"", secrets: []*corev1.Secret{creds(map[string]string{v1alpha1.LabelCredentials: "True"})},
			refused: "credentials Secret team-a/bot", says: []string{`is "True"`}},
		{name: "labelled \"yes\"", secrets: []*corev1.Secret{creds(map[string]string{v1alpha1.LabelCredentials: "yes"})},
			refused: "credentials Secret team-a/bot", says: []string{`is "yes"`}},
		{name: "labelled with an empty value", secrets: []*corev1.Secret{creds(map[string]string{v1alpha1.LabelCredentials: ""})},
			refused: "credentials Secret team-a/bot", says: []string{`is ""`}},
		{name: "an unlabelled CA Secret", secrets: []*corev1.Secret{creds(optIn), ca(nil)}, mutate: withCA,
			refused: "CA Secret team-a/ca", says: []string{"kubectl label secret -n team-a ca tokens.nomad-operator.dev/credentials=true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			built, err := resolveOnce(t, tt.secrets, tt.mutate)
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("err = %v, want the opted-in Secrets used", err)
				}
				if len(built) != 1 || built[0].Username != optInUser || built[0].Password != optInPassword {
					t.Fatalf("built %d clients, want one with the Secret's username and password", len(built))
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Reason != v1alpha1.ReasonCredentialsNotLabelled || ce.SpecOnly {
				t.Fatalf("err = %v, want a ConfigError with reason %s, not SpecOnly (a Secret is at fault)", err, v1alpha1.ReasonCredentialsNotLabelled)
			}
			for _, want := range append([]string{tt.refused, v1alpha1.LabelCredentials + "=true"}, tt.says...) {
				if !strings.Contains(ce.Message, want) {
					t.Errorf("message %q does not say %q", ce.Message, want)
				}
			}
			for _, value := range []string{optInUser, optInPassword, "BEGIN CERTIFICATE"} {
				if strings.Contains(err.Error(), value) {
					t.Errorf("message %q carries a value of the Secret", err.Error())
				}
			}
			if len(built) != 0 {
				t.Error("no client may be built from a Secret that did not opt in")
			}
		})
	}
}

// A Secret whose label is withdrawn stops being used at once (the Secret is read live), and the
// pooled client built from it, which holds its password and an access token, is dropped.
func TestWithdrawingTheLabelDropsThePooledClient(t *testing.T) {
	var built []nomad.Config
	r := newResolver(t, &built, secret("bot", map[string]string{"username": "u", "password": "p"}))
	c := conn()
	ctx := context.Background()
	first, err := r.Client(ctx, c)
	if err != nil || !r.Pool.Has(string(c.UID)) {
		t.Fatalf("an opted-in Secret must give a pooled client: %v", err)
	}

	kube := r.Reader.(client.Client)
	live := &corev1.Secret{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "bot"}, live); err != nil {
		t.Fatal(err)
	}
	delete(live.Labels, v1alpha1.LabelCredentials)
	if err := kube.Update(ctx, live); err != nil {
		t.Fatal(err)
	}
	_, err = r.Client(ctx, c)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Reason != v1alpha1.ReasonCredentialsNotLabelled {
		t.Fatalf("err = %v, want CredentialsNotLabelled", err)
	}
	if r.Pool.Has(string(c.UID)) {
		t.Fatal("the client built from a withdrawn Secret must be dropped")
	}

	live.Labels[v1alpha1.LabelCredentials] = "true"
	if err := kube.Update(ctx, live); err != nil {
		t.Fatal(err)
	}
	again, err := r.Client(ctx, c)
	if err != nil || again == first || len(built) != 2 {
		t.Fatalf("labelled again, the Secret must give a new client (no access token carried over); err %v, built %d", err, len(built))
	}
}
