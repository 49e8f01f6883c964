package controllers

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
	nomadfake "github.com/nomad-operator/nomad-token-operator/internal/nomad/fake"
)

// These unit tests cover the opt-in label and password changes from the connection's side.

// editSecret changes Secret name of team-a in w's API server.
func (w *connUnitWorld) editSecret(t *testing.T, name string, edit func(*corev1.Secret)) {
	t.Helper()
	s := &corev1.Secret{}
	if err := w.client.Get(context.Background(), types.NamespacedName{Namespace: "team-a", Name: name}, s); err != nil {
		t.Fatal(err)
	}
	edit(s)
	if err := w.client.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// inUse reports whether object name of team-a carries the in-use finalizer.
func (w *connUnitWorld) inUse(t *testing.T, obj client.Object, name string) bool {
	t.Helper()
	if err := w.client.Get(context.Background(), types.NamespacedName{Namespace: "team-a", Name: name}, obj); err != nil {
		t.Fatal(err)
	}
	return slices.Contains(obj.GetFinalizers(), v1alpha1.FinalizerInUse)
}

// A refused password is tried once per retry interval, but a changed one at once: the Secret is
// re-read (no NOMAD call) every secretRetryInterval while the refusal stands.
func TestNomadConnectionTriesAChangedPasswordAtOnce(t *testing.T) {
	var logins []string
	byPassword := func(cfg nomad.Config) (nomad.Client, error) {
		return &nomadfake.Client{TB: t,
			CheckFunc: func(context.Context) (nomad.PATPath, error) {
				logins = append(logins, cfg.Password)
				if cfg.Password != "the-right-one" {
					return "", &nomad.Error{Code: nomad.CodeCredentialsInvalid, Detail: "Incorrect username or password"}
				}
				return nomad.PATPathPats, nil
			},
			ListFunc: func(context.Context, nomad.ListOptions) ([]nomad.PAT, error) { return nil, nil },
		}, nil
	}
	w := newConnUnitWorld(t, nil, interceptor.Funcs{}, byPassword)
	res, err := w.reconcile()
	if err != nil || res.RequeueAfter != secretRetryInterval {
		t.Fatalf("Reconcile = %+v, %v; want the Secret looked at again after %s", res, err, secretRetryInterval)
	}
	if cond := w.ready(t); cond == nil || cond.Reason != v1alpha1.ReasonCredentialsInvalid {
		t.Fatalf("Ready = %+v, want CredentialsInvalid", cond)
	}

	// The Secret unchanged: looked at, not tried.
	w.r.Clock.(*clocktesting.FakeClock).Step(secretRetryInterval)
	for range 3 {
		res, err = w.reconcile()
		if err != nil || res.RequeueAfter <= 0 || res.RequeueAfter > secretRetryInterval {
			t.Fatalf("Reconcile = %+v, %v; want the next look within %s", res, err, secretRetryInterval)
		}
	}
	if len(logins) != 1 {
		t.Fatalf("%d logins with an unchanged, refused password; want 1", len(logins))
	}

	// A key other than the credentials changes nothing either.
	w.editSecret(t, "bot", func(s *corev1.Secret) { s.Data["note"] = []byte("rotated soon") })
	if _, err := w.reconcile(); err != nil || len(logins) != 1 {
		t.Fatalf("an unrelated edit of the Secret must not cost a login: %d logins, err %v", len(logins), err)
	}

	w.editSecret(t, "bot", func(s *corev1.Secret) { s.Data["password"] = []byte("the-right-one") })
	res, err = w.reconcile()
	if err != nil || len(logins) != 2 || logins[1] != "the-right-one" {
		t.Fatalf("a fixed password must be tried at once, within the refused one's retry interval: logins %d, err %v", len(logins), err)
	}
	if cond := w.ready(t); cond == nil || cond.Status != metav1.ConditionTrue {
		t.Fatalf("Ready = %+v, want True", cond)
	}
	if res.RequeueAfter != DefaultVerificationInterval {
		t.Errorf("RequeueAfter = %s, want the verification interval", res.RequeueAfter)
	}
}

// A Secret that withdraws its label mid-refusal is reported at the next look, without a login.
func TestNomadConnectionReportsAWithdrawnLabelWhileRefused(t *testing.T) {
	logins := 0
	refusing := func(nomad.Config) (nomad.Client, error) {
		return &nomadfake.Client{TB: t, CheckFunc: func(context.Context) (nomad.PATPath, error) {
			logins++
			return "", &nomad.Error{Code: nomad.CodeCredentialsInvalid, Detail: "Incorrect username or password"}
		}}, nil
	}
	w := newConnUnitWorld(t, nil, interceptor.Funcs{}, refusing)
	if _, err := w.reconcile(); err != nil {
		t.Fatal(err)
	}
	w.editSecret(t, "bot", func(s *corev1.Secret) { delete(s.Labels, v1alpha1.LabelCredentials) })
	if _, err := w.reconcile(); err != nil {
		t.Fatal(err)
	}
	if cond := w.ready(t); cond == nil || cond.Reason != v1alpha1.ReasonCredentialsNotLabelled {
		t.Fatalf("Ready = %+v, want CredentialsNotLabelled", cond)
	}
	if logins != 1 {
		t.Errorf("%d logins, want only the first", logins)
	}
}

// The in-use finalizer is the only write the operator makes to a credentials or CA Secret, and it
// makes it only to Secrets that opted in. One that loses the label is let go of at the next check,
// even when another connection holds it too; labelled again, it is held again.
func TestNomadConnectionHoldsOnlyOptedInSecrets(t *testing.T) {
	token := &v1alpha1.NomadToken{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ci"},
		Spec:       v1alpha1.NomadTokenSpec{ConnectionRef: v1alpha1.ConnectionRef{Name: connUnitKey.Name}, Scopes: []string{"uploads:read"}},
	}
	// Another connection of the namespace reads the same Secret and holds it (it is in use too).
	other := &v1alpha1.NomadConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "other", UID: "other-uid", Finalizers: []string{v1alpha1.FinalizerInUse}},
		Spec: v1alpha1.NomadConnectionSpec{URL: "https://nomad.example.org/nomad-oasis/api",
			Credentials: v1alpha1.Credentials{SecretRef: v1alpha1.CredentialsSecretRef{Name: "bot"}},
			CASecretRef: &v1alpha1.CASecretRef{Name: "ca"}},
	}
	var patches []string
	byTest := false // the test's own edits of the Secrets go through the same client
	w := newConnUnitWorld(t, func(c *v1alpha1.NomadConnection) []client.Object {
		c.Spec.CASecretRef = &v1alpha1.CASecretRef{Name: "ca"}
		return []client.Object{token, other, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ca"},
			Data: map[string][]byte{"ca.crt": []byte(connUnitCAPEM(t))}}}
	}, interceptor.Funcs{
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if _, ok := obj.(*corev1.Secret); ok && !byTest {
				t.Errorf("Secret %s was updated whole; only its finalizers may be patched", obj.GetName())
			}
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if _, ok := obj.(*corev1.Secret); ok {
				data, _ := patch.Data(obj)
				patches = append(patches, string(data))
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
	}, workingNomad(t))
	clk := w.r.Clock.(*clocktesting.FakeClock)
	edit := func(name string, f func(*corev1.Secret)) {
		t.Helper()
		byTest = true
		defer func() { byTest = false }()
		w.editSecret(t, name, f)
	}

	// The CA Secret did not opt in: the connection reports it and writes nothing to it.
	if _, err := w.reconcile(); err != nil {
		t.Fatal(err)
	}
	if cond := w.ready(t); cond == nil || cond.Reason != v1alpha1.ReasonCredentialsNotLabelled {
		t.Fatalf("Ready = %+v, want CredentialsNotLabelled for the CA Secret", cond)
	}
	if !w.inUse(t, &v1alpha1.NomadConnection{}, connUnitKey.Name) || !w.inUse(t, &corev1.Secret{}, "bot") {
		t.Fatal("the connection and its opted-in credentials Secret must be held while a token uses them")
	}
	ca := &corev1.Secret{}
	if w.inUse(t, ca, "ca") || ca.ResourceVersion != "999" {
		t.Fatalf("the unlabelled CA Secret was written to: finalizers %v, resourceVersion %s", ca.Finalizers, ca.ResourceVersion)
	}

	// Labelled, it is used and held once the connection looks again.
	edit("ca", func(s *corev1.Secret) { s.Labels = credentialsLabels() })
	clk.Step(secretRetryInterval)
	if _, err := w.reconcile(); err != nil {
		t.Fatal(err)
	}
	if cond := w.ready(t); cond == nil || cond.Status != metav1.ConditionTrue {
		t.Fatalf("Ready = %+v, want True once the CA Secret opted in", cond)
	}
	if !w.inUse(t, &corev1.Secret{}, "ca") {
		t.Fatal("the CA Secret opted in: it must be held")
	}

	// The credentials Secret withdraws its label: at the next check the connection stops using it
	// and lets go of it, although the other connection holds it as well.
	edit("bot", func(s *corev1.Secret) { s.Labels = map[string]string{v1alpha1.LabelCredentials: "false"} })
	clk.Step(DefaultVerificationInterval)
	if _, err := w.reconcile(); err != nil {
		t.Fatal(err)
	}
	if cond := w.ready(t); cond == nil || cond.Reason != v1alpha1.ReasonCredentialsNotLabelled {
		t.Fatalf("Ready = %+v, want CredentialsNotLabelled", cond)
	}
	if w.inUse(t, &corev1.Secret{}, "bot") {
		t.Fatal("a Secret that withdrew its label must be let go of")
	}
	if !w.inUse(t, &corev1.Secret{}, "ca") || !w.inUse(t, &v1alpha1.NomadConnection{}, connUnitKey.Name) {
		t.Fatal("the opted-in CA Secret and the connection stay held while the token needs them")
	}
	if w.pool.Has(connUnitUID) {
		t.Fatal("the client built from the withdrawn credentials must be dropped")
	}
	for _, p := range patches {
		// The resourceVersion makes the patch fail if the label changed since the Secret was read.
		if !strings.Contains(p, `"finalizers"`) || !strings.Contains(p, `"resourceVersion"`) || strings.Contains(p, `"data"`) || strings.Contains(p, `"labels"`) {
			t.Errorf("a Secret patch must carry its finalizers and resourceVersion only: %s", p)
		}
	}
	if len(patches) != 3 {
		t.Errorf("%d Secret patches, want 3 (hold bot, hold ca, release bot): %v", len(patches), patches)
	}
}

