package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

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

func TestAWorkloadOptsInByNamingTheToken(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		want        bool
	}{
		{"exact name", optedIn("ci"), true},
		{"in a list, with spaces", optedIn("uploader , ci ,backup"), true},
		{"other names only", optedIn("uploader,backup,ci-nightly"), false},
		{"empty value", optedIn(""), false},
		{"a star is no wildcard", optedIn("*"), false},
		{"a star beside other names", optedIn("*, uploader"), false},
		{"annotation missing", map[string]string{"unrelated": "ci"}, false},
		{"no annotations at all", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := optsIn(tt.annotations, "ci"); got != tt.want {
				t.Errorf("optsIn(%v, ci) = %v, want %v", tt.annotations, got, tt.want)
			}
		})
	}
}

func TestRestartTargetsConditionSaysWhatToAnnotate(t *testing.T) {
	deployment := func(annotations map[string]string) restartTarget {
		return restartTarget{"Deployment", &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "uploader", Annotations: annotations}}}
	}
	key := v1alpha1.AnnotationRestartOnRotation
	tests := []struct {
		name    string
		targets []restartTarget
		status  metav1.ConditionStatus
		reason  string
		says    string
	}{
		{"opted in", []restartTarget{deployment(optedIn("ci"))}, metav1.ConditionTrue, v1alpha1.ReasonRestartTargetsOptedIn, key},
		{"a missing target has no say", []restartTarget{{kind: "DaemonSet"}}, metav1.ConditionTrue, v1alpha1.ReasonRestartTargetsOptedIn, key},
		{"not annotated", []restartTarget{deployment(nil)}, metav1.ConditionFalse, v1alpha1.ReasonRestartTargetNotOptedIn,
			"Deployment uploader (kubectl annotate -n team-a deployment/uploader " + key + "=ci)"},
		{"other tokens listed", []restartTarget{deployment(optedIn("nightly, backup"))}, metav1.ConditionFalse, v1alpha1.ReasonRestartTargetNotOptedIn,
			"add ci to the existing list: kubectl annotate --overwrite -n team-a deployment/uploader " + key + "=nightly,backup,ci"},
		{"a star", []restartTarget{deployment(optedIn("*"))}, metav1.ConditionFalse, v1alpha1.ReasonRestartTargetNotOptedIn,
			`"*" is not accepted: name each NomadToken: kubectl annotate --overwrite -n team-a deployment/uploader ` + key + "=ci)"},
		{"empty value", []restartTarget{deployment(optedIn(""))}, metav1.ConditionFalse, v1alpha1.ReasonRestartTargetNotOptedIn,
			"its value names no NomadToken: kubectl annotate --overwrite -n team-a deployment/uploader " + key + "=ci)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := issuedToken()
			notOptedIn, changed := setRestartTargetsCondition(tok, tt.targets)
			c := meta.FindStatusCondition(tok.Status.Conditions, v1alpha1.ConditionRestartTargets)
			if c == nil || c.Status != tt.status || c.Reason != tt.reason || !strings.Contains(c.Message, tt.says) || c.ObservedGeneration != tok.Generation {
				t.Fatalf("condition %+v, want %s %s saying %q", c, tt.status, tt.reason, tt.says)
			}
			if !changed || (len(notOptedIn) > 0) != (tt.status == metav1.ConditionFalse) {
				t.Errorf("changed %v, not opted in %v", changed, notOptedIn)
			}
			if _, again := setRestartTargetsCondition(tok, tt.targets); again {
				t.Error("the same finding set again must count as unchanged (no second Event)")
			}
			if ready := meta.FindStatusCondition(tok.Status.Conditions, v1alpha1.ConditionReady); ready != nil {
				t.Errorf("Ready is not the restart targets' business: %+v", ready)
			}
		})
	}
}

