package controllers

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
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

// These tests stop the reconciler at the worst moments of an issuance (the Kubernetes write after
// NOMAD minted a PAT fails) and check that the next reconcile ends with exactly one active PAT, held
// in the Secret: no PAT is lost and none is leaked.

type crashWorld struct {
	clock  *clocktesting.FakeClock
	stub   *nomadstub.Server
	client client.Client
	r      *NomadTokenReconciler
	key    types.NamespacedName
}

func newCrashWorld(t *testing.T, funcs interceptor.Funcs) *crashWorld {
	t.Helper()
	clk := clocktesting.NewFakeClock(issuedAt)
	opts := nomadstub.DefaultOptions()
	opts.Clock = clk
	stub, ts := nomadstub.Start(opts)
	t.Cleanup(ts.Close)
	stub.AddUser("bot", "pw")

	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	conn := &v1alpha1.NomadConnection{
		// Held for its tokens, as the connection controller does before any of them mints.
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "oasis", UID: "conn-uid", Finalizers: []string{v1alpha1.FinalizerInUse}},
		Spec: v1alpha1.NomadConnectionSpec{URL: stub.APIRoot(ts.URL),
			Credentials: v1alpha1.Credentials{SecretRef: v1alpha1.CredentialsSecretRef{Name: "bot"}}},
		Status: v1alpha1.NomadConnectionStatus{InUseSecrets: []string{"bot"}, Conditions: []metav1.Condition{{
			Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonConnected, LastTransitionTime: metav1.Now()}}},
	}
	creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "bot", Labels: credentialsLabels()},
		Data: map[string][]byte{"username": []byte("bot"), "password": []byte("pw")}}
	tok := &v1alpha1.NomadToken{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ci", UID: "tok-uid", Finalizers: []string{v1alpha1.FinalizerRevoke}},
		Spec: v1alpha1.NomadTokenSpec{ConnectionRef: v1alpha1.ConnectionRef{Name: "oasis"},
			Scopes: []string{"uploads:read"}, ExpiresInDays: 30},
	}
	c := fake.NewClientBuilder().WithScheme(scheme).
		WithStatusSubresource(&v1alpha1.NomadToken{}, &v1alpha1.NomadConnection{}).
		WithObjects(conn, creds, tok).WithInterceptorFuncs(funcs).Build()
	r := &NomadTokenReconciler{
		Client:    c,
		APIReader: c,
		Resolver:  &connection.Resolver{Reader: c, Pool: &connection.Pool{Clock: clk}},
		Recorder:  events.NewFakeRecorder(100),
		Clock:     clk,
	}
	return &crashWorld{clock: clk, stub: stub, client: c, r: r, key: types.NamespacedName{Namespace: "team-a", Name: "ci"}}
}

func (w *crashWorld) reconcile(t *testing.T) error {
	t.Helper()
	_, err := w.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: w.key})
	return err
}

// assertOneActivePATInSecret checks the end state every crash must converge to.
func (w *crashWorld) assertOneActivePATInSecret(t *testing.T) *v1alpha1.NomadToken {
	t.Helper()
	tok := &v1alpha1.NomadToken{}
	if err := w.client.Get(context.Background(), w.key, tok); err != nil {
		t.Fatal(err)
	}
	active := w.stub.ActivePATs("bot")
	if len(active) != 1 || active[0].ID != tok.Status.TokenID {
		t.Fatalf("active PATs %v, status tokenID %q: want exactly the status's PAT active", active, tok.Status.TokenID)
	}
	s := &corev1.Secret{}
	if err := w.client.Get(context.Background(), w.key, s); err != nil {
		t.Fatal(err)
	}
	if !w.stub.Authenticates(string(s.Data["token"])) {
		t.Fatal("the Secret's token does not authenticate")
	}
	if tok.Status.PendingIssuance != nil || !isReady(tok.Status.Conditions) {
		t.Fatalf("status not settled: pending=%v conditions=%v", tok.Status.PendingIssuance, tok.Status.Conditions)
	}
	return tok
}

