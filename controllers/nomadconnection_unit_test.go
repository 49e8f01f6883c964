package controllers

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
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/connection"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
	nomadfake "github.com/nomad-operator/nomad-token-operator/internal/nomad/fake"
)

// These unit tests drive NomadConnectionReconciler.Reconcile against a fake API server.

var connUnitKey = types.NamespacedName{Namespace: "team-a", Name: "oasis"}

// credentialsLabels are the labels of a Secret opted in as NOMAD credentials or a CA bundle.
func credentialsLabels() map[string]string {
	return map[string]string{v1alpha1.LabelCredentials: "true"}
}

const connUnitUID = "conn-unit-uid"

// connUnitWorld is one connection with its credentials Secret, the reconciler and its client pool.
type connUnitWorld struct {
	client client.Client
	pool   *connection.Pool
	r      *NomadConnectionReconciler
}

// newConnUnitWorld builds the world; mutate edits the connection and may add objects, funcs
// intercepts the API calls, and newClient builds NOMAD clients (nil: nomad.New, no network call).
func newConnUnitWorld(t *testing.T, mutate func(*v1alpha1.NomadConnection) []client.Object, funcs interceptor.Funcs,
	newClient connection.NewClientFunc) *connUnitWorld {
	t.Helper()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	conn := &v1alpha1.NomadConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: connUnitKey.Namespace, Name: connUnitKey.Name, UID: connUnitUID, Generation: 1},
		Spec: v1alpha1.NomadConnectionSpec{URL: "https://nomad.example.org/nomad-oasis/api",
			Credentials: v1alpha1.Credentials{SecretRef: v1alpha1.CredentialsSecretRef{Name: "bot"}}},
	}
	objs := []client.Object{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "bot", Labels: credentialsLabels()},
		Data: map[string][]byte{"username": []byte("bot"), "password": []byte("a-long-bot-password")}}}
	if mutate != nil {
		objs = append(objs, mutate(conn)...)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).
		WithStatusSubresource(&v1alpha1.NomadConnection{}).
		WithIndex(&v1alpha1.NomadToken{}, dependsOnIndex, func(o client.Object) []string { return connectionsNeededBy(o.(*v1alpha1.NomadToken)) }).
		WithObjects(append(objs, conn)...).WithInterceptorFuncs(funcs).Build()
	pool := &connection.Pool{NewClient: newClient}
	return &connUnitWorld{client: c, pool: pool, r: &NomadConnectionReconciler{
		Client:    c,
		APIReader: c,
		Resolver:  &connection.Resolver{Reader: c, Pool: pool},
		Clock:     clocktesting.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)),
	}}
}

func (w *connUnitWorld) reconcile() (ctrl.Result, error) {
	return w.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: connUnitKey})
}

func (w *connUnitWorld) ready(t *testing.T) *metav1.Condition {
	t.Helper()
	conn := &v1alpha1.NomadConnection{}
	if err := w.client.Get(context.Background(), connUnitKey, conn); err != nil {
		t.Fatal(err)
	}
	return meta.FindStatusCondition(conn.Status.Conditions, v1alpha1.ConditionReady)
}

// workingNomad builds fake NOMAD clients that pass the connection check.
func workingNomad(t *testing.T) connection.NewClientFunc {
	return func(nomad.Config) (nomad.Client, error) {
		return &nomadfake.Client{TB: t,
			CheckFunc: func(context.Context) (nomad.PATPath, error) { return nomad.PATPathPats, nil },
			ListFunc:  func(context.Context, nomad.ListOptions) ([]nomad.PAT, error) { return nil, nil },
		}, nil
	}
}

// unusedNomad fails the test if the reconciler gets as far as building a NOMAD client.
func unusedNomad(t *testing.T) connection.NewClientFunc {
	return func(nomad.Config) (nomad.Client, error) {
		t.Error("no NOMAD client may be built")
		return nil, errors.New("no NOMAD client may be built")
	}
}

