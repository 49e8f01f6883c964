package controllers

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
)

func TestRestartTargetsAreDebouncedAndStampedOncePerPAT(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(now)
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	dep := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "db", Annotations: optedIn("ci")}}
	dep.Spec.Template.Annotations = map[string]string{v1alpha1.AnnotationRestartedAt: now.Add(-10 * time.Second).Format(time.RFC3339)}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(dep).Build()
	recorder := events.NewFakeRecorder(10)
	r := &NomadTokenReconciler{Client: c, APIReader: c, Recorder: recorder, Clock: clk}

	tok := issuedToken()
	tok.Spec.Rotation.RestartTargets = []v1alpha1.RestartTarget{{Kind: "StatefulSet", Name: "db"}, {Kind: "Deployment", Name: "gone"}}
	tok.Status.LastRotationTime = &metav1.Time{Time: now}
	stamp := func() string {
		got := &appsv1.StatefulSet{}
		_ = c.Get(context.Background(), client.ObjectKeyFromObject(dep), got)
		return got.Spec.Template.Annotations[v1alpha1.AnnotationRestartedAt]
	}
	before := stamp()

	// Restarted 10 s ago (another token, or the previous rotation): wait for the window to pass.
	wait, err := r.restartConsumers(context.Background(), tok)
	if err != nil || wait != 20*time.Second || stamp() != before || tok.Status.RestartedForTokenID != "" {
		t.Fatalf("inside the debounce window: wait %s err %v stamp %q restartedFor %q", wait, err, stamp(), tok.Status.RestartedForTokenID)
	}

	clk.Step(20 * time.Second)
	if wait, err := r.restartConsumers(context.Background(), tok); err != nil || wait != 0 {
		t.Fatalf("after the window: wait %s err %v", wait, err)
	}
	if stamp() != clk.Now().Format(time.RFC3339) || tok.Status.RestartedForTokenID != tok.Status.TokenID {
		t.Fatalf("stamp %q restartedFor %q, want the restart recorded for the current PAT", stamp(), tok.Status.RestartedForTokenID)
	}

	// Once per PAT: a later reconcile does not restart again.
	clk.Step(time.Hour)
	stamped := stamp()
	if _, err := r.restartConsumers(context.Background(), tok); err != nil || stamp() != stamped {
		t.Fatalf("second call restarted again: %q -> %q (err %v)", stamped, stamp(), err)
	}
	if countPrefixed(drainEvents(recorder), corev1.EventTypeWarning+" RestartTargetNotFound") == 0 {
		t.Error("a missing target must be reported")
	}
}

func TestARestartAfterTheRotationServesIt(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	// Another NomadToken feeding this Deployment restarted it 5 s after this token's rotation (or this
	// token did, and its status write was lost): the pods started after the Secret held the new PAT.
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "uploader", Annotations: optedIn("ci")}}
	dep.Spec.Template.Annotations = map[string]string{v1alpha1.AnnotationRestartedAt: now.Add(5 * time.Second).Format(time.RFC3339)}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(dep).Build()
	clk := clocktesting.NewFakeClock(now.Add(10 * time.Second))
	r := &NomadTokenReconciler{Client: c, APIReader: c, Recorder: events.NewFakeRecorder(10), Clock: clk}
	tok := issuedToken()
	tok.Spec.Rotation.RestartTargets = []v1alpha1.RestartTarget{{Kind: "Deployment", Name: "uploader"}}
	tok.Status.LastRotationTime = &metav1.Time{Time: now.Add(300 * time.Millisecond)}

	wait, err := r.restartConsumers(context.Background(), tok)
	got := &appsv1.Deployment{}
	_ = c.Get(context.Background(), client.ObjectKeyFromObject(dep), got)
	if err != nil || wait != 0 || got.Spec.Template.Annotations[v1alpha1.AnnotationRestartedAt] != now.Add(5*time.Second).Format(time.RFC3339) {
		t.Fatalf("wait %s err %v stamp %q: want no second restart", wait, err, got.Spec.Template.Annotations[v1alpha1.AnnotationRestartedAt])
	}
	if tok.Status.RestartedForTokenID != tok.Status.TokenID {
		t.Fatal("the restart that served this PAT must be recorded")
	}

	// A restart in the same second as the rotation may have preceded the Secret write: not served.
	dep2 := got.DeepCopy()
	dep2.Spec.Template.Annotations[v1alpha1.AnnotationRestartedAt] = now.Format(time.RFC3339)
	_ = c.Update(context.Background(), dep2)
	tok.Status.RestartedForTokenID = ""
	clk.Step(time.Minute)
	if _, err := r.restartConsumers(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	_ = c.Get(context.Background(), client.ObjectKeyFromObject(dep), got)
	if got.Spec.Template.Annotations[v1alpha1.AnnotationRestartedAt] != clk.Now().Format(time.RFC3339) {
		t.Fatalf("stamp %q: a restart in the rotation's own second must not count", got.Spec.Template.Annotations[v1alpha1.AnnotationRestartedAt])
	}
}

func TestFirstPATRestartsNothing(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	r := &NomadTokenReconciler{Client: c, APIReader: c, Recorder: events.NewFakeRecorder(10), Clock: clocktesting.NewFakeClock(time.Now())}
	tok := issuedToken()
	tok.Spec.Rotation.RestartTargets = []v1alpha1.RestartTarget{{Kind: "Deployment", Name: "not-even-there"}}
	if _, err := r.restartConsumers(context.Background(), tok); err != nil || tok.Status.RestartedForTokenID != tok.Status.TokenID {
		t.Fatalf("first PAT: err %v restartedFor %q", err, tok.Status.RestartedForTokenID)
	}
}

// optedIn is the annotation that opts a workload in to restarts by the NomadTokens named.
func optedIn(tokens string) map[string]string {
	return map[string]string{v1alpha1.AnnotationRestartOnRotation: tokens}
}