var errInjected = errors.New("injected: API server unavailable")

// statusWriteLoser fails one chosen status write of the world's objects, as a crash between two
// writes would: loseNth(n) makes the n-th status write from now fail.
type statusWriteLoser struct{ writes, failAt int }

func (l *statusWriteLoser) loseNth(n int) { l.failAt = l.writes + n }

// newWorldLosingAStatusWrite is a crash world whose status writes a test can make fail.
func newWorldLosingAStatusWrite(t *testing.T) (*crashWorld, *statusWriteLoser) {
	t.Helper()
	l := &statusWriteLoser{failAt: -1}
	w := newCrashWorld(t, interceptor.Funcs{
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			l.writes++
			if l.writes == l.failAt {
				return errInjected
			}
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
	})
	return w, l
}

func TestCrashAfterSecretWriteBeforeStatusWriteAdoptsThePAT(t *testing.T) {
	w, lose := newWorldLosingAStatusWrite(t)
	lose.loseNth(2) // the first is the intent, the second records the issued PAT
	if err := w.reconcile(t); !errors.Is(err, errInjected) {
		t.Fatalf("first reconcile: %v, want the injected failure", err)
	}
	w.settle(t)
	w.assertOneActivePATInSecret(t)
	if got := w.stub.Calls()["create"]; got != 1 {
		t.Errorf("creates = %d, want 1: the PAT in the Secret is adopted, not replaced", got)
	}
}

func TestFailedSecretWriteRevokesTheNewPATAtOnce(t *testing.T) {
	w := newCrashWorld(t, failFirstSecretCreate())
	if err := w.reconcile(t); !errors.Is(err, errInjected) {
		t.Fatalf("first reconcile: %v, want the injected failure", err)
	}
	if active := w.stub.ActivePATs("bot"); len(active) != 0 {
		t.Fatalf("a PAT whose raw token reached no Secret stayed active: %v", active)
	}
	if err := w.reconcile(t); err != nil {
		t.Fatalf("second reconcile: %v", err)
	}
	w.assertOneActivePATInSecret(t)
}

func TestLostCreateAnswerIsRevokedBeforeIssuingAgain(t *testing.T) {
	w := newCrashWorld(t, interceptor.Funcs{})
	w.stub.InjectFault("create", 1, nomadstub.Fault{LoseResponse: true})
	if err := w.reconcile(t); err == nil {
		t.Fatal("first reconcile: want the lost answer reported")
	}
	tok := &v1alpha1.NomadToken{}
	_ = w.client.Get(context.Background(), w.key, tok)
	if tok.Status.PendingIssuance == nil {
		t.Fatal("the intent must stay recorded while the outcome of the create is unknown")
	}
	w.settle(t)
	w.assertOneActivePATInSecret(t)
	if all := w.stub.PATs("bot"); len(all) != 2 {
		t.Errorf("PATs = %d, want 2 (the orphan, revoked, and the current one)", len(all))
	}
}