// A failure of the API server while reading the credentials Secret is nobody's mistake: it must be
// retried with backoff, not reported as a bad spec and left alone until someone edits the connection.
func TestNomadConnectionRetriesAPIServerFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail error
	}{
		{"500", apierrors.NewInternalError(errors.New("etcdserver: leader changed"))},
		{"503", apierrors.NewServiceUnavailable("the server is currently unable to handle the request")},
		{"429", apierrors.NewTooManyRequests("too many requests", 1)},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newConnUnitWorld(t, nil, interceptor.Funcs{
				Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
					if _, ok := obj.(*corev1.Secret); ok {
						return tc.fail
					}
					return c.Get(ctx, key, obj, opts...)
				},
			}, unusedNomad(t))
			res, err := w.reconcile()
			if !errors.Is(err, tc.fail) {
				t.Fatalf("Reconcile = %+v, %v; want the API error returned, for controller-runtime to retry with backoff", res, err)
			}
			if cond := w.ready(t); cond != nil {
				t.Fatalf("Ready = %s/%s %q: an API server failure says nothing about the connection", cond.Status, cond.Reason, cond.Message)
			}
		})
	}
}

// What really is the user's mistake is still reported, with the reason that says what to fix.
func TestNomadConnectionReportsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(*v1alpha1.NomadConnection) []client.Object
		reason  string
		requeue time.Duration // 0: only a spec change can help
	}{
		{name: "spec.caBundle without a certificate", reason: v1alpha1.ReasonInvalidCABundle,
			mutate: func(c *v1alpha1.NomadConnection) []client.Object {
				c.Spec.CABundle = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
				return nil
			}},
		{name: "a CA Secret without a certificate", reason: v1alpha1.ReasonInvalidCABundle, requeue: secretRetryInterval,
			mutate: func(c *v1alpha1.NomadConnection) []client.Object {
				c.Spec.CASecretRef = &v1alpha1.CASecretRef{Name: "ca"}
				return []client.Object{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ca", Labels: credentialsLabels()},
					Data: map[string][]byte{"ca.crt": []byte("not a certificate")}}}
			}},
		{name: "a URL nomad.New refuses", reason: v1alpha1.ReasonInvalidSpec,
			mutate: func(c *v1alpha1.NomadConnection) []client.Object {
				c.Spec.URL = "ftp://nomad.example.org/api"
				return nil
			}},
		{name: "a missing credentials Secret", reason: v1alpha1.ReasonSecretNotFound, requeue: secretRetryInterval,
			mutate: func(c *v1alpha1.NomadConnection) []client.Object {
				c.Spec.Credentials.SecretRef.Name = "nobody"
				return nil
			}},
		{name: "a missing password key", reason: v1alpha1.ReasonSecretKeyMissing, requeue: secretRetryInterval,
			mutate: func(c *v1alpha1.NomadConnection) []client.Object {
				c.Spec.Credentials.SecretRef.PasswordKey = "pw"
				return nil
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// nil newClient: nomad.New, whose validation is what a real operator runs.
			w := newConnUnitWorld(t, tc.mutate, interceptor.Funcs{}, nil)
			res, err := w.reconcile()
			if err != nil || res.RequeueAfter != tc.requeue {
				t.Fatalf("Reconcile = %+v, %v; want no error and RequeueAfter %s", res, err, tc.requeue)
			}
			cond := w.ready(t)
			if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != tc.reason {
				t.Fatalf("Ready = %+v, want False/%s", cond, tc.reason)
			}
			if w.pool.Has(connUnitUID) {
				t.Error("no client may be pooled for a refused config")
			}
		})
	}

	t.Run("a good CA bundle is accepted", func(t *testing.T) {
		w := newConnUnitWorld(t, func(c *v1alpha1.NomadConnection) []client.Object {
			c.Spec.CABundle = connUnitCAPEM(t)
			return nil
		}, interceptor.Funcs{}, workingNomad(t))
		if _, err := w.reconcile(); err != nil {
			t.Fatal(err)
		}
		if cond := w.ready(t); cond == nil || cond.Status != metav1.ConditionTrue {
			t.Fatalf("Ready = %+v, want True", cond)
		}
	})
}