// The label can be withdrawn between the operator's read of a Secret and its write of the finalizer:
// the write carries the resourceVersion read, fails, and the retry sees the Secret as it is now.
func TestNomadConnectionDoesNotHoldASecretWithdrawnWhileItLooked(t *testing.T) {
	token := &v1alpha1.NomadToken{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ci"},
		Spec:       v1alpha1.NomadTokenSpec{ConnectionRef: v1alpha1.ConnectionRef{Name: connUnitKey.Name}, Scopes: []string{"uploads:read"}},
	}
	withdrawn := false
	w := newConnUnitWorld(t, func(*v1alpha1.NomadConnection) []client.Object { return []client.Object{token} }, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if err := c.Get(ctx, key, obj, opts...); err != nil {
				return err
			}
			if _, ok := obj.(*corev1.Secret); ok && !withdrawn {
				// Right after the operator's first read, its owner takes the label off.
				withdrawn = true
				live := obj.DeepCopyObject().(*corev1.Secret)
				live.Labels = nil
				if err := c.Update(ctx, live); err != nil {
					t.Fatal(err)
				}
			}
			return nil
		},
	}, workingNomad(t))
	if _, err := w.reconcile(); err == nil {
		t.Fatal("the finalizer write on a Secret changed since it was read must fail")
	}
	if w.inUse(t, &corev1.Secret{}, "bot") {
		t.Fatal("a Secret whose label was withdrawn meanwhile must not be held")
	}
	if _, err := w.reconcile(); err != nil {
		t.Fatal(err)
	}
	if w.inUse(t, &corev1.Secret{}, "bot") {
		t.Fatal("the retry must see the Secret without its label and leave it alone")
	}
	if cond := w.ready(t); cond == nil || cond.Reason != v1alpha1.ReasonCredentialsNotLabelled {
		t.Fatalf("Ready = %+v, want CredentialsNotLabelled", cond)
	}
}

