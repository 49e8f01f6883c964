package controllers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/connection"
	"github.com/nomad-operator/nomad-token-operator/test/nomadstub"
)

// A namespaced NomadConnection may make the manager call only the addresses --allowed-nomad-urls
// lists. The stand-in below answers on 127.0.0.1, which is allowed, and on localhost, which is the
// same server under a name that is not: whatever reaches it under either name is counted, so a
// refusal that still sent a request would show.

// countingNomad is a NOMAD stand-in that counts every request it receives, whatever its path.
type countingNomad struct {
	stub     *nomadstub.Server
	requests atomic.Int64
	// allowed is its address as 127.0.0.1:port; refused the same server as localhost:port.
	allowed, refused string
}

func startCountingNomad(t *testing.T, clk *clocktesting.FakeClock) *countingNomad {
	t.Helper()
	opts := nomadstub.DefaultOptions()
	opts.Clock = clk
	n := &countingNomad{stub: nomadstub.New(opts)}
	n.stub.AddUser("bot", "a-long-bot-password")
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.requests.Add(1)
		n.stub.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	n.allowed = ts.URL
	n.refused = strings.Replace(ts.URL, "127.0.0.1", "localhost", 1)
	return n
}

// allowlist allows n's 127.0.0.1 address only.
func (n *countingNomad) allowlist(t *testing.T) *connection.URLAllowlist {
	t.Helper()
	a, err := connection.ParseURLAllowlist(strings.TrimPrefix(n.allowed, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestANamespacedConnectionToAnAddressNotAllowedIsRefusedWithoutACall(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mutate     func(n *countingNomad, c *v1alpha1.NomadConnection) []client.Object
		wantReason string
		wantField  string // named in the message
	}{
		{name: "its NOMAD URL", wantReason: v1alpha1.ReasonURLNotAllowed, wantField: "spec.url",
			mutate: func(n *countingNomad, c *v1alpha1.NomadConnection) []client.Object {
				c.Spec.URL = n.stub.APIRoot(n.refused)
				return nil
			}},
		{name: "the OIDC issuer it signs in at", wantReason: v1alpha1.ReasonURLNotAllowed, wantField: "spec.credentials.oidc.issuerURL",
			mutate: func(n *countingNomad, c *v1alpha1.NomadConnection) []client.Object {
				c.Spec.URL = n.stub.APIRoot(n.allowed)
				c.Spec.Credentials.Method = v1alpha1.CredentialMethodRefreshToken
				c.Spec.Credentials.OIDC = &v1alpha1.OIDCProvider{IssuerURL: n.stub.IssuerURL(n.refused)}
				c.Spec.Credentials.SecretRef.Name = "bot-rt"
				return []client.Object{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "bot-rt", Labels: credentialsLabels()},
					Data: map[string][]byte{"refresh_token": []byte("a-refresh-token")}}}
			}},
		// The control: the same server under its allowed name is called, so the count above means
		// something.
		{name: "an allowed address is called", wantReason: v1alpha1.ReasonConnected,
			mutate: func(n *countingNomad, c *v1alpha1.NomadConnection) []client.Object {
				c.Spec.URL = n.stub.APIRoot(n.allowed)
				return nil
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			n := startCountingNomad(t, clk)
			w := newConnUnitWorld(t, func(c *v1alpha1.NomadConnection) []client.Object { return tc.mutate(n, c) }, interceptor.Funcs{}, nil)
			w.r.Resolver.AllowedURLs = n.allowlist(t)
			w.r.Resolver.Pool.Clock = clk
			w.r.Clock = clk

			res, err := w.reconcile()
			if err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			ready := w.ready(t)
			if ready == nil || ready.Reason != tc.wantReason {
				t.Fatalf("Ready = %+v; want reason %s", ready, tc.wantReason)
			}
			if tc.wantReason == v1alpha1.ReasonConnected {
				if n.requests.Load() == 0 {
					t.Fatal("the allowed address was never called: the count proves nothing")
				}
				return
			}
			if ready.Status != metav1.ConditionFalse || !strings.Contains(ready.Message, tc.wantField) || !strings.Contains(ready.Message, "--allowed-nomad-urls") {
				t.Errorf("Ready = %s %q; want False naming %s and the flag", ready.Status, ready.Message, tc.wantField)
			}
			if got := n.requests.Load(); got != 0 {
				t.Errorf("%d requests reached the address that is not allowed; want none", got)
			}
			if res.RequeueAfter != 0 {
				t.Errorf("RequeueAfter = %s: only a spec change can help, and it triggers a reconcile", res.RequeueAfter)
			}
		})
	}
}