// NomadConnection has no finalizer: its deletion reaches Reconcile as NotFound, and that is when the
// pooled client, which holds the bot password and an access token, must go.
func TestNomadConnectionForgetsTheClientOfADeletedConnection(t *testing.T) {
	w := newConnUnitWorld(t, nil, interceptor.Funcs{}, workingNomad(t))
	if _, err := w.reconcile(); err != nil {
		t.Fatal(err)
	}
	if cond := w.ready(t); cond == nil || cond.Status != metav1.ConditionTrue || !w.pool.Has(connUnitUID) {
		t.Fatalf("setup: want a Ready connection with a pooled client; Ready = %+v", cond)
	}

	conn := &v1alpha1.NomadConnection{}
	if err := w.client.Get(context.Background(), connUnitKey, conn); err != nil {
		t.Fatal(err)
	}
	if err := w.client.Delete(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	if res, err := w.reconcile(); err != nil || res != (ctrl.Result{}) {
		t.Fatalf("Reconcile of a deleted connection = %+v, %v; want nothing to do", res, err)
	}
	if w.pool.Has(connUnitUID) {
		t.Fatal("the deleted connection's client (bot password, access token) is still pooled")
	}
	if _, ok := w.r.checked.Load(connUnitKey); ok {
		t.Error("the deleted connection's last check is still remembered")
	}
}

// connUnitCAPEM returns a freshly generated self-signed CA certificate in PEM.
func connUnitCAPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// A wrong password costs one login per retry interval, however many NomadTokens' events wake the
// connection meanwhile (each would otherwise be a failed login, and Keycloak locks accounts out).
func TestNomadConnectionPacesChecksAfterAFailure(t *testing.T) {
	logins := 0
	refusing := func(nomad.Config) (nomad.Client, error) {
		return &nomadfake.Client{TB: t, CheckFunc: func(context.Context) (nomad.PATPath, error) {
			logins++
			return "", &nomad.Error{Code: nomad.CodeCredentialsInvalid, Detail: "Incorrect username or password"}
		}}, nil
	}
	w := newConnUnitWorld(t, nil, interceptor.Funcs{}, refusing)
	for range 5 { // the first check, then events of NomadTokens that use the connection
		if _, err := w.reconcile(); err != nil {
			t.Fatal(err)
		}
	}
	if logins != 1 {
		t.Fatalf("%d logins for one refused password within its retry interval, want 1", logins)
	}
	w.r.Clock.(*clocktesting.FakeClock).Step(DefaultUserErrorRetry + time.Second)
	if _, err := w.reconcile(); err != nil {
		t.Fatal(err)
	}
	if logins != 2 {
		t.Fatalf("%d logins after the retry interval, want 2", logins)
	}
}

// While a NomadToken depends on the connection, the connection and both Secrets it reads (credentials
// and CA) carry the in-use finalizer; once nothing does, all three let go.
func TestNomadConnectionHoldsItsCredentialsAndCASecretsWhileInUse(t *testing.T) {
	token := &v1alpha1.NomadToken{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ci"},
		Spec:       v1alpha1.NomadTokenSpec{ConnectionRef: v1alpha1.ConnectionRef{Name: connUnitKey.Name}, Scopes: []string{"uploads:read"}},
	}
	w := newConnUnitWorld(t, func(c *v1alpha1.NomadConnection) []client.Object {
		c.Spec.CASecretRef = &v1alpha1.CASecretRef{Name: "ca"}
		return []client.Object{token, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ca", Labels: credentialsLabels()},
			Data: map[string][]byte{"ca.crt": []byte(connUnitCAPEM(t))}}}
	}, interceptor.Funcs{}, workingNomad(t))
	held := func(obj client.Object, name string) bool {
		t.Helper()
		if err := w.client.Get(context.Background(), types.NamespacedName{Namespace: "team-a", Name: name}, obj); err != nil {
			t.Fatal(err)
		}
		return slices.Contains(obj.GetFinalizers(), v1alpha1.FinalizerInUse)
	}
	if _, err := w.reconcile(); err != nil {
		t.Fatal(err)
	}
	conn := &v1alpha1.NomadConnection{}
	if !held(conn, connUnitKey.Name) || !held(&corev1.Secret{}, "bot") || !held(&corev1.Secret{}, "ca") {
		t.Fatal("while a NomadToken uses it, the connection and its credentials and CA Secrets must carry the in-use finalizer")
	}
	if !slices.Equal(conn.Status.InUseSecrets, []string{"bot", "ca"}) {
		t.Fatalf("inUseSecrets %v", conn.Status.InUseSecrets)
	}
	if err := w.client.Delete(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	if _, err := w.reconcile(); err != nil {
		t.Fatal(err)
	}
	if held(&v1alpha1.NomadConnection{}, connUnitKey.Name) || held(&corev1.Secret{}, "bot") || held(&corev1.Secret{}, "ca") {
		t.Fatal("nothing uses the connection any more: every in-use finalizer must be gone")
	}
}

func TestPATBudget(t *testing.T) {
	tests := []struct {
		name          string
		limit         int
		ratio         float64
		active        int
		want          metav1.ConditionStatus
		wantLimit     int32
		wantInMessage string
	}{
		{name: "defaults: 79 of 100 is within", active: 79, want: metav1.ConditionFalse, wantLimit: 100, wantInMessage: "79 active PATs of NOMAD's 100 per user (warning at 80)"},
		{name: "defaults: 80 of 100 is near", active: 80, want: metav1.ConditionTrue, wantLimit: 100, wantInMessage: "Overlap rotations need a free slot"},
		{name: "at the cap", active: 100, want: metav1.ConditionTrue, wantLimit: 100},
		{name: "a configured cap and share", limit: 10, ratio: 0.5, active: 5, want: metav1.ConditionTrue, wantLimit: 10, wantInMessage: "warning at 5"},
		{name: "the share rounds up", limit: 10, ratio: 0.55, active: 5, want: metav1.ConditionFalse, wantLimit: 10, wantInMessage: "warning at 6"},
		{name: "an empty account", active: 0, want: metav1.ConditionFalse, wantLimit: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &NomadConnectionReconciler{PATLimit: tt.limit, PATLimitWarning: tt.ratio}
			conn := &v1alpha1.NomadConnection{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
			r.reportPATBudget(conn, tt.active)
			c := meta.FindStatusCondition(conn.Status.Conditions, v1alpha1.ConditionNearPATLimit)
			if c == nil || c.Status != tt.want || c.ObservedGeneration != 3 || !strings.Contains(c.Message, tt.wantInMessage) {
				t.Fatalf("NearPATLimit = %+v, want %s containing %q", c, tt.want, tt.wantInMessage)
			}
			if *conn.Status.ActiveTokens != int32(tt.active) || *conn.Status.PATLimit != tt.wantLimit {
				t.Fatalf("activeTokens %d, patLimit %d", *conn.Status.ActiveTokens, *conn.Status.PATLimit)
			}
		})
	}
}

func TestSomeOf(t *testing.T) {
	names := []string{"a", "b", "c"}
	for n, want := range map[int]string{3: "a, b, c", 5: "a, b, c", 2: "a, b and 1 more", 1: "a and 2 more"} {
		if got := someOf(names, n); got != want {
			t.Errorf("someOf(%d) = %q, want %q", n, got, want)
		}
	}
}
