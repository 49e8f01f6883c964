package connection

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// testCAPEM returns a freshly generated self-signed CA certificate in PEM.
func testCAPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// realPoolResolver builds clients with nomad.New (no network call), so that its validation runs.
func realPoolResolver(objs ...client.Object) *Resolver {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	return &Resolver{Reader: fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build(), Pool: &Pool{}}
}

func TestResolverReportsBadConfigAsConfigError(t *testing.T) {
	creds := func() *corev1.Secret { return secret("bot", map[string]string{"username": "u", "password": "p"}) }
	tests := []struct {
		name     string
		objs     []client.Object
		mutate   func(*v1alpha1.NomadConnection)
		reason   string
		specOnly bool
	}{
		{name: "spec.caBundle without a certificate", objs: []client.Object{creds()},
			mutate: func(c *v1alpha1.NomadConnection) { c.Spec.CABundle = "not a certificate" },
			reason: v1alpha1.ReasonInvalidCABundle, specOnly: true},
		{name: "a CA Secret without a certificate", objs: []client.Object{creds(), secret("ca", map[string]string{"ca.crt": "not a certificate"})},
			mutate: func(c *v1alpha1.NomadConnection) { c.Spec.CASecretRef = &v1alpha1.CASecretRef{Name: "ca"} },
			reason: v1alpha1.ReasonInvalidCABundle},
		{name: "a URL nomad.New refuses", objs: []client.Object{creds()},
			mutate: func(c *v1alpha1.NomadConnection) { c.Spec.URL = "ftp://nomad.example.org/api" },
			reason: v1alpha1.ReasonInvalidSpec, specOnly: true},
		{name: "a PAT path nomad.New refuses", objs: []client.Object{creds()},
			mutate: func(c *v1alpha1.NomadConnection) { c.Spec.PATPath = "elsewhere" },
			reason: v1alpha1.ReasonInvalidSpec, specOnly: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := realPoolResolver(tt.objs...)
			c := conn()
			tt.mutate(c)
			_, err := r.Client(context.Background(), c)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Reason != tt.reason || ce.SpecOnly != tt.specOnly {
				t.Fatalf("err = %#v, want a ConfigError with reason %s, SpecOnly %v", err, tt.reason, tt.specOnly)
			}
			if tt.reason == v1alpha1.ReasonInvalidSpec && nomad.CodeOf(err) != nomad.CodeInvalidConfig {
				t.Errorf("CodeOf = %s: the nomad.Error behind it must stay reachable", nomad.CodeOf(err))
			}
			if r.Pool.Has(string(c.UID)) {
				t.Error("no client may be pooled for a refused config")
			}
		})
	}

	t.Run("a good CA bundle is accepted", func(t *testing.T) {
		r := realPoolResolver(creds())
		c := conn()
		c.Spec.CABundle = testCAPEM(t)
		if _, err := r.Client(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	})
}

// Only the user's mistakes are ConfigErrors: the API server failing to hand out a Secret is returned
// as it is, for the caller to retry.
func TestResolverPassesAPIServerFailuresThrough(t *testing.T) {
	for _, fail := range []error{
		apierrors.NewInternalError(errors.New("etcd is sad")),
		apierrors.NewServiceUnavailable("try later"),
		apierrors.NewTooManyRequests("slow down", 1),
		apierrors.NewForbidden(corev1.Resource("secrets"), "bot", errors.New("RBAC")),
	} {
		t.Run(fail.Error(), func(t *testing.T) {
			scheme := runtime.NewScheme()
			_ = clientgoscheme.AddToScheme(scheme)
			reader := fake.NewClientBuilder().WithScheme(scheme).
				WithObjects(secret("bot", map[string]string{"username": "u", "password": "p"})).
				WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
					return fail
				}}).Build()
			var built []nomad.Config
			r := &Resolver{Reader: reader, Pool: countingPool(&built)}
			_, err := r.Client(context.Background(), conn())
			var ce *ConfigError
			if errors.As(err, &ce) || !errors.Is(err, fail) {
				t.Fatalf("err = %v, want %v itself, not a ConfigError", err, fail)
			}
		})
	}
}

func TestPoolForgetsAConnectionByName(t *testing.T) {
	var built []nomad.Config
	p := countingPool(&built)
	oasis := types.NamespacedName{Namespace: "team-a", Name: "oasis"}
	other := types.NamespacedName{Namespace: "team-a", Name: "other"}
	get := func(name types.NamespacedName, uid string) nomad.Client {
		t.Helper()
		c, err := p.Get(name, uid, nomad.Config{URL: "https://h/api", Username: "u", Password: "p"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	get(oasis, "uid-1")
	get(other, "uid-2")
	if !p.Has("uid-1") || !p.Has("uid-2") || p.Has("uid-3") {
		t.Fatal("Has must report exactly the pooled clients")
	}

	p.ForgetConnection(oasis)
	if p.Has("uid-1") {
		t.Error("ForgetConnection must drop the connection's client")
	}
	if !p.Has("uid-2") {
		t.Error("ForgetConnection must keep other connections' clients")
	}

	// A deleted connection whose name is reused at once may never be reconciled as NotFound: the new
	// connection's first client replaces the old one's.
	first := get(oasis, "uid-1")
	if again := get(oasis, "uid-1"); again != first {
		t.Fatal("an unchanged connection must keep its client")
	}
	get(oasis, "uid-3")
	if p.Has("uid-1") || !p.Has("uid-3") || !p.Has("uid-2") {
		t.Errorf("a new UID under the same name must replace the old client and only it: uid-1 %v, uid-3 %v, uid-2 %v",
			p.Has("uid-1"), p.Has("uid-3"), p.Has("uid-2"))
	}
}
