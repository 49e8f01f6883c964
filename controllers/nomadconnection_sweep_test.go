package controllers

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/internal/nomad"
)

// sweepWorld is a crash world whose bot account also holds, two hours later, PATs nobody tracks.
type sweepWorld struct {
	*crashWorld
	nc                      nomad.Client
	conn                    *v1alpha1.NomadConnection
	tracked, orphan, manual string
	retained, young         string
	// restored is held by one of the operator's Secrets that a restore brought back without the
	// status of its NomadToken; unnamed by a Secret with the operator's label that no NomadToken names.
	restored, unnamed string
	// settling is a PAT of a NomadToken whose issuance is in flight, carrying an older marker of it
	// (as one from NOMAD's rotate endpoint does) while the pending marker is a new one.
	settling string
}

func newSweepWorld(t *testing.T) *sweepWorld {
	t.Helper()
	w := &sweepWorld{crashWorld: newCrashWorld(t, interceptor.Funcs{})}
	w.mustReconcile(t)
	w.tracked = w.assertOneActivePATInSecret(t).Status.TokenID
	w.conn = &v1alpha1.NomadConnection{}
	if err := w.client.Get(context.Background(), client.ObjectKey{Namespace: "team-a", Name: "oasis"}, w.conn); err != nil {
		t.Fatal(err)
	}
	var err error
	if w.nc, err = nomad.New(nomad.Config{URL: w.conn.Spec.URL, Username: "bot", Password: "pw", Clock: w.clock}); err != nil {
		t.Fatal(err)
	}
	mint := func(description string) string {
		issued, err := w.nc.Create(context.Background(), nomad.CreateRequest{Name: "x", Description: description,
			Scopes: []string{"uploads:read"}, ExpiresInDays: ptr.To(30)})
		if err != nil {
			t.Fatal(err)
		}
		return issued.PAT.ID
	}
	// A NomadToken whose finalizer was removed by hand left this one behind.
	w.orphan = mint("[nomad-token-operator deadbeef-0123456789ab]")
	w.manual = mint("made by a person in NOMAD's UI")
	w.retained = mint("[nomad-token-operator cafecafe-0123456789ab]")
	w.conn.Status.RetainedPATs = []v1alpha1.RetainedPAT{{ID: w.retained, NomadToken: "team-a/kept"}}
	w.settling = mint("[nomad-token-operator feedfeed-000000000001]")
	rotating := &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "rotating", UID: "feedfeed-uid"},
		Spec: v1alpha1.NomadTokenSpec{ConnectionRef: v1alpha1.ConnectionRef{Name: "oasis"}, Scopes: []string{"uploads:read"}}}
	if err := w.client.Create(context.Background(), rotating); err != nil {
		t.Fatal(err)
	}
	rotating.Status.PendingIssuance = &v1alpha1.PendingIssuance{Marker: "feedfeed-000000000002", StartedAt: metav1.NewTime(w.clock.Now())}
	if err := w.client.Status().Update(context.Background(), rotating); err != nil {
		t.Fatal(err)
	}
	w.restored = mint("[nomad-token-operator 0b0b0b0b-0123456789ab]")
	restored := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "restored",
		Labels:      map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue},
		Annotations: map[string]string{v1alpha1.AnnotationTokenID: w.restored}}}
	// Its NomadToken is back too, without status: it will adopt the Secret and the PAT.
	restoredToken := &v1alpha1.NomadToken{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "restored", UID: "0b0b0b0b-new"},
		Spec: v1alpha1.NomadTokenSpec{ConnectionRef: v1alpha1.ConnectionRef{Name: "oasis"}, Scopes: []string{"uploads:read"}}}
	for _, obj := range []client.Object{restored, restoredToken} {
		if err := w.client.Create(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
	}
	// A Secret labelled as the operator's that no NomadToken names shields nothing: anyone who can
	// write Secrets could set the label.
	w.unnamed = mint("[nomad-token-operator 0c0c0c0c-0123456789ab]")
	decoy := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "decoy",
		Labels:      map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue},
		Annotations: map[string]string{v1alpha1.AnnotationTokenID: w.unnamed}}}
	if err := w.client.Create(context.Background(), decoy); err != nil {
		t.Fatal(err)
	}
	w.clock.Step(2 * time.Hour)
	// One still settling: too young to be judged.
	w.young = mint("[nomad-token-operator abcdabcd-0123456789ab]")
	return w
}