// A NomadToken of such a connection is not Ready and costs no NOMAD call: whether its connection has
// already reported the refusal, or still says Ready from before the operator was given the list.
func TestANomadTokenOfAConnectionNotAllowedMakesNoCall(t *testing.T) {
	for _, tc := range []struct {
		name      string
		connReady metav1.Condition
	}{
		{name: "the connection reports the refusal", connReady: metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: v1alpha1.ReasonURLNotAllowed, Message: "spec.url is not among the addresses", ObservedGeneration: 1}},
		{name: "the connection still says Ready from before the list", connReady: metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue,
			Reason: v1alpha1.ReasonConnected, ObservedGeneration: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			n := startCountingNomad(t, clk)
			scheme := runtime.NewScheme()
			_ = clientgoscheme.AddToScheme(scheme)
			_ = v1alpha1.AddToScheme(scheme)
			tc.connReady.LastTransitionTime = metav1.NewTime(clk.Now())
			conn := &v1alpha1.NomadConnection{
				// Held for the token, so that only the address can stop the mint.
				ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "oasis", UID: "conn-uid", Generation: 1, Finalizers: []string{v1alpha1.FinalizerInUse}},
				Spec: v1alpha1.NomadConnectionSpec{URL: n.stub.APIRoot(n.refused),
					Credentials: v1alpha1.Credentials{SecretRef: v1alpha1.CredentialsSecretRef{Name: "bot"}}},
				Status: v1alpha1.NomadConnectionStatus{ObservedGeneration: 1, InUseSecrets: []string{"bot"}, Conditions: []metav1.Condition{tc.connReady}},
			}
			creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "bot", Labels: credentialsLabels()},
				Data: map[string][]byte{"username": []byte("bot"), "password": []byte("a-long-bot-password")}}
			tok := &v1alpha1.NomadToken{
				ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ci", UID: "tok-uid", Finalizers: []string{v1alpha1.FinalizerRevoke}},
				Spec: v1alpha1.NomadTokenSpec{ConnectionRef: v1alpha1.ConnectionRef{Name: "oasis"},
					Scopes: []string{"uploads:read"}, ExpiresInDays: 30},
			}
			c := fake.NewClientBuilder().WithScheme(scheme).
				WithStatusSubresource(&v1alpha1.NomadToken{}, &v1alpha1.NomadConnection{}).
				WithObjects(conn, creds, tok).Build()
			r := &NomadTokenReconciler{
				Client:    c,
				APIReader: c,
				Resolver:  &connection.Resolver{Reader: c, Pool: &connection.Pool{Clock: clk}, AllowedURLs: n.allowlist(t)},
				Recorder:  events.NewFakeRecorder(100),
				Clock:     clk,
			}
			key := types.NamespacedName{Namespace: "team-a", Name: "ci"}
			for range 2 {
				_, _ = r.Reconcile(context.Background(), ctrl.Request{NamespacedName: key})
			}
			got := &v1alpha1.NomadToken{}
			if err := c.Get(context.Background(), key, got); err != nil {
				t.Fatal(err)
			}
			ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
			// The token says its connection cannot be used, as for any other connection failure, and
			// names the connection's reason.
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != v1alpha1.ReasonConnectionNotReady ||
				!strings.Contains(ready.Message, v1alpha1.ReasonURLNotAllowed) {
				t.Errorf("Ready = %+v; want False, ConnectionNotReady, naming %s", ready, v1alpha1.ReasonURLNotAllowed)
			}
			if got := n.requests.Load(); got != 0 {
				t.Errorf("%d requests reached the address that is not allowed; want none", got)
			}
			if pats := n.stub.PATs("bot"); len(pats) != 0 {
				t.Errorf("PATs minted: %v", pats)
			}
		})
	}
}