func TestCrashBetweenOverlapSwapAndRevokeStillRevokesTheOldPAT(t *testing.T) {
	w, lose := newWorldLosingAStatusWrite(t)
	if err := w.reconcile(t); err != nil {
		t.Fatalf("issuing: %v", err)
	}
	first := w.assertOneActivePATInSecret(t)

	// At the renewal time the new PAT reaches the Secret, and the status write after it is lost.
	w.clock.SetTime(tokenRenewalTime(first).Add(time.Second))
	lose.loseNth(2)
	if err := w.reconcile(t); !errors.Is(err, errInjected) {
		t.Fatalf("rotating: %v, want the injected failure", err)
	}
	if active := w.stub.ActivePATs("bot"); len(active) != 2 {
		t.Fatalf("after the swap %d PATs are active, want old and new", len(active))
	}

	// The next reconcile adopts the new PAT and keeps the old one for the grace period ...
	if err := w.reconcile(t); err != nil {
		t.Fatalf("recovering: %v", err)
	}
	tok := &v1alpha1.NomadToken{}
	_ = w.client.Get(context.Background(), w.key, tok)
	if tok.Status.PreviousTokenID != first.Status.TokenID || tok.Status.TokenID == first.Status.TokenID {
		t.Fatalf("status after recovery: current %q previous %q, want a new current and %q previous",
			tok.Status.TokenID, tok.Status.PreviousTokenID, first.Status.TokenID)
	}
	// ... and revokes it once the grace period is over.
	w.clock.Step(v1alpha1.DefaultGracePeriod + time.Second)
	if err := w.reconcile(t); err != nil {
		t.Fatalf("after grace: %v", err)
	}
	final := w.assertOneActivePATInSecret(t)
	if final.Status.TokenID != tok.Status.TokenID || final.Status.PreviousTokenID != "" {
		t.Fatalf("final status: current %q previous %q", final.Status.TokenID, final.Status.PreviousTokenID)
	}
}

// createDryRun and updateDryRun report a server-side dry run, which writes nothing: the injected
// failures are about writes that were meant to land.
func createDryRun(opts []client.CreateOption) bool {
	o := &client.CreateOptions{}
	o.ApplyOptions(opts)
	return len(o.DryRun) > 0
}

func updateDryRun(opts []client.UpdateOption) bool {
	o := &client.UpdateOptions{}
	o.ApplyOptions(opts)
	return len(o.DryRun) > 0
}

// failFirstSecretCreate makes the first Create of a Secret fail, as a Secret write that never landed.
func failFirstSecretCreate() interceptor.Funcs {
	failed := false
	return interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if _, ok := obj.(*corev1.Secret); ok && !failed && !createDryRun(opts) {
				failed = true
				return errInjected
			}
			return c.Create(ctx, obj, opts...)
		},
	}
}

// staleSecretCache answers reads of one Secret with a copy from before the last write, as an informer
// cache lagging the API server does; everything else goes through.
type staleSecretCache struct {
	client.Client
	stale *corev1.Secret
}

func (c *staleSecretCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if s, ok := obj.(*corev1.Secret); ok && key == client.ObjectKeyFromObject(c.stale) {
		c.stale.DeepCopyInto(s)
		return nil
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

func TestRecoveryReadsTheSecretAroundAStaleCache(t *testing.T) {
	w, lose := newWorldLosingAStatusWrite(t)
	w.mustReconcile(t)
	first := w.assertOneActivePATInSecret(t)
	stale := &corev1.Secret{}
	if err := w.client.Get(context.Background(), w.key, stale); err != nil {
		t.Fatal(err)
	}
	// An Overlap renewal writes the Secret, and its closing status write fails.
	lose.loseNth(2)
	w.clock.SetTime(tokenRenewalTime(first).Add(time.Second))
	if err := w.reconcile(t); !errors.Is(err, errInjected) {
		t.Fatalf("renewal: %v, want the injected failure", err)
	}
	renewed := w.stub.ActivePATs("bot")
	if len(renewed) != 2 {
		t.Fatalf("test premise: both PATs active after the swap, got %v", renewed)
	}
	// The cache still shows the Secret with the first PAT when the issuance is settled.
	w.r.Client = &staleSecretCache{Client: w.client, stale: stale}
	w.mustReconcile(t)
	w.r.Client = w.client
	w.mustReconcile(t)
	w.clock.Step(time.Hour) // past the first PAT's grace period
	w.mustReconcile(t)
	final := w.assertOneActivePATInSecret(t)
	if final.Status.TokenID == first.Status.TokenID || w.stub.Calls()["create"] != 2 {
		t.Fatalf("current %s after %d creates: the PAT the Secret really held was revoked and replaced", final.Status.TokenID, w.stub.Calls()["create"])
	}
}