func (w *sweepWorld) sweep(t *testing.T, mode SweepMode) *events.FakeRecorder {
	t.Helper()
	recorder := events.NewFakeRecorder(10)
	r := &NomadConnectionReconciler{Client: w.client, APIReader: w.client, Clock: w.clock, Recorder: recorder, Sweep: mode}
	active, err := w.nc.List(context.Background(), nomad.ListOptions{State: "active"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.sweepOrphans(context.Background(), w.conn, w.nc, active); err != nil {
		t.Fatal(err)
	}
	return recorder
}

func TestOrphanSweepDryRunListsWhatNoNomadTokenAccountsFor(t *testing.T) {
	w := newSweepWorld(t)
	recorder := w.sweep(t, "")
	st := w.conn.Status
	if len(st.OrphanedPATs) != 2 || !slices.ContainsFunc(st.OrphanedPATs, func(o v1alpha1.OrphanedPAT) bool { return o.ID == w.unnamed }) ||
		st.OrphanedPATCount == nil || *st.OrphanedPATCount != 2 {
		t.Fatalf("orphanedPATs %+v count %v: want exactly the untracked PAT with the operator's marker", st.OrphanedPATs, st.OrphanedPATCount)
	}
	if len(w.stub.ActivePATs("bot")) != 8 {
		t.Fatal("a dry run revoked something")
	}
	if got := drainEvents(recorder); countPrefixed(got, corev1.EventTypeWarning+" "+v1alpha1.EventOrphansFound) != 1 {
		t.Errorf("want one OrphansFound Warning, got %q", got)
	}
}

func TestOrphanSweepRevokesOnlyOrphans(t *testing.T) {
	w := newSweepWorld(t)
	w.sweep(t, SweepRevoke)
	if !w.active("bot", w.orphan) || len(w.conn.Status.OrphanedPATs) != 2 {
		t.Fatal("an orphan was revoked the first time it was seen: it must be listed for one check first")
	}
	w.sweep(t, SweepRevoke)
	if w.active("bot", w.orphan) || w.active("bot", w.unnamed) {
		t.Error("an orphan is still active")
	}
	for name, id := range map[string]string{"tracked": w.tracked, "manual": w.manual, "retained": w.retained, "young": w.young, "settling": w.settling, "restored": w.restored} {
		if !w.active("bot", id) {
			t.Errorf("the %s PAT was swept", name)
		}
	}
	if len(w.conn.Status.OrphanedPATs) != 0 {
		t.Errorf("orphanedPATs %v after revoking them", w.conn.Status.OrphanedPATs)
	}
}

func TestRetainedPATIsRecordedAndNeverSwept(t *testing.T) {
	w := newSweepWorld(t)
	w.update(t, func(tok *v1alpha1.NomadToken) { tok.Spec.DeletionPolicy = v1alpha1.DeletionRetain })
	if err := w.client.Delete(context.Background(), w.token(t)); err != nil {
		t.Fatal(err)
	}
	w.mustReconcile(t)
	if err := w.client.Get(context.Background(), client.ObjectKeyFromObject(w.conn), w.conn); err != nil {
		t.Fatal(err)
	}
	if len(w.conn.Status.RetainedPATs) != 1 || w.conn.Status.RetainedPATs[0].ID != w.tracked || w.conn.Status.RetainedPATs[0].NomadToken != "team-a/ci" {
		t.Fatalf("retainedPATs %+v: want the Retain'ed PAT recorded on its connection", w.conn.Status.RetainedPATs)
	}
	w.sweep(t, SweepRevoke)
	w.sweep(t, SweepRevoke)
	if !w.active("bot", w.tracked) {
		t.Fatal("the PAT kept by deletionPolicy Retain was swept")
	}
	// Once it has expired, its record goes.
	w.conn.Status.RetainedPATs[0].ExpiresAt = &metav1.Time{Time: w.clock.Now().Add(-time.Minute)}
	w.sweep(t, SweepDryRun)
	if len(w.conn.Status.RetainedPATs) != 0 {
		t.Fatalf("retainedPATs %+v: an expired PAT's record stays", w.conn.Status.RetainedPATs)
	}
	// Without that record (or after GitOps recreated the connection, its status empty), the released
	// Secret, marked retained, still protects the PAT it holds.
	w.sweep(t, SweepRevoke)
	w.sweep(t, SweepRevoke)
	if !w.active("bot", w.tracked) {
		t.Fatal("the Retain'ed PAT was swept once its connection's record was gone, while its Secret holds it")
	}
}

// namespacedReader answers like an API server that granted Roles in some namespaces only: a live
// list of Secrets across all namespaces is forbidden, and the namespaces listed are recorded.
type namespacedReader struct {
	client.Reader
	listed []string
}

func (r *namespacedReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*corev1.SecretList); ok {
		lo := (&client.ListOptions{}).ApplyOptions(opts)
		if lo.Namespace == "" {
			return apierrors.NewForbidden(corev1.Resource("secrets"), "", errors.New("no cluster-wide grant"))
		}
		r.listed = append(r.listed, lo.Namespace)
	}
	return r.Reader.List(ctx, list, opts...)
}

func TestOrphanSweepConfinedToNamespacesReadsEachOfThem(t *testing.T) {
	w := newSweepWorld(t)
	// The orphan's raw token survives in a Secret released by deletionPolicy Retain in team-b.
	held := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "kept",
		Labels: map[string]string{v1alpha1.LabelRetained: "true"}, Annotations: map[string]string{v1alpha1.AnnotationTokenID: w.orphan}}}
	if err := w.client.Create(context.Background(), held); err != nil {
		t.Fatal(err)
	}
	reader := &namespacedReader{Reader: w.client}
	r := &NomadConnectionReconciler{Client: w.client, APIReader: reader, Clock: w.clock, Recorder: events.NewFakeRecorder(10),
		Sweep: SweepRevoke, Namespaces: []string{"team-a", "team-b"}}
	active, err := w.nc.List(context.Background(), nomad.ListOptions{State: "active"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.sweepOrphans(context.Background(), w.conn, w.nc, active); err != nil {
		t.Fatalf("the sweep of a confined operator: %v", err)
	}
	if got := reader.listed; !slices.Equal(got, []string{"team-a", "team-b"}) {
		t.Errorf("retained Secrets listed in %q, want each watched namespace once", got)
	}
	if len(w.conn.Status.OrphanedPATs) != 1 || w.conn.Status.OrphanedPATs[0].ID != w.unnamed {
		t.Errorf("orphanedPATs %+v: the PAT held by a retained Secret of a watched namespace is no orphan (only the decoy's is)", w.conn.Status.OrphanedPATs)
	}
}
