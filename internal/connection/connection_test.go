package connection

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
	nomadfake "github.com/nomad-operator/nomad-token-operator/internal/nomad/fake"
)

func conn() *v1alpha1.NomadConnection {
	return &v1alpha1.NomadConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "oasis", UID: "conn-1"},
		Spec: v1alpha1.NomadConnectionSpec{
			URL:         "https://nomad.example.org/nomad-oasis/api",
			Credentials: v1alpha1.Credentials{SecretRef: v1alpha1.CredentialsSecretRef{Name: "bot"}},
		},
	}
}

// secret is a Secret of team-a holding data, opted in as credentials (LabelCredentials: "true").
func secret(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name,
		Labels: map[string]string{v1alpha1.LabelCredentials: "true"}}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

// countingPool builds fake clients and records every Config it was asked for.
func countingPool(built *[]nomad.Config) *Pool {
	return &Pool{NewClient: func(cfg nomad.Config) (nomad.Client, error) {
		*built = append(*built, cfg)
		return &nomadfake.Client{}, nil
	}}
}

func newResolver(t *testing.T, built *[]nomad.Config, objs ...*corev1.Secret) *Resolver {
	t.Helper()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	b := fake.NewClientBuilder().WithScheme(scheme)
	for _, o := range objs {
		b = b.WithObjects(o)
	}
	return &Resolver{Reader: b.Build(), Pool: countingPool(built)}
}

func TestResolverReportsWhatIsWrongWithTheSecrets(t *testing.T) {
	tests := []struct {
		name    string
		secrets []*corev1.Secret
		mutate  func(*v1alpha1.NomadConnection)
		reason  string
	}{
		{"missing credentials Secret", nil, nil, v1alpha1.ReasonSecretNotFound},
		{"missing password", []*corev1.Secret{secret("bot", map[string]string{"username": "u"})}, nil, v1alpha1.ReasonSecretKeyMissing},
		{"empty username", []*corev1.Secret{secret("bot", map[string]string{"username": "", "password": "p"})}, nil, v1alpha1.ReasonSecretKeyMissing},
		{"overridden key names are honoured", []*corev1.Secret{secret("bot", map[string]string{"username": "u", "password": "p"})},
			func(c *v1alpha1.NomadConnection) { c.Spec.Credentials.SecretRef.PasswordKey = "pw" }, v1alpha1.ReasonSecretKeyMissing},
		{"missing CA Secret", []*corev1.Secret{secret("bot", map[string]string{"username": "u", "password": "p"})},
			func(c *v1alpha1.NomadConnection) { c.Spec.CASecretRef = &v1alpha1.CASecretRef{Name: "ca"} }, v1alpha1.ReasonSecretNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			built, err := resolveOnce(t, tt.secrets, tt.mutate)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Reason != tt.reason {
				t.Fatalf("err = %v, want a ConfigError with reason %s", err, tt.reason)
			}
			if len(built) != 0 {
				t.Error("no client may be built from incomplete settings")
			}
		})
	}
}

func TestPoolSharesOneClientPerConnectionUntilSomethingChanges(t *testing.T) {
	var built []nomad.Config
	creds := secret("bot", map[string]string{"user": "bot", "password": "one"})
	caPEM := testCAPEM(t)
	r := newResolver(t, &built, creds, secret("ca", map[string]string{"ca.crt": caPEM}))
	c := conn()
	c.Spec.Credentials.SecretRef.UsernameKey = "user"
	c.Spec.CASecretRef = &v1alpha1.CASecretRef{Name: "ca"}
	ctx := context.Background()

	first, err := r.Client(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := r.Client(ctx, c)
	if first != again || len(built) != 1 {
		t.Fatalf("an unchanged connection must reuse its client (one access token, one limiter); built %d", len(built))
	}
	cfg := built[0]
	if cfg.Username != "bot" || cfg.Password != "one" || string(cfg.CABundle) != caPEM || cfg.PATPath != nomad.PATPathAuto || cfg.Limiter == nil {
		t.Errorf("config = %v, limiter %v", cfg, cfg.Limiter)
	}
	if cfg.Limiter.Burst() != DefaultBurst {
		t.Errorf("burst = %d, want the default %d", cfg.Limiter.Burst(), DefaultBurst)
	}

	// A new password (the Secret is read live each time) builds a new client.
	live := &corev1.Secret{}
	kube := r.Reader.(client.Client)
	if err := kube.Get(ctx, client.ObjectKeyFromObject(creds), live); err != nil {
		t.Fatal(err)
	}
	live.Data["password"] = []byte("two")
	if err := kube.Update(ctx, live); err != nil {
		t.Fatal(err)
	}
	rotated, _ := r.Client(ctx, c)
	if rotated == first || len(built) != 2 || built[1].Password != "two" {
		t.Fatalf("a changed password must build a new client; built %d", len(built))
	}

	// So does a new rate limit, and it is applied.
	c.Spec.RateLimit = &v1alpha1.RateLimit{QPS: 1, Burst: 3}
	if _, err := r.Client(ctx, c); err != nil || len(built) != 3 || built[2].Limiter.Burst() != 3 {
		t.Fatalf("a changed rate limit must build a new client with it; built %d, err %v", len(built), err)
	}

	// Another connection gets its own client.
	other := conn()
	other.UID = "conn-2"
	other.Spec.Credentials.SecretRef.UsernameKey = "user"
	other.Spec.CASecretRef = c.Spec.CASecretRef
	if _, err := r.Client(ctx, other); err != nil || len(built) != 4 {
		t.Fatalf("a second connection must get its own client; built %d, err %v", len(built), err)
	}
}

// resolveOnce asks a Resolver over secrets for the client of conn() changed by mutate (if set), and
// returns the Configs it built clients from.
func resolveOnce(t *testing.T, secrets []*corev1.Secret, mutate func(*v1alpha1.NomadConnection)) ([]nomad.Config, error) {
	t.Helper()
	var built []nomad.Config
	r := newResolver(t, &built, secrets...)
	c := conn()
	if mutate != nil {
		mutate(c)
	}
	_, err := r.Client(context.Background(), c)
	return built, err
}