func TestATargetWithoutOptInIsNotRestarted(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(now)
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	plain := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "uploader"}}
	other := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "db", Annotations: optedIn("nightly")}}
	mine := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "agent", Annotations: optedIn("nightly, ci")}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(plain, other, mine).Build()
	recorder := events.NewFakeRecorder(20)
	r := &NomadTokenReconciler{Client: c, APIReader: c, Recorder: recorder, Clock: clk, RestartTargetsRecheck: time.Minute}
	tok := issuedToken()
	tok.Spec.Rotation.RestartTargets = []v1alpha1.RestartTarget{{Kind: "Deployment", Name: "uploader"}, {Kind: "StatefulSet", Name: "db"}, {Kind: "DaemonSet", Name: "agent"}}
	tok.Status.LastRotationTime = &metav1.Time{Time: now}
	stamp := func(obj client.Object) string {
		_ = c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
		switch w := obj.(type) {
		case *appsv1.Deployment:
			return w.Spec.Template.Annotations[v1alpha1.AnnotationRestartedAt]
		case *appsv1.StatefulSet:
			return w.Spec.Template.Annotations[v1alpha1.AnnotationRestartedAt]
		case *appsv1.DaemonSet:
			return w.Spec.Template.Annotations[v1alpha1.AnnotationRestartedAt]
		}
		return ""
	}

	wait, err := r.restartConsumers(context.Background(), tok)
	if err != nil || wait != time.Minute {
		t.Fatalf("wait %s err %v: want the opt-in checked again after the recheck interval", wait, err)
	}
	if stamp(plain) != "" || stamp(other) != "" || stamp(mine) == "" || tok.Status.RestartedForTokenID != tok.Status.TokenID {
		t.Fatalf("stamps uploader %q db %q agent %q restartedFor %q: want only the opted-in DaemonSet rolled",
			stamp(plain), stamp(other), stamp(mine), tok.Status.RestartedForTokenID)
	}
	got := drainEvents(recorder)
	if countPrefixed(got, corev1.EventTypeWarning+" "+v1alpha1.EventRestartTargetNotOptedIn) != 2 ||
		countPrefixed(got, corev1.EventTypeNormal+" "+v1alpha1.EventRestartedTarget) != 1 {
		t.Fatalf("events %q: want a NotOptedIn Warning for each of uploader and db, one RestartedTarget", got)
	}
	cond := meta.FindStatusCondition(tok.Status.Conditions, v1alpha1.ConditionRestartTargets)
	if cond == nil || cond.Status != metav1.ConditionFalse || !strings.Contains(cond.Message, "Deployment uploader") ||
		!strings.Contains(cond.Message, "StatefulSet db") || strings.Contains(cond.Message, "agent") {
		t.Fatalf("condition %+v: want False naming uploader and db only", cond)
	}

	// Within the interval nothing is read again; after it, the same finding adds no Event.
	if _, err := r.restartConsumers(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Minute)
	if _, err := r.restartConsumers(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if got := drainEvents(recorder); len(got) != 0 {
		t.Fatalf("events %q: the same finding must not be told again", got)
	}

	// Opting in is noticed at the next check, without a rotation.
	for _, obj := range []client.Object{plain, other} {
		obj.SetAnnotations(optedIn("nightly,ci"))
		if err := c.Update(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
	}
	clk.Step(time.Minute)
	if wait, err := r.restartConsumers(context.Background(), tok); err != nil || wait != 0 {
		t.Fatalf("wait %s err %v: with every target opted in, no wake-up of its own", wait, err)
	}
	if !meta.IsStatusConditionTrue(tok.Status.Conditions, v1alpha1.ConditionRestartTargets) || stamp(plain) != "" {
		t.Fatalf("conditions %+v, uploader stamp %q: want True, and no restart without a rotation", tok.Status.Conditions, stamp(plain))
	}

	// No restart targets, no condition.
	tok.Spec.Rotation.RestartTargets = nil
	if _, err := r.restartConsumers(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(tok.Status.Conditions, v1alpha1.ConditionRestartTargets); c != nil {
		t.Fatalf("condition %+v left behind by a token without restart targets", c)
	}
}

func TestOptInIsReadAgainWhenTheSpecChanges(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	reads := 0
	c := fake.NewClientBuilder().WithScheme(scheme).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			reads++
			return c.Get(ctx, key, obj, opts...)
		},
	}).WithObjects(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "uploader", Annotations: optedIn("ci")}}).Build()
	clk := clocktesting.NewFakeClock(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	r := &NomadTokenReconciler{Client: c, APIReader: c, Recorder: events.NewFakeRecorder(10), Clock: clk}
	tok := issuedToken()
	tok.Status.RestartedForTokenID = tok.Status.TokenID
	tok.Spec.Rotation.RestartTargets = []v1alpha1.RestartTarget{{Kind: "Deployment", Name: "uploader"}}

	for i := 0; i < 3; i++ {
		if _, err := r.restartConsumers(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if reads != 1 {
		t.Fatalf("%d reads: a steady token reads its targets once per recheck interval, not on every reconcile", reads)
	}
	tok.Generation++
	if _, err := r.restartConsumers(context.Background(), tok); err != nil || reads != 2 {
		t.Fatalf("%d reads (err %v): a spec change must read the targets again", reads, err)
	}
	clk.Step(DefaultVerificationInterval)
	if _, err := r.restartConsumers(context.Background(), tok); err != nil || reads != 3 {
		t.Fatalf("%d reads (err %v): after the recheck interval the targets are read again", reads, err)
	}
}