// Two connections sharing a Secret each record their hold in it, so the in-use finalizer goes only
// with the last of them, and a release made from a read older than another's hold conflicts
// instead of taking the finalizer from under it.
func TestASharedSecretIsHeldUntilItsLastHolderLetsGo(t *testing.T) {
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: "bot", Labels: credentialsLabels()}}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(secret).Build()
	r := &NomadConnectionReconciler{Client: c}
	read := func() *corev1.Secret {
		t.Helper()
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(secret), s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	expect := func(holders string, held bool) {
		t.Helper()
		s := read()
		if s.Annotations[v1alpha1.AnnotationHeldBy] != holders || controllerutil.ContainsFinalizer(s, v1alpha1.FinalizerInUse) != held {
			t.Fatalf("held-by %q, finalizer %v; want %q, %v", s.Annotations[v1alpha1.AnnotationHeldBy], s.Finalizers, holders, held)
		}
	}
	hold := func(s *corev1.Secret, uid string) error {
		return r.setInUse(ctx, s, withHolder(holdersOf(s), uid), false)
	}
	release := func(s *corev1.Secret, uid string, stillHeld bool) error {
		return r.setInUse(ctx, s, without(holdersOf(s), []string{uid}), stillHeld)
	}

	if err := hold(read(), "uid-a"); err != nil {
		t.Fatal(err)
	}
	staleForA := read()
	if err := hold(read(), "uid-b"); err != nil {
		t.Fatal(err)
	}
	expect("uid-a,uid-b", true)
	if err := release(staleForA, "uid-a", false); !apierrors.IsConflict(err) {
		t.Fatalf("a release from a read before B's hold = %v, want a conflict", err)
	}
	if err := release(read(), "uid-a", false); err != nil {
		t.Fatal(err)
	}
	expect("uid-b", true)
	if err := release(read(), "uid-b", true); err != nil {
		t.Fatal(err)
	}
	expect("", true) // a connection that held it before holds were recorded still does
	if err := release(read(), "uid-b", false); err != nil {
		t.Fatal(err)
	}
	expect("", false)
}
